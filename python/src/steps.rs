//! Turns the step tuples recorded by the Python `GearsBuilder` into an engine plan:
//! built-ins become native steps, callbacks become `PyStep`s.

use std::sync::Arc;

use engine::plan::{HostStep, Plan, StepSpec};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::stage::PyStep;

/// Builds the plan for `steps` (a list of tuples like `('map', f)`).
pub fn build_plan(steps: &Bound<'_, PyList>) -> PyResult<Plan> {
    let mut out = Vec::with_capacity(steps.len());
    for item in steps.iter() {
        let t = item.cast::<PyTuple>()?;
        let kind: String = t.get_item(0)?.extract()?;
        let arg = |i: usize| -> PyResult<Py<PyAny>> { Ok(t.get_item(i)?.unbind()) };
        match kind.as_str() {
            "map" => out.push(host(
                "map",
                "RedisGearsPy_PyCallbackMapper",
                PyStep::Map(arg(1)?),
                t,
            )?),
            "flatmap" => out.push(host(
                "flatmap",
                "RedisGearsPy_PyCallbackFlatMapper",
                PyStep::FlatMap(arg(1)?),
                t,
            )?),
            "filter" => out.push(host(
                "filter",
                "RedisGearsPy_PyCallbackFilter",
                PyStep::Filter(arg(1)?),
                t,
            )?),
            "foreach" => out.push(host(
                "foreach",
                "RedisGearsPy_PyCallbackForEach",
                PyStep::Foreach(arg(1)?),
                t,
            )?),
            "accumulate" => out.push(host(
                "accumulate",
                "RedisGearsPy_PyCallbackAccumulate",
                PyStep::Accumulate(arg(1)?),
                t,
            )?),
            "localgroupby" => out.push(host(
                "accumulatebykey",
                "RedisGearsPy_PyCallbackAccumulateByKey",
                PyStep::LocalGroupBy(arg(1)?, arg(2)?),
                t,
            )?),
            "batchgroupby" => out.push(host(
                "group",
                "RedisGearsPy_PyCallbackReducer",
                PyStep::BatchGroupBy(arg(1)?, arg(2)?),
                t,
            )?),
            "repartition" => {
                out.push(host(
                    "extractkey",
                    "RedisGearsPy_PyCallbackExtractor",
                    PyStep::ExtractKey(arg(1)?),
                    t,
                )?);
                out.push(StepSpec::Repartition);
            }
            "tostr" => out.push(host("map", "RedisGearsPy_ToStr", PyStep::ToStr, t)?),
            "limit" => {
                let len: i64 = t.get_item(1)?.extract()?;
                let offset: i64 = t.get_item(2)?.extract()?;
                out.push(StepSpec::Limit {
                    offset: offset.max(0) as usize,
                    len: len.max(0) as usize,
                });
            }
            "collect" => out.push(StepSpec::Collect),
            "count" => out.push(StepSpec::Count),
            "sumints" => out.push(StepSpec::SumInts),
            other => {
                return Err(crate::errors::GearsError::new_err(format!(
                    "unknown step {other}"
                )));
            }
        }
    }
    Ok(Plan::new(out))
}

fn host(
    kind: &'static str,
    name: &str,
    step: PyStep,
    t: &Bound<'_, PyTuple>,
) -> PyResult<StepSpec> {
    let arg = match t.len() {
        0 | 1 => String::new(),
        _ => t.get_item(1)?.str()?.to_string(),
    };
    Ok(StepSpec::Host(HostStep {
        kind,
        name: name.to_owned(),
        arg,
        payload: Arc::new(step),
    }))
}
