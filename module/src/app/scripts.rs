//! Running an RG.PYEXECUTE script on a worker and acting on what it asked for: a run
//! (blocking or UNBLOCKING), registrations (a session), or nothing (`OK`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use engine::exec::ExecutionOutput;
use engine::sync::{AtomicBool, Ordering};
use gearpy::{ControlledRuntime, ExecControl, RegisterRequest, RunRequest, ScriptOutcome};

use crate::model::executions::Entry;
use crate::model::registrations::Mode;
use crate::model::reply::ExecutionReply;
use crate::model::sessions::SessionArgs;
use crate::model::state::ModuleState;
use crate::redis::access::{self, AsUser, RunAs, Scope};
use crate::redis::ffi::replies::{reply_blocked, Blocked, Reply, WriteReply};
use crate::redis::ffi::trampoline::callback;

/// A blocked client that must get exactly one reply: dropped unreplied (a panic), it gets
/// an internal error instead of hanging.
pub struct Pending(Option<Blocked>);

impl Pending {
    pub fn new(bc: Blocked) -> Self {
        Pending(Some(bc))
    }

    pub fn send(mut self, r: &(impl WriteReply + ?Sized)) {
        if let Some(bc) = self.0.take() {
            reply_blocked(bc, r);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(bc) = self.0.take() {
            let r =
                Reply::Error("Gearshift internal error: execution ended without a reply".into());
            reply_blocked(bc, &r);
        }
    }
}

/// How often a script body whose client has gone is told again to stop (a bare `except`
/// in it catches one `gears.forcestopped`, not every one).
const STOP_AGAIN_EVERY: Duration = Duration::from_millis(20);

/// A script body's stop switch: the client that sent RG.PYEXECUTE disconnecting stops the
/// body (`gears.forcestopped` at its next bytecode and every line after, again every 20 ms
/// until it ends), so a script that never ends holds its thread only while someone waits
/// for it.
#[derive(Clone, Default)]
pub struct BodyControl {
    control: Arc<ExecControl>,
    ended: Arc<AtomicBool>,
}

impl BodyControl {
    /// What the client's disconnection does (main thread, Redis lock held).
    pub fn on_disconnect(&self) -> Box<dyn FnOnce(&redis_module::Context) + Send> {
        let me = self.clone();
        Box::new(move |ctx| {
            crate::redis::lock::with_lock_held(ctx, || {
                if me.stop_once() {
                    let again = Box::new(move || me.stop_once());
                    crate::redis::timers::start(STOP_AGAIN_EVERY, again);
                }
            })
        })
    }

    /// Stops the body if it still runs; false once it has ended.
    fn stop_once(&self) -> bool {
        if self.ended.load(Ordering::Acquire) {
            return false;
        }
        self.control.stop_hard();
        true
    }

    /// Runs the body of `code` under this switch.
    fn run(&self, code: &str) -> ScriptOutcome {
        struct Ended<'a>(&'a AtomicBool);
        impl Drop for Ended<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Release);
            }
        }
        let _ended = Ended(&self.ended);
        gearpy::run_script(code, Some(&self.control))
    }
}

/// One RG.PYEXECUTE to run on a worker.
pub struct ScriptJob {
    /// The module state the script runs against.
    pub state: &'static ModuleState,
    pub code: String,
    pub unblocking: bool,
    pub session: SessionArgs,
    /// REQUIREMENTS to install before the script runs.
    pub requirements: Vec<String>,
    pub force_reinstall: bool,
    /// Who RG.PYEXECUTE's client is: the script, its run and its registrations run as it.
    pub run_as: RunAs,
    /// Stops the body when the client disconnects.
    pub body: BodyControl,
}

impl ScriptJob {
    pub fn run(self, client: Pending) {
        callback("a script worker", (), move || {
            // Cluster mode and shard ids follow the topology as it is now.
            crate::model::topology::refresh();
            if let Err(e) = self.install_requirements() {
                return client.send(&Reply::Error(e));
            }
            self.run_script(client)
        });
    }

    fn install_requirements(&self) -> Result<(), String> {
        if self.requirements.is_empty() {
            return Ok(());
        }
        crate::app::requirements::install(self.state, &self.requirements, self.force_reinstall)
            .map_err(|e| format!("Could not satisfy requirements, error='{e}'"))
    }

