//! The native halves of 1.2's Python-level built-ins, used by `PyStage`: sums and counts
//! kept as Rust numbers while the values are plain numbers (`avg`), and `str()` of native
//! records without a Python object (`convertToStr` after native steps).
//!
//! Every shortcut here must give exactly what 1.2's Python code gives; where it cannot be
//! sure (big integers, number subclasses, non-ASCII text) it hands over to Python.
//!
//! Bottom layer, a leaf: depends on `engine` and pyo3 only.

use engine::datum::{py_float_repr, py_str_repr};
use engine::Datum;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};
use pyo3::IntoPyObjectExt;

/// A running sum: native while every addend is an `int` that fits i64 or a `float`,
/// a Python object (added with Python's `+`) from the first value that is not.
#[derive(Debug)]
pub(crate) enum Num {
    Int(i64),
    Float(f64),
    Obj(Py<PyAny>),
}

/// A plain Python number read natively.
enum Plain {
    Int(i64),
    Float(f64),
}

/// `v` as a native number when Python's `+` on it is plain machine arithmetic: exact
/// `float`, exact `int` (or `bool`) that fits i64. Subclasses may override `+`.
fn plain(v: &Bound<'_, PyAny>) -> Option<Plain> {
    if v.is_exact_instance_of::<PyFloat>() {
        return v.extract::<f64>().ok().map(Plain::Float);
    }
    if v.is_exact_instance_of::<PyInt>() || v.is_exact_instance_of::<PyBool>() {
        return v.extract::<i64>().ok().map(Plain::Int);
    }
    None
}

impl Num {
    /// `self + v` with Python's semantics (int + float converts the int with correct
    /// rounding, as `as f64` does; overflowing ints continue as Python ints).
    pub(crate) fn add(self, py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<Num> {
        if let Some(p) = plain(v) {
            match (&self, p) {
                (Num::Int(a), Plain::Int(b)) => {
                    if let Some(c) = a.checked_add(b) {
                        return Ok(Num::Int(c));
                    }
                }
                (Num::Int(a), Plain::Float(b)) => return Ok(Num::Float(*a as f64 + b)),
                (Num::Float(a), Plain::Int(b)) => return Ok(Num::Float(a + b as f64)),
                (Num::Float(a), Plain::Float(b)) => return Ok(Num::Float(a + b)),
                (Num::Obj(_), _) => {}
            }
        }
        let a = self.into_py(py)?;
        Ok(Num::Obj(a.bind(py).add(v)?.unbind()))
    }

    pub(crate) fn into_py(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self {
            Num::Int(i) => i.into_py_any(py),
            Num::Float(f) => f.into_py_any(py),
            Num::Obj(o) => Ok(o),
        }
    }
}

/// `avg()`'s accumulator: `(sum, count)` as 1.2's aggregate keeps it.
#[derive(Debug)]
pub(crate) struct AvgAcc {
    sum: Num,
    count: Num,
    seen: bool,
}

impl Default for AvgAcc {
    fn default() -> Self {
        AvgAcc {
            sum: Num::Int(0),
            count: Num::Int(0),
            seen: false,
        }
    }
}

impl AvgAcc {
    /// Local half: one extracted value (`a = (a[0] + v, a[1] + 1)`).
    pub(crate) fn add_value(&mut self, py: Python<'_>, v: &Bound<'_, PyAny>) -> PyResult<()> {
        let sum = std::mem::replace(&mut self.sum, Num::Int(0));
        self.sum = sum.add(py, v)?;
        let count = std::mem::replace(&mut self.count, Num::Int(0));
        self.count = match count {
            Num::Int(c) => Num::Int(c + 1),
            other => other.add(py, &1i64.into_bound_py_any(py)?)?,
        };
        self.seen = true;
        Ok(())
    }

