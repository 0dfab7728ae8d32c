//! Conversions between engine records and Python objects, done a batch at a time under
//! one GIL hold: reader rows → 1.2 record dicts, `Datum` ⇄ Python values.
//!
//! Bottom layer, a leaf: depends on `engine` and pyo3 only.

use engine::batch::{KeyColumns, KeyRow, KeyType, ValueRef};
use engine::Datum;
use pyo3::exceptions::PyUnicodeDecodeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString};
use pyo3::IntoPyObjectExt;

/// Text as `str`, or `bytearray` when it is not UTF-8 (as 1.2 does). Python's decoder
/// checks the bytes as it copies them (no separate Rust UTF-8 pass first). A refused
/// allocation (`maxmemory`, `ExecutionMemoryLimit`) is the `MemoryError` it raised: pyo3's
/// infallible constructors panic on it.
pub fn bytes_to_py<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    match PyString::from_bytes(py, b) {
        Ok(s) => Ok(s.into_any()),
        Err(e) if e.is_instance_of::<PyUnicodeDecodeError>(py) => {
            let copy = |buf: &mut [u8]| {
                buf.copy_from_slice(b);
                Ok(())
            };
            Ok(PyByteArray::new_with(py, b.len(), copy)?.into_any())
        }
        Err(e) => Err(e),
    }
}

/// `bytes` of `b`; a refused allocation is the `MemoryError` (see [`bytes_to_py`]).
pub fn py_bytes<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    PyBytes::new_with(py, b.len(), |buf| {
        buf.copy_from_slice(b);
        Ok(())
    })
}

/// `str` of `s`; a refused allocation is the `MemoryError` (see [`bytes_to_py`]).
pub fn py_str<'py>(py: Python<'py>, s: &str) -> PyResult<Bound<'py, PyString>> {
    PyString::from_bytes(py, s.as_bytes())
}

/// A Python list of `bytes_to_py` of each item.
pub fn bytes_list<'py, 'a>(
    py: Python<'py>,
    items: impl IntoIterator<Item = &'a [u8]>,
) -> PyResult<Bound<'py, PyAny>> {
    let objs = items
        .into_iter()
        .map(|i| bytes_to_py(py, i))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, objs)?.into_any())
}

/// A KeysReader record: `{'key', 'value', 'type', 'event'}`, or `{'key', 'event'}` when
/// values were not read (REFERENCE §2.1). One record alone; a batch uses [`Records`].
pub fn key_row_to_dict<'py>(py: Python<'py>, row: &KeyRow<'_>) -> PyResult<Bound<'py, PyAny>> {
    Records::new(py).dict(row)
}

/// Builds the record dicts of a batch of reader rows under one GIL hold. The record's
/// names (`'key'`, `'value'`, `'type'`, `'event'`, the type names) are interned once, and
/// hash field names are reused across rows: a row whose i-th field has the bytes of the
/// previous row's i-th field gets the same `str` object (no new string, no intern-table
/// lookup). Values are new objects per row (one `str` per value: a copy of its bytes).
pub struct Records<'py> {
    py: Python<'py>,
    key: Bound<'py, PyString>,
    value: Bound<'py, PyString>,
    type_: Bound<'py, PyString>,
    event: Bound<'py, PyString>,
    /// The last key type seen and its interned name.
    kind: Option<(KeyType, Bound<'py, PyAny>)>,
    /// The previous hash's field names (bytes, object), by position.
    fields: Vec<(Box<[u8]>, Bound<'py, PyAny>)>,
}

impl<'py> Records<'py> {
    pub fn new(py: Python<'py>) -> Self {
        Records {
            py,
            key: pyo3::intern!(py, "key").clone(),
            value: pyo3::intern!(py, "value").clone(),
            type_: pyo3::intern!(py, "type").clone(),
            event: pyo3::intern!(py, "event").clone(),
            kind: None,
            fields: Vec::new(),
        }
    }

    /// The record dict of `row`.
    pub fn dict(&mut self, row: &KeyRow<'_>) -> PyResult<Bound<'py, PyAny>> {
        let value = match &row.value {
            Some(v) => Some(self.value_to_py(v)?),
            None => None,
        };
        self.assemble(row.key, row.key_type, value, row.event)
    }

    /// The record dict of row `i` of `keys`: `dict(&keys.row(i))`, with a hash's fields
    /// read in place (no `Vec` of them per record).
    pub fn dict_at(&mut self, keys: &KeyColumns, i: usize) -> PyResult<Bound<'py, PyAny>> {
        let Some(fields) = keys.hash_fields(i) else {
            return self.dict(&keys.row(i));
        };
        let value = self.hash_dict(fields)?;
        let event = keys.events().map(|e| e.value(i));
        self.assemble(keys.key(i), KeyType::Hash, Some(value), event)
    }

    fn assemble(
        &mut self,
        key: &[u8],
        key_type: KeyType,
        value: Option<Bound<'py, PyAny>>,
        event: Option<&[u8]>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let d = PyDict::new(py);
        d.set_item(&self.key, bytes_to_py(py, key)?)?;
        if let Some(value) = value {
            d.set_item(&self.value, value)?;
            let kind = self.type_name(key_type);
            d.set_item(&self.type_, kind)?;
        }
        match event {
            Some(e) => d.set_item(&self.event, bytes_to_py(py, e)?)?,
            None => d.set_item(&self.event, py.None())?,
        }
        Ok(d.into_any())
    }

    fn type_name(&mut self, t: KeyType) -> Bound<'py, PyAny> {
        match &self.kind {
            Some((k, name)) if *k == t => name.clone(),
            _ => {
                let name = PyString::intern(self.py, t.name()).into_any();
                self.kind = Some((t, name.clone()));
                name
            }
        }
    }

    /// The name object of the `i`-th field of a hash: the previous hash's when the bytes
    /// are the same.
    fn field(&mut self, i: usize, f: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        if let Some((bytes, name)) = self.fields.get(i) {
            if **bytes == *f {
                return Ok(name.clone());
            }
        }
        let name = field_name(self.py, f)?;
        let entry = (Box::from(f), name.clone());
        match self.fields.get_mut(i) {
            Some(slot) => *slot = entry,
            None => self.fields.push(entry),
        }
        Ok(name)
    }

    fn value_to_py(&mut self, v: &ValueRef<'_>) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        Ok(match v {
            ValueRef::Hash(fields) => self.hash_dict(fields.iter().copied())?,
            other => value_to_py(py, other)?,
        })
    }

    fn hash_dict<'a>(
        &mut self,
        fields: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let d = PyDict::new(self.py);
        for (i, (f, val)) in fields.enumerate() {
            d.set_item(self.field(i, f)?, bytes_to_py(self.py, val)?)?;
        }
        Ok(d.into_any())
    }
}

