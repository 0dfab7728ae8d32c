//! `WorkerPool`: threads running scheduled stage tasks; a fixed number, or (an elastic
//! pool) a base number that grows up to a cap while every thread is busy with one-off
//! closures. Threads are owned by the pool and joined when it is dropped.

use crossbeam::channel::{unbounded, Receiver, Sender};

use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Arc, AtomicUsize, Mutex, Ordering};

/// A unit of schedulable work (a pipeline stage's quantum).
pub trait Task: Send + Sync {
    fn run(self: Arc<Self>);
}

/// A pool of worker threads.
#[derive(Debug)]
pub struct WorkerPool {
    tx: Option<Sender<Arc<dyn Task>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Set for an elastic pool: how it grows.
    growth: Option<Growth>,
}

/// What an elastic pool needs to start another worker.
#[derive(Debug)]
struct Growth {
    rx: Receiver<Arc<dyn Task>>,
    /// Closures submitted with `spawn_fn` and not yet finished.
    pending: Arc<AtomicUsize>,
    max: usize,
    name: String,
    task_end: fn(),
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
        Self::build(threads, name, task_end).0
    }

    /// As [`WorkerPool::with_task_end`] with `threads` workers at first; a closure given to
    /// [`WorkerPool::spawn_fn`] while every worker is busy starts another one, up to `max`
    /// (then it waits). For work that may run long (scripts): one slow closure must not
    /// hold up the next.
    pub fn elastic(threads: usize, max: usize, name: &str, task_end: fn()) -> Self {
        let (mut pool, rx) = Self::build(threads, name, task_end);
        pool.growth = Some(Growth {
            rx,
            pending: Arc::new(AtomicUsize::new(0)),
            max: max.max(threads.max(1)),
            name: name.to_owned(),
            task_end,
        });
        pool
    }

    fn build(threads: usize, name: &str, task_end: fn()) -> (Self, Receiver<Arc<dyn Task>>) {
        let (tx, rx) = unbounded::<Arc<dyn Task>>();
        let threads = (0..threads.max(1))
            .map(|i| start_worker(&rx, &format!("{name}-{i}"), task_end))
            .collect();
        let pool = WorkerPool {
            tx: Some(tx),
            threads: Mutex::new(threads),
            growth: None,
        };
        (pool, rx)
    }

    pub fn size(&self) -> usize {
        self.threads.lock().map_or(0, |t| t.len())
    }

    /// Runs a one-off closure on the pool (script runs, replies).
    pub fn spawn_fn(&self, f: impl FnOnce() + Send + 'static) {
        let Some(tx) = &self.tx else { return };
        let task: BoxedFn = match &self.growth {
            None => Box::new(f),
            Some(g) => {
                let pending = Arc::clone(&g.pending);
                let queued = pending.fetch_add(1, Ordering::AcqRel) + 1;
                self.grow_for(g, queued);
                Box::new(move || {
                    // Counted done even if `f` panics (the worker catches it).
                    struct Done(Arc<AtomicUsize>);
                    impl Drop for Done {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::AcqRel);
                        }
                    }
                    let _done = Done(pending);
                    f()
                })
            }
        };
        let _ = tx.send(Arc::new(OnceTask(Mutex::new(Some(task)))));
    }

    /// Starts a worker when more closures are pending than there are workers.
    fn grow_for(&self, g: &Growth, pending: usize) {
        let Ok(mut threads) = self.threads.lock() else {
            return;
        };
        if pending > threads.len() && threads.len() < g.max {
            let name = format!("{}-{}", g.name, threads.len());
            threads.push(start_worker(&g.rx, &name, g.task_end));
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

/// Starts one worker taking tasks from `rx` until the pool's sender is gone.
fn start_worker(rx: &Receiver<Arc<dyn Task>>, name: &str, task_end: fn()) -> JoinHandle<()> {
    let rx = rx.clone();
    thread::Builder::new()
        .name(name.to_owned())
        .stack_size(WORKER_STACK)
        .spawn(move || {
            while let Ok(task) = rx.recv() {
                // Backstop: a panicking task must not take the worker down.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run()));
                let _ = std::panic::catch_unwind(task_end);
            }
        })
        .expect("spawning a worker thread")
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        self.tx.take();
        self.growth.take();
        let threads = match self.threads.get_mut() {
            Ok(t) => std::mem::take(t),
            Err(e) => std::mem::take(e.into_inner()),
        };
        for t in threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs a closure that blocks until released, then another: reports whether the second
    /// ran while the first was still blocked.
    fn second_runs_beside_a_blocked_first(pool: &WorkerPool) -> bool {
        let (release_tx, release_rx) = crossbeam::channel::bounded::<()>(1);
        let (ran_tx, ran_rx) = crossbeam::channel::bounded::<()>(1);
        pool.spawn_fn(move || {
            let _ = release_rx.recv_timeout(Duration::from_secs(10));
        });
        pool.spawn_fn(move || {
            let _ = ran_tx.send(());
        });
        let ran = ran_rx.recv_timeout(Duration::from_millis(500)).is_ok();
        let _ = release_tx.send(());
        ran
    }

    #[test]
    fn an_elastic_pool_grows_while_every_worker_is_busy() {
        let pool = WorkerPool::elastic(1, 4, "elastic-test", || {});
        assert!(second_runs_beside_a_blocked_first(&pool));
        assert_eq!(pool.size(), 2);
    }

    #[test]
    fn a_fixed_pool_queues_behind_a_busy_worker() {
        let pool = WorkerPool::new(1, "fixed-test");
        assert!(!second_runs_beside_a_blocked_first(&pool));
        assert_eq!(pool.size(), 1);
    }

    #[test]
    fn an_elastic_pool_stops_growing_at_its_cap() {
        let pool = WorkerPool::elastic(1, 1, "capped-test", || {});
        assert!(!second_runs_beside_a_blocked_first(&pool));
        assert_eq!(pool.size(), 1);
    }

    #[test]
    fn an_idle_elastic_pool_does_not_grow() {
        let pool = WorkerPool::elastic(2, 8, "idle-test", || {});
        for _ in 0..20 {
            let (tx, rx) = crossbeam::channel::bounded::<()>(1);
            pool.spawn_fn(move || {
                let _ = tx.send(());
            });
            rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        assert_eq!(pool.size(), 2);
    }
}
