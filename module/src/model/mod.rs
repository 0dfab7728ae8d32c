//! The module's state and its types: the kept executions and ids, the cluster topology,
//! registrations, sessions, StreamReader registrations, requirements, and `ModuleState`
//! that owns them. Depends on `redis` only.

pub mod deferred;
pub mod drain_state;
pub mod event_queue;
pub mod event_results;
pub mod executions;
pub mod in_flight;
pub mod pip;
pub mod progress;
pub mod queued_ids;
pub mod registration_table;
pub mod registrations;
pub mod reply;
pub mod requirements;
pub mod sessions;
pub mod state;
pub mod streams;
pub mod topology;
