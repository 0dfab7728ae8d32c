# Gearshift extension: `mapBatch(f, format='arrow')` (docs/batch-api.md). Loaded as the
# module `_gearshift_arrow`; pyarrow is imported only when a flow asks for the arrow format,
# so Gearshift never requires it.
#
# `wrap(f)` returns two callables, each giving the list of output records of one call:
#  - `from_columns(parts)`: the reader's columns, straight from the engine batch (no record
#    dicts): Arrow-layout buffers described at `key_parts` in python/src/stage/batch.rs;
#  - `from_records(records)`: the same columns built from KeysReader record dicts, for a
#    batch step that follows other Python steps.
import _gearshift

GearsError = _gearshift.GearsError

# Engine key-type codes, in order (engine::batch::KeyType).
_TYPE_NAMES = ['string', 'hash', 'list', 'set', 'zset', 'module', 'unknown', 'empty']

_pa = None


def _pyarrow():
    global _pa
    if _pa is None:
        try:
            import pyarrow
        except ImportError:
            raise GearsError("mapBatch(format='arrow') needs pyarrow, which is not installed") from None
        _pa = pyarrow
    return _pa


def _text(pa, n, offsets, data):
    """A string array from Arrow buffers; binary when the bytes are not UTF-8."""
    bufs = [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    arr = pa.Array.from_buffers(pa.string(), n, bufs)
    try:
        arr.validate(full=True)
        return arr
    except pa.ArrowInvalid:
        return pa.Array.from_buffers(pa.binary(), n, bufs)


def _value_column(pa, n, values):
    """string for string keys, map<string, string> for hashes, list<string> for lists."""
    kind = values[0]
    if kind == 'string':
        return _text(pa, n, values[1], values[2])
    if kind not in ('hash', 'list'):
        names = values[1] if kind == 'mixed' else [kind]
        raise TypeError("mapBatch(format='arrow') needs string, hash or list keys of one "
                        "type per batch, got %s" % ', '.join(names))
    offsets = pa.Array.from_buffers(pa.int32(), n + 1, [None, pa.py_buffer(values[1])])
    n_items = len(values[2]) // 4 - 1
    if kind == 'hash':
        fields = _text(pa, n_items, values[2], values[3])
        vals = _text(pa, n_items, values[4], values[5])
        return pa.MapArray.from_arrays(offsets, fields, vals)
    return pa.ListArray.from_arrays(offsets, _text(pa, n_items, values[2], values[3]))


_types = None


def _batch_from_columns(parts):
    global _types
    pa = _pyarrow()
    if _types is None:
        _types = pa.array(_TYPE_NAMES)
    n, key_offsets, key_data, codes, values = parts
    type_codes = pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(codes)])
    names = ['key', 'type']
    cols = [_text(pa, n, key_offsets, key_data), _types.take(type_codes)]
    if values is not None:
        names.append('value')
        cols.append(_value_column(pa, n, values))
    return pa.RecordBatch.from_arrays(cols, names=names)


def _batch_from_records(records):
    pa = _pyarrow()
    try:
        keys = [r['key'] for r in records]
        types = [r.get('type') for r in records]
        has_value = all('value' in r for r in records)
        values = [r['value'] for r in records] if has_value else None
    except (TypeError, KeyError, AttributeError):
        raise TypeError("mapBatch(format='arrow') needs KeysReader records") from None
    names, cols = ['key', 'type'], [pa.array(keys), pa.array(types, pa.string())]
    if values is not None:
        kinds = set(types)
        if len(kinds) != 1 or next(iter(kinds)) not in ('string', 'hash', 'list'):
            raise TypeError("mapBatch(format='arrow') needs string, hash or list keys of one "
                            "type per batch, got %s" % ', '.join(sorted(map(str, kinds))))
        kind = next(iter(kinds))
        if kind == 'hash':
            col = pa.array([list(v.items()) for v in values], pa.map_(pa.string(), pa.string()))
        elif kind == 'list':
            col = pa.array(values, pa.list_(pa.string()))
        else:
            col = pa.array(values, pa.string())
        names.append('value')
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, names=names)


def _records(pa, ret):
    """The callback's return value as a list of output records."""
    if isinstance(ret, list):
        return ret
    if isinstance(ret, (pa.RecordBatch, pa.Table, pa.Array, pa.ChunkedArray)):
        return ret.to_pylist()
    raise TypeError('mapBatch callback must return a list or a pyarrow RecordBatch, Table '
                    'or Array, not %s' % type(ret).__name__)


def wrap(f):
    """`(from_records, from_columns)` for `mapBatch(f, format='arrow')`."""
    pa = _pyarrow()

    def from_columns(parts):
        return _records(pa, f(_batch_from_columns(parts)))

    def from_records(records):
        return _records(pa, f(_batch_from_records(records)))

    return from_records, from_columns
