//! Python exceptions as RedisGears 1.2 error texts (REFERENCE §10), and the exception
//! classes scripts see (`GearsError`, `FlatError`).
//!
//! Bottom layer: depends on `services` (the traceback setting) and `pymem` (why memory
//! was refused).

use pyo3::prelude::*;
use pyo3::types::PyTraceback;

use crate::services;

// 1.2 names its exception classes `gears.error` and `gears.flat_error`; the names show in
// error texts (`Error type: <class 'gears.error'>, ...` and traceback last lines).
#[allow(non_camel_case_types)]
mod classes {
    pyo3::create_exception!(
        gears,
        error,
        pyo3::exceptions::PyException,
        "An error reply from Redis or Gears."
    );
    pyo3::create_exception!(
        gears,
        forcestopped,
        pyo3::exceptions::PyException,
        "Raised in an execution's Python code when it is aborted."
    );
    pyo3::create_exception!(
        gears,
        flat_error,
        pyo3::exceptions::PyException,
        "An error reported as its bare message."
    );
}

pub use classes::{error as GearsError, flat_error as FlatError, forcestopped as ForceStopped};

/// The longest error text kept (bytes). Without a bound, an error that travels up through
/// nested calls (a trigger that `execute()`s a trigger that fails) doubles at every level,
/// since each level's traceback list escapes the one below: 40 levels would be a TiB.
pub const MAX_ERROR_TEXT: usize = 64 * 1024;

/// The text users see for `err`: a `traceback.format_exception` list when tracebacks are
/// on and one exists, `Error type: <class>, Value: <msg>` otherwise, the bare message
/// for `FlatError`; cut to [`MAX_ERROR_TEXT`] (see [`bounded`]).
pub fn error_text(py: Python<'_>, err: &PyErr) -> String {
    bounded(full_error_text(py, err))
}

/// `text` if it is at most [`MAX_ERROR_TEXT`] bytes, else its start and its end (where
/// the exception is named) around a note of how much was cut.
pub fn bounded(text: String) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text;
    }
    let keep = MAX_ERROR_TEXT / 2;
    let head = floor_char_boundary(&text, keep);
    let tail = ceil_char_boundary(&text, text.len() - keep);
    format!(
        "{} ... ({} bytes of error text cut) ... {}",
        &text[..head],
        tail - head,
        &text[tail..]
    )
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

fn full_error_text(py: Python<'_>, err: &PyErr) -> String {
    if err.is_instance_of::<pyo3::exceptions::PyMemoryError>(py) {
        if let Some(r) = crate::pymem::take_refusal() {
            return refusal_text(r);
        }
    }
    let value = err.value(py);
    if value.is_instance_of::<FlatError>() {
        return value.str().map(|s| s.to_string()).unwrap_or_default();
    }
    let attempt = services::get()
        .map(|h| h.attempt_traceback())
        .unwrap_or(true);
    if attempt {
        if let Some(tb) = err.traceback(py) {
            if let Ok(text) = format_traceback(py, err, &tb) {
                return text;
            }
        }
    }
    plain_text(py, err)
}

/// Why a bound refused memory, in words a user can act on.
fn refusal_text(r: crate::pymem::Refusal) -> String {
    match r {
        crate::pymem::Refusal::ExecutionLimit(limit) => format!(
            "MemoryError: the execution passed its memory limit of {limit} bytes \
             (ExecutionMemoryLimit)"
        ),
        crate::pymem::Refusal::MaxMemory(size) => format!(
            "MemoryError: OOM allocating {size} bytes would take used memory past 'maxmemory'"
        ),
    }
}

fn format_traceback(py: Python<'_>, err: &PyErr, tb: &Bound<'_, PyTraceback>) -> PyResult<String> {
    let lines = py
        .import("traceback")?
        .call_method1("format_exception", (err.get_type(py), err.value(py), tb))?;
    Ok(lines.str()?.to_string())
}

fn plain_text(py: Python<'_>, err: &PyErr) -> String {
    let t = err
        .get_type(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let v = err
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    format!("Error type: {t}, Value: {v}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_texts_are_kept_and_long_ones_keep_both_ends() {
        assert_eq!(bounded("boom".into()), "boom");
        let long = format!("Traceback{}ValueError: bottom", "é".repeat(MAX_ERROR_TEXT));
        let cut = bounded(long.clone());
        assert!(cut.len() <= MAX_ERROR_TEXT + 64, "{}", cut.len());
        assert!(cut.starts_with("Traceback") && cut.ends_with("ValueError: bottom"));
        assert!(cut.contains("bytes of error text cut"));
    }
}
