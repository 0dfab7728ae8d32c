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
//! A stage parks only where it has a waker: a pooled execution's stage, or an inline run
//! that may go on in the background (`engine::inline::run_inline_parking`: a sync run
//! outside MULTI/Lua, which holds the Redis lock but never waits under it). A wave of
//! records through leading `async def` steps parks as a whole ([`Wave`]); batch steps
//! run once the records that waited went through (`flush_batches`); at end of input a
//! parked step stops the drain (`finish`), which goes on from the next step. Where the
//! stage has no waker (an inline run inside MULTI/Lua), awaits wait on the thread
//! (`awaited`, which refuses under the Redis lock).
//!
//! Part of `PyStage` (`super`); depends on `wave`, `step`, `future`, `asyncio_bridge`,
//! `errors`.

use std::collections::VecDeque;
use std::sync::Arc;

use engine::ops::{Emit, Finish};
use pyo3::prelude::*;
use pyo3::types::PyCFunction;

use super::wave::{Progress, Wave};
use super::{Out, PyStage, StepState};
use crate::asyncio_bridge::{awaited, is_done, must_defer};
use crate::future::completion_of;
use crate::step::{Local, PyStep};

/// Where a parked stage stopped.
pub(super) struct Parked {
    at: At,
    /// The completion the awaitable sets.
    completion: Py<PyAny>,
    /// The awaitable itself, referenced until the stage resumes: a coroutine's task on the
    /// gears loop is only weakly held there, and what it awaits (a nested run's future)
    /// may be weakly held by whoever sets it, so without this the garbage collector can
    /// destroy the pending task and the completion would never be set.
    _awaitable: Option<Py<PyAny>>,
    /// Records still to push, in order: (first step, record, partition key).
    rest: VecDeque<(usize, Py<PyAny>, Option<Vec<u8>>)>,
    /// An error to report once `rest` went through (a wave's, after the rows before it).
    then_fail: Option<PyErr>,
    /// Whether the completion calls the waker yet.
    armed: bool,
}

/// The awaiting work of a parked stage.
enum At {
    /// Step `step`'s callback returned the awaitable for `row` (filter and foreach pass
    /// it on) or for group `group` (accumulate-by-key).
    Step {
        step: usize,
        row: Option<Py<PyAny>>,
        group: Option<String>,
    },
    /// A wave's chunk in flight.
    Wave(Box<Wave>),
}

impl Parked {
    fn new(at: At, completion: Bound<'_, PyAny>, awaitable: Option<Bound<'_, PyAny>>) -> Self {
        Parked {
            at,
            completion: completion.unbind(),
            _awaitable: awaitable.map(Bound::unbind),
            rest: VecDeque::new(),
            then_fail: None,
            armed: false,
        }
    }

    /// A new waker (an inline run's parked stage continued in a pooled execution): the
    /// completion calls the new one once armed again.
    pub(super) fn rearm(&mut self) {
        self.armed = false;
    }
}

impl PyStage {
    /// True when an await may park this stage rather than wait on its thread.
    pub(super) fn may_park(&self) -> bool {
        self.waker.is_some()
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
        let at = At::Step {
            step,
            row: row.map(|r| r.clone().unbind()),
            group: group.map(str::to_owned),
        };
        self.parked = Some(Box::new(Parked::new(at, completion, Some(v.clone()))));
        Ok(true)
    }

    /// Runs `wave` on (the leading steps `0..upto` over a batch): parks the stage while a
    /// chunk awaits, else pushes the rows that passed through the steps after the wave.
    pub(super) fn run_wave(
        &mut self,
        py: Python<'_>,
        mut wave: Box<Wave>,
        out: &mut Out,
    ) -> PyResult<()> {
        match wave.advance(py, self.may_park()) {
            Progress::Waiting(c) => {
                self.parked = Some(Box::new(Parked::new(At::Wave(wave), c, None)));
                Ok(())
            }
            Progress::Done(rows, err) => {
                let upto = wave.upto();
                let mut rows = rows.into_iter();
                while let Some(row) = rows.next() {
                    self.push(py, upto, row, None, out)?;
                    if self.is_parked() {
                        self.park_rest(rows.map(|r| (upto, r, None)));
                        if let Some(p) = &mut self.parked {
                            p.then_fail = err;
                        }
                        return Ok(());
                    }
                }
                err.map_or(Ok(()), Err)
            }
        }
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
                at,
                mut rest,
                then_fail,
                ..
            } = *p;
            let settled = match at {
                At::Step { step, row, group } => {
                    self.settle(py, step, row, group, completion, &mut out)
                }
                At::Wave(wave) => self.run_wave(py, wave, &mut out),
            };
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
                p.then_fail = p.then_fail.take().or(then_fail);
                continue; // the next await may be over by now
            }
            if let Some(e) = then_fail {
                self.fail(py, &e, &mut errors, emit);
                break Finish::Done;
            }
            // Every record of the batch went through: the batch steps run over theirs.
            if let Err(e) = self.flush_batches(py, &mut out) {
                self.fail(py, &e, &mut errors, emit);
                break Finish::Done;
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
                t.try_entry(key.as_bytes(), || super::Group::new(py, &key))?
                    .acc = v.unbind();
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
