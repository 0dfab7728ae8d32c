//! Keyspace-event executions of record-local flows, many at a time (issue 5, DESIGN §6).
//!
//! A registration whose steps are all record-local (`map`, `flatmap`, `filter`, `foreach`,
//! `convertToStr`; `collect` is a no-op for an event execution) gets an [`EventPlan`]. The
//! module hands it a batch of the registration's events (their rows, read under one
//! Redis-lock hold) and it runs them one after the other under one GIL hold: each event is
//! still its own execution — one record in, its own results and errors out, an error
//! ending only that event — without an engine execution, stages or tasks per event.
//! Every other flow keeps the per-event engine execution.
//!
//! Results of executions that are dropped before anyone can read them (all but the newest
//! `keep` of a batch) are never converted. The final `convertToStr` is computed in Rust for
//! plain values (`native_str`), and when the record cannot change any more (a `str`,
//! `float`, `bool`, `None`, or a dict of those that nothing else references) it waits for
//! the batch end and runs only for kept events — `str()` of such a value has no side effect
//! and cannot fail. A flow that is only `convertToStr` (`GB().register()`) renders the
//! reader's row directly, without Python, except for text `repr()` escapes beyond ASCII.
//!
//! - `flow`: [`EventPlan`], the record-local steps, and pushing one record through them;
//! - `batch`: running a batch of events under one GIL hold;
//! - `defer`: the rest of a `sync` event whose callback awaits, finished on a worker;
//! - `render`: `str()` of plain values and reader rows in Rust.
//!
//! Inside the folder, dependencies go one way: `batch` → `defer` → `flow` → `render`.
//! Middle layer: depends on `step`, `convert`, `asyncio_bridge`, `scope`, `profile`,
//! `errors` and `gil`.

mod batch;
mod defer;
mod flow;
mod render;

pub use defer::Deferred;
pub use flow::EventPlan;
pub use render::record_repr;
