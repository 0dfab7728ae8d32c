//! Arrow arrays across the Arrow C Data Interface, in PyCapsules (the Arrow PyCapsule
//! protocol): Rust arrays handed to pyarrow and arrays taken back from any object with
//! `__arrow_c_array__` (pyarrow `RecordBatch`, `Array`) or `__arrow_c_stream__` (`Table`,
//! `ChunkedArray`), without copying buffers either way: the other side gets pointers to the
//! same buffers plus a release callback that keeps their owner alive.
//!
//! The only `unsafe` of the arrow module: reading the structs behind capsule pointers.
//!
//! Part of `arrow`; depends on the arrow crates and pyo3; pyarrow is imported through
//! `_gearshift_arrow._pyarrow()` (the clear error when it is missing).
#![allow(unsafe_code)]

use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::{ArrayStreamReader, FFI_ArrowArrayStream};
use arrow_array::{make_array, Array, ArrayRef};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

const SCHEMA: &std::ffi::CStr = c"arrow_schema";
const ARRAY: &std::ffi::CStr = c"arrow_array";
const STREAM: &std::ffi::CStr = c"arrow_array_stream";

fn arrow_err(e: arrow_schema::ArrowError) -> PyErr {
    PyValueError::new_err(format!("Arrow C data interface: {e}"))
}

/// The `pyarrow` module, or the error saying it is not installed.
pub(crate) fn pyarrow(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    py.import("_gearshift_arrow")?.call_method0("_pyarrow")
}

/// `(schema, array)` capsules exporting `array` (no copy: the capsules own an `Arc` of
/// its buffers until the consumer moves them out and later calls their release).
pub(crate) fn capsules<'py>(
    py: Python<'py>,
    array: &dyn Array,
) -> PyResult<(Bound<'py, PyCapsule>, Bound<'py, PyCapsule>)> {
    let data = array.to_data();
    let schema = FFI_ArrowSchema::try_from(data.data_type()).map_err(arrow_err)?;
    // Boxed in the capsules; a consumer that imports them moves the structs out and leaves
    // released ones, whose drop does nothing (else the drop releases them).
    let schema = PyCapsule::new_with_value(py, schema, SCHEMA)?;
    let array = PyCapsule::new_with_value(py, FFI_ArrowArray::new(&data), ARRAY)?;
    Ok((schema, array))
}

/// `array` as a pyarrow object without copying its buffers: a `RecordBatch` when
/// `as_batch` (`array` must be a struct array), else an `Array`.
pub(crate) fn to_pyarrow<'py>(
    py: Python<'py>,
    array: &dyn Array,
    as_batch: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let (schema, data) = capsules(py, array)?;
    let class = if as_batch { "RecordBatch" } else { "Array" };
    pyarrow(py)?
        .getattr(class)?
        .call_method1("_import_from_c_capsule", (schema, data))
}

/// The Arrow data of `obj` (one array per chunk; a `RecordBatch` or `Table` gives struct
/// arrays), taken over without copying; `None` when `obj` speaks neither protocol.
pub(crate) fn from_py(obj: &Bound<'_, PyAny>) -> PyResult<Option<Vec<ArrayRef>>> {
    let py = obj.py();
    if obj.hasattr(pyo3::intern!(py, "__arrow_c_array__"))? {
        let pair = obj.call_method0(pyo3::intern!(py, "__arrow_c_array__"))?;
        let pair = pair.cast::<PyTuple>()?;
        let schema = pair.get_item(0)?.cast_into::<PyCapsule>()?;
        let array = pair.get_item(1)?.cast_into::<PyCapsule>()?;
        let schema_ptr = schema.pointer_checked(Some(SCHEMA))?;
        let array_ptr = array.pointer_checked(Some(ARRAY))?;
        // SAFETY: a capsule named "arrow_array" holds a valid `ArrowArray` struct (the
        // protocol); `from_raw` moves it out and leaves a released struct behind, so the
        // capsule's destructor will not release it a second time. `array` is alive here.
        let ffi_array = unsafe { FFI_ArrowArray::from_raw(array_ptr.as_ptr().cast()) };
        // SAFETY: a capsule named "arrow_schema" holds a valid `ArrowSchema`, owned by the
        // capsule, which outlives this borrow (`schema` is alive to the end of the function).
        let ffi_schema = unsafe { &*schema_ptr.as_ptr().cast::<FFI_ArrowSchema>() };
        // SAFETY: the array and the schema describing it come from the same
        // `__arrow_c_array__` call; the imported data owns the moved array struct and
        // calls its release when the last buffer is dropped.
        let data = unsafe { from_ffi(ffi_array, ffi_schema) }.map_err(arrow_err)?;
        return Ok(Some(vec![make_array(data)]));
    }
    if obj.hasattr(pyo3::intern!(py, "__arrow_c_stream__"))? {
        let stream = obj.call_method0(pyo3::intern!(py, "__arrow_c_stream__"))?;
        let stream = stream.cast_into::<PyCapsule>()?;
        let ptr = stream.pointer_checked(Some(STREAM))?;
        // SAFETY: a capsule named "arrow_array_stream" holds a valid `ArrowArrayStream`;
        // `from_raw` moves it out (leaving a released one for the capsule's destructor).
        let ffi_stream = unsafe { FFI_ArrowArrayStream::from_raw(ptr.as_ptr().cast()) };
        let reader = ArrayStreamReader::try_new(ffi_stream).map_err(arrow_err)?;
        let arrays = reader.collect::<Result<Vec<_>, _>>().map_err(arrow_err)?;
        return Ok(Some(arrays));
    }
    Ok(None)
}

/// Unit tests: whether pyarrow imports, with a stand-in for the `_gearshift_arrow` module
/// that `pyarrow()` goes through (`lib.rs` loads the real one at start-up).
#[cfg(test)]
pub(crate) fn pyarrow_for_tests(py: Python<'_>) -> bool {
    let stand_in = c"import sys, types\nif '_gearshift_arrow' not in sys.modules:\n    m = types.ModuleType('_gearshift_arrow')\n    m._pyarrow = lambda: __import__('pyarrow')\n    sys.modules['_gearshift_arrow'] = m";
    py.run(stand_in, None, None).expect("stand-in");
    py.import("pyarrow").is_ok()
}
