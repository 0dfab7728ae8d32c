//! A stage that parks instead of waiting (REFERENCE §5, §12.5; issue 11): when a callback
//! of a map, flatmap, filter, foreach, accumulate or accumulate-by-key step returns what
//! must still be awaited (a coroutine, a `gearsFuture`, a nested `run()`), the stage stops
//! there and keeps a [`Parked`]: the step, its input record (or group key), the awaited
//! completion, and the records still to push (a `flatmap`'s later items, then the rest of
//! the batch, in order). The engine then frees the worker (`Operator::try_resume` answers
//! `Parked`); the completion's done-callback calls the stage's waker, and the next turn
//! settles the step with the awaited value and pushes the rest. Nothing else enters the
//! stage meanwhile, so record order and the accumulators' order are those of waiting.
//!
//! A stage parks only inside a pooled execution (it has a waker: never in an inline run),
//! never while this thread holds the Redis lock, and not when it holds batch steps
//! (`mapBatch`, ...: they run once per input batch). Still waiting on their worker (GIL
//! released): the awaits of a wave of several records through leading `async def` steps
//! (`wave`, which awaits them together) and those of steps run at the end of input (after
//! an accumulation, `finish`).
//!
//! Part of `PyStage` (`super`); depends on `step`, `future`, `asyncio_bridge`, `errors`.

use std::collections::VecDeque;
use std::sync::Arc;

use engine::ops::{Emit, Finish};
use pyo3::prelude::*;
use pyo3::types::PyCFunction;

use super::{Out, PyStage, StepState};
use crate::asyncio_bridge::{awaited, holds_redis_lock, is_done, must_defer};
use crate::future::completion_of;
use crate::step::{Local, PyStep};

/// Where a parked stage stopped.
pub(super) struct Parked {
    /// The step whose callback returned the awaitable.
    step: usize,
    /// That step's input record (filter and foreach pass it on).
    row: Option<Py<PyAny>>,
    /// The group of an accumulate-by-key step.
    group: Option<String>,
    /// The completion the awaitable sets.
    completion: Py<PyAny>,
    /// The awaitable itself, referenced until the stage resumes: a coroutine's task on the
    /// gears loop is only weakly held there, and what it awaits (a nested run's future)
    /// may be weakly held by whoever sets it, so without this the garbage collector can
    /// destroy the pending task and the completion would never be set.
    _awaitable: Py<PyAny>,
    /// Records still to push, in order: (first step, record, partition key).
    rest: VecDeque<(usize, Py<PyAny>, Option<Vec<u8>>)>,
    /// Whether the completion calls the waker yet.
    armed: bool,
}

impl PyStage {
    /// True when an await may park this stage rather than wait on its worker.
    fn may_park(&self) -> bool {
        self.waker.is_some()
            && !self
                .state
                .iter()
                .any(|s| matches!(s, StepState::Pending(_)))
            && !holds_redis_lock()
    }

    /// True when the stage is parked (the record that parked it and the records after
    /// it wait in `self.parked`).
    pub(super) fn is_parked(&self) -> bool {
        self.parked.is_some()
    }

    /// Parks the stage on `v`, what step `step`'s callback returned for `row` (or group
    /// `group`), if it must still be awaited and the stage may park. True if parked.
    pub(super) fn park_on(
        &mut self,
        py: Python<'_>,
        step: usize,
        row: Option<&Bound<'_, PyAny>>,
        group: Option<&str>,
        v: &Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        if !self.may_park() || !must_defer(py, v) {
            return Ok(false);
        }
        // A coroutine starts on the gears loop now.
        let completion = completion_of(py, v)?.unwrap_or_else(|| v.clone());
        self.parked = Some(Box::new(Parked {
            step,
            row: row.map(|r| r.clone().unbind()),
            group: group.map(str::to_owned),
            completion: completion.unbind(),
            _awaitable: v.clone().unbind(),
            rest: VecDeque::new(),
            armed: false,
        }));
        Ok(true)
    }

    /// After a push that parked the stage, `rest` waits too (after what is already queued).
    pub(super) fn park_rest<'py>(
        &mut self,
        rest: impl IntoIterator<Item = (usize, Bound<'py, PyAny>, Option<Vec<u8>>)>,
    ) {
        if let Some(p) = &mut self.parked {
            p.rest
                .extend(rest.into_iter().map(|(i, r, k)| (i, r.unbind(), k)));
        }
    }

