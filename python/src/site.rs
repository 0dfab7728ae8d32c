//! Making installed requirements importable, unpacking their wheels, and naming the
//! interpreter that downloads them.
//!
//! Bottom layer: depends on `gil` only.

use pyo3::prelude::*;

/// The Python executable this build embeds (from build.rs), used to create the virtual
/// environment whose pip downloads requirements' wheels.
pub fn python_executable() -> &'static str {
    env!("GEARSHIFT_PYTHON_EXE")
}

/// Puts a requirement's site dir (with `.pth` processing) at the FRONT of `sys.path`, so a
/// version a requirement pins wins over the server's own site-packages (redis-py, the test
/// tools). cloudpickle is imported first: Gearshift ships functions with the server's
/// cloudpickle, which a requirement's older pin must never replace. Cached import failures
/// are dropped so the new packages are found.
pub fn add_site_dir(dir: &str) -> Result<(), String> {
    const CODE: &std::ffi::CStr = c"
def _gearshift_add_site_first(d):
    import sys, site, importlib
    try:
        import cloudpickle  # noqa: F401  the server's own, before any requirement's
    except ImportError:
        pass
    if d in sys.path:
        sys.path.remove(d)
    before = list(sys.path)
    site.addsitedir(d)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before
    importlib.invalidate_caches()
";
    run_helper(CODE, "_gearshift_add_site_first", (dir,))
}

/// Unpacks wheel files into `target` (a fresh directory) the way an installer lays them
/// out: the archive's contents at the top, `<dist>.data/purelib` and `platlib` merged into
/// it, the rest of `.data` (scripts, headers) dropped. zipfile refuses `..` and absolute
/// member paths, so a hostile wheel cannot write outside `target`.
pub fn unpack_wheels(wheels: &[String], target: &str) -> Result<(), String> {
    const CODE: &std::ffi::CStr = c"
def _gearshift_unpack_wheels(wheels, target):
    import os, shutil, zipfile
    os.makedirs(target, exist_ok=True)
    for w in wheels:
        with zipfile.ZipFile(w) as z:
            z.extractall(target)
    for entry in os.listdir(target):
        d = os.path.join(target, entry)
        if not (entry.endswith('.data') and os.path.isdir(d)):
            continue
        for sub in ('purelib', 'platlib'):
            s = os.path.join(d, sub)
            if os.path.isdir(s):
                shutil.copytree(s, target, dirs_exist_ok=True)
        shutil.rmtree(d)
";
    run_helper(CODE, "_gearshift_unpack_wheels", (wheels.to_vec(), target))
}

/// The server's cloudpickle version (`None` when it is not installed).
pub fn cloudpickle_version() -> Option<String> {
    crate::gil::request(|py| {
        py.import("cloudpickle")?
            .getattr("__version__")?
            .extract::<String>()
    })
    .ok()
}

/// Defines `name` from `code` in a private namespace and calls it with `args`.
fn run_helper<A>(code: &std::ffi::CStr, name: &str, args: A) -> Result<(), String>
where
    A: for<'py> pyo3::call::PyCallArgs<'py> + Send,
{
    crate::gil::request(|py| {
        let ns = pyo3::types::PyDict::new(py);
        py.run(code, Some(&ns), None)?;
        ns.get_item(name)?
            .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(name.to_owned()))?
            .call1(args)?;
        Ok(())
    })
}

/// The embedded interpreter's version (`3.11.7`).
pub fn python_version() -> String {
    crate::gil::request(|py| {
        let v = py.version_info();
        Ok(format!("{}.{}.{}", v.major, v.minor, v.patch))
    })
    .unwrap_or_default()
}
