//! The Arrow data path of the batch steps with `format='arrow'` (docs/batch-api.md):
//! the reader's key rows become a `RecordBatch` of one fixed schema over the batch's own
//! buffers (`engine::batch::KeyColumns::to_record_batch`, no copy, except a slice of a
//! batch whose other rows hold non-UTF-8 hash or list items, compacted first), `ffi`
//! hands Arrow arrays to pyarrow and takes them back through the Arrow C Data Interface
//! (PyCapsules, no copy of column data; the only `unsafe` here), `column` keeps a step's
//! Arrow result as an engine column until a step needs Python objects (then one copy into
//! Python objects). A key batch received from another shard reaches pyarrow the same way:
//! its arrays are slices of the received bundle, which stays alive while pyarrow holds
//! them. The buffers are the reader's or the bundle's: none is taken from the buffer pool
//! here (docs/data-path.md).
//!
//! pyarrow stays optional: it is imported (by `py/arrow_batch.py`) only when a flow uses
//! the arrow format. Bottom layer: depends on `engine`, the arrow crates, `column`,
//! `convert`, `errors` and `gil`.

mod column;
mod ffi;

#[cfg(test)]
pub(crate) use ffi::pyarrow_for_tests;

pub use column::{py_column, py_rows, ArrowColumn};
