//! The settings as Redis 7 module configs (`CONFIG GET/SET rg.<name>`, `MODULE LOADEX …
//! CONFIG rg.<name> <v>`), which 1.2 never had. Redis prefixes module configs with the
//! module name, so they are `rg.*`, not `gearshift.*`. They read and write the same
//! `Config` as RG.CONFIGGET/SET.

use std::ffi::{c_void, CStr, CString};
use std::os::raw::{c_char, c_int, c_longlong};

use redis_module::{raw, Context};

use std::sync::{Arc, OnceLock};

use crate::redis::config::{Config, SetOutcome};

struct NumericConfig {
    name: &'static CStr,
    key: &'static str,
    min: i64,
    max: i64,
    immutable: bool,
}

const CONFIGS: &[NumericConfig] = &[
    NumericConfig {
        name: c"max-executions",
        key: "MaxExecutions",
        min: -1,
        max: i64::MAX,
        immutable: false,
    },
    NumericConfig {
        name: c"max-executions-per-registration",
        key: "MaxExecutionsPerRegistration",
        min: -1,
        max: i64::MAX,
        immutable: false,
    },
    NumericConfig {
        name: c"profile-executions",
        key: "ProfileExecutions",
        min: 0,
        max: 1,
        immutable: false,
    },
    NumericConfig {
        name: c"execution-progress",
        key: "ExecutionProgress",
        min: 0,
        max: 1,
        immutable: false,
    },
    NumericConfig {
        name: c"execution-threads",
        key: "ExecutionThreads",
        min: 1,
        max: 1024,
        immutable: true,
    },
    NumericConfig {
        name: c"execution-max-idle-time",
        key: "ExecutionMaxIdleTime",
        min: 1,
        max: i64::MAX,
        immutable: false,
    },
    NumericConfig {
        name: c"send-msg-retries",
        key: "SendMsgRetries",
        min: 0,
        max: i64::MAX,
        immutable: false,
    },
    NumericConfig {
        name: c"execution-heartbeats",
        key: "ExecutionHeartbeats",
        min: 0,
        max: 1,
        immutable: false,
    },
    NumericConfig {
        name: c"shuffle-credit-window",
        key: "ShuffleCreditWindow",
        min: 0,
        max: 1 << 20,
        immutable: false,
    },
    NumericConfig {
        name: c"execute-as-superuser",
        key: "ExecuteAsSuperuser",
        min: 0,
        max: 1,
        immutable: false,
    },
    NumericConfig {
        name: c"python-attempt-traceback",
        key: "PythonAttemptTraceback",
        min: 0,
        max: 1,
        immutable: false,
    },
    NumericConfig {
        name: c"python-install-req-max-idle-time",
        key: "PythonInstallReqMaxIdleTime",
        min: 1,
        max: i64::MAX,
        immutable: false,
    },
];

/// The configuration Redis's callbacks read and set: the same `Arc` as `ModuleState`'s,
/// reachable here because Redis calls back with no state of ours.
static CONFIG: OnceLock<Arc<Config>> = OnceLock::new();

fn spec(privdata: *mut c_void) -> Option<&'static NumericConfig> {
    CONFIGS.get(privdata as usize)
}

unsafe extern "C" fn get(_name: *const c_char, privdata: *mut c_void) -> c_longlong {
    super::trampoline::callback("a CONFIG GET callback", 0, || {
        match (spec(privdata), CONFIG.get()) {
            (Some(s), Some(c)) => c.int(s.key),
            _ => 0,
        }
    })
}

unsafe extern "C" fn set(
    _name: *const c_char,
    val: c_longlong,
    privdata: *mut c_void,
    err: *mut *mut raw::RedisModuleString,
) -> c_int {
    let failed = raw::Status::Err as c_int;
    super::trampoline::callback("a CONFIG SET callback", failed, || {
        set_value(privdata, val, err)
    })
}

/// `set`'s body: applies `val`; on a refusal, hands Redis the reason through `err`.
fn set_value(
    privdata: *mut c_void,
    val: c_longlong,
    err: *mut *mut raw::RedisModuleString,
) -> c_int {
    let (Some(s), Some(c)) = (spec(privdata), CONFIG.get()) else {
        return raw::Status::Err as c_int;
    };
    let outcome = if s.immutable {
        // Redis refuses immutable configs at runtime itself; this is the load-time path.
        c.set_at_load(s.key, val)
            .map_or_else(SetOutcome::Error, |_| SetOutcome::Ok)
    } else {
        c.set(s.key, &val.to_string())
    };
    match outcome {
        SetOutcome::Ok | SetOutcome::SavedInExtra => raw::Status::Ok as c_int,
        SetOutcome::Error(e) => {
            let msg = CString::new(e).unwrap_or_default();
            // SAFETY: reading a function pointer Redis filled in at load.
            if let Some(create) = unsafe { raw::RedisModule_CreateString } {
                // SAFETY: Redis passes a valid out-pointer for the error and takes ownership
                // of the string we create (NULL ctx: auto-memory does not apply).
                unsafe { *err = create(std::ptr::null_mut(), msg.as_ptr(), msg.as_bytes().len()) };
            }
            raw::Status::Err as c_int
        }
    }
}

/// Registers every config with the current values as defaults, then applies what the
/// server was started with (`MODULE LOADEX` / config file). Call from OnLoad.
pub fn register(ctx: &Context, config: Arc<Config>) -> Result<(), String> {
    let c = CONFIG.get_or_init(|| config);
    for (i, s) in CONFIGS.iter().enumerate() {
        let flags = if s.immutable {
            raw::REDISMODULE_CONFIG_IMMUTABLE
        } else {
            raw::REDISMODULE_CONFIG_DEFAULT
        };
        let default = c.int(s.key).clamp(s.min, s.max);
        // SAFETY: called during OnLoad with the module's context; the name is a static C
        // string and privdata is an index, never dereferenced.
        let rc = unsafe {
            raw::RedisModule_RegisterNumericConfig.expect("config api")(
                ctx.ctx,
                s.name.as_ptr(),
                default,
                flags,
                s.min,
                s.max,
                Some(get),
                Some(set),
                None,
                i as *mut c_void,
            )
        };
        if rc != raw::Status::Ok as c_int {
            return Err(format!(
                "could not register config rg.{}",
                s.name.to_string_lossy()
            ));
        }
    }
    // SAFETY: OnLoad context, after every config is registered.
    let rc = unsafe { raw::RedisModule_LoadConfigs.expect("config api")(ctx.ctx) };
    if rc != raw::Status::Ok as c_int {
        return Err("invalid rg.* module config".into());
    }
    Ok(())
}
