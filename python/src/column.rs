//! `PyColumn`: Python objects as an engine `ForeignColumn` (one allocation per batch, not
//! per record). Dropping it without the GIL is safe: pyo3 defers the decrefs.
//!
//! Records cross shards with `marshal` (1.2's choice: builtin types only), one call per
//! batch; a record marshal refuses is replaced by an error, as in 1.2. Copies of a record's
//! bytes: sending, `marshal.dumps` writes the batch into one `bytes` object, which is copied
//! into the shuffle's bundle (2); receiving, the blob is copied into a `bytes` object for
//! `marshal.loads`, which makes the records (2, after the bus's copy out of Redis; a
//! memoryview over the received buffer would save one, not done). Slicing and partitioning
//! move object handles. Nothing here is pooled (docs/data-path.md). `KeyedRows` are Python
//! reader records still equal to the key batch they were made from: they cross shards as
//! that key batch instead (no marshal; the receiver makes the records from it).
//!
//! Bottom layer: depends on `gil` (marshal takes the GIL) and `convert`.

use std::any::Any;

use engine::batch::{ForeignColumn, ForeignDecoder, KeyColumns};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

#[derive(Debug, Default)]
pub struct PyColumn(pub Vec<Py<PyAny>>);

impl ForeignColumn for PyColumn {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn slice(self: Box<Self>, start: usize, end: usize) -> Box<dyn ForeignColumn> {
        Box::new(PyColumn(slice_rows(self.0, start, end)))
    }

    fn partition(self: Box<Self>, dest: &[usize], n: usize) -> Vec<Box<dyn ForeignColumn>> {
        partition_rows(self.0, dest, n)
            .into_iter()
            .map(|v| Box::new(PyColumn(v)) as Box<dyn ForeignColumn>)
            .collect()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }

    fn encode(&self, out: &mut Vec<u8>, errors: &mut Vec<String>) -> Result<(), String> {
        crate::gil::records(|py| {
            let marshal = py.import("marshal").map_err(|e| e.to_string())?;
            let all =
                PyList::new(py, self.0.iter().map(|o| o.bind(py))).map_err(|e| e.to_string())?;
            let dumped = match marshal.call_method1("dumps", (&all,)) {
                Ok(b) => b,
                // Find the records marshal refuses; the rest still travel.
                Err(_) => {
                    let ok = PyList::empty(py);
                    for o in self.0.iter().map(|o| o.bind(py)) {
                        match marshal.call_method1("dumps", (o,)) {
                            Ok(_) => ok.append(o).map_err(|e| e.to_string())?,
                            Err(e) => errors.push(format!("Failed serializing record, {e}")),
                        }
                    }
                    marshal
                        .call_method1("dumps", (&ok,))
                        .map_err(|e| e.to_string())?
                }
            };
            let bytes = dumped.cast::<PyBytes>().map_err(|e| e.to_string())?;
            out.extend_from_slice(bytes.as_bytes());
            Ok(())
        })
    }
}

/// Python reader records (`rows`) and the key batch they were made from, row for row,
/// known to be unchanged: on this shard the Python objects are used, to another shard the
/// key batch is sent (`as_keys`). The host sees a `PyColumn` (`into_any`).
#[derive(Debug)]
pub struct KeyedRows {
    pub rows: PyColumn,
    pub keys: KeyColumns,
}

impl ForeignColumn for KeyedRows {
    fn len(&self) -> usize {
        self.rows.0.len()
    }

    fn slice(self: Box<Self>, start: usize, end: usize) -> Box<dyn ForeignColumn> {
        let end = end.min(self.keys.len());
        let start = start.min(end);
        Box::new(KeyedRows {
            keys: self.keys.slice(start, end),
            rows: PyColumn(slice_rows(self.rows.0, start, end)),
        })
    }

    fn partition(self: Box<Self>, dest: &[usize], n: usize) -> Vec<Box<dyn ForeignColumn>> {
        let keys = self.keys.partition(dest, n);
        partition_rows(self.rows.0, dest, n)
            .into_iter()
            .zip(keys)
            .map(|(rows, keys)| {
                Box::new(KeyedRows {
                    rows: PyColumn(rows),
                    keys,
                }) as Box<dyn ForeignColumn>
            })
            .collect()
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(self.rows)
    }

    fn encode(&self, out: &mut Vec<u8>, errors: &mut Vec<String>) -> Result<(), String> {
        self.rows.encode(out, errors)
    }

    fn as_keys(&self) -> Option<&KeyColumns> {
        Some(&self.keys)
    }
}

/// Rows `start..end` of `rows` (clamped to its length).
fn slice_rows(mut rows: Vec<Py<PyAny>>, start: usize, end: usize) -> Vec<Py<PyAny>> {
    rows.truncate(end);
    rows.split_off(start.min(rows.len()))
}

/// `rows` split into `n` vectors by `dest`.
fn partition_rows(rows: Vec<Py<PyAny>>, dest: &[usize], n: usize) -> Vec<Vec<Py<PyAny>>> {
    let mut out: Vec<Vec<Py<PyAny>>> = (0..n).map(|_| Vec::new()).collect();
    for (obj, &to) in rows.into_iter().zip(dest) {
        out[to].push(obj);
    }
    out
}

/// Rebuilds marshalled records on the receiving shard.
#[derive(Debug, Default)]
pub struct PyColumnDecoder;

impl ForeignDecoder for PyColumnDecoder {
    fn decode(&self, bytes: &[u8]) -> Result<Box<dyn ForeignColumn>, String> {
        crate::gil::records(|py| {
            let marshal = py.import("marshal").map_err(|e| e.to_string())?;
            let bytes = crate::convert::py_bytes(py, bytes).map_err(|e| e.to_string())?;
            let loaded = marshal
                .call_method1("loads", (bytes,))
                .map_err(|e| format!("Failed deserializing record, {e}"))?;
            let list = loaded
                .cast::<PyList>()
                .map_err(|_| "Failed deserializing record".to_string())?;
            let rows = list.iter().map(|o| o.unbind()).collect();
            Ok(Box::new(PyColumn(rows)) as Box<dyn ForeignColumn>)
        })
    }
}
