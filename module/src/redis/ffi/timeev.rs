//! The `rg_timeev` module data type: keys holding a time event (`registerTE(…, keyName)`).
//! These are the raw callbacks Redis invokes; the logic lives in `time_events`.
//!
//! RDB layout (encoding version 2): the period in seconds (unsigned), the callback's
//! cloudpickled bytes (string buffer), then who it runs as (`crate::redis::access::encode`, string
//! buffer). Version 1 values (no user) load as run by the `default` user.

use std::ffi::{c_char, c_void};
use std::os::raw::c_int;
use std::sync::Arc;
use std::time::Duration;

use redis_module::native_types::RedisType;
use redis_module::{raw, Context};

use std::sync::OnceLock;

use crate::redis::time_event::{clamp_period, TimeEvent, TimeEventKey};

/// Starts a time event loaded with its key (`run::time_events::schedule`), set at load.
pub type OnLoad = fn(&Context, Arc<TimeEvent>);

static ON_LOAD: OnceLock<OnLoad> = OnceLock::new();

/// Installs what starts loaded time events (once, at load).
pub fn set_on_load(f: OnLoad) {
    let _ = ON_LOAD.set(f);
}

const ENCODING_VERSION: c_int = 2;
/// Values saved before ACL support (no user).
const ENCODING_NO_USER: c_int = 1;

/// The data type (exactly 9 characters, as Redis requires; 1.2's name).
pub static TIME_EVENT_TYPE: RedisType = RedisType::new(
    "rg_timeev",
    ENCODING_VERSION,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        mem_usage: Some(mem_usage),
        digest: None,
        free: Some(free),
        aux_load: None,
        aux_save: None,
        aux_save_triggers: 0,
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

/// The time event a value pointer holds.
///
/// # Safety
/// `value` must be a pointer Redis got from this type (a live `Box<TimeEventKey>`).
unsafe fn event<'a>(value: *mut c_void) -> &'a Arc<TimeEvent> {
    // SAFETY: the caller guarantees `value` is a live `TimeEventKey` of this type.
    unsafe { &(*value.cast::<TimeEventKey>()).0 }
}

extern "C" fn rdb_save(io: *mut raw::RedisModuleIO, value: *mut c_void) {
    // SAFETY: Redis passes a value of this type, alive for the callback.
    let ev = unsafe { event(value) };
    raw::save_unsigned(io, ev.period.as_secs());
    raw::save_slice(io, &ev.pickled);
    raw::save_slice(io, &crate::redis::access::encode(&ev.run_as));
}

extern "C" fn rdb_load(io: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    if encver != ENCODING_VERSION && encver != ENCODING_NO_USER {
        return std::ptr::null_mut();
    }
    let (Ok(secs), Ok(pickled)) = (raw::load_unsigned(io), raw::load_string_buffer(io)) else {
        return std::ptr::null_mut();
    };
    // One odd value must never fail the whole RDB (NULL would): a period no timer accepts is
    // clamped (and saved clamped from then on); a callback that does not unpickle stops its
    // timer with a log line when it first fires; an unreadable user runs as no user (every
    // call refused), never unrestricted.
    let period = Duration::from_secs(secs);
    if clamp_period(period) != period {
        crate::redis::ffi::log::warning(&format!(
            "Gearshift: a time event key had period {secs} s, out of range; clamped"
        ));
    }
    let run_as = if encver == ENCODING_NO_USER {
        crate::redis::access::RunAs::user(crate::redis::access::LEGACY_USER)
    } else {
        let Ok(user) = raw::load_string_buffer(io) else {
            return std::ptr::null_mut();
        };
        crate::redis::access::decode(user.as_ref()).unwrap_or_else(|| {
            crate::redis::ffi::log::warning(
                "Gearshift: a time event key had an unreadable ACL user",
            );
            crate::redis::access::RunAs::user(crate::redis::access::NO_USER)
        })
    };
    let ev = TimeEvent::new(period, pickled.as_ref().to_vec(), run_as, None);
    // SAFETY: reading the function pointer Redis filled in at module load.
    if let Some(context_of) = unsafe { raw::RedisModule_GetContextFromIO } {
        // SAFETY: `io` is the live IO handle of this callback; the context it yields is
        // valid for the callback's duration and belongs to this module (timers need that).
        let ctx = Context::new(unsafe { context_of(io) });
        if let Some(start) = ON_LOAD.get() {
            super::trampoline::callback("starting a loaded time event key", (), || {
                start(&ctx, Arc::clone(&ev))
            });
        }
    }
    Box::into_raw(Box::new(TimeEventKey(ev))).cast()
}

/// An AOF rewrite without an RDB preamble: the command that recreates the key.
extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    // SAFETY: Redis passes a value of this type, alive for the callback.
    let ev = unsafe { event(value) };
    let secs = ev.period.as_secs() as std::os::raw::c_longlong;
    let user = crate::redis::access::encode(&ev.run_as);
    let Some(emit) = (
        // SAFETY: reading the function pointer Redis filled in at module load.
        unsafe { raw::RedisModule_EmitAOF }
    ) else {
        return;
    };
    // SAFETY: the format "slbb" takes a module string (`key`, alive for the callback), a
    // long long and two buffers with their lengths (alive for the call); the C strings are
    // NUL-terminated literals.
    unsafe {
        emit(
            aof,
            c"RG.INNERTIMEEVENT".as_ptr(),
            c"slbb".as_ptr(),
            key,
            secs,
            ev.pickled.as_ptr().cast::<c_char>(),
            ev.pickled.len(),
            user.as_ptr().cast::<c_char>(),
            user.len(),
        )
    };
}

extern "C" fn mem_usage(value: *const c_void) -> usize {
    // SAFETY: Redis passes a value of this type, alive for the callback.
    let ev = unsafe { event(value.cast_mut()) };
    std::mem::size_of::<TimeEvent>() + ev.pickled.len()
}

extern "C" fn free(value: *mut c_void) {
    if value.is_null() {
        return;
    }
    // SAFETY: Redis hands back a value this type created (`Box::into_raw` in `rdb_load`
    // or `set_value`) exactly once; dropping it marks the event dead.
    drop(unsafe { Box::from_raw(value.cast::<TimeEventKey>()) });
}
