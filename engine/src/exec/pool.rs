//! `WorkerPool`: a fixed number of threads running scheduled stage tasks. Threads are
//! owned by the pool and joined when it is dropped.

use crossbeam::channel::{unbounded, Receiver, Sender};

use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Arc, Mutex};

/// A unit of schedulable work (a pipeline stage's quantum).
pub trait Task: Send + Sync {
    fn run(self: Arc<Self>);
}

/// A fixed-size pool of worker threads.
#[derive(Debug)]
pub struct WorkerPool {
    tx: Option<Sender<Arc<dyn Task>>>,
    threads: Vec<JoinHandle<()>>,
}

/// A cheap handle that schedules tasks on a pool.
#[derive(Clone)]
pub(crate) struct PoolHandle {
    tx: Sender<Arc<dyn Task>>,
}

impl std::fmt::Debug for PoolHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolHandle")
    }
}

impl PoolHandle {
    pub(crate) fn spawn(&self, t: Arc<dyn Task>) {
        // Only fails once the pool is shutting down; the task is then dropped.
        let _ = self.tx.send(t);
    }
}

/// Stack of a worker thread. Host callbacks run on it (Python: nested `repr()` and
/// `__repr__` recursion use C stack per level, up to the recursion limit the Python layer
/// caps); untouched pages cost nothing.
pub const WORKER_STACK: usize = 16 << 20;

impl WorkerPool {
    /// Starts `threads` workers (at least one) named `<name>-<i>`.
    pub fn new(threads: usize, name: &str) -> Self {
        Self::with_task_end(threads, name, || {})
    }

    /// As [`WorkerPool::new`]; `task_end` runs on the worker after every task (the host
    /// releases there what a task's callbacks may have left held on the thread, such as a
    /// lock user code took and never gave back).
    pub fn with_task_end(threads: usize, name: &str, task_end: fn()) -> Self {
        let (tx, rx) = unbounded::<Arc<dyn Task>>();
        let threads = (0..threads.max(1))
            .map(|i| {
                let rx: Receiver<Arc<dyn Task>> = rx.clone();
                thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .stack_size(WORKER_STACK)
                    .spawn(move || {
                        while let Ok(task) = rx.recv() {
                            // Backstop: a panicking task must not take the worker down.
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                task.run()
                            }));
                            let _ = std::panic::catch_unwind(task_end);
                        }
                    })
                    .expect("spawning a worker thread")
            })
            .collect();
        WorkerPool {
            tx: Some(tx),
            threads,
        }
    }

    pub fn size(&self) -> usize {
        self.threads.len()
    }

    /// Runs a one-off closure on the pool (script runs, replies).
    pub fn spawn_fn(&self, f: impl FnOnce() + Send + 'static) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Arc::new(OnceTask(Mutex::new(Some(Box::new(f))))));
        }
    }

    pub(crate) fn handle(&self) -> PoolHandle {
        PoolHandle {
            tx: self.tx.clone().expect("pool is running"),
        }
    }
}

type BoxedFn = Box<dyn FnOnce() + Send>;

/// A closure run once as a task.
struct OnceTask(Mutex<Option<BoxedFn>>);

impl Task for OnceTask {
    fn run(self: Arc<Self>) {
        let f = self.0.lock().ok().and_then(|mut g| g.take());
        if let Some(f) = f {
            f();
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
