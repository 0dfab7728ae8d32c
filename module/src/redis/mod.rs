//! The bottom layer: everything that talks to Redis itself. `ffi` holds the raw FFI (the
//! crate's only `unsafe`, and the one panic trampoline); beside it, the safe pieces built
//! directly on it: the Redis lock and calls into Redis, ACL identities, timers, server
//! limits, and the module's configuration. Depends on nothing else in this crate (on the
//! engine and the Python layer only); what it must call above it, it calls through slots
//! filled at load by `lib.rs`.

pub mod access;
pub mod access_cache;
pub mod acl_categories;
pub mod acl_generation;
pub mod call;
pub mod config;
pub mod ffi;
pub mod limits;
pub mod lock;
pub mod time_event;
pub mod timers;
