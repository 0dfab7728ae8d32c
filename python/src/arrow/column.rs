//! `ArrowColumn`: the records of an arrow-format batch step kept in Arrow form, as an
//! engine `ForeignColumn`, so that the steps after it need no Python object per record:
//! `count` counts it, `slice`/`limit` cut it in O(1), the next `mapBatch(format='arrow')`
//! gets the same buffers, and `countby()`/`avg()` read strings and numbers from it
//! natively (`stage/arrow.rs`).
//!
//! Python records are made in one place, [`ArrowColumn::rows`], only when a later step
//! needs Python objects (a per-record step, the finalizer, another shard): a `RecordBatch`
//! row becomes a dict, an array element its `to_pylist()` value; key rows a
//! `filterBatch(format='arrow')` kept become 1.2's record dicts.
//!
//! Part of `arrow`; depends on `ffi`, `engine::batch` (key rows as a `RecordBatch`), `column` (marshalling), `convert` and `gil`.

use std::any::Any;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
use arrow_array::{make_array, Array, ArrayRef, StructArray};
use arrow_data::transform::MutableArrayData;
use arrow_schema::DataType;
use engine::batch::{ForeignColumn, KeyColumns};
use engine::Datum;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use super::ffi;
use crate::column::PyColumn;
use crate::convert::key_row_to_dict;

/// Records in Arrow form (see the module doc).
#[derive(Debug)]
pub enum ArrowColumn {
    /// What an arrow-format step returned; `batch`: a `RecordBatch` or `Table` (a struct
    /// array whose fields are its columns), handed on as a `RecordBatch`.
    Array { array: ArrayRef, batch: bool },
    /// Reader key rows (a `filterBatch(format='arrow')` kept them): their records are the
    /// 1.2 dicts, event included; the next arrow step gets them as `KeyColumns::to_record_batch`'s batch.
    Keys(KeyColumns),
}

impl ArrowColumn {
    /// The Arrow data `ret` (an arrow step's return value) holds, one column per chunk,
    /// taken over without a copy; `None` when `ret` is no Arrow object.
    pub fn from_py(ret: &Bound<'_, PyAny>) -> PyResult<Option<Vec<ArrowColumn>>> {
        let Some(arrays) = ffi::from_py(ret)? else {
            return Ok(None);
        };
        let batch = ret.hasattr(pyo3::intern!(ret.py(), "schema"))?;
        Ok(Some(
            arrays
                .into_iter()
                .map(|array| {
                    let batch = batch && matches!(array.data_type(), DataType::Struct(_));
                    ArrowColumn::Array { array, batch }
                })
                .collect(),
        ))
    }

    pub fn rows_len(&self) -> usize {
        match self {
            ArrowColumn::Array { array, .. } => array.len(),
            ArrowColumn::Keys(k) => k.len(),
        }
    }