/// Hash field names repeat across records: short UTF-8 ones are interned. A name that is
/// not UTF-8 becomes `bytes`, not `bytearray`: a dict key must be hashable.
fn field_name<'py>(py: Python<'py>, f: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    Ok(match std::str::from_utf8(f) {
        Ok(s) if s.len() <= 32 => PyString::intern(py, s).into_any(),
        Ok(s) => py_str(py, s)?.into_any(),
        Err(_) => py_bytes(py, f)?.into_any(),
    })
}

fn value_to_py<'py>(py: Python<'py>, v: &ValueRef<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        ValueRef::None => py.None().into_bound(py),
        ValueRef::Str(s) => bytes_to_py(py, s)?,
        ValueRef::Hash(fields) => {
            let d = PyDict::new(py);
            for (f, val) in fields {
                d.set_item(field_name(py, f)?, bytes_to_py(py, val)?)?;
            }
            d.into_any()
        }
        ValueRef::List(items) => bytes_list(py, items.iter().copied())?,
    })
}

/// A native value as a Python object.
pub fn datum_to_py<'py>(py: Python<'py>, d: &Datum) -> PyResult<Bound<'py, PyAny>> {
    Ok(match d {
        Datum::Null => py.None().into_bound(py),
        Datum::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Datum::Int(i) => i.into_bound_py_any(py)?,
        Datum::Float(f) => PyFloat::new(py, *f).into_any(),
        Datum::Str(s) => py_str(py, s)?.into_any(),
        Datum::Bytes(b) => py_bytes(py, b)?.into_any(),
        Datum::List(items) => {
            let objs = items
                .iter()
                .map(|i| datum_to_py(py, i))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, objs)?.into_any()
        }
        Datum::Map(items) => {
            let dict = PyDict::new(py);
            for (k, v) in items {
                dict.set_item(k, datum_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// A result record as a native value, following 1.2's reply rules (REFERENCE §10): lists
/// recurse, ints/bools are integers, floats stay floats (rendered `%lf` by the module),
/// text stays text, anything else (dict, tuple, None, set...) becomes `PY RECORD`.
pub fn py_to_datum(obj: &Bound<'_, PyAny>) -> Datum {
    if let Ok(s) = obj.cast::<PyString>() {
        return Datum::Str(s.to_string_lossy().into_owned());
    }
    if obj.is_instance_of::<PyBool>() {
        return Datum::Bool(obj.is_truthy().unwrap_or(false));
    }
    if obj.is_instance_of::<PyInt>() {
        return match obj.extract::<i64>() {
            Ok(i) => Datum::Int(i),
            Err(_) => Datum::Str(obj.str().map(|s| s.to_string()).unwrap_or_default()),
        };
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Datum::Float(f.value());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Datum::Bytes(b.as_bytes().to_vec());
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Datum::Bytes(b.to_vec());
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return Datum::List(l.iter().map(|i| py_to_datum(&i)).collect());
    }
    // Tuples, dicts, sets, None...: opaque to RESP.
    Datum::Str("PY RECORD".to_owned())
}

/// The grouping key of an extractor result: `str` as is, anything else as `repr()`.
pub fn key_text(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.to_string_lossy().into_owned());
    }
    // repr() of exact ints, floats and bools is known text: skip the Python call.
    if obj.is_exact_instance_of::<PyInt>() {
        if let Ok(i) = obj.extract::<i64>() {
            return Ok(i.to_string());
        }
    } else if obj.is_exact_instance_of::<PyFloat>() {
        if let Ok(f) = obj.extract::<f64>() {
            return Ok(engine::datum::py_float_repr(f));
        }
    } else if obj.is_exact_instance_of::<PyBool>() {
        return Ok(if obj.is_truthy()? { "True" } else { "False" }.to_owned());
    } else if obj.is_none() {
        return Ok("None".to_owned());
    }
    Ok(obj.repr()?.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // tests take the GIL directly

    use super::*;

    #[test]
    fn text_is_str_and_other_bytes_are_bytearray() {
        crate::embed::init_for_tests();
        Python::attach(|py| {
            let s = bytes_to_py(py, "é中😀".as_bytes()).unwrap();
            assert_eq!(s.extract::<String>().unwrap(), "é中😀");
            // Invalid UTF-8: a stray byte, an encoded surrogate, an overlong encoding.
            for b in [&b"a\xff"[..], b"\xed\xa0\x80", b"\xc0\xaf"] {
                let o = bytes_to_py(py, b).unwrap();
                assert!(o.is_instance_of::<PyByteArray>(), "{b:?}");
                assert_eq!(o.extract::<Vec<u8>>().unwrap(), b);
            }
            assert!(!PyErr::occurred(py));
        });
    }
}