    /// Pushes `items` through steps `from..`; if one parks the stage, the others wait.
    pub(super) fn push_all<'py>(
        &mut self,
        py: Python<'py>,
        from: usize,
        items: Vec<Bound<'py, PyAny>>,
        out: &mut Out,
    ) -> PyResult<()> {
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            self.push(py, from, item, None, out)?;
            if self.is_parked() {
                self.park_rest(items.map(|r| (from, r, None)));
                break;
            }
        }
        Ok(())
    }

    /// `Operator::try_resume`: settles the parked step once its completion is set and
    /// pushes the records that waited; `Parked` while a completion is not set.
    pub(super) fn resume(&mut self, emit: &mut Emit) -> Finish {
        if !self.is_parked() {
            return Finish::Done;
        }
        if self.control.as_ref().is_some_and(|c| c.stopped()) {
            let dropped = self.parked.take();
            crate::gil::batch(|_| drop(dropped));
            return Finish::Done;
        }
        let mut progress = Finish::Parked;
        self.hold(|this, py| progress = this.resume_held(py, emit));
        progress
    }

    fn resume_held(&mut self, py: Python<'_>, emit: &mut Emit) -> Finish {
        let mut out = Out::default();
        let mut errors = Vec::new();
        let progress = loop {
            let Some(mut p) = self.parked.take() else {
                break Finish::Done;
            };
            let completion = p.completion.bind(py).clone();
            if !is_done(&completion) {
                if !p.armed {
                    p.armed = true;
                    if let Err(e) = self.arm(py, &completion) {
                        self.fail(py, &e, &mut errors, emit);
                        break Finish::Done;
                    }
                }
                self.parked = Some(p);
                break Finish::Parked;
            }
            let Parked {
                step,
                row,
                group,
                mut rest,
                ..
            } = *p;
            let settled = self.settle(py, step, row, group, completion, &mut out);
            if let Err(e) = settled {
                self.fail(py, &e, &mut errors, emit);
                break Finish::Done;
            }
            while !self.is_parked() {
                let Some((from, row, key)) = rest.pop_front() else {
                    break;
                };
                let pushed = self.push(py, from, row.into_bound(py), key.as_deref(), &mut out);
                if let Err(e) = pushed {
                    self.fail(py, &e, &mut errors, emit);
                    break;
                }
            }
            if self.failed {
                self.parked = None;
                break Finish::Done;
            }
            if let Some(p) = &mut self.parked {
                p.rest.extend(rest);
            }
        };
        self.emit(py, out, errors, emit);
        progress
    }

    /// Has the completion wake the stage when it is set (at once if it is by now).
    fn arm(&self, py: Python<'_>, completion: &Bound<'_, PyAny>) -> PyResult<()> {
        let waker = self.waker.clone();
        let cb = PyCFunction::new_closure(py, None, None, move |_, _| {
            if let Some(w) = &waker {
                w();
            }
        })?;
        completion.call_method1("add_done_callback", (cb,))?;
        Ok(())
    }

    /// Step `step` gets the awaited value, then its output goes on.
    fn settle<'py>(
        &mut self,
        py: Python<'py>,
        step: usize,
        row: Option<Py<PyAny>>,
        group: Option<String>,
        completion: Bound<'py, PyAny>,
        out: &mut Out,
    ) -> PyResult<()> {
        let v = awaited(py, completion)?;
        let s = Arc::clone(&self.steps[step]);
        match (&*s, &mut self.state[step]) {
            (PyStep::Accumulate(_), StepState::Acc(acc)) => *acc = Some(v.unbind()),
            (PyStep::GroupBy { .. }, StepState::Groups(t)) => {
                let key = group.unwrap_or_default();
                *t.entry(key.as_bytes(), || py.None()) = v.unbind();
            }
            (local, _) => {
                let row = row.map_or_else(|| py.None().into_bound(py), |r| r.into_bound(py));
                match local.settle_local(row, v)? {
                    Local::Row(r) => self.push(py, step + 1, r, None, out)?,
                    Local::Dropped => {}
                    Local::Spread(items) => self.push_all(py, step + 1, items, out)?,
                }
            }
        }
        Ok(())
    }
}
