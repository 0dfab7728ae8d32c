//! Answering the clients blocked on queued keyspace events (RG.GETRESULTSBLOCKING,
//! `QueuedIds::wait`) once the drain has run them. A batch's executions may be dropped
//! as they are recorded (`MaxExecutionsPerRegistration`), so the replies for the events
//! someone waits for are built from their outputs first (`Awaited::of`), and the clients
//! are answered after the batch is recorded (`Awaited::answer`); a client that started
//! waiting in between gets the kept execution's result, or, if it was already dropped,
//! the unknown-execution error. Depends on `model` and `redis::ffi::replies`.

use engine::exec::ExecutionOutput;

use crate::model::executions::Registry;
use crate::model::registrations::Registration;
use crate::model::reply::execution_reply;
use crate::redis::ffi::replies::{reply_blocked, Reply};

/// RG.GETRESULTSBLOCKING's text for an execution that no longer exists.
const NO_SUCH_PLAN: &str = "execution plan does not exist";

/// The replies for a batch's events that clients wait for, by execution number.
#[derive(Debug, Default)]
pub struct Awaited(Vec<(u64, Reply)>);

impl Awaited {
    /// The replies for the events of `numbers` (`outs[i]` is event i's output) that a
    /// client of `reg` waits for (none in the common case: one lock look).
    pub fn of(reg: &Registration, numbers: &[u64], outs: &[ExecutionOutput]) -> Awaited {
        let awaited = reg.queued_ids.awaited(numbers);
        Awaited(
            awaited
                .into_iter()
                .filter_map(|i| Some((numbers[i], execution_reply(outs.get(i)?))))
                .collect(),
        )
    }

    /// The batch is recorded: answers the clients of its started events.
    pub fn answer(self, registry: &Registry, reg: &Registration) {
        for (n, client) in reg.queued_ids.recorded() {
            if let Some((_, r)) = self.0.iter().find(|(m, _)| *m == n) {
                reply_blocked(client, r);
                continue;
            }
            match registry.get(&crate::model::topology::numbered_id(n)) {
                Some(e) => e.reply_when_done(client),
                None => reply_blocked(client, &Reply::Error(NO_SUCH_PLAN.into())),
            }
        }
    }
}
