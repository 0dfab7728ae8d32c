//! Everything that touches Redis through raw pointers, and the one panic trampoline every
//! entry from Redis goes through (`trampoline`; commands: `command`): a panic becomes a log
//! line or an error reply, never an abort of redis-server. This is the module's named
//! `unsafe` area. Depends on nothing above `redis`; what it calls above, it calls through
//! slots filled at load.
#![allow(unsafe_code)]

pub mod acl;
pub mod busy;
pub mod call;
pub mod cluster;
pub mod command;
pub mod configs;
pub mod filter;
pub mod log;
pub mod memory;
pub mod mget;
pub mod own_lock;
pub mod rdb;
pub mod replies;
mod reply;
pub mod scan;
pub mod timeev;
pub mod trampoline;
