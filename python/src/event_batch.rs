//! Keyspace-event executions of record-local flows, many at a time (issue 5, DESIGN §6).
//!
//! A registration whose steps are all record-local (`map`, `flatmap`, `filter`, `foreach`,
//! `convertToStr`; `collect` is a no-op for an event execution) gets an [`EventPlan`]. The
//! module hands it a batch of the registration's events (their rows, read under one
//! Redis-lock hold) and it runs them one after the other under one GIL hold: each event is
//! still its own execution — one record in, its own results and errors out, an error
//! ending only that event — without an engine execution, stages or tasks per event.
//! Every other flow keeps the per-event engine execution.
//!
//! Results of executions that are dropped before anyone can read them (all but the newest
//! `keep` of a batch) are never converted. The final `convertToStr` is computed in Rust for
//! plain values (`native_str`), and when the record cannot change any more (a `str`,
//! `float`, `bool`, `None`, or a dict of those that nothing else references) it waits for
//! the batch end and runs only for kept events — `str()` of such a value has no side effect
//! and cannot fail. A flow that is only `convertToStr` (`GB().register()`) renders the
//! reader's row directly, without Python, except for text `repr()` escapes beyond ASCII.

use std::collections::VecDeque;
use std::sync::Arc;

use engine::batch::{KeyColumns, KeyRow, ValueRef};
use engine::exec::ExecutionOutput;
use engine::plan::{Plan, StepSpec};
use engine::Datum;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyList, PyString};

use crate::asyncio_bridge::{awaited, must_defer};
use crate::convert::{key_row_to_dict, py_to_datum};
use crate::errors::error_text;
use crate::event_defer::{Deferred, Pending};
use crate::scope::DeferScope;
use crate::step::{Local, PyStep};

/// The Python steps of a record-local registration flow.
#[derive(Debug, Clone)]
pub struct EventPlan {
    steps: Vec<Arc<PyStep>>,
}

impl EventPlan {
    /// The flow is `str(record)` alone.
    fn str_only(&self) -> bool {
        self.steps.len() == 1 && matches!(*self.steps[0], PyStep::ToStr)
    }

    /// The plan's record-local steps, or `None` when any step needs more than one record
    /// at a time (accumulate, groupby, limit, count, sort, shuffles...).
    pub fn from_plan(plan: &Plan) -> Option<EventPlan> {
        let mut steps = Vec::with_capacity(plan.steps.len());
        for s in &plan.steps {
            match s {
                // Moves records to the initiator: the shard that runs the event.
                StepSpec::Collect => {}
                StepSpec::Host(h) => {
                    let step = Arc::clone(&h.payload).downcast::<PyStep>().ok()?;
                    match *step {
                        PyStep::Map(_)
                        | PyStep::FlatMap(_)
                        | PyStep::Filter(_)
                        | PyStep::Foreach(_)
                        | PyStep::ToStr => steps.push(step),
                        _ => return None,
                    }
                }
                _ => return None,
            }
        }
        Some(EventPlan { steps })
    }

    /// Runs one event per row of `cols`, from row `first` on, in order, under one GIL
    /// hold (`execute()` releases it while it waits for Redis). Before row `i` runs,
    /// `next(cols, i)` may append it (it must not wait for the Redis lock: the GIL is
    /// held) and returns false to end the batch there. Returns one output per event run.
    /// Only the last `keep` events' results are converted (the others' executions are
    /// dropped before anyone can read them); every event's errors are kept.
    pub fn run(
        &self,
        cols: &mut KeyColumns,
        first: usize,
        next: &mut dyn FnMut(&mut KeyColumns, usize) -> bool,
        keep: usize,
    ) -> Vec<ExecutionOutput> {
        self.run_events(cols, first, next, keep, false).0
    }

    /// As [`EventPlan::run`], for `sync` events (the caller holds the Redis lock): a
    /// callback returning a coroutine or `gearsFuture`, which cannot be awaited under the
    /// lock, ends the batch there, and that event continues in the background as 1.2's
    /// async_local (its output is not among the returned ones: run `Deferred::finish` on
    /// a worker).
    pub fn run_sync(
        &self,
        cols: &mut KeyColumns,
        first: usize,
        next: &mut dyn FnMut(&mut KeyColumns, usize) -> bool,
        keep: usize,
    ) -> (Vec<ExecutionOutput>, Option<Deferred>) {
        self.run_events(cols, first, next, keep, true)
    }

    fn run_events(
        &self,
        cols: &mut KeyColumns,
        first: usize,
        next: &mut dyn FnMut(&mut KeyColumns, usize) -> bool,
        keep: usize,
        may_defer: bool,
    ) -> (Vec<ExecutionOutput>, Option<Deferred>) {
        if self.str_only() {
            return (run_str_only(cols, first, next, keep), None);
        }
        crate::metrics::attach_batch(|py| {
            let _scope = crate::scope::ExecutionScope::enter();
            let _profiling = crate::profile::Profiling::start(py, &self.steps);
            let _deferring = DeferScope::enter(may_defer);
            let mut outs: Vec<ExecutionOutput> = Vec::new();
            let mut deferred = None;
            // (event index, records) of the newest `keep` events.
            let mut recent: VecDeque<(usize, Vec<Record>)> = VecDeque::new();
            let mut i = first;
            while next(cols, i) && i < cols.len() {
                let mut rows = Vec::new();
                let mut out = ExecutionOutput::default();
                let record = key_row_to_dict(py, &cols.row(i));
                i += 1;
                let mut pending = None;
                let slot = may_defer.then_some(&mut pending);
                if let Err(e) = record.and_then(|r| self.push(py, 0, r, &mut rows, slot)) {
                    out.errors.push(error_text(py, &e));
                }
                if let Some(p) = pending {
                    deferred = Some(Deferred::new(self.clone(), p, rows, out));
                    break;
                }
                if keep > 0 {
                    if recent.len() == keep {
                        recent.pop_front();
                    }
                    recent.push_back((outs.len(), rows));
                }
                outs.push(out);
            }
            for (i, rows) in recent {
                finish_records(py, rows, &mut outs[i]);
            }
            (outs, deferred)
        })
    }