    /// What an arrow step's `f` gets: a `pyarrow.RecordBatch` (or `Array`), no copy of an
    /// Arrow column; key rows become a `RecordBatch` over the batch's own buffers (no copy).
    pub fn to_py<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self {
            ArrowColumn::Array { array, batch } => ffi::to_pyarrow(py, array.as_ref(), *batch),
            ArrowColumn::Keys(k) => {
                let rb = k
                    .to_record_batch()
                    .map_err(|e| PyTypeError::new_err(e.to_string()))?;
                ffi::to_pyarrow(py, &StructArray::from(rb), true)
            }
        }
    }

    /// The records as Python objects: the one place an `ArrowColumn` becomes them.
    pub fn rows<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyAny>>> {
        match self {
            ArrowColumn::Array { array, batch } => {
                let obj = ffi::to_pyarrow(py, array.as_ref(), *batch)?;
                obj.call_method0(pyo3::intern!(py, "to_pylist"))?
                    .try_iter()?
                    .collect()
            }
            ArrowColumn::Keys(k) => (0..k.len())
                .map(|i| key_row_to_dict(py, &k.row(i)))
                .collect(),
        }
    }

    /// The rows whose `keep` flag is set.
    pub fn filter(self, keep: &[bool]) -> ArrowColumn {
        let dest: Vec<usize> = keep.iter().map(|k| usize::from(!k)).collect();
        match self {
            ArrowColumn::Array { array, batch } => {
                let kept = partition_array(&array, &dest, 2).swap_remove(0);
                ArrowColumn::Array { array: kept, batch }
            }
            ArrowColumn::Keys(k) => ArrowColumn::Keys(k.partition(&dest, 2).swap_remove(0)),
        }
    }

    /// `key_text()` of each record when it needs no Python (strings and integers without
    /// nulls): what `countby()` counts.
    pub fn key_texts(&self) -> Option<Vec<Datum>> {
        let ArrowColumn::Array { array, .. } = self else {
            return None;
        };
        if array.null_count() > 0 {
            return None;
        }
        let strs = |v: Vec<String>| Some(v.into_iter().map(Datum::Str).collect());
        match array.data_type() {
            DataType::Utf8 => strs(
                array
                    .as_string::<i32>()
                    .iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect(),
            ),
            DataType::LargeUtf8 => strs(
                array
                    .as_string::<i64>()
                    .iter()
                    .flatten()
                    .map(str::to_owned)
                    .collect(),
            ),
            DataType::Int64 => strs(
                array
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .map(i64::to_string)
                    .collect(),
            ),
            DataType::Int32 => strs(
                array
                    .as_primitive::<Int32Type>()
                    .values()
                    .iter()
                    .map(i32::to_string)
                    .collect(),
            ),
            _ => None,
        }
    }

    /// `float(x)` of each record when it needs no Python (numbers without nulls): what
    /// `avg()` adds up.
    pub fn floats(&self) -> Option<Vec<f64>> {
        let ArrowColumn::Array { array, .. } = self else {
            return None;
        };
        if array.null_count() > 0 {
            return None;
        }
        Some(match array.data_type() {
            DataType::Float64 => array.as_primitive::<Float64Type>().values().to_vec(),
            DataType::Float32 => floats_of(
                array
                    .as_primitive::<Float32Type>()
                    .values()
                    .iter()
                    .map(|v| f64::from(*v)),
            ),
            DataType::Int64 => floats_of(
                array
                    .as_primitive::<Int64Type>()
                    .values()
                    .iter()
                    .map(|v| *v as f64),
            ),
            DataType::Int32 => floats_of(
                array
                    .as_primitive::<Int32Type>()
                    .values()
                    .iter()
                    .map(|v| f64::from(*v)),
            ),
            _ => return None,
        })
    }
}

fn floats_of(it: impl Iterator<Item = f64>) -> Vec<f64> {
    it.collect()
}

/// `array`'s rows split by `dest` into `n` arrays (runs of one destination copied at once).
fn partition_array(array: &ArrayRef, dest: &[usize], n: usize) -> Vec<ArrayRef> {
    let data = array.to_data();
    let mut outs: Vec<MutableArrayData> = (0..n)
        .map(|_| MutableArrayData::new(vec![&data], false, 0))
        .collect();
    let mut i = 0;
    while i < dest.len() {
        let to = dest[i];
        let end = dest[i..]
            .iter()
            .position(|d| *d != to)
            .map_or(dest.len(), |p| i + p);
        // `try_extend` fails only when the output's offsets overflow; a subset of one
        // array's rows cannot overflow what the array itself holds.
        #[allow(deprecated)]
        outs[to].extend(0, i, end);
        i = end;
    }
    outs.into_iter().map(|m| make_array(m.freeze())).collect()
}

impl ForeignColumn for ArrowColumn {
    fn len(&self) -> usize {
        self.rows_len()
    }

