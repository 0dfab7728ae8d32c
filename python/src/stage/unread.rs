//! Records a `groupby` reducer never reads: after a `groupby`'s repartition, a key batch
//! that crossed shards comes with the keys the extractor produced on the sending shard, so
//! a reducer that never reads its record argument (`lambda k, a, r: (a or 0) + 1`, a
//! count per key) needs no record at all. The stage then passes `None` for it instead of
//! making each record's dicts from the key batch (about a tenth of a 3-shard groupby's CPU
//! when every record crosses).
//!
//! "Never reads" is decided from the reducer's bytecode, conservatively: a plain Python
//! function (not a coroutine or generator function) taking exactly three positional
//! parameters and no `*args`/`**kwargs`, whose code never loads, stores, deletes or
//! captures the third, calls nothing, imports nothing and makes no function. Only frame
//! introspection could tell the difference (a tracer or profiler, or an operator method
//! of the accumulator reading its caller's frame), so a batch goes the usual way whenever
//! `sys.gettrace()` or `sys.getprofile()` is set (`ProfileExecutions` included).
//!
//! Part of `PyStage` (`super`); depends on `step` only.

use engine::batch::{BatchData, BinaryColumn};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use super::PyStage;
use crate::step::PyStep;

/// The bytecode check, in Python (`dis` knows every opcode of the interpreter).
const CHECK: &std::ffi::CStr = cr#"
import dis, sys, types

_FLAGS = 0x04 | 0x08 | 0x20 | 0x80 | 0x100 | 0x200  # *args, **kw, generator, coroutines

def ignores_third(f):
    if type(f) is not types.FunctionType:
        return False
    c = f.__code__
    if c.co_flags & _FLAGS or c.co_argcount != 3 or c.co_kwonlyargcount:
        return False
    name = c.co_varnames[2]
    if name in c.co_cellvars:
        return False
    for ins in dis.get_instructions(c):
        op = ins.opname
        if op.startswith(("CALL", "PRECALL", "IMPORT", "MAKE_FUNCTION")):
            return False
        # argval is a pair of names for 3.13's superinstructions (LOAD_FAST_LOAD_FAST).
        names = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)
        if ("FAST" in op or "DEREF" in op or "CLOSURE" in op or "CELL" in op) and name in names:
            return False
    return True

def traced():
    return sys.gettrace() is not None or sys.getprofile() is not None
"#;

static CHECKS: PyOnceLock<Py<PyDict>> = PyOnceLock::new();

fn checks(py: Python<'_>) -> PyResult<&Bound<'_, PyDict>> {
    let ns = CHECKS.get_or_try_init(py, || {
        let ns = PyDict::new(py);
        py.run(CHECK, Some(&ns), None)?;
        Ok::<_, PyErr>(ns.unbind())
    })?;
    Ok(ns.bind(py))
}

/// The check `name` called with `arg` (none: no argument). Callers take a failing check
/// (it should not fail) as the answer that keeps the usual way.
fn call_check(py: Python<'_>, name: &str, arg: Option<&Bound<'_, PyAny>>) -> PyResult<bool> {
    let f = checks(py)?
        .get_item(name)?
        .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_string()))?;
    match arg {
        Some(a) => f.call1((a,))?.is_truthy(),
        None => f.call0()?.is_truthy(),
    }
}

/// Whether `reducer` never reads its third argument (see the module doc).
pub(super) fn ignores_record(py: Python<'_>, reducer: &Bound<'_, PyAny>) -> bool {
    call_check(py, "ignores_third", Some(reducer)).unwrap_or(false)
}

impl PyStage {
    /// `None` for each record of `data` when the stage starts with a keyed `groupby` whose
    /// reducer never reads its record, `data` is a key batch and `keys` carries every
    /// record's group key: the records need not be made (see the module doc).
    pub(super) fn unread_rows<'py>(
        &mut self,
        py: Python<'py>,
        data: &BatchData,
        keys: Option<&BinaryColumn>,
    ) -> Option<Vec<Bound<'py, PyAny>>> {
        let (BatchData::Keys(k), Some(keys)) = (data, keys) else {
            return None;
        };
        let PyStep::GroupBy {
            reducer,
            keyed: true,
            ..
        } = &**self.steps.first()?
        else {
            return None;
        };
        let unread = *self
            .record_unread
            .get_or_insert_with(|| ignores_record(py, reducer.bind(py)));
        let usable =
            unread && keys.len() == k.len() && matches!(call_check(py, "traced", None), Ok(false));
        usable.then(|| (0..k.len()).map(|_| py.None().into_bound(py)).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::disallowed_methods)] // tests take the GIL directly

    use super::*;

    fn check(py: Python<'_>, src: &str) -> bool {
        let ns = PyDict::new(py);
        let code = std::ffi::CString::new(format!("f = {src}")).unwrap();
        py.run(&code, Some(&ns), None).unwrap();
        ignores_record(py, &ns.get_item("f").unwrap().unwrap())
    }

    #[test]
    fn only_reducers_that_never_touch_the_record_skip_it() {
        crate::embed::init_for_tests();
        Python::attach(|py| {
            for src in [
                "lambda k, a, r: (a or 0) + 1",
                "lambda k, a, _: a",
                "lambda k, a, r: k if a is None else a + 'x'",
            ] {
                assert!(check(py, src), "{src}");
            }
            for src in [
                "lambda k, a, r: (a or 0) + int(r['value']['age'])",
                "lambda k, a, r: r",
                "lambda k, a, r: (a or 0) + len(k)",
                "lambda k, a, r: (lambda: r)",
                "lambda k, a, r: [x for x in a]",
                "lambda k, a, *r: a",
                "lambda k, a, r, d=1: a",
                "lambda k, a: a",
                "lambda k, a, r, **kw: a",
                "lambda k, a, r: locals()",
                "lambda k, a, r: __import__('sys')",
                "max",
                "(lambda: (yield))",
            ] {
                assert!(!check(py, src), "{src}");
            }
            let ns = PyDict::new(py);
            py.run(
                c"async def f(k, a, r):\n    return a\ndef g(k, a, r):\n    del r\n    return a",
                Some(&ns),
                None,
            )
            .unwrap();
            for f in ["f", "g"] {
                assert!(
                    !ignores_record(py, &ns.get_item(f).unwrap().unwrap()),
                    "{f}"
                );
            }
        });
    }

    #[test]
    fn a_tracer_or_profiler_is_seen() {
        crate::embed::init_for_tests();
        Python::attach(|py| {
            assert!(!call_check(py, "traced", None).unwrap());
            py.run(c"import sys; sys.setprofile(lambda *a: None)", None, None)
                .unwrap();
            let traced = call_check(py, "traced", None).unwrap();
            py.run(c"import sys; sys.setprofile(None)", None, None)
                .unwrap();
            assert!(traced);
        });
    }
}
