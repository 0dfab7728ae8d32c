//! One thread that every 50 ms runs the cluster layer's periodic checks (questions and
//! runs whose shards stayed silent past their deadline, heartbeats). Started when the first
//! check registers. Depends on nothing above `redis`.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type Check = fn(Instant);

fn checks() -> &'static Mutex<Vec<Check>> {
    static CHECKS: OnceLock<Mutex<Vec<Check>>> = OnceLock::new();
    CHECKS.get_or_init(Default::default)
}

/// Runs `check` on every tick from now on (registering the same one twice is a no-op).
pub fn every_tick(check: Check) {
    {
        let mut c = checks().lock().unwrap_or_else(|e| e.into_inner());
        if c.iter().any(|&f| std::ptr::fn_addr_eq(f, check)) {
            return;
        }
        c.push(check);
    }
    start();
}

fn start() {
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("gearshift-sweep".into())
            .spawn(|| loop {
                std::thread::sleep(Duration::from_millis(50));
                let now = Instant::now();
                let due: Vec<Check> = checks().lock().unwrap_or_else(|e| e.into_inner()).clone();
                for check in due {
                    crate::redis::ffi::trampoline::callback("the cluster sweeper", (), || {
                        check(now)
                    });
                }
            });
        if let Err(e) = spawned {
            crate::redis::ffi::log::warning(&format!("Gearshift: no sweeper thread: {e}"));
        }
    });
}
