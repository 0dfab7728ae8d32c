//! Stopping a running execution's Python code (RG.ABORTEXECUTION): the stage records which
//! thread runs its callbacks, and `interrupt` raises `gears.forcestopped` there, so even a
//! `while True: pass` callback ends within one bytecode boundary.
//!
//! Bottom layer: depends on `embed`, `errors`, `pymem` (the execution's memory budget),
//! `link`, `services` and `gil`.

use engine::sync::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::embed;
use crate::errors::ForceStopped;
use crate::pymem::{BudgetScope, MemBudget};

/// Per-execution control shared by its Python stages and the module.
#[derive(Debug, Default)]
pub struct ExecControl {
    /// Python thread ident running this execution's callbacks, 0 when none.
    thread: AtomicU64,
    /// That thread's Python thread state, when claimed with
    /// [`ExecControl::claim_thread_stoppable`] (0 otherwise).
    tstate: AtomicU64,
    /// A stop tracer is set on the claimed thread (`stop_hard`).
    traced: AtomicBool,
    stopped: AtomicBool,
    /// The command this execution is linked to (`override_reply`), if any.
    link: Option<Arc<dyn crate::link::CommandLink>>,
    /// The Python memory charged to this execution, bounded by the host's limit.
    memory: MemBudget,
}

impl std::fmt::Debug for dyn crate::link::CommandLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CommandLink")
    }
}

impl ExecControl {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::with_link(None))
    }

    /// Control of an execution linked to a command (KeysReader `commands=`).
    pub fn linked(link: Arc<dyn crate::link::CommandLink>) -> Arc<Self> {
        Arc::new(Self::with_link(Some(link)))
    }

    fn with_link(link: Option<Arc<dyn crate::link::CommandLink>>) -> Self {
        let limit = crate::services::get().map_or(0, |h| h.execution_memory_limit());
        ExecControl {
            link,
            memory: MemBudget::new(limit),
            ..Self::default()
        }
    }

    /// Python bytes charged to this execution now (an estimate, see `pymem`).
    pub fn memory_charged(&self) -> i64 {
        self.memory.charged()
    }

    /// True once the execution was told to stop.
    pub fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Stops the execution's Python code now. Takes the GIL: call it while holding no GIL
    /// (the Redis lock may be held, as the lock order allows).
    pub fn interrupt(&self) {
        self.stopped.store(true, Ordering::Release);
        // Under the GIL the stage cannot enter or leave, so the ident is current.
        self.interrupt_thread();
    }

    /// Marks the calling thread (GIL held) as running this control's Python until
    /// [`ExecControl::release_thread`]: for code that runs many short executions in one
    /// GIL hold (batched events).
    pub fn claim_thread(&self) {
        self.thread
            .store(embed::current_thread_ident(), Ordering::Release);
    }

    /// Ends [`ExecControl::claim_thread`] (GIL held, on the same thread).
    pub fn release_thread(&self) {
        self.thread.store(0, Ordering::Release);
    }

    /// As [`ExecControl::claim_thread`], and [`ExecControl::stop_hard`] can reach the thread.
    pub fn claim_thread_stoppable(&self, py: pyo3::Python<'_>) {
        self.tstate
            .store(embed::current_thread_state(py), Ordering::Release);
        self.claim_thread();
    }

    /// Ends [`ExecControl::claim_thread_stoppable`] (GIL held, on the same thread): a stop
    /// tracer set meanwhile is removed, so the thread's later Python runs normally.
    pub fn release_thread_stoppable(&self, py: pyo3::Python<'_>) {
        self.release_thread();
        self.tstate.store(0, Ordering::Release);
        if self.traced.swap(false, Ordering::AcqRel) {
            embed::untrace_this_thread(py);
            embed::clear_raise_in_thread(py, embed::current_thread_ident());
        }
    }

    /// Stops the Python of a thread claimed with [`ExecControl::claim_thread_stoppable`]:
    /// `gears.forcestopped` is raised now and at every line it runs after, so catching it
    /// does not keep the code alive. Takes the GIL.
    pub fn stop_hard(&self) {
        crate::gil::signal(|py| {
            let (t, ts) = (
                self.thread.load(Ordering::Acquire),
                self.tstate.load(Ordering::Acquire),
            );
            if t == 0 || ts == 0 {
                return;
            }
            let exc = py.get_type::<ForceStopped>();
            embed::raise_in_thread(py, t, &exc);
            embed::trace_to_stop(py, ts, &exc);
            self.traced.store(true, Ordering::Release);
        });
    }

    /// Raises `gears.forcestopped` in the claimed thread, if any, without marking the
    /// control stopped (it goes on serving later executions). Takes the GIL.
    pub fn interrupt_thread(&self) {
        force_stop(&self.thread);
    }

    /// Marks the calling thread as running this execution's Python (GIL held) until the
    /// guard drops.
    pub(crate) fn enter(self: &Arc<Self>) -> Running {
        self.thread
            .store(embed::current_thread_ident(), Ordering::Release);
        let link = crate::link::Scope::enter(self.link.clone());
        let budget = self.memory.enter();
        Running {
            _budget: budget,
            control: Arc::clone(self),
            _link: link,
        }
    }
}

/// Raises `gears.forcestopped` in the Python thread whose ident `slot` holds (0: none).
/// Takes the GIL and reads the slot under it: a thread clears its slot with the GIL held,
/// so the ident is current when the exception is scheduled.
pub(crate) fn force_stop(slot: &AtomicU64) {
    crate::gil::signal(|py| {
        let t = slot.load(Ordering::Acquire);
        if t != 0 {
            embed::raise_in_thread(py, t, &py.get_type::<ForceStopped>());
        }
    });
}

/// While alive, the execution's Python runs on this thread (with its command link set and
/// its memory charged to it).
pub(crate) struct Running {
    // Dropped first: the budget scope points into `control`.
    _budget: BudgetScope,
    control: Arc<ExecControl>,
    _link: crate::link::Scope,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.control.thread.store(0, Ordering::Release);
    }
}
