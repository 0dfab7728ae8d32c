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

/// Drops an exception [`raise_in_thread`] scheduled for thread `ident` and not yet raised
/// (the code it was meant for has ended). The caller holds the GIL (`_py`).
pub(crate) fn clear_raise_in_thread(_py: pyo3::Python<'_>, ident: u64) {
    // SAFETY: the GIL is held (token); a NULL exception clears the pending one.
    unsafe {
        ffi::PyThreadState_SetAsyncExc(ident as std::os::raw::c_long, std::ptr::null_mut());
    }
}

/// The calling thread's Python thread state, as an address (GIL held: `_py`).
pub(crate) fn current_thread_state(_py: pyo3::Python<'_>) -> u64 {
    // SAFETY: the GIL is held, so the calling thread has a current thread state.
    unsafe { ffi::PyThreadState_Get() as u64 }
}

extern "C" {
    /// CPython's setter of another thread's trace function (exported since 3.x; what
    /// `threading.settrace_all_threads` uses in 3.12). Needs the GIL.
    fn _PyEval_SetTrace(
        tstate: *mut ffi::PyThreadState,
        func: Option<ffi::Py_tracefunc>,
        arg: *mut ffi::PyObject,
    ) -> std::os::raw::c_int;
}

/// The exception [`stop_tracer`] raises (set once; a class that lives as long as Python).
static STOP_EXC: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// A trace function that raises the stop exception at every line and call: code that
/// catches one (a bare `except` in a loop) gets it again at the handler's first line.
unsafe extern "C" fn stop_tracer(
    _obj: *mut ffi::PyObject,
    _frame: *mut ffi::PyFrameObject,
    what: std::os::raw::c_int,
    _arg: *mut ffi::PyObject,
) -> std::os::raw::c_int {
    let raising = matches!(what, ffi::PyTrace_LINE | ffi::PyTrace_CALL);
    match STOP_EXC.get() {
        Some(&exc) if raising => {
            // SAFETY: called by the eval loop with the GIL held; `exc` is a live class.
            unsafe { ffi::PyErr_SetNone(exc as *mut ffi::PyObject) };
            -1
        }
        _ => 0,
    }
}

/// Makes the thread whose state is `tstate` raise `exc` at every line it runs, until it
/// calls [`untrace_this_thread`]. The caller holds the GIL and knows `tstate` is live (its
/// thread cannot end or clear it without the GIL).
pub(crate) fn trace_to_stop(
    _py: pyo3::Python<'_>,
    tstate: u64,
    exc: &pyo3::Bound<'_, pyo3::types::PyType>,
) {
    STOP_EXC.get_or_init(|| exc.as_ptr() as usize);
    // SAFETY: GIL held (token); `tstate` is a live thread state (caller's contract); the
    // tracer is a plain function that lives as long as the module.
    unsafe {
        _PyEval_SetTrace(
            tstate as *mut ffi::PyThreadState,
            Some(stop_tracer),
            std::ptr::null_mut(),
        )
    };
}

/// Removes the calling thread's trace function (GIL held: `_py`).
pub(crate) fn untrace_this_thread(_py: pyo3::Python<'_>) {
    // SAFETY: GIL held (token); clearing the current thread's tracer has no other
    // precondition.
    unsafe { ffi::PyEval_SetTrace(None, std::ptr::null_mut()) };
}

/// Unit tests: starts the interpreter once for the whole test binary (test modules that
/// called `initialize` from their own `Once` raced on it).
#[cfg(test)]
pub(crate) fn init_for_tests() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| initialize(None).expect("python"));
}
