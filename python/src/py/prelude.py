# Gearshift's Python prelude: the GearsBuilder API of RedisGears 1.2, written from its
# documented behaviour (REFERENCE.md §2-§5). Every RG.PYEXECUTE session's globals start as
# a copy of this module's namespace. Steps are recorded as plain tuples; the native side
# (`_gearshift.run`) turns them into an engine plan. Built-ins (count, countby, avg, sort,
# distinct, limit) are recorded as their own tuples and run natively, with 1.2's output.
import copy as _copy
import inspect as _inspect
import types as _types

import _gearshift
from _gearshift import execute, log, configGet, hashtag, isAsyncAllow

__all__ = ['GearsBuilder', 'GB', 'execute', 'log', 'configGet', 'gearsConfigGet', 'hashtag',
           'isAsyncAllow', 'flat_error', 'GearsError', 'atomic', 'call_next', 'override_reply',
           'get_command', 'gearsFuture', 'registerTE', 'createFuture', 'setFutureResults',
           'setFutureException', 'runCoroutine']

GearsError = _gearshift.GearsError


def flat_error(msg):
    """Raises an error whose reply text is exactly `msg` (no traceback, no type): calling it
    raises, as 1.2's does, so `raise flat_error(msg)` and a bare `flat_error(msg)` both work."""
    raise _gearshift.FlatError(msg)


_FUNCTION = (_types.FunctionType,)
# Readers 1.2 knows at C level, plus its two Python-level aliases of PythonReader.
_C_READERS = ('KeysReader', 'StreamReader', 'CommandReader', 'PythonReader', 'ShardIDReader')
_PY_READERS = ('ShardsIDReader', 'KeysOnlyReader')
# Entries per XREAD of StreamReader.run (paging keeps each Redis-lock hold short).

def _check_arity(op, args, low, high=None):
    if not (low <= len(args) <= (low if high is None else high)):
        raise GearsError('wrong number of args to %s function' % op)


def _check_fn(what, f):
    if not isinstance(f, _FUNCTION):
        raise GearsError('%s argument must be a function' % what)


def _identity(x):
    return x


def gearsConfigGet(key, default=None):
    val = configGet(key)
    return val if val is not None else default


from _gearshift_futures import (  # noqa: E402  (async records, own file)
    GearsFuture, createFuture, gearsFuture, runCoroutine, setFutureException, setFutureResults)
from _gearshift_readers import (  # noqa: E402  (python readers, own file)
    _scan_count_ok, _stream_reader, createKeysOnlyReader, shardReaderCallback)


def _check_bool(kwargs, name, error):
    if name in kwargs and not isinstance(kwargs[name], bool):
        raise GearsError(error)


def _check_thread():
    """1.2 refuses to build a flow on a thread the user's code started with `threading`
    (Gearshift's own threads are not `threading` ones, except the asyncio loop's)."""
    import threading
    t = threading.current_thread()
    if isinstance(t, (threading._MainThread, threading._DummyThread)) or t.name == 'gears-asyncio':
        return
    raise GearsError('Can not create a gearsCtx on a python created thread')


