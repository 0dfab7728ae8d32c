//! Running flows on this shard: readers, keyspace events and their drains, command hooks,
//! linked `commands=` runs, StreamReader batches and time events. Depends on `model` and
//! `redis`.

pub mod distribute;
pub mod events;
pub mod hook_checks;
pub mod hooks;
pub mod inline;
pub mod linked;
pub mod pools;
pub mod readers;
pub mod start;
pub mod streams;
pub mod time_events;
