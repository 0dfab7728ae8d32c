//! Links libpython with an rpath so redis-server loads the right one without
//! LD_LIBRARY_PATH (see STACK-NOTES "Embedding Python").
fn main() {
    pyo3_build_config::add_libpython_rpath_link_args();
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
}
