# Gearshift's Python prelude: the GearsBuilder API of RedisGears 1.2, written from its
# documented behaviour (REFERENCE.md §2-§5). Every RG.PYEXECUTE session's globals start as
# a copy of this module's namespace. Steps are recorded as plain tuples; the native side
# (`_gearshift.run`) turns them into an engine plan, running built-ins natively.
import copy as _copy
import types as _types

import _gearshift
from _gearshift import execute, log, configGet, gearsConfigGet, hashtag, isAsyncAllow

__all__ = ['GearsBuilder', 'GB', 'execute', 'log', 'configGet', 'gearsConfigGet', 'hashtag',
           'isAsyncAllow', 'flat_error', 'GearsError', 'atomic']

GearsError = _gearshift.GearsError
flat_error = _gearshift.FlatError

_FUNCTION = (_types.FunctionType,)
_NATIVE_READERS = ('KeysReader', 'StreamReader', 'CommandReader', 'PythonReader')


def _check_fn(op, f):
    if not isinstance(f, _FUNCTION):
        raise GearsError('%s argument must be a function' % op)


def _shard_ids():
    yield '1'


def _keys_only_reader(pattern='*', count=1000, noScan=False, patternGenerator=None):
    def generator():
        pat, no_scan = (patternGenerator() if patternGenerator else (pattern, noScan))
        if no_scan:
            if execute('EXISTS', pat) == 1:
                yield pat
            return
        cursor = '0'
        while True:
            cursor, keys = execute('SCAN', cursor, 'MATCH', pat, 'COUNT', count)
            for k in keys:
                yield k
            if cursor == '0':
                return
    return generator


class GearsBuilder(object):
    """Builds a data flow: a reader, then steps, then run() (or register())."""

    def __init__(self, reader='KeysReader', defaultArg='*', desc=None):
        if not isinstance(reader, str):
            raise GearsError('reader argument must be a string')
        self.reader = reader
        self.defaultArg = defaultArg
        self.desc = desc
        self.steps = []
        if reader == 'ShardsIDReader':
            self.reader = 'PythonReader'
            self.defaultArg = _shard_ids
        elif reader == 'KeysOnlyReader':
            self.reader = 'KeysOnlyReader'
        elif reader not in _NATIVE_READERS:
            raise GearsError('The given reader does not exists')

    def _add(self, *step):
        self.steps.append(step)
        return self

    def map(self, f):
        _check_fn('map', f)
        return self._add('map', f)

    def flatmap(self, f):
        _check_fn('flatmap', f)
        return self._add('flatmap', f)

    def foreach(self, f):
        _check_fn('foreach', f)
        return self._add('foreach', f)

    def filter(self, f):
        _check_fn('filter', f)
        return self._add('filter', f)

    def accumulate(self, f):
        _check_fn('accumulate', f)
        return self._add('accumulate', f)

    def localgroupby(self, extractor, reducer):
        _check_fn('localgroupby extractor', extractor)
        _check_fn('localgroupby reducer', reducer)
        return self._add('localgroupby', extractor, reducer)

    def limit(self, length, start=0):
        if not isinstance(length, int) or not isinstance(start, int):
            raise GearsError('limit argument must be a number')
        return self._add('limit', length, start)

    def collect(self):
        return self._add('collect')

    def repartition(self, extractor):
        _check_fn('repartition', extractor)
        return self._add('repartition', extractor)

    def groupby(self, extractor, reducer):
        if not isinstance(extractor, _FUNCTION):
            raise GearsError('groupby extractor argument must be a function')
        if not isinstance(reducer, _FUNCTION):
            raise GearsError('groupby reducer argument must be a function')
        self._add('repartition', extractor)
        return self._add('localgroupby', extractor, reducer)

    def batchgroupby(self, extractor, reducer):
        _check_fn('batchgroupby extractor', extractor)
        _check_fn('batchgroupby reducer', reducer)
        self._add('repartition', extractor)
        return self._add('batchgroupby', extractor, reducer)

    def aggregate(self, zero, seqOp, combOp):
        _check_fn('aggregate', seqOp)
        _check_fn('aggregate', combOp)
        # 1.2 quirk: the accumulator is reset to a copy of zero whenever it is falsy.
        self.accumulate(lambda a, r: seqOp(a if a else _copy.deepcopy(zero), r))
        self.collect()
        return self.accumulate(lambda a, r: combOp(a if a else _copy.deepcopy(zero), r))

    def aggregateby(self, extractor, zero, seqOp, combOp):
        _check_fn('aggregateby', extractor)
        self.localgroupby(extractor, lambda k, a, r: seqOp(k, a if a else _copy.deepcopy(zero), r))
        return self.groupby(lambda r: r['key'],
                            lambda k, a, r: combOp(k, a if a else _copy.deepcopy(zero), r['value']))

    def count(self):
        # Native: no Python object is built to count records.
        self._add('count')
        self._add('collect')
        return self._add('sumints')

    def countby(self, extractor=lambda x: x):
        return self.aggregateby(extractor, 0, lambda k, a, r: 1 + a, lambda k, a, r: r + a)

    def sort(self, reverse=True):
        def seq(a, r):
            a.append(r)
            return a

        def comb(a, r):
            a.extend(r)
            return a
        self.aggregate([], seq, comb)
        self.map(lambda r: sorted(r, reverse=reverse))
        # flatmap emits in reverse list order (1.2), so reverse=True ends up ascending.
        return self.flatmap(lambda r: r)

    def distinct(self):
        def seq(a, r):
            a.add(r)
            return a

        def comb(a, r):
            a.update(r)
            return a
        self.aggregate(set(), seq, comb)
        return self.flatmap(lambda r: list(r))

    def avg(self, extractor=lambda x: float(x)):
        self.map(extractor)
        self.aggregate((0, 0), lambda a, r: (a[0] + r, a[1] + 1),
                       lambda a, r: (a[0] + r[0], a[1] + r[1]))
        return self.map(lambda x: x[0] / x[1])

    def run(self, arg=None, convertToStr=True, collect=True, **kwargs):
        mode = kwargs.get('mode', 'async')
        if not isinstance(mode, str):
            raise GearsError('execution mode must be a string')
        if mode not in ('async', 'async_local'):
            raise GearsError('unknown execution mode')
        steps = list(self.steps)
        if convertToStr:
            steps.append(('tostr',))
        if collect:
            steps.append(('collect',))
        reader, arg = self.reader, (arg if arg else self.defaultArg)
        if reader == 'KeysOnlyReader':
            reader, arg = 'PythonReader', _keys_only_reader(
                arg, **kwargs)
        return _gearshift.run(reader, arg, steps, kwargs)

    def register(self, prefix='*', convertToStr=True, collect=True, **kwargs):
        raise GearsError('register() is not supported by this Gearshift build yet')


GB = GearsBuilder


class atomic(object):
    """`with atomic():` — holds the Redis lock for the block (not yet supported)."""

    def __enter__(self):
        raise GearsError('atomic() is not supported by this Gearshift build yet')

    def __exit__(self, *exc):
        return False
