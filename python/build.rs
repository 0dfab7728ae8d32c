//! Records where the build interpreter lives so the embedded interpreter finds its
//! standard library inside redis-server (which has no `python3` of its own on PATH).
use std::process::Command;

fn main() {
    let cfg = pyo3_build_config::get();
    let exe = cfg.executable().unwrap_or("python3").to_owned();
    let home = Command::new(&exe)
        .args(["-c", "import sys; print(sys.base_prefix)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    // Test binaries of this crate embed Python too: give them the libpython rpath.
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rustc-env=GEARSHIFT_PYTHON_HOME={home}");
    println!("cargo:rustc-env=GEARSHIFT_PYTHON_EXE={exe}");
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    println!("cargo:rerun-if-changed=build.rs");
}
