"""The walkthrough's scripts (shared/seed/redisgears-introduction.txt), verbatim, shared by
the tests that run them on one server (test_ops, test_register) and on a cluster
(test_cluster), so each example is written once."""

# data.txt of the walkthrough's Cluster 101 section (plus `SET foo bar`).
PERSONS = [
    ("person:1", "Rick Sanchez", 70),
    ("person:2", "Morty Smith", 14),
    ("person:3", "Summer Smith", 17),
    ("person:4", "Beth Smith", 35),
    ("person:5", "Shrimply Pibbles", 87),
]

# Every family-count example's answer.
FAMILIES = [
    {"key": "Pibbles", "value": 1},
    {"key": "Sanchez", "value": 1},
    {"key": "Smith", "value": 3},
]

NON_REDUCED_MAXIMUM = """\
def maximum(a, x):
  ''' Returns the maximum '''
  a = a if a else 0       # initialize the accumulator
  return max(a, x)

# Original, non-reduced, maximum function version
gb = GearsBuilder()
gb.map(lambda x: int(x['value']['age']))
gb.accumulate(maximum)
gb.run('person:*')

## Expected result: [87, 35, 14]
"""

REDUCED_MAXIMUM = """\
def maximum(a, x):
  ''' Returns the maximum '''
  a = a if a else 0       # initialize the accumulator
  return max(a, x)

# Reduced maximum function
gb = GearsBuilder()
gb.map(lambda x: int(x['value']['age']))
gb.accumulate(maximum)
gb.collect()
gb.accumulate(maximum)
gb.run('person:*')

## Expected result: [87]
"""

AGGREGATED_MAXIMUM = """\
# Aggregated maximum version
gb = GearsBuilder()
gb.map(lambda x: int(x['value']['age']))
gb.aggregate(0,
             lambda a, x: max(a, x),
             lambda a, x: max(a, x))
gb.run('person:*')

## Expected result: [87]
"""

AGGREGATED_AVERAGE = """\
# Aggregated average
gb = GearsBuilder()
gb.map(lambda x: int(x['value']['age']))
gb.aggregate((0, 0),
             lambda a, x: (a[0] + x, a[1] + 1),
             lambda a, x: (a[0] + x[0], a[1] + x[1]))
gb.map(lambda x: x[0]/x[1])
gb.run('person:*')

## Expected result: [44.6]
"""

FNAME = """\
def fname(x):
  ''' Extracts the family name from a person's record '''
  return x['value']['name'].split(' ')[1]
"""

COUNTBY = FNAME + """
# Count family members
gb = GearsBuilder()
gb.countby(fname)
gb.run('person:*')

# Expected result: [
#   {'key': 'Pibbles', 'value': 1},
#   {'key': 'Smith', 'value': 3},
#   {'key': 'Sanchez', 'value': 1}
# ]
"""

HELPERS = FNAME + """
def key(x):
  ''' Extracts the key of a record '''
  return x['key']

def counter(k, a, r):
  ''' Counts records '''
  return (a if a else 0) + 1

def summer(k, a, r):
  ''' Sums record values '''
  return (a if a else 0) + r['value']
"""

LOCAL_AND_GLOBAL = HELPERS + """
# Use local and global groupby operations
gb = GearsBuilder()
gb.localgroupby(fname, counter)
gb.groupby(key, summer)
gb.run('person:*')

# Expected result: the same
"""

GLOBAL_ONLY = HELPERS + """
# Use only global groupby - NON-RECOMMENDED
gb = GearsBuilder()
gb.groupby(fname, counter)
gb.run('person:*')

# Expected result: the same, but slower :/
"""

REPARTITION = HELPERS + """
# Repartition for storing counts
gb = GearsBuilder()
gb.localgroupby(fname, counter)
gb.repartition(key)
gb.localgroupby(key, summer)
gb.foreach(lambda x: execute('SET', x['key'], x['value']))
gb.run('person:*')

# Expected result: the same + stored in Redis String keys
"""

REGISTERED_MAXIMUM = """def maximum(a, x):
  ''' Returns the maximum '''
  a = a if a else 0  # initialize the accumulator
  return max(a, x)

gb = GearsBuilder()
gb.map(lambda x: int(x['value']['age']))
gb.accumulate(maximum)
gb.register('person:*')                   # register to keyspace events
"""

CAS = """def age(x):
  ''' Extracts the age from a person's record '''
  return int(x['value']['age'])

def cas(x):
  ''' Checks and sets the current maximum '''
  k = 'age:maximum'
  v = execute('GET', k)   # read key's current value
  v = int(v) if v else 0  # initialize to 0 if None
  if x > v:               # if a new maximum found
    execute('SET', k, x)  # set key to new value

# Event handling function registration
gb = GearsBuilder()
gb.map(age)
gb.foreach(cas)
gb.register('person:*')
"""