    /// Pushes one record through steps `from..` (as `PyStage` does for these steps).
    /// With `defer` (a `sync` event), a callback result that cannot be awaited here is
    /// left in it, with the event's records still to run, and the push ends.
    pub(crate) fn push<'py>(
        &self,
        py: Python<'py>,
        from: usize,
        row: Bound<'py, PyAny>,
        out: &mut Vec<Record>,
        mut defer: Option<&mut Option<Pending>>,
    ) -> PyResult<()> {
        let mut row = row;
        let last = self.steps.len().saturating_sub(1);
        for i in from..self.steps.len() {
            match &*self.steps[i] {
                local @ (PyStep::Map(_)
                | PyStep::Filter(_)
                | PyStep::Foreach(_)
                | PyStep::FlatMap(_)) => {
                    let Some(v) = local.call_local(py, &row)? else {
                        continue;
                    };
                    if let Some(slot) = defer.as_deref_mut() {
                        if must_defer(py, &v) {
                            *slot = Some(Pending::new(i, row, v));
                            return Ok(());
                        }
                    }
                    match local.settle_local(row, awaited(py, v)?)? {
                        Local::Row(r) => row = r,
                        Local::Dropped => return Ok(()),
                        Local::Spread(items) => {
                            let mut items = items.into_iter();
                            while let Some(item) = items.next() {
                                self.push(py, i + 1, item, out, defer.as_deref_mut())?;
                                if let Some(Some(p)) = defer.as_deref_mut() {
                                    p.then_run(i + 1, items);
                                    break;
                                }
                            }
                            return Ok(());
                        }
                    }
                }
                PyStep::ToStr if i == last => {
                    if str_can_wait(&row) {
                        out.push(Record::StrPending(row.unbind()));
                    } else {
                        out.push(Record::Text(str_of(&row)?));
                    }
                    return Ok(());
                }
                PyStep::ToStr => {
                    row = match native_str(&row) {
                        Some(t) => PyString::new(py, &t).into_any(),
                        None => row.str()?.into_any(),
                    }
                }
                // `from_plan` admits nothing else.
                _ => return Ok(()),
            }
        }
        out.push(Record::Obj(row.unbind()));
        Ok(())
    }

    /// The step at `i`.
    pub(crate) fn step(&self, i: usize) -> Option<&PyStep> {
        self.steps.get(i).map(|s| &**s)
    }
}

/// Converts an event's records into its results (stopping at the first that fails).
pub(crate) fn finish_records(py: Python<'_>, rows: Vec<Record>, out: &mut ExecutionOutput) {
    for r in rows {
        match r.finish(py) {
            Ok(d) => out.results.push(d),
            Err(e) => {
                out.errors.push(error_text(py, &e));
                break;
            }
        }
    }
}

/// A record that reached the end of the flow.
pub(crate) enum Record {
    Obj(Py<PyAny>),
    /// The final `str()` is still to be applied (see `str_can_wait`).
    StrPending(Py<PyAny>),
    /// The final `str()`, done.
    Text(String),
}

impl Record {
    fn finish(self, py: Python<'_>) -> PyResult<Datum> {
        Ok(match self {
            Record::Obj(o) => py_to_datum(o.bind(py)),
            Record::StrPending(o) => Datum::Str(str_of(o.bind(py))?),
            Record::Text(t) => Datum::Str(t),
        })
    }
}

/// `str(obj)`, natively when `native_str` can.
fn str_of(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    match native_str(obj) {
        Some(t) => Ok(t),
        None => Ok(obj.str()?.to_string_lossy().into_owned()),
    }
}

/// `str(obj)` rendered in Rust for plain builtin values — an exact `str`, `None`, a
/// `bool`, or dicts and lists (nested once) of ASCII `str`s, `None` and `bool`s — exactly
/// as Python renders them; `None` for anything else (Python's `str()` then runs).
fn native_str(obj: &Bound<'_, PyAny>) -> Option<String> {
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return s.to_str().ok().map(str::to_owned);
    }
    let mut out = String::new();
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
fn str_can_wait(obj: &Bound<'_, PyAny>) -> bool {
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

/// `GB().register()`: each event's result is `str()` of its record, rendered from the
/// row (only for the newest `keep` events; the others are never read).
fn run_str_only(
    cols: &mut KeyColumns,
    first: usize,
    next: &mut dyn FnMut(&mut KeyColumns, usize) -> bool,
    keep: usize,
) -> Vec<ExecutionOutput> {
    let mut outs = Vec::new();
    while next(cols, first + outs.len()) && first + outs.len() < cols.len() {
        outs.push(ExecutionOutput::default());
    }
    let from = outs.len().saturating_sub(keep);
    for (i, out) in outs.iter_mut().enumerate().skip(from) {
        let row = cols.row(first + i);
        let text = record_repr(&row).ok_or(()).or_else(|()| {
            crate::metrics::attach_batch(|py| {
                key_row_to_dict(py, &row)
                    .and_then(|r| Ok(r.str()?.to_string()))
                    .map_err(|e| error_text(py, &e))
            })
        });
        match text {
            Ok(t) => out.results.push(Datum::Str(t)),
            Err(e) => out.errors.push(e),
        }
    }
    outs
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
