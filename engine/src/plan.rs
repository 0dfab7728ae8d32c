//! Plans: a reader plus an ordered list of [`StepSpec`]s, as a GearsBuilder chain builds it.
//!
//! UDF steps (user callbacks) are opaque to the engine: it only groups consecutive ones so
//! the host can fuse them under one lock hold per batch. Native steps are run by the
//! engine's own operators. Depends on `error`.

use std::any::Any;
use std::fmt;

use crate::sync::Arc;

/// A step whose work is done by the host (for example a Python callback).
#[derive(Clone)]
pub struct UdfStep {
    /// 1.x step type shown by RG.GETEXECUTION (`map`, `filter`, `accumulate`...).
    pub kind: &'static str,
    /// User callback name shown by RG.GETEXECUTION.
    pub name: String,
    /// `str()` of the callback argument.
    pub arg: String,
    /// The host's own description of the step.
    pub payload: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for UdfStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdfStep")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .finish()
    }
}

/// One step of a plan.
#[derive(Debug, Clone)]
pub enum StepSpec {
    Udf(UdfStep),
    /// Keep `len` records after skipping `offset` (per shard unless after a collect).
    Limit {
        offset: usize,
        len: usize,
    },
    /// Local count: one `Int` record, or nothing on empty input (1.2's `count()` half).
    Count,
    /// Sum of `Int` records: the global half of `count()`; nothing on empty input.
    SumInts,
    /// Count records per `Str` value: native `countby` over plain values. Emits
    /// `{'key': k, 'value': n}` maps whose partition key is `k`.
    CountBy,
    /// Sum the `Int` `value` of `{'key', 'value'}` maps per `key`: the global half of a
    /// native `countby` (after the repartition by key).
    SumByKey,
    /// Move every record to the initiator shard.
    Collect,
    /// Move every record to the shard owning the hash slot of its partition key.
    Repartition,
}

impl StepSpec {
    /// The 1.x step type name.
    pub fn kind(&self) -> &'static str {
        match self {
            StepSpec::Udf(h) => h.kind,
            StepSpec::Limit { .. } => "limit",
            StepSpec::Count | StepSpec::SumInts => "accumulate",
            StepSpec::CountBy | StepSpec::SumByKey => "accumulatebykey",
            StepSpec::Collect => "collect",
            StepSpec::Repartition => "repartition",
        }
    }

    pub fn is_host(&self) -> bool {
        matches!(self, StepSpec::Udf(_))
    }
}

/// A complete plan: steps after the reader, in order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub steps: Vec<StepSpec>,
}

impl Plan {
    pub fn new(steps: Vec<StepSpec>) -> Self {
        Plan { steps }
    }

    /// Consecutive runs of steps that execute in one stage: a run of host steps (fused),
    /// or a run of native steps. Shuffle steps always stand alone.
    pub fn stage_groups(&self) -> Vec<&[StepSpec]> {
        let mut groups = Vec::new();
        let mut start = 0;
        let steps = &self.steps;
        for i in 1..=steps.len() {
            let boundary = i == steps.len()
                || steps[i].is_host() != steps[i - 1].is_host()
                || is_shuffle(&steps[i])
                || is_shuffle(&steps[i - 1]);
            if boundary {
                groups.push(&steps[start..i]);
                start = i;
            }
        }
        groups
    }
}

fn is_shuffle(s: &StepSpec) -> bool {
    matches!(s, StepSpec::Collect | StepSpec::Repartition)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(kind: &'static str) -> StepSpec {
        StepSpec::Udf(UdfStep {
            kind,
            name: String::new(),
            arg: String::new(),
            payload: Arc::new(()),
        })
    }

    #[test]
    fn host_steps_fuse_and_shuffles_stand_alone() {
        let p = Plan::new(vec![
            host("map"),
            host("filter"),
            StepSpec::Count,
            StepSpec::Collect,
            StepSpec::SumInts,
            host("map"),
        ]);
        let sizes: Vec<usize> = p.stage_groups().iter().map(|g| g.len()).collect();
        assert_eq!(sizes, vec![2, 1, 1, 1, 1]);
    }
}
