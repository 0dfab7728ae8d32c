//! KeysReader registrations with `commands=[…]` (REFERENCE §2.1): the command runs for real
//! (rewritten into RG.TRIGGER by the command filter), the keyspace events it raises trigger
//! those registrations linked to it, and the client's reply waits for them: it is the real
//! reply unless a step called `override_reply(v)` (first caller wins). Inside MULTI/Lua the
//! client is not blocked and gets the real reply. A non-sync run whose plan crosses shards
//! (a repartition, `run::distribute`) runs on every shard and is collected here first.

use engine::sync::{AtomicUsize, Ordering};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use engine::batch::KeyBuilder;
use engine::exec::ExecutionOutput;
use engine::Datum;
use gearpy::link::CommandLink;
use gearpy::{ControlledRuntime, ExecControl};
use redis_module::{Context, ContextFlags};

use crate::model::executions::Entry;
use crate::model::registrations::{Mode, Registration};
use crate::model::reply::datum_reply;
use crate::model::reply::from_call_reply;
use crate::model::state::ModuleState;
use crate::redis::access::AsUser;
use crate::redis::ffi::replies::{block, reply_blocked, Blocked, Reply};
use crate::redis::ffi::scan::read_key;
use crate::redis::lock::with_lock_held;
use crate::run::hooks::HookRun;
use crate::run::inline::Inline;
use crate::run::readers::keys::KeysSource;
use crate::run::readers::ready::ReadySource;

/// A running command and the executions it triggered.
struct Link {
    argv: Vec<Vec<u8>>,
    command: String,
    overridden: Mutex<Option<Reply>>,
    real: Mutex<Option<Reply>>,
    /// Unfinished executions, plus one for the command itself.
    pending: AtomicUsize,
    client: Mutex<Option<Blocked>>,
}

impl CommandLink for Link {
    fn override_reply(&self, value: Datum) -> Result<(), String> {
        let mut o = self.overridden.lock().unwrap_or_else(|e| e.into_inner());
        if o.is_some() {
            return Err("Can only override reply once".into());
        }
        *o = Some(datum_reply(&value));
        Ok(())
    }

    fn argv(&self) -> Vec<Vec<u8>> {
        self.argv.clone()
    }
}

impl Link {
    fn reply(&self) -> Reply {
        let o = self
            .overridden
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        o.or_else(|| self.real.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or(Reply::Null)
    }

    /// One execution (or the command itself) finished; the last one answers the client.
    fn finish_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(c) = self.client.lock().unwrap_or_else(|e| e.into_inner()).take() {
                reply_blocked(c, &self.reply());
            }
        }
    }
}

thread_local! {
    /// The command running right now on the main thread, while its events fire.
    static ACTIVE: RefCell<Option<Arc<Link>>> = const { RefCell::new(None) };
}

/// RG.TRIGGER for a command some registration lists in `commands=`.
pub fn run(ctx: &Context, state: &ModuleState, argv: Vec<Vec<u8>>) -> HookRun {
    let command = String::from_utf8_lossy(&argv[0]).to_ascii_lowercase();
    if !state.registrations.commanded(&command) {
        return HookRun::NotHooked;
    }
    let flags = ctx.get_flags();
    // The command runs as its client: the command filter turned it into RG.TRIGGER before
    // Redis checked the client's ACL on it (`crate::redis::access`).
    let client = crate::redis::access::of_client(ctx);
    if flags.intersects(ContextFlags::REPLICATED | ContextFlags::LOADING) {
        return HookRun::Reply(from_call_reply(with_lock_held(ctx, || {
            crate::redis::call::call(Some(&client), &argv)
        })));
    }
    let link = Arc::new(Link {
        argv: argv.clone(),
        command,
        overridden: Mutex::new(None),
        real: Mutex::new(None),
        pending: AtomicUsize::new(1),
        client: Mutex::new(None),
    });
    ACTIVE.with(|a| *a.borrow_mut() = Some(Arc::clone(&link)));
    let real = with_lock_held(ctx, || crate::redis::call::call(Some(&client), &argv));
    ACTIVE.with(|a| a.borrow_mut().take());
    *link.real.lock().unwrap_or_else(|e| e.into_inner()) = Some(from_call_reply(real));
    if flags.intersects(crate::redis::ffi::replies::CANNOT_BLOCK) {
        return HookRun::Reply(link.reply());
    }
    if link.pending.load(Ordering::Acquire) == 1 {
        return HookRun::Reply(link.reply()); // nothing async to wait for
    }
    *link.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(block(ctx));
    link.finish_one();
    HookRun::Blocked
}

