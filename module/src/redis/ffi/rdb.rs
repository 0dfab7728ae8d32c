//! The RDB aux data types that carry sessions (`gearshft0`, after the keys) and installed
//! requirements with their wheels (`gearshreq`, before the keys, so restored sessions can
//! import them) through RDB saves, `DEBUG RELOAD`, restarts, full syncs and AOF rewrites
//! (RDB preamble), and the module option that short reads are errors, not panics. The logic
//! lives in `persist`; these are the raw callbacks Redis invokes.

use std::os::raw::c_int;

use redis_module::native_types::RedisType;
use redis_module::{raw, Context};

use std::sync::OnceLock;

/// What the aux callbacks call (the app's persistence), set once at load.
#[derive(Clone, Copy)]
pub struct Persistence {
    /// This shard's sessions as one blob.
    pub save: fn() -> Vec<u8>,
    /// The blob of no sessions (saved if `save` panics: Redis expects the aux data).
    pub empty: fn() -> Vec<u8>,
    /// Replaces this shard's sessions with those of a saved blob (lock held).
    pub load: fn(&Context, &[u8]),
    /// Every installed requirement with its wheels, as one blob.
    pub save_requirements: fn() -> Vec<u8>,
    /// Installs the requirements of a saved blob (lock held).
    pub load_requirements: fn(&[u8]),
}

static PERSISTENCE: OnceLock<Persistence> = OnceLock::new();

/// Installs the persistence callbacks (once, at load, before any RDB is read).
pub fn set_persistence(p: Persistence) {
    let _ = PERSISTENCE.set(p);
}

/// The methods of a type that only carries aux data (no keys of it exist).
const fn aux_only(
    load: unsafe extern "C" fn(*mut raw::RedisModuleIO, c_int, c_int) -> c_int,
    save: unsafe extern "C" fn(*mut raw::RedisModuleIO, c_int),
    triggers: c_int,
) -> raw::RedisModuleTypeMethods {
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: None,
        rdb_save: None,
        aof_rewrite: None,
        mem_usage: None,
        digest: None,
        free: None,
        aux_load: Some(load),
        aux_save: Some(save),
        aux_save_triggers: triggers,
        free_effort: None,
        unlink: None,
        copy: None,
        defrag: None,
        mem_usage2: None,
        free_effort2: None,
        unlink2: None,
        copy2: None,
        aux_save2: None,
    }
}

/// Aux-only data type (no keys of this type exist). Named apart from 1.2's `GEARS_DT0`,
/// whose pickled payload Gearshift cannot read.
pub static GEARSHIFT_AUX: RedisType = RedisType::new(
    "gearshft0",
    1,
    aux_only(aux_load, aux_save, raw::REDISMODULE_AUX_AFTER_RDB as c_int),
);

/// Aux-only data type of the installed requirements (1.2 has `GEAR_REQ0` for this).
pub static GEARSHIFT_REQ_AUX: RedisType = RedisType::new(
    "gearshreq",
    1,
    aux_only(
        req_aux_load,
        req_aux_save,
        raw::REDISMODULE_AUX_BEFORE_RDB as c_int,
    ),
);

/// Every loader here checks for a short read (`raw::load_*` answer `Err`) and fails its
/// value: told so, Redis refuses a truncated RDB, `RESTORE` payload or replication stream
/// with an error instead of its panic (a crash on a client's `RESTORE`).
pub fn handle_io_errors(ctx: &Context) {
    // SAFETY: OnLoad context; the option is a flag word Redis copies.
    unsafe {
        if let Some(set) = raw::RedisModule_SetModuleOptions {
            set(ctx.ctx, raw::REDISMODULE_OPTIONS_HANDLE_IO_ERRORS as c_int);
        }
    }
}

extern "C" fn req_aux_save(io: *mut raw::RedisModuleIO, when: c_int) {
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return;
    }
    let Some(p) = PERSISTENCE.get() else { return };
    let blob = super::trampoline::callback("saving requirements to the RDB", None, || {
        Some((p.save_requirements)())
    })
    .unwrap_or_else(|| engine::wire::requirements::encode_list(&[]));
    raw::save_slice(io, &blob);
}

extern "C" fn req_aux_load(io: *mut raw::RedisModuleIO, _encver: c_int, when: c_int) -> c_int {
    if when != raw::REDISMODULE_AUX_BEFORE_RDB as c_int {
        return raw::Status::Ok as c_int;
    }
    let Ok(buf) = raw::load_string_buffer(io) else {
        return raw::Status::Err as c_int;
    };
    let bytes = buf.as_ref().to_vec();
    if let Some(p) = PERSISTENCE.get() {
        super::trampoline::callback("loading requirements from the RDB", (), || {
            (p.load_requirements)(&bytes)
        });
    }
    raw::Status::Ok as c_int
}

extern "C" fn aux_save(io: *mut raw::RedisModuleIO, when: c_int) {
    if when != raw::REDISMODULE_AUX_AFTER_RDB as c_int {
        return;
    }
    let Some(p) = PERSISTENCE.get() else { return };
    let blob = super::trampoline::callback("saving sessions to the RDB", None, || Some((p.save)()))
        .unwrap_or_else(p.empty);
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
    let Some(ctx) = LoadingContext::new() else {
        return raw::Status::Err as c_int;
    };
    let ctx = &ctx.0;
    if let Some(p) = PERSISTENCE.get() {
        super::trampoline::callback("loading sessions from the RDB", (), || {
            (p.load)(ctx, &bytes)
        });
    }
    raw::Status::Ok as c_int
}

/// The context sessions are rebuilt on while loading. Rebuilding re-runs their scripts,
/// whose `execute()` calls need a context with a client (the RDB IO context has none, and
/// `RM_Call` on it crashes): a thread-safe context, used without locking because the
/// loading main thread already holds the Redis lock.
struct LoadingContext(Context);

impl LoadingContext {
    fn new() -> Option<LoadingContext> {
        // SAFETY: reading the function pointers Redis filled in at module load.
        let (get, _) = unsafe {
            (
                raw::RedisModule_GetThreadSafeContext?,
                raw::RedisModule_FreeThreadSafeContext?,
            )
        };
        // SAFETY: a thread-safe context without a blocked client; freed on drop.
        let ctx = unsafe { get(std::ptr::null_mut()) };
        (!ctx.is_null()).then(|| LoadingContext(Context::new(ctx)))
    }
}

impl Drop for LoadingContext {
    fn drop(&mut self) {
        // SAFETY: `new` checked that the function exists; the context came from
        // `RedisModule_GetThreadSafeContext` and is freed once, here.
        unsafe {
            if let Some(free) = raw::RedisModule_FreeThreadSafeContext {
                free(self.0.ctx);
            }
        }
    }
}
