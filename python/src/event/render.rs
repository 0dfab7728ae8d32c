//! `str()` in Rust, exactly as Python renders it, for plain builtin values and for the
//! record dicts of reader rows; `None` wherever only Python can say (the caller then runs
//! Python's `str()`). Also whether a value's `str()` may wait (it cannot change any more).
//!
//! A leaf: depends on `engine` and pyo3 only.

use engine::batch::{KeyRow, ValueRef};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString};

/// `str(obj)`, natively when `native_str` can.
pub(super) fn str_of(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    match native_str(obj) {
        Some(t) => Ok(t),
        None => Ok(obj.str()?.to_string_lossy().into_owned()),
    }
}

/// `str(obj)` rendered in Rust for plain builtin values — an exact `str`, `None`, a
/// `bool`, or dicts and lists (nested once) of ASCII `str`s, `None` and `bool`s — exactly
/// as Python renders them; `None` for anything else (Python's `str()` then runs).
pub(super) fn native_str(obj: &Bound<'_, PyAny>) -> Option<String> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return s.to_str().ok().map(str::to_owned);
    }
    let mut out = String::with_capacity(96); // a record dict: one allocation, not a doubling chain
    native_repr(obj, 2, &mut out)?;
    Some(out)
}

fn native_repr(obj: &Bound<'_, PyAny>, depth: u8, out: &mut String) -> Option<()> {
    if obj.is_none() {
        out.push_str("None");
    } else if let Ok(b) = obj.cast_exact::<PyBool>() {
        out.push_str(if b.is_true() { "True" } else { "False" });
    } else if let Ok(s) = obj.cast_exact::<PyString>() {
        repr_ascii(s.to_str().ok()?.as_bytes(), out)?;
    } else if let (Some(d), Ok(dict)) = (depth.checked_sub(1), obj.cast_exact::<PyDict>()) {
        out.push('{');
        for (i, (k, v)) in dict.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            native_repr(&k, d, out)?;
            out.push_str(": ");
            native_repr(&v, d, out)?;
        }
        out.push('}');
    } else if let (Some(d), Ok(list)) = (depth.checked_sub(1), obj.cast_exact::<PyList>()) {
        out.push('[');
        for (i, v) in list.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            native_repr(&v, d, out)?;
        }
        out.push(']');
    } else {
        return None;
    }
    Some(())
}

/// True when `str(obj)` can run later, or never, without anyone noticing: `obj` cannot
/// change any more and its `str()` runs no user code and cannot fail.
pub(super) fn str_can_wait(obj: &Bound<'_, PyAny>) -> bool {
    if let Ok(d) = obj.cast_exact::<PyDict>() {
        // Only we hold it, so nothing can mutate it later. (`get_refcnt` is deprecated in
        // favour of the unsafe `ffi::Py_REFCNT`; this crate has no unsafe code.)
        #[allow(deprecated)]
        let private = obj.get_refcnt() == 1;
        return private && d.iter().all(|(k, v)| frozen(&k) && frozen(&v));
    }
    frozen(obj)
}

/// An immutable builtin value whose `str()`/`repr()` is pure and cannot fail (not `int`:
/// a huge one raises past `sys.set_int_max_str_digits`).
fn frozen(v: &Bound<'_, PyAny>) -> bool {
    v.is_none()
        || v.is_exact_instance_of::<PyString>()
        || v.is_exact_instance_of::<PyFloat>()
        || v.is_instance_of::<PyBool>()
}

/// `str()` of the record dict `key_row_to_dict` builds for `row`, if every text in it is
/// ASCII (Python's `repr()` of other text depends on Unicode printability).
pub fn record_repr(row: &KeyRow<'_>) -> Option<String> {
    let mut s = String::with_capacity(64 + row.key.len());
    s.push_str("{'key': ");
    repr_ascii(row.key, &mut s)?;
    if let Some(v) = &row.value {
        s.push_str(", 'value': ");
        match v {
            ValueRef::None => s.push_str("None"),
            ValueRef::Str(b) => repr_ascii(b, &mut s)?,
            ValueRef::Hash(fields) => {
                s.push('{');
                for (i, (f, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    repr_ascii(f, &mut s)?;
                    s.push_str(": ");
                    repr_ascii(v, &mut s)?;
                }
                s.push('}');
            }
            ValueRef::List(items) => {
                s.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        s.push_str(", ");
                    }
                    repr_ascii(item, &mut s)?;
                }
                s.push(']');
            }
        }
        s.push_str(", 'type': '");
        s.push_str(row.key_type.name());
        s.push('\'');
    }
    s.push_str(", 'event': ");
    match row.event {
        Some(e) => repr_ascii(e, &mut s)?,
        None => s.push_str("None"),
    }
    s.push('}');
    Some(s)
}

/// Python's `repr()` of an ASCII `str` (`None` for any other byte).
fn repr_ascii(b: &[u8], out: &mut String) -> Option<()> {
    if !b.is_ascii() {
        return None;
    }
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let q = quote as u8;
    out.push(quote);
    if !b
        .iter()
        .any(|&c| c == b'\\' || c == q || c < 0x20 || c == 0x7f)
    {
        out.push_str(std::str::from_utf8(b).ok()?);
        out.push(quote);
        return Some(());
    }
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if c as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            c if c < 0x20 || c == 0x7f => out.push_str(&format!("\\x{c:02x}")),
            c => out.push(c as char),
        }
    }
    out.push(quote);
    Some(())
}