    fn slice(self: Box<Self>, start: usize, end: usize) -> Box<dyn ForeignColumn> {
        let end = end.min(self.rows_len());
        let start = start.min(end);
        Box::new(match *self {
            ArrowColumn::Array { array, batch } => ArrowColumn::Array {
                array: array.slice(start, end - start),
                batch,
            },
            ArrowColumn::Keys(k) => ArrowColumn::Keys(k.slice(start, end)),
        })
    }

    fn partition(self: Box<Self>, dest: &[usize], n: usize) -> Vec<Box<dyn ForeignColumn>> {
        match *self {
            ArrowColumn::Array { array, batch } => partition_array(&array, dest, n)
                .into_iter()
                .map(|array| {
                    Box::new(ArrowColumn::Array { array, batch }) as Box<dyn ForeignColumn>
                })
                .collect(),
            ArrowColumn::Keys(k) => k
                .partition(dest, n)
                .into_iter()
                .map(|k| Box::new(ArrowColumn::Keys(k)) as Box<dyn ForeignColumn>)
                .collect(),
        }
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    /// Another shard gets Python records (marshalled as a `PyColumn`'s).
    fn encode(&self, out: &mut Vec<u8>, errors: &mut Vec<String>) -> Result<(), String> {
        let col = crate::gil::records(|py| {
            let rows = self.rows(py).map_err(|e| e.to_string())?;
            Ok::<_, String>(PyColumn(rows.into_iter().map(Bound::unbind).collect()))
        })?;
        col.encode(out, errors)
    }
}

/// The Python records of a host column (`PyColumn` as is, `ArrowColumn` made into them).
pub fn py_rows<'py>(
    py: Python<'py>,
    f: Box<dyn ForeignColumn>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let any = f.into_any();
    let any = match any.downcast::<ArrowColumn>() {
        Ok(col) => return col.rows(py),
        Err(other) => other,
    };
    match any.downcast::<PyColumn>() {
        Ok(col) => Ok(col.0.into_iter().map(|o| o.into_bound(py)).collect()),
        Err(_) => Err(PyTypeError::new_err("foreign records of another host")),
    }
}

/// [`py_rows`] for code outside a GIL hold (finalizers): a `PyColumn`.
pub fn py_column(f: Box<dyn ForeignColumn>) -> engine::Result<Box<PyColumn>> {
    let any = f.into_any();
    match any.downcast::<ArrowColumn>() {
        Ok(col) => crate::gil::records(|py| {
            let rows = col
                .rows(py)
                .map_err(|e| engine::EngineError::Execution(crate::errors::error_text(py, &e)))?;
            Ok(Box::new(PyColumn(
                rows.into_iter().map(Bound::unbind).collect(),
            )))
        }),
        Err(other) => other
            .downcast::<PyColumn>()
            .map_err(|_| engine::EngineError::Internal("foreign records of another host".into())),
    }
}

#[cfg(test)]
mod tests {
    // Tests take the GIL directly, not through `crate::gil`.
    #![allow(clippy::disallowed_methods)]

    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use engine::batch::{KeyBuilder, KeyType};

    use super::*;

    fn init() {
        crate::embed::init_for_tests();
    }

    fn has_pyarrow(py: Python<'_>) -> bool {
        ffi::pyarrow_for_tests(py)
    }

    fn ints(v: &[i64]) -> ArrowColumn {
        ArrowColumn::Array {
            array: Arc::new(Int64Array::from(v.to_vec())),
            batch: false,
        }
    }

    fn values(c: &ArrowColumn) -> Vec<i64> {
        let ArrowColumn::Array { array, .. } = c else {
            panic!("an array")
        };
        array.as_primitive::<Int64Type>().values().to_vec()
    }