    /// Local half for a value read natively as the float `v` (an Arrow column, `avg()`
    /// after an arrow-format step): what `add_value(float(x))` does.
    pub(crate) fn add_float(&mut self, py: Python<'_>, v: f64) -> PyResult<()> {
        self.sum = match std::mem::replace(&mut self.sum, Num::Int(0)) {
            Num::Int(a) => Num::Float(a as f64 + v),
            Num::Float(a) => Num::Float(a + v),
            obj => obj.add(py, PyFloat::new(py, v).as_any())?,
        };
        self.count = match std::mem::replace(&mut self.count, Num::Int(0)) {
            Num::Int(c) => Num::Int(c + 1),
            other => other.add(py, &1i64.into_bound_py_any(py)?)?,
        };
        self.seen = true;
        Ok(())
    }

    /// Global half: one shard's `(sum, count)` (`a = (a[0] + r[0], a[1] + r[1])`).
    pub(crate) fn add_partial(&mut self, py: Python<'_>, r: &Bound<'_, PyAny>) -> PyResult<()> {
        let (s, c) = (r.get_item(0)?, r.get_item(1)?);
        let sum = std::mem::replace(&mut self.sum, Num::Int(0));
        self.sum = sum.add(py, &s)?;
        let count = std::mem::replace(&mut self.count, Num::Int(0));
        self.count = count.add(py, &c)?;
        self.seen = true;
        Ok(())
    }

    /// The local result, `(sum, count)`, or nothing when no value was seen.
    pub(crate) fn partial<'py>(self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if !self.seen {
            return Ok(None);
        }
        let t = (self.sum.into_py(py)?, self.count.into_py(py)?);
        Ok(Some(t.into_bound_py_any(py)?))
    }

    /// The global result, `sum / count` (Python true division), or nothing.
    pub(crate) fn average<'py>(self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if !self.seen {
            return Ok(None);
        }
        let sum = self.sum.into_py(py)?;
        let count = self.count.into_py(py)?;
        Ok(Some(sum.bind(py).div(count.bind(py))?))
    }
}

/// `str(x)` of a native record, exactly as Python prints it; `None` when only Python can
/// say (bytes, and text that is not plain ASCII inside a container, whose `repr()` depends
/// on Unicode printability).
pub(crate) fn datum_str(d: &Datum) -> Option<String> {
    match d {
        Datum::Str(s) => Some(s.clone()),
        other => datum_repr(other),
    }
}

fn datum_repr(d: &Datum) -> Option<String> {
    Some(match d {
        Datum::Null => "None".to_owned(),
        Datum::Bool(true) => "True".to_owned(),
        Datum::Bool(false) => "False".to_owned(),
        Datum::Int(i) => i.to_string(),
        Datum::Float(f) => py_float_repr(*f),
        Datum::Str(s) => text_repr(s)?,
        Datum::Bytes(_) => return None,
        Datum::List(items) => {
            let inner = items.iter().map(datum_repr).collect::<Option<Vec<_>>>()?;
            format!("[{}]", inner.join(", "))
        }
        Datum::Map(items) => {
            let inner = items
                .iter()
                .map(|(k, v)| Some(format!("{}: {}", text_repr(k)?, datum_repr(v)?)))
                .collect::<Option<Vec<_>>>()?;
            format!("{{{}}}", inner.join(", "))
        }
    })
}

fn text_repr(s: &str) -> Option<String> {
    s.is_ascii().then(|| py_str_repr(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_str_matches_python_for_plain_records() {
        let rec = Datum::Map(vec![
            ("key".into(), Datum::Str("it's".into())),
            ("value".into(), Datum::Int(3)),
        ]);
        assert_eq!(
            datum_str(&rec).as_deref(),
            Some("{'key': \"it's\", 'value': 3}")
        );
        assert_eq!(datum_str(&Datum::Float(49.5)).as_deref(), Some("49.5"));
        assert_eq!(datum_str(&Datum::Str("é".into())).as_deref(), Some("é"));
        let list = Datum::List(vec![Datum::Str("é".into())]);
        assert_eq!(datum_str(&list), None, "non-ASCII repr is Python's call");
        assert_eq!(datum_str(&Datum::Bytes(b"x".to_vec())), None);
    }
}
