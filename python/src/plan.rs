//! Turns the step tuples recorded by the Python `GearsBuilder` into an engine plan:
//! callbacks become `PyStep`s, built-ins become native steps (or native-state Python
//! steps), each with RedisGears 1.2's output.
//!
//! Tuples: `('map'|'flatmap'|'filter'|'foreach'|'accumulate'|'repartition', f)`,
//! `('localgroupby'|'groupby'|'batchgroupby', extractor, reducer)`, `('limit', len, start)`,
//! `('collect',)`, `('count',)`, `('sumints',)`, `('countby', extractor|None)`,
//! `('avg', extractor|None)`, `('sort', reverse)`, `('distinct',)`, `('tostr',)`, and the
//! Gearshift extensions `('mapbatch', f, call, columns|None)` (`call`: `f` itself, or the
//! arrow format's wrapper) and `('filterbatch', f)` or
//! `('filterbatch', f, call, f)` (arrow format).
//!
//! Middle layer: depends on `step` and `errors`.

use std::sync::Arc;

use engine::plan::{Plan, StepSpec, UdfStep};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use crate::step::{Ending, LastStep, PyStep};

/// 1.2's callback names, shown by RG.GETEXECUTION.
const MAPPER: &str = "RedisGearsPy_PyCallbackMapper";
const EXTRACTOR: &str = "RedisGearsPy_PyCallbackExtractor";
const ACCUMULATE: &str = "RedisGearsPy_PyCallbackAccumulate";
const ACCUMULATE_BY_KEY: &str = "RedisGearsPy_PyCallbackAccumulateByKey";