    #[test]
    fn slice_partition_and_filter_keep_the_right_rows() {
        let col: Box<dyn ForeignColumn> = Box::new(ints(&[1, 2, 3, 4, 5]));
        let parts = col.partition(&[0, 0, 1, 0, 1], 2);
        let parts: Vec<Vec<i64>> = parts
            .into_iter()
            .map(|p| values(&p.into_any().downcast::<ArrowColumn>().unwrap()))
            .collect();
        assert_eq!(parts, vec![vec![1, 2, 4], vec![3, 5]]);
        let kept = ints(&[1, 2, 3]).filter(&[true, false, true]);
        assert_eq!(values(&kept), vec![1, 3]);
        let cut = Box::new(ints(&[1, 2, 3, 4])).slice(1, 3);
        assert_eq!(
            values(&cut.into_any().downcast::<ArrowColumn>().unwrap()),
            vec![2, 3]
        );
    }

    #[test]
    fn key_rows_filter_keeps_events() {
        let mut b = KeyBuilder::new(false);
        for key in [&b"a"[..], b"b", b"c"] {
            b.push_key(key, KeyType::String);
            b.push_event(b"set");
        }
        let k = b.finish().expect("finish");
        let ArrowColumn::Keys(kept) = ArrowColumn::Keys(k).filter(&[false, true, true]) else {
            panic!("key rows")
        };
        let keys: Vec<&[u8]> = (0..kept.len()).map(|i| kept.key(i)).collect();
        assert_eq!(keys, vec![&b"b"[..], b"c"]);
        assert_eq!(kept.events().map(|e| e.len()), Some(2));
    }

    #[test]
    fn native_reads_match_what_python_would_give() {
        let strs = ArrowColumn::Array {
            array: Arc::new(StringArray::from(vec!["x", "é"])),
            batch: false,
        };
        let want = vec![Datum::Str("x".into()), Datum::Str("é".into())];
        assert_eq!(strs.key_texts(), Some(want));
        assert_eq!(
            ints(&[7, -1]).key_texts(),
            Some(vec![Datum::Str("7".into()), Datum::Str("-1".into())])
        );
        assert_eq!(ints(&[7, -1]).floats(), Some(vec![7.0, -1.0]));
        let with_null = ArrowColumn::Array {
            array: Arc::new(Int64Array::from(vec![Some(1), None])),
            batch: false,
        };
        assert_eq!(
            (with_null.key_texts(), with_null.floats()),
            (None, None),
            "nulls need Python"
        );
        assert_eq!(strs.floats(), None);
    }

    #[test]
    fn arrays_cross_to_pyarrow_and_back_without_a_copy() {
        init();
        Python::attach(|py| {
            if !has_pyarrow(py) {
                eprintln!("pyarrow not installed: skipped");
                return;
            }
            let array: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
            let ptr = array.to_data().buffers()[0].as_ptr();
            let obj = ffi::to_pyarrow(py, array.as_ref(), false).expect("export");
            let address: usize = obj
                .call_method0("buffers")
                .and_then(|b| b.get_item(1))
                .and_then(|b| b.getattr("address"))
                .and_then(|a| a.extract())
                .expect("address");
            assert_eq!(address, ptr as usize, "pyarrow reads the Rust buffer");
            let back = ArrowColumn::from_py(&obj)
                .expect("import")
                .expect("arrow data");
            let ArrowColumn::Array {
                array: again,
                batch,
            } = &back[0]
            else {
                panic!("an array")
            };
            assert!(!batch);
            assert_eq!(
                again.to_data().buffers()[0].as_ptr(),
                ptr,
                "and back: same buffer"
            );
            assert_eq!(values(&back[0]), vec![1, 2, 3]);
            let rows: Vec<i64> = back[0]
                .rows(py)
                .expect("rows")
                .iter()
                .map(|r| r.extract().expect("int"))
                .collect();
            assert_eq!(rows, vec![1, 2, 3]);
            let not_arrow = py.None().into_bound(py);
            assert!(ArrowColumn::from_py(&not_arrow).expect("none").is_none());
        });
    }
}