/// A `commands=` registration matched an event: run it linked to the active command.
pub fn trigger(
    ctx: &Context,
    state: &ModuleState,
    reg: &Arc<Registration>,
    key: &[u8],
    event: &str,
) {
    let Some(link) = ACTIVE.with(|a| a.borrow().clone()) else {
        return;
    };
    if !reg
        .commands
        .as_ref()
        .is_some_and(|c| c.contains(&link.command))
    {
        return;
    }
    reg.count_triggered();
    let entry = Entry::new_registered(state.registry.next_id(), &reg.shape);
    state.keep_registered(&**reg, &entry);
    let started = Instant::now();
    if reg.mode == Mode::Sync {
        let mut cols = KeyBuilder::new(reg.read_value);
        read_key(ctx, key, &mut cols, reg.read_value);
        cols.push_event(event.as_bytes());
        let source = Box::new(ReadySource::keys(cols));
        let dyn_link: Arc<dyn CommandLink> = Arc::clone(&link) as Arc<dyn CommandLink>;
        // Listed as running under the id that RG.ABORTEXECUTION stops.
        entry.running();
        let out = gearpy::link::with_link(Some(dyn_link), || {
            Inline {
                ctx: Some(ctx),
                run_as: Some(&reg.run_as),
                section: Some(&entry.id),
            }
            .run(&reg.plan, source)
        });
        reg.stats()
            .record(&out, started.elapsed().as_millis() as u64);
        entry.finish(out);
        return;
    }
    link.pending.fetch_add(1, Ordering::AcqRel);
    let control = ExecControl::linked(Arc::clone(&link) as Arc<dyn CommandLink>);
    let source = crate::redis::access::source(
        Box::new(KeysSource::for_event(
            key.to_vec(),
            event.as_bytes().to_vec(),
            reg.read_value,
        )),
        &reg.run_as,
    );
    // A repartition moves the event's record to another shard: the run is started on every
    // shard (their readers yield nothing) and collected here before the command replies.
    // This thread holds the Redis lock: the order goes on the bus from here.
    let launched = with_lock_held(ctx, || crate::run::distribute::launch(&entry.id, reg, None));
    let launched = launched.map(Arc::new);
    let (done_reg, done_entry, done_link) =
        (Arc::clone(reg), Arc::clone(&entry), Arc::clone(&link));
    let local = launched.clone();
    let on_done = Box::new(move |out: ExecutionOutput| {
        let complete = move |out: ExecutionOutput| {
            done_reg
                .stats()
                .record(&out, started.elapsed().as_millis() as u64);
            done_entry.finish(out);
            done_link.finish_one();
        };
        match local {
            Some(l) => l.local_done(out, Box::new(complete)),
            None => complete(out),
        }
    });
    let host = AsUser::new(ControlledRuntime(Arc::clone(&control)), reg.run_as.clone());
    let shuffle = launched.as_ref().map(|l| &l.shuffle);
    match crate::run::start::start_execution(state, source, &reg.plan, &host, shuffle, on_done) {
        Ok(h) => entry.started(h, Some(control)),
        Err(e) => {
            if let Some(l) = &launched {
                l.abandon();
            }
            entry.finish(ExecutionOutput::failed(e));
            link.finish_one();
        }
    }
}
