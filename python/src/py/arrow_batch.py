# Gearshift extension: `mapBatch(f, format='arrow')` and `filterBatch(f, format='arrow')`
# (docs/batch-api.md). Loaded as the module `_gearshift_arrow`; pyarrow is imported only when
# a flow asks for the arrow format, so Gearshift never requires it.
#
# On reader key rows (and on an earlier arrow step's result) the stage calls `f` itself with
# a RecordBatch made in Rust and handed over the Arrow C Data Interface (python/src/arrow).
# After other Python steps the records are dicts: `wrap(f)` / `wrap_filter(f)` give the
# callable that builds the same RecordBatch (same schema) from them and calls `f`.
import _gearshift

GearsError = _gearshift.GearsError

# Engine key-type codes, in order (engine::batch::KeyType): the `type` column's dictionary.
_TYPE_NAMES = ['string', 'hash', 'list', 'set', 'zset', 'module', 'unknown', 'empty']

_pa = None


def _pyarrow(step='mapBatch'):
    global _pa
    if _pa is None:
        try:
            import pyarrow
        except ImportError:
            raise GearsError("%s(format='arrow') needs pyarrow, which is not installed" % step) from None
        _pa = pyarrow
    return _pa


def _value_type(pa, kind):
    if kind == 'hash':
        return pa.map_(pa.string(), pa.string())
    if kind == 'list':
        return pa.list_(pa.string())
    return pa.string()


def _schema(pa, kind):
    """The schema engine::batch::KeyColumns::to_record_batch gives (kind None: no value column)."""
    fields = [pa.field('key', pa.string(), nullable=False),
              pa.field('type', pa.dictionary(pa.uint8(), pa.string()), nullable=False)]
    if kind is not None:
        fields.append(pa.field('value', _value_type(pa, kind)))
    return pa.schema(fields)


def _batch_from_records(records, step='mapBatch'):
    pa = _pyarrow(step)
    try:
        keys = [r['key'] for r in records]
        types = [r.get('type') for r in records]
        has_value = all('value' in r for r in records)
        values = [r['value'] for r in records] if has_value else None
    except (TypeError, KeyError, AttributeError):
        raise TypeError("%s(format='arrow') needs KeysReader records" % step) from None
    try:
        codes = pa.array([_TYPE_NAMES.index(t) for t in types], pa.uint8())
    except ValueError:
        raise TypeError("%s(format='arrow') needs KeysReader records" % step) from None
    cols = [pa.array(keys, pa.string()), pa.DictionaryArray.from_arrays(codes, _TYPE_NAMES)]
    kind = None
    if values is not None:
        kinds = set(types)
        if len(kinds) != 1 or next(iter(kinds)) not in ('string', 'hash', 'list'):
            raise TypeError("%s(format='arrow') needs string, hash or list keys of one "
                            "type per batch, got %s" % (step, ', '.join(sorted(map(str, kinds)))))
        kind = next(iter(kinds))
        if kind == 'hash':
            values = [list(v.items()) for v in values]
        cols.append(pa.array(values, _value_type(pa, kind)))
    return pa.RecordBatch.from_arrays(cols, schema=_schema(pa, kind))


def wrap(f):
    """`(f_over_records, f)` for `mapBatch(f, format='arrow')`: the first returns `f`'s
    result as it is (a list, or Arrow data the stage takes over)."""
    _pyarrow()

    def from_records(records):
        return f(_batch_from_records(records))

    return from_records, f


def wrap_filter(f):
    """`(flags_over_records, f)` for `filterBatch(f, format='arrow')`: the first returns
    one flag per record (a boolean Arrow array's nulls are False)."""
    pa = _pyarrow('filterBatch')

    def from_records(records):
        ret = f(_batch_from_records(records, 'filterBatch'))
        if isinstance(ret, (pa.Array, pa.ChunkedArray)):
            return [v is True for v in ret.to_pylist()]
        return ret

    return from_records, f