class GearsBuilder(object):
    """Builds a data flow: a reader, then steps, then run() (or register())."""

    def __init__(self, reader='KeysReader', defaultArg='*', desc=None):
        _check_thread()
        if not isinstance(reader, str):
            raise GearsError('reader argument must be a string')
        if reader not in _C_READERS and reader not in _PY_READERS:
            raise GearsError('The given reader does not exists')
        self.realReader = reader
        self.reader = 'PythonReader' if reader in _PY_READERS else reader
        self.defaultArg = defaultArg
        self.desc = desc
        self.steps = []

    def _add(self, *step):
        self.steps.append(step)
        return self

    # -- steps (1.2 validates these in C: positional arguments only) ----------------------

    def map(self, *args):
        _check_arity('map', args, 1)
        _check_fn('map', args[0])
        return self._add('map', args[0])

    def flatmap(self, *args):
        _check_arity('flatmap', args, 1)
        _check_fn('flatmap', args[0])
        return self._add('flatmap', args[0])

    def foreach(self, *args):
        _check_arity('foreach', args, 1)
        _check_fn('foreach', args[0])
        return self._add('foreach', args[0])

    def filter(self, *args):
        _check_arity('filter', args, 1)
        _check_fn('filter', args[0])
        return self._add('filter', args[0])

    def accumulate(self, *args):
        _check_arity('accumulate', args, 1)
        _check_fn('accumulate', args[0])
        return self._add('accumulate', args[0])

    def repartition(self, *args):
        _check_arity('repartition', args, 1)
        _check_fn('repartition', args[0])
        return self._add('repartition', args[0])

    def localgroupby(self, *args):
        # 1.2 reports localgroupby's errors with groupby's texts.
        _check_arity('groupby', args, 2)
        _check_fn('groupby extractor', args[0])
        _check_fn('groupby reducer', args[1])
        return self._add('localgroupby', args[0], args[1])

    def groupby(self, *args):
        _check_arity('groupby', args, 2)
        _check_fn('groupby extractor', args[0])
        _check_fn('groupby reducer', args[1])
        return self._add('groupby', args[0], args[1])

    def batchgroupby(self, *args):
        _check_arity('batchgroupby', args, 2)
        _check_fn('batchgroupby extractor', args[0])
        # 1.2 never checks the reducer here: a bad one fails when the execution runs.
        return self._add('batchgroupby', args[0], args[1])

    def collect(self, *args):
        _check_arity('collect', args, 0)
        return self._add('collect')

    def limit(self, *args):
        _check_arity('limit', args, 1, 2)
        for a in args:
            if not isinstance(a, int):
                raise GearsError('limit argument must be a number')
        return self._add('limit', args[0], args[1] if len(args) > 1 else 0)

    # -- Gearshift extensions (docs/batch-api.md): one call per batch of records ---------

    def mapBatch(self, *args, format='list'):
        _check_arity('mapBatch', args, 1)
        _check_fn('mapBatch', args[0])
        if format == 'arrow':
            import _gearshift_arrow
            return self._add('mapbatch', args[0], *_gearshift_arrow.wrap(args[0]))
        if format != 'list':
            raise GearsError("mapBatch format must be 'list' or 'arrow'")
        return self._add('mapbatch', args[0], args[0], None)

    def filterBatch(self, *args, format='list'):
        _check_arity('filterBatch', args, 1)
        _check_fn('filterBatch', args[0])
        if format == 'arrow':
            import _gearshift_arrow
            return self._add('filterbatch', args[0], *_gearshift_arrow.wrap_filter(args[0]))
        if format != 'list':
            raise GearsError("filterBatch format must be 'list' or 'arrow'")
        return self._add('filterbatch', args[0])

    # -- sugar (Python-level in 1.2: no validation, callbacks wrapped in lambdas) ---------

    def aggregate(self, zero, seqOp, combOp):
        # 1.2 quirk: the accumulator is reset to a copy of zero whenever it is falsy.
        self._add('accumulate', lambda a, r: seqOp(a if a else _copy.deepcopy(zero), r))
        self._add('collect')
        return self._add('accumulate', lambda a, r: combOp(a if a else _copy.deepcopy(zero), r))

    def aggregateby(self, extractor, zero, seqOp, combOp):
        self._add('localgroupby', lambda x: extractor(x),
                  lambda k, a, r: seqOp(k, a if a else _copy.deepcopy(zero), r))
        return self._add('groupby', lambda r: r['key'],
                         lambda k, a, r: combOp(k, a if a else _copy.deepcopy(zero), r['value']))

    def __localAggregateby__(self, extractor, zero, aggregator):
        # aggregateby's local half: per key on this shard, no repartition.
        return self._add('localgroupby', lambda x: extractor(x),
                         lambda k, a, r: aggregator(k, a if a else _copy.deepcopy(zero), r))

    def count(self):
        # Native: local count, collect, sum of the counts.
        self._add('count')
        self._add('collect')
        return self._add('sumints')

    def countby(self, extractor=None):
        # Native: the extractor runs once per record; counting and summing per key are
        # engine operators. Same output as 1.2's aggregateby(extractor, 0, +1, +).
        return self._add('countby', extractor)

    def sort(self, reverse=True):
        # Native gather + one sorted(); emitted last-first like 1.2's flatmap, so the
        # default reverse=True gives ascending output.
        return self._add('sort', reverse)

    def distinct(self):
        return self._add('distinct')

    def avg(self, extractor=None):
        # 1.2 adds the extractor as a map step (validated as one); float() by default.
        if extractor is not None:
            _check_fn('map', extractor)
            if _inspect.iscoroutinefunction(extractor):
                # An `async def` one is awaited, as a map step's is: it runs as one.
                return self.map(extractor)._add('avg', _identity)
        return self._add('avg', extractor)

    # -- actions ------------------------------------------------------------------------

    def run(self, arg=None, convertToStr=True, collect=True, **kwargs):
        steps = list(self.steps)
        if convertToStr:
            steps.append(('tostr',))
        if collect:
            steps.append(('collect',))
        arg = arg if arg else self.defaultArg
        reader = self.reader
        if self.realReader == 'ShardsIDReader':
            arg = shardReaderCallback
        elif self.realReader == 'KeysOnlyReader':
            generator = createKeysOnlyReader(arg, **kwargs)  # 1.2's argument checks
            # A count SCAN refuses takes the Python path, where SCAN reports it as in 1.2.
            if kwargs.get('patternGenerator') is None and _scan_count_ok(kwargs.get('count', 1)):
                # Native: key names straight from the keyspace scan, no Python per key.
                reader, kwargs = 'KeysOnlyReader', {'noScan': bool(kwargs.get('noScan', False))}
            else:
                arg = generator
        elif reader == 'PythonReader':
            if not isinstance(arg, _FUNCTION):
                raise GearsError('pyreader argument must be a function')
        elif reader in ('KeysReader', 'StreamReader'):
            if not isinstance(arg, str):
                raise GearsError('regex argument must be a string')
            if reader == 'KeysReader':
                _check_bool(kwargs, 'noScan', 'exactMatch value is not boolean')
                _check_bool(kwargs, 'readValue', 'readValue value is not boolean')
            else:
                from_id = kwargs.get('fromId', '0-0')
                if not isinstance(from_id, str):
                    raise GearsError('fromId argument must be a string')
                reader, arg = 'PythonReader', _stream_reader(arg, from_id)
        else:
            raise GearsError('Given reader do not support run or not exists')
        mode = kwargs.get('mode', 'async')
        if not isinstance(mode, str):
            raise GearsError('execution mode must be a string')
        if mode not in ('async', 'async_local'):
            raise GearsError('unknown execution mode')
        return _gearshift.run(reader, arg, steps, kwargs)

    def register(self, prefix='*', convertToStr=True, collect=True, **kwargs):
        if 'regex' in kwargs:  # deprecated alias of prefix
            prefix = kwargs.pop('regex')
        if self.reader in ('PythonReader', 'KeysOnlyReader'):
            raise GearsError('given reader does not exists or does not support register')
        if self.reader == 'CommandReader':
            opts = _command_options(kwargs)
        elif self.reader in ('KeysReader', 'StreamReader'):
            if not isinstance(prefix, str):
                raise GearsError('regex argument must be a string')
            if self.reader == 'KeysReader':
                opts = _register_options(kwargs)
            else:
                opts = _stream_options(kwargs)
        else:
            raise GearsError('register() on %s is not supported by this Gearshift build yet' % self.reader)
        steps = list(self.steps)
        if convertToStr:
            steps.append(('tostr',))
        if collect:
            steps.append(('collect',))
        return _gearshift.register(self.reader, prefix, steps, opts, self.desc)


