//! Making installed requirements importable, and naming the interpreter that installs them.
//!
//! Bottom layer: depends on `gil` only.

use pyo3::prelude::*;

/// The Python executable this build embeds (from build.rs), used to create the
/// requirements' virtual environment.
pub fn python_executable() -> &'static str {
    env!("GEARSHIFT_PYTHON_EXE")
}

/// Adds a site-packages directory to `sys.path` (with `.pth` processing) and drops cached
/// import failures so new packages are found.
pub fn add_site_dir(dir: &str) -> Result<(), String> {
    crate::gil::request(|py| {
        py.import("site")?.call_method1("addsitedir", (dir,))?;
        py.import("importlib")?.call_method0("invalidate_caches")?;
        Ok(())
    })
}
