//! Answering another shard's question (`Query`): from the main thread with the Redis lock
//! held, through the app's `ShardHandler`; installing requirements runs pip, so that answer
//! comes later, from a worker. Depends on `ask` (the wire forms), `bus`, `dist` and
//! `handler`.

use redis_module::Context;

use super::ask::{encode_reply, Query};
use super::bus::{self, Message};
use super::{dist, handler};
use crate::redis::ffi::replies::Reply;

/// Answers a query from `sender` (main thread, Redis lock held through `ctx`). Installing
/// requirements runs pip, so that answer comes later, from a worker.
pub fn on_ask(ctx: &Context, sender: &str, req: u64, q: Query) {
    if let Query::Install(names) = q {
        return install_then_answer(sender.to_owned(), req, names);
    }
    if let Query::Import(blob) = q {
        return import_then_answer(sender.to_owned(), req, blob);
    }
    let reply = answer(ctx, q);
    send_answer(sender, req, &reply);
}

pub(super) fn send_answer(to: &str, req: u64, reply: &Reply) {
    bus::send(
        Some(to),
        &Message::Answer {
            req,
            reply: encode_reply(reply),
        },
    );
}

fn install_then_answer(sender: String, req: u64, names: Vec<String>) {
    let Some(state) = crate::model::state::get() else {
        return;
    };
    state.pool.spawn_fn(move || {
        let reply = match state.requirements.ensure(&names, false) {
            Ok(_) => Reply::Status("OK".into()),
            Err(e) => Reply::Error(e),
        };
        send_answer(&sender, req, &reply);
    });
}

/// Installs requirement packages (unpacking wheels) on a worker, then answers.
fn import_then_answer(sender: String, req: u64, blob: Vec<u8>) {
    let (Some(h), Some(state)) = (handler::get(), crate::model::state::get()) else {
        return;
    };
    state.pool.spawn_fn(move || {
        let reply = h.import_requirements(&blob);
        send_answer(&sender, req, &reply);
    });
}

fn answer(ctx: &Context, q: Query) -> Reply {
    let Some(h) = handler::get() else {
        return Reply::Error("Gearshift is not initialised".into());
    };
    let result = match q {
        Query::GetExecution(id) => h.execution_plan(&id),
        Query::DropExecution(id) => h.drop_execution(&id),
        Query::AbortExecution(id) => h.abort_execution(&id),
        Query::Session(blob) => h.install_sessions(ctx, &blob),
        Query::Call(run_as, args) => Ok(crate::model::reply::from_call_reply(
            crate::redis::call::call(Some(&run_as), &args),
        )),
        Query::Pause(id, pause) => h.pause(&id, pause),
        Query::ClearStats => h.clear_stats(),
        Query::Install(_) | Query::Import(_) => {
            Err("requirements are installed on a worker".into())
        }
        Query::IsRunning(id) => Ok(Reply::Int(i64::from(dist::is_running(&id)))),
        Query::RunId => Ok(Reply::Bulk(crate::model::topology::run_id().into_bytes())),
    };
    result.unwrap_or_else(Reply::Error)
}