GB = GearsBuilder

_KEY_TYPES = ('string', 'list', 'hash', 'set', 'zset', 'module', 'empty', 'stream')


def _str_items(value, not_iterable, not_string):
    if value is None:
        return None
    try:
        items = list(value)
    except TypeError:
        # `from None`: the error reads as 1.2's single one, not a chained TypeError.
        raise GearsError(not_iterable) from None
    for i in items:
        if not isinstance(i, str):
            raise GearsError(not_string)
    return items


def _common_options(kwargs):
    mode = kwargs.get('mode', 'async')
    if not isinstance(mode, str):
        raise GearsError('execution mode must be a string')
    if mode not in ('sync', 'async', 'async_local'):
        raise GearsError('unknown execution mode')
    on_registered = kwargs.get('onRegistered')
    if on_registered is not None and not isinstance(on_registered, _FUNCTION):
        raise GearsError('OnRegistered argument must be a function')
    return {'mode': mode, 'onRegistered': on_registered}


def _command_options(kwargs):
    trigger, hook, keyprefix = kwargs.get('trigger'), kwargs.get('hook'), kwargs.get('keyprefix')
    if trigger is not None and (hook is not None or keyprefix is not None):
        raise GearsError('trigger argument can not be given with keyprefix or hook')
    if trigger is None and hook is None:
        raise GearsError('no trigger or hook argument was given')
    inorder = kwargs.get('inorder', False)
    if not isinstance(inorder, bool):
        raise GearsError('inorder argument is be boolean')
    if trigger is not None and not isinstance(trigger, str):
        raise GearsError('trigger argument is not string')
    if hook is not None:
        if not isinstance(hook, str):
            raise GearsError('hook argument is not string')
        if keyprefix is not None and not isinstance(keyprefix, str):
            raise GearsError('keyprefix argument is not string')
    opts = _common_options(kwargs)
    opts.update({'trigger': trigger, 'inorder': inorder, 'hook': hook, 'keyprefix': keyprefix})
    return opts


