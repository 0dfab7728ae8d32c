//! Engine sources that read Redis. Each takes the Redis lock for one bounded slice per
//! batch and never holds it while waiting on anything else (in particular the GIL).

pub mod key_names;
pub mod keys;
pub mod ready;