    fn run_script(self, client: Pending) {
        let outcome = {
            let _as = Scope::enter(self.run_as.clone());
            self.body.run(&self.code)
        };
        match outcome {
            ScriptOutcome::NoRun => client.send(&Reply::Status("OK".into())),
            ScriptOutcome::Error(e) => {
                let e = crate::app::pickle_hint::explain(&self.code, e);
                client.send(&Reply::Error(e))
            }
            ScriptOutcome::Run(req) => {
                start_run(self.state, req, client, self.unblocking, &self.run_as)
            }
            ScriptOutcome::Registered(regs) => {
                self.register_then(regs, Box::new(move |r| client.send(&r)))
            }
            // 1.2 keeps the registrations and replies with the run's result.
            ScriptOutcome::RegisteredAndRun(regs, req) => {
                let (state, unblocking, run_as) =
                    (self.state, self.unblocking, self.run_as.clone());
                self.register_then(
                    regs,
                    Box::new(move |r| match r {
                        Reply::Status(_) => start_run(state, req, client, unblocking, &run_as),
                        failed => client.send(&failed),
                    }),
                )
            }
        }
    }

    /// Checks and installs the registrations; `then` gets `OK` or the error reply.
    fn register_then(&self, regs: Vec<RegisterRequest>, then: Then) {
        match check_triggers(self.state, &self.session, &regs)
            .and_then(|()| check_hooks(self.state, &self.session, &regs))
        {
            Err(e) => then(Reply::Error(e)),
            Ok(()) => register(self, regs, then),
        }
    }
}

/// What follows a script's registration, given its reply (`OK` or the errors).
type Then = Box<dyn FnOnce(Reply) + Send>;

/// One registration per trigger name (1.2): a name may be reused only by the session an
/// UPGRADE replaces, and only once per script.
pub(crate) fn check_triggers(
    state: &ModuleState,
    args: &SessionArgs,
    regs: &[RegisterRequest],
) -> Result<(), String> {
    let replaced = args
        .replace_with
        .clone()
        .or_else(|| args.upgrade.then(|| args.id.clone()).flatten());
    let mut seen = Vec::new();
    for t in regs.iter().filter_map(|r| r.trigger.as_deref()) {
        if seen.contains(&t) {
            return Err("trigger already registered in this session".into());
        }
        seen.push(t);
        if let Some(existing) = state.registrations.by_trigger(t) {
            if replaced.as_deref() != Some(existing.session.as_str()) {
                return Err("trigger already registered".into());
            }
        }
    }
    Ok(())
}

/// Command hooks must hook an existing, scriptable command and stack only over sync hooks;
/// a KeysReader's `commands=[…]` must be hookable by key prefix.
pub(crate) fn check_hooks(
    state: &ModuleState,
    args: &SessionArgs,
    regs: &[RegisterRequest],
) -> Result<(), String> {
    use crate::run::hook_checks::{self, Hooked};
    for cmds in regs.iter().filter_map(|r| r.commands.as_deref()) {
        hook_checks::check_commands(cmds)?;
    }
    let hooks: Vec<Hooked<'_>> = regs
        .iter()
        .filter_map(|r| {
            r.hook.as_deref().map(|command| Hooked {
                command,
                keyprefix: r.keyprefix.as_deref(),
                mode: Mode::parse(&r.mode),
            })
        })
        .collect();
    if hooks.is_empty() {
        return Ok(());
    }
    let replaced = args
        .replace_with
        .clone()
        .or_else(|| args.upgrade.then(|| args.id.clone()).flatten());
    hook_checks::check_hooks(state, &hooks, replaced.as_deref())
}

/// Installs the registrations as one session, runs their `onRegistered`, and in a cluster
/// installs the session on every other master too. The reply is `OK`, or one error per
/// shard that failed (`ERR shard-<id>: …`, 1.2's form).
fn register(job: &ScriptJob, regs: Vec<RegisterRequest>, then: Then) {
    let (args, code, reqs) = (&job.session, &job.code, &job.requirements);
    let state = job.state;
    // 1.2 installs registrations with an internal execution, which takes an id.
    state.registry.next_number();
    // REPLACE_WITH drops another session: replicas and other shards must drop it too (they
    // rebuild the new session under its own id, which replaces nothing there).
    let replaced: Vec<String> = args
        .replace_with
        .as_deref()
        .filter(|old| args.id.as_deref() != Some(*old))
        .and_then(|old| state.sessions.get(old))
        .map(|s| s.registrations.clone())
        .unwrap_or_default();
    let installed = crate::app::install::install(state, args, code, regs, &job.run_as);
    state.sessions.set_requirements(&installed.session, reqs);
    for id in &replaced {
        crate::redis::call::replicate("RG.INNERUNREGISTER", &[id.as_bytes()]);
        crate::cluster::bus::broadcast_unregister(id, false);
    }
    // Replicas and the AOF get the session as source (they keep it but never fire).
    let blob = crate::app::persist::session_blob(state, &installed.session);
    if let Some(blob) = &blob {
        crate::redis::call::replicate("RG.INNERREGISTER", &[blob]);
    }
    installed.activate();
    match blob {
        Some(blob) if crate::model::topology::current().is_some() => {
            let timeout = state.config.int("PythonInstallReqMaxIdleTime").max(1) as u64;
            crate::cluster::ask::ask_others(
                crate::cluster::ask::Query::Session(blob),
                std::time::Duration::from_millis(timeout),
                Box::new(move |answers| then(session_reply(answers))),
            );
        }
        _ => then(Reply::Status("OK".into())),
    }
}

