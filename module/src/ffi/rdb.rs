//! The RDB aux data type that carries sessions through RDB saves, `DEBUG RELOAD`, restarts
//! and AOF rewrites (RDB preamble). The logic lives in `persist`; these are the raw
//! callbacks Redis invokes.

use std::os::raw::c_int;

use redis_module::native_types::RedisType;
use redis_module::{raw, Context};

use crate::persist;
use crate::state;

/// Aux-only data type (no keys of this type exist). Named apart from 1.2's `GEARS_DT0`,
/// whose pickled payload Gearshift cannot read.
pub static GEARSHIFT_AUX: RedisType = RedisType::new(
    "gearshft0",
    1,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: None,
        rdb_save: None,
        aof_rewrite: None,
        mem_usage: None,
        digest: None,
        free: None,
        aux_load: Some(aux_load),
        aux_save: Some(aux_save),
        aux_save_triggers: raw::REDISMODULE_AUX_AFTER_RDB as c_int,
        free_effort: None,
        unlink: None,
        copy: None,
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    },
);

extern "C" fn aux_save(io: *mut raw::RedisModuleIO, when: c_int) {
    if when != raw::REDISMODULE_AUX_AFTER_RDB as c_int {
        return;
    }
    let blob = std::panic::catch_unwind(|| {
        state::get()
            .map(persist::snapshot)
            .unwrap_or_else(|| persist::encode(&[]))
    })
    .unwrap_or_else(|_| persist::encode(&[]));
    raw::save_slice(io, &blob);
}

extern "C" fn aux_load(io: *mut raw::RedisModuleIO, _encver: c_int, when: c_int) -> c_int {
    if when != raw::REDISMODULE_AUX_AFTER_RDB as c_int {
        return raw::Status::Ok as c_int;
    }
    let Ok(buf) = raw::load_string_buffer(io) else {
        return raw::Status::Err as c_int;
    };
    let bytes = buf.as_ref().to_vec();
    // SAFETY: `io` is the live IO handle of this callback; the context it yields is valid
    // for the callback's duration.
    let ctx = Context::new(unsafe { raw::RedisModule_GetContextFromIO.expect("api")(io) });
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let Some(state) = state::get() else { return };
        // A load replaces whatever this shard had.
        persist::clear(state);
        if let Err(e) = persist::load(&ctx, state, &bytes) {
            ctx.log_warning(&format!("Gearshift: {e}; registrations were not restored"));
        }
    }));
    raw::Status::Ok as c_int
}
