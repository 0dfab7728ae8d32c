"""The readers 1.2 implements in Python (KeysOnlyReader's SCAN, ShardsIDReader, StreamReader's
run), as generators the prelude hands to the PythonReader. Loaded before the prelude (lib.rs).
"""

import _gearshift
from _gearshift import execute

GearsError = _gearshift.GearsError
flat_error = _gearshift.FlatError

_STREAM_PAGE = 1000


def createKeysOnlyReader(pattern='*', count=1000, noScan=False, patternGenerator=None):
    """KeysOnlyReader: a PythonReader generator of key names (SCAN, or EXISTS with noScan).
    patternGenerator, when given, runs on each shard and returns (pattern, noScan)."""
    def keysOnlyReader():
        pat, no_scan = patternGenerator() if patternGenerator is not None else (pattern, noScan)
        if no_scan:
            try:
                found = execute('exists', pat) == 1
            except Exception:
                return
            if found:
                yield pat
            return
        cursor = '0'
        while True:
            cursor, keys = execute('scan', cursor, 'MATCH', str(pat), 'COUNT', str(count))
            for k in keys:
                yield k
            if cursor == '0':
                return
    return keysOnlyReader


def _scan_count_ok(count):
    try:
        return 1 <= int(str(count)) < 2**63
    except ValueError:
        return False


def shardReaderCallback():
    """ShardsIDReader: this shard's id ('1' on a standalone server)."""
    try:
        res = execute('RG.INFOCLUSTER')
    except GearsError:
        res = 'no cluster mode'
    yield '1' if res == 'no cluster mode' else res[1]


def _stream_reader(key, fromId):
    """StreamReader.run(key, fromId): the entries of stream `key` after `fromId`."""
    def streamReader():
        # In a cluster every shard runs the reader: the stream is read on its owner only.
        if not _gearshift._owns_key(key):
            return
        last = fromId
        while True:
            try:
                res = execute('XREAD', 'COUNT', _STREAM_PAGE, 'STREAMS', key, last)
            except GearsError as e:
                raise flat_error(str(e)) from None
            if not res:
                return
            entries = res[0][1]
            for entry_id, fields in entries:
                yield {'key': key, 'id': entry_id,
                       'value': dict(zip(fields[0::2], fields[1::2]))}
            if len(entries) < _STREAM_PAGE:
                return
            last = entries[-1][0]
    return streamReader