/// Builds the plan for `steps` (a list of tuples like `('map', f)`).
pub fn build_plan(steps: &Bound<'_, PyList>) -> PyResult<Plan> {
    let mut out = Vec::with_capacity(steps.len());
    for item in steps.iter() {
        let t = item.cast::<PyTuple>()?;
        let kind: String = t.get_item(0)?.extract()?;
        let arg = |i: usize| -> PyResult<Py<PyAny>> { Ok(t.get_item(i)?.unbind()) };
        let opt = |i: usize| -> PyResult<Option<Py<PyAny>>> {
            let a = t.get_item(i)?;
            Ok((!a.is_none()).then(|| a.unbind()))
        };
        match kind.as_str() {
            "map" => out.push(host("map", MAPPER, PyStep::Map(arg(1)?), t)?),
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
                ACCUMULATE,
                PyStep::Accumulate(arg(1)?),
                t,
            )?),
            "localgroupby" => out.push(host(
                "accumulatebykey",
                ACCUMULATE_BY_KEY,
                PyStep::GroupBy {
                    extractor: arg(1)?,
                    reducer: arg(2)?,
                    keyed: false,
                },
                t,
            )?),
            // Extract once, repartition, then reduce with the key carried by the batch.
            "groupby" => {
                repartition_by(&mut out, t)?;
                out.push(host(
                    "accumulatebykey",
                    ACCUMULATE_BY_KEY,
                    PyStep::GroupBy {
                        extractor: arg(1)?,
                        reducer: arg(2)?,
                        keyed: true,
                    },
                    t,
                )?);
            }
            "batchgroupby" => {
                repartition_by(&mut out, t)?;
                out.push(host(
                    "group",
                    "RedisGearsPy_PyCallbackReducer",
                    PyStep::BatchGroupBy {
                        extractor: arg(1)?,
                        reducer: arg(2)?,
                        keyed: true,
                    },
                    t,
                )?);
            }
            "repartition" => {
                repartition_by(&mut out, t)?;
            }
            // Native: the extractor runs in the Python stage; counting per key (locally,
            // then per key after the repartition) never builds a Python object.
            "countby" => {
                out.push(host("extractkey", EXTRACTOR, PyStep::KeyOf(opt(1)?), t)?);
                out.push(StepSpec::CountBy);
                out.push(StepSpec::Repartition);
                out.push(StepSpec::SumByKey);
            }
            "avg" => {
                out.push(host(
                    "accumulate",
                    ACCUMULATE,
                    PyStep::AvgLocal(opt(1)?),
                    t,
                )?);
                out.push(StepSpec::Collect);
                out.push(host("accumulate", ACCUMULATE, PyStep::AvgGlobal, t)?);
            }
            "sort" => {
                out.push(StepSpec::Collect);
                out.push(host("accumulate", ACCUMULATE, PyStep::SortAll(arg(1)?), t)?);
            }
            "distinct" => {
                out.push(host("accumulate", ACCUMULATE, PyStep::DistinctLocal, t)?);
                out.push(StepSpec::Collect);
                out.push(host("accumulate", ACCUMULATE, PyStep::DistinctGlobal, t)?);
            }
            "tostr" => out.push(host("map", "RedisGearsPy_ToStr", PyStep::ToStr, t)?),
            // Gearshift extensions (docs/batch-api.md): one call per batch.
            "mapbatch" => out.push(host(
                "map",
                "Gearshift_PyCallbackMapBatch",
                PyStep::MapBatch {
                    call: arg(2)?,
                    columns: opt(3)?,
                },
                t,
            )?),
            "filterbatch" => {
                let step = match t.len() {
                    2 => PyStep::FilterBatch(arg(1)?),
                    _ => PyStep::ArrowFilterBatch {
                        call: arg(2)?,
                        columns: arg(3)?,
                    },
                };
                out.push(host("filter", "Gearshift_PyCallbackFilterBatch", step, t)?)
            }
            "limit" => {
                // 1.2 casts both to size_t: a negative value wraps to "no limit".
                let len: i64 = t.get_item(1)?.extract()?;
                let offset: i64 = t.get_item(2)?.extract()?;
                out.push(StepSpec::Limit {
                    offset: offset as u64 as usize,
                    len: len as u64 as usize,
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
    mark_last(&mut out);
    Ok(Plan::new(out))
}

/// Marks the plan's last Python step with its [`Ending`] when only limits, collects or
/// repartitions follow it, so its stage hands native values on (see `stage`).
fn mark_last(steps: &mut [StepSpec]) {
    let Some(last) = steps.iter().rposition(StepSpec::is_host) else {
        return;
    };
    let mut ending = Ending::Results;
    for s in &steps[last + 1..] {
        match s {
            StepSpec::Limit { .. } => {}
            StepSpec::Collect | StepSpec::Repartition => ending = Ending::Shuffled,
            _ => return, // a counting step: the records stay Python objects
        }
    }
    if let StepSpec::Udf(h) = &mut steps[last] {
        if let Ok(step) = Arc::clone(&h.payload).downcast::<PyStep>() {
            h.payload = Arc::new(LastStep { step, ending });
        }
    }
}

/// Key extraction (`t[1]`) then a repartition on the extracted key.
fn repartition_by(out: &mut Vec<StepSpec>, t: &Bound<'_, PyTuple>) -> PyResult<()> {
    let extractor = PyStep::ExtractKey(t.get_item(1)?.unbind());
    out.push(host("extractkey", EXTRACTOR, extractor, t)?);
    out.push(StepSpec::Repartition);
    Ok(())
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
    Ok(StepSpec::Udf(UdfStep {
        kind,
        name: name.to_owned(),
        arg,
        payload: Arc::new(step),
    }))
}

#[cfg(test)]
mod tests {
    // Tests take the GIL directly, not through `crate::gil`.
    #![allow(clippy::disallowed_methods)]

    use std::ffi::CStr;

    use super::*;
    use crate::step::{of_payload, Ending};

    /// The ending of each Python step of the plan `steps` builds (a Python list literal).
    fn endings(steps: &CStr) -> Vec<Option<Ending>> {
        crate::embed::init_for_tests();
        Python::attach(|py| {
            let list = py.eval(steps, None, None).expect("eval");
            let plan = build_plan(list.cast::<PyList>().expect("list")).expect("plan");
            plan.steps
                .iter()
                .filter_map(|s| match s {
                    StepSpec::Udf(h) => Some(of_payload(&h.payload).expect("python step").1),
                    _ => None,
                })
                .collect()
        })
    }

    #[test]
    fn the_last_python_step_is_marked_by_what_follows_it() {
        use Ending::{Results, Shuffled};
        let f = "(lambda x: x)";
        let case = |src: String| endings(&std::ffi::CString::new(src).expect("c string"));
        assert_eq!(case(format!("[('map', {f})]")), [Some(Results)]);
        assert_eq!(
            case(format!("[('map', {f}), ('filter', {f})]")),
            [None, Some(Results)]
        );
        assert_eq!(
            case(format!("[('map', {f}), ('limit', 3, 0)]")),
            [Some(Results)]
        );
        assert_eq!(
            case(format!("[('map', {f}), ('collect',)]")),
            [Some(Shuffled)]
        );
        assert_eq!(
            case(format!("[('map', {f}), ('repartition', {f})]")),
            [None, Some(Shuffled)]
        );
        // Counting steps never look inside a record: it stays a Python object.
        assert_eq!(case(format!("[('map', {f}), ('count',)]")), [None]);
        assert_eq!(
            case(format!("[('map', {f}), ('count',), ('tostr',)]")),
            [None, Some(Results)]
        );
        assert_eq!(case("[('countby', None)]".into()), [None]);
        assert_eq!(case("[('count',)]".into()), []);
    }
}
