//! Starting the embedded interpreter inside redis-server (the verified recipe of
//! DESIGN.md §8). One of the crate's three named `unsafe` modules (with `pymem` and `busy`).
//!
//! Bottom layer, a leaf: depends on pyo3's FFI and libc only.
#![allow(unsafe_code)]

use std::ffi::{c_void, CString};

use pyo3::ffi;

/// Where the build interpreter's standard library lives (from build.rs).
const BUILD_HOME: &str = env!("GEARSHIFT_PYTHON_HOME");
const BUILD_EXE: &str = env!("GEARSHIFT_PYTHON_EXE");

/// Initialises CPython once, then releases the GIL so any thread may take it.
///
/// `home` overrides the build-time `sys.base_prefix`. Safe to call from several threads at
/// once (unit tests do): the first initialises, the others find it done.
pub fn initialize(home: Option<&str>) -> Result<(), String> {
    static STARTING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = STARTING.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: plain FFI query with no preconditions.
    if unsafe { ffi::Py_IsInitialized() } != 0 {
        return Ok(());
    }
    promote_libpython();
    let home = home.filter(|h| !h.is_empty()).unwrap_or(BUILD_HOME);
    // SAFETY: the config is initialised by PyConfig_InitPythonConfig before use, strings
    // are valid NUL-terminated C strings, and PyConfig_Clear frees what Python allocated.
    unsafe {
        let mut config = std::mem::MaybeUninit::<ffi::PyConfig>::zeroed();
        ffi::PyConfig_InitPythonConfig(config.as_mut_ptr());
        let mut config = config.assume_init();
        config.install_signal_handlers = 0;
        config.parse_argv = 0;
        let mut result = set_string(&mut config, ConfigField::Home, home);
        if result.is_ok() && !BUILD_EXE.is_empty() {
            result = set_string(&mut config, ConfigField::Executable, BUILD_EXE);
        }
        if result.is_ok() {
            let status = ffi::Py_InitializeFromConfig(&config);
            if ffi::PyStatus_Exception(status) != 0 {
                result = Err(status_message(&status));
            }
        }
        ffi::PyConfig_Clear(&mut config);
        result?;
        // The main thread must not keep the GIL: workers take it per batch.
        ffi::PyEval_SaveThread();
    }
    Ok(())
}

enum ConfigField {
    Home,
    Executable,
}

/// # Safety
/// `config` must have been initialised by `PyConfig_InitPythonConfig`.
unsafe fn set_string(
    config: &mut ffi::PyConfig,
    field: ConfigField,
    value: &str,
) -> Result<(), String> {
    let c = CString::new(value).map_err(|_| "python path contains NUL".to_owned())?;
    let target: *mut *mut libc::wchar_t = match field {
        ConfigField::Home => &mut config.home,
        ConfigField::Executable => &mut config.executable,
    };
    // SAFETY: per the contract above; `target` points into `config`.
    let status = unsafe { ffi::PyConfig_SetBytesString(config, target, c.as_ptr()) };
    // SAFETY: `status` is a valid PyStatus returned by CPython.
    if unsafe { ffi::PyStatus_Exception(status) } != 0 {
        return Err(status_message(&status));
    }
    Ok(())
}

fn status_message(status: &ffi::PyStatus) -> String {
    if status.err_msg.is_null() {
        return "Python initialisation failed".to_owned();
    }
    // SAFETY: CPython sets `err_msg` to a static NUL-terminated string.
    let msg = unsafe { std::ffi::CStr::from_ptr(status.err_msg) };
    format!("Python initialisation failed: {}", msg.to_string_lossy())
}

/// Redis loads modules with RTLD_LOCAL; C extension modules (math, _json...) expect
/// libpython's symbols to be global, so re-open the already-loaded libpython globally.
fn promote_libpython() {
    // SAFETY: dladdr/dlopen are called with a valid function address and the library path
    // dladdr returns; RTLD_NOLOAD only promotes an already-loaded library.
    unsafe {
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(ffi::Py_IsInitialized as *const c_void, &mut info) != 0
            && !info.dli_fname.is_null()
        {
            libc::dlopen(
                info.dli_fname,
                libc::RTLD_NOW | libc::RTLD_GLOBAL | libc::RTLD_NOLOAD,
            );
        }
    }
}

/// The ident of the calling thread as Python knows it (`threading.get_ident()`).
pub(crate) fn current_thread_ident() -> u64 {
    // SAFETY: plain query; valid on any thread once Python is initialised.
    unsafe { ffi::PyThread_get_thread_ident() as u64 }
}

/// Schedules `exc` to be raised in the Python thread `ident` at its next bytecode
/// boundary. The caller holds the GIL (`_py`).
pub(crate) fn raise_in_thread(
    _py: pyo3::Python<'_>,
    ident: u64,
    exc: &pyo3::Bound<'_, pyo3::types::PyType>,
) -> bool {
    // SAFETY: the GIL is held (token); `exc` is a live exception type for the call.
    unsafe { ffi::PyThreadState_SetAsyncExc(ident as std::os::raw::c_long, exc.as_ptr()) == 1 }
}

/// Unit tests: starts the interpreter once for the whole test binary (test modules that
/// called `initialize` from their own `Once` raced on it).
#[cfg(test)]
pub(crate) fn init_for_tests() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| initialize(None).expect("python"));
}