fn session_reply(answers: crate::cluster::ask::Answers) -> Reply {
    let failed: Vec<Reply> = answers
        .into_iter()
        .filter_map(|(shard, r)| match r {
            Reply::Error(e) => Some(Reply::Error(format!("ERR shard-{shard}: {e}"))),
            _ => None,
        })
        .collect();
    if failed.is_empty() {
        Reply::Status("OK".into())
    } else {
        Reply::Array(failed)
    }
}

/// Starts the requested run (as `run_as`). Blocking: the reply is the output. UNBLOCKING:
/// the reply is the execution id and the execution is kept for RG.GETRESULTS.
fn start_run(
    state: &'static ModuleState,
    mut req: RunRequest,
    client: Pending,
    unblocking: bool,
    run_as: &RunAs,
) {
    let source = access::source(crate::run::start::source_for(req.reader, &req.plan), run_as);
    let entry = Entry::new(state.registry.next_id(), &req.plan);
    // Completes the `GearsFuture` the script's `run()` returned.
    let notify = Arc::new(Mutex::new(req.on_done.take()));
    // In cluster mode the run goes to every shard; collect/repartition cross the bus.
    let cluster = req
        .wire
        .take()
        .and_then(|w| crate::model::topology::current().map(|t| (w, t)));
    let shuffle =
        cluster.map(|(wire, topo)| crate::cluster::dist::launch(&entry.id, &topo, wire, run_as, 0));
    let distributed = shuffle.is_some();
    let (waiting, id_client) = if unblocking {
        (None, Some(client))
    } else {
        (Some(client), None)
    };
    let waiting = Arc::new(Mutex::new(waiting));
    let on_done = {
        let (entry, waiting, notify) = (
            Arc::clone(&entry),
            Arc::clone(&waiting),
            Arc::clone(&notify),
        );
        Box::new(move |out: ExecutionOutput| {
            let out = entry.settle(out);
            let id = entry.id.clone();
            let complete = move |out: ExecutionOutput| {
                if let Some(c) = take(&waiting) {
                    // A blocking run is listed while it runs (so it can be aborted, even
                    // once its client is gone) and dropped before its reply (1.2).
                    state.registry.remove(&entry.id);
                    c.send(&ExecutionReply(&out));
                    if distributed {
                        crate::cluster::dist::drop_parts(&entry.id);
                    }
                }
                tell(&notify, &out);
                entry.finish(out);
            };
            if distributed {
                crate::cluster::dist::local_done(&id, out, Box::new(complete));
            } else {
                complete(out);
            }
        })
    };
    let control = ExecControl::new();
    let host = AsUser::new(ControlledRuntime(Arc::clone(&control)), run_as.clone());
    match crate::run::start::start_execution(
        state,
        source,
        &req.plan,
        &host,
        shuffle.as_ref(),
        on_done,
    ) {
        Ok(handle) => {
            entry.started(handle, Some(control));
            // Kept unless it already finished (and was dropped) before this line; holding
            // the slot orders this with the completion, which empties it.
            let slot = lock(&waiting);
            if id_client.is_some() || slot.is_some() {
                state.keep(&entry);
            }
            drop(slot);
            if let Some(c) = id_client {
                c.send(&Reply::Bulk(entry.id.clone().into_bytes()));
            }
        }
        Err(e) => {
            if distributed {
                crate::cluster::dist::abandon(&entry.id);
            }
            tell(&notify, &ExecutionOutput::failed(&e));
            if let Some(c) = take(&waiting).or(id_client) {
                c.send(&Reply::Error(e.to_string()));
            }
        }
    }
}

/// Tells the script's `GearsFuture` the run's output (once).
fn tell(notify: &Mutex<Option<gearpy::RunDone>>, out: &ExecutionOutput) {
    let n = notify.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(n) = n {
        n(out);
    }
}

fn take(slot: &Mutex<Option<Pending>>) -> Option<Pending> {
    lock(slot).take()
}

fn lock(slot: &Mutex<Option<Pending>>) -> std::sync::MutexGuard<'_, Option<Pending>> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}