def _stream_options(kwargs):
    opts = _common_options(kwargs)
    batch = kwargs.get('batch', 1)
    if not isinstance(batch, int) or isinstance(batch, bool):
        raise GearsError('batch argument must be a number')
    duration = kwargs.get('duration', 0)
    if not isinstance(duration, int) or isinstance(duration, bool):
        raise GearsError('duration argument must be a number')
    policy = kwargs.get('onFailedPolicy', 'continue')
    if not isinstance(policy, str) or policy.lower() not in ('continue', 'abort', 'retry'):
        raise GearsError('onFailedPolicy must be Continue/Abort/Retry')
    if not 0 <= duration <= _gearshift.MAX_TIMER_SECONDS * 1000:
        # Both become timers; a longer period overflows Redis's timer clock.
        raise GearsError('duration argument must be between 0 and %d ms'
                         % (_gearshift.MAX_TIMER_SECONDS * 1000))
    interval = kwargs.get('onFailedRetryInterval', 1)
    if not isinstance(interval, int) or isinstance(interval, bool):
        raise GearsError('retryInterval argument must be a number')
    if not 0 <= interval <= _gearshift.MAX_TIMER_SECONDS:
        raise GearsError('retryInterval argument must be between 0 and %d seconds'
                         % _gearshift.MAX_TIMER_SECONDS)
    trim = kwargs.get('trimStream', True)
    if not isinstance(trim, bool):
        raise GearsError('pyTrimmStream argument must be a boolean')
    if opts['mode'] == 'sync' and policy.lower() != 'continue':
        raise GearsError('ExecutionMode sync can only be combined with OnFailedPolicy Continue')
    opts.update({'batch': batch, 'duration': duration, 'onFailedPolicy': policy.lower(),
                 'onFailedRetryInterval': interval, 'trimStream': trim})
    return opts


def _register_options(kwargs):
    opts = _common_options(kwargs)
    event_types = _str_items(kwargs.get('eventTypes'), 'given eventTypes is not iterable',
                             'given event type is not string')
    key_types = _str_items(kwargs.get('keyTypes'), 'given keyTypes is not iterable',
                           'given key type is not string')
    for t in key_types or ():
        if t not in _KEY_TYPES:
            raise GearsError('unknown key type')
    read_value = kwargs.get('readValue', True)
    if not isinstance(read_value, bool):
        raise GearsError('readValue is not boolean')
    commands = _str_items(kwargs.get('commands'), 'given commands is not iterable',
                          'given command type is not string')
    opts.update({'eventTypes': event_types, 'keyTypes': key_types, 'readValue': read_value,
                 'commands': commands})
    return opts


def registerTE(seconds, fn, keyName=None):
    """Calls fn() every `seconds` seconds on Redis's main thread until it raises. With
    `keyName` the time event is stored in that key (module type rg_timeev: persisted,
    replicated, and stopped by deleting the key); returns False if the key exists."""
    if not isinstance(seconds, int):
        raise GearsError('time argument must be a long')
    if seconds <= 0:
        raise GearsError('time argument must be a positive integer')
    if seconds > _gearshift.MAX_TIMER_SECONDS:
        # A longer period overflows Redis's timer clock (it once aborted the server).
        raise GearsError('time argument must be at most %d seconds' % _gearshift.MAX_TIMER_SECONDS)
    if not callable(fn):
        raise GearsError('callback must be a function')
    if keyName is None:
        return _gearshift.register_te(seconds, fn)
    if not isinstance(keyName, str):
        raise GearsError('key name must be a string')
    try:
        import cloudpickle
    except ImportError:
        raise GearsError('registerTE with a key name needs the cloudpickle package')
    try:
        data = cloudpickle.dumps(fn)
    except Exception as e:
        raise GearsError('Error occured when serialized a python callback, callback=%s error=%s'
                         % (getattr(fn, '__name__', repr(fn)), e))
    return _gearshift.register_te_key(seconds, fn, keyName, data)


class atomic(object):
    """`with atomic():` holds the Redis lock for the whole block, so its execute() calls run
    without any other client's command in between."""

    def __enter__(self):
        _gearshift.atomic_enter()
        return self

    def __exit__(self, *exc):
        _gearshift.atomic_exit()
        return False


# Command-hook helpers: `call_next` runs the next hook or the real command from inside a
# hook execution; outside one it fails exactly as 1.2 does.
def call_next(*args):
    return _gearshift.call_next(*args)


def override_reply(value):
    return _gearshift.override_reply(value)


def get_command():
    return _gearshift.get_command()


def _deprecated(old, new, target):
    def method(*args, **kwargs):
        log('%s is deprecated, use %s instead' % (old, new), level='warning')
        return target(*args, **kwargs)
    method.__name__ = old
    return method


Log = _deprecated('Log', 'log', log)
ConfigGet = _deprecated('ConfigGet', 'configGet', configGet)
GearsConfigGet = _deprecated('GearsConfigGet', 'gearsConfigGet', gearsConfigGet)
