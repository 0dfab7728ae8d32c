//! Progress of an execution as RG.GETEXECUTION shows it: the engine's per-stage record
//! counts mapped onto the plan's steps. Depends on `engine::exec` only.

use engine::exec::StageCount;

/// Records into and out of one step so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepCount {
    pub records_in: u64,
    pub records_out: u64,
}

/// Step kinds that pass on exactly the records they take in.
fn one_to_one(kind: &str) -> bool {
    matches!(kind, "map" | "foreach" | "extractkey")
}

/// (records read, per-step counts in plan order) from the engine's stage counts (stage 0
/// is the source, stage `g + 1` runs step group `g`). Fused steps run record by record,
/// so only a group's ends are counted; a boundary inside it is derived through steps that
/// pass every record on (`map`, `foreach`), else it shows the group's counts.
pub fn per_step(counts: &[StageCount], groups: &[usize], kinds: &[&str]) -> (u64, Vec<StepCount>) {
    let at = |i: usize| counts.get(i).copied().unwrap_or_default();
    let mut steps = Vec::with_capacity(groups.iter().sum());
    let mut first = 0;
    for (g, size) in groups.iter().enumerate() {
        let kinds = kinds.get(first..first + size).unwrap_or_default();
        steps.extend(group_steps(at(g + 1), *size, kinds));
        first += size;
    }
    (at(0).records_in, steps)
}

/// The steps of one fused group whose stage counted `c`.
fn group_steps(c: StageCount, size: usize, kinds: &[&str]) -> Vec<StepCount> {
    let one = |i: usize| kinds.get(i).is_some_and(|k| one_to_one(k));
    // boundary[i] = records between step i-1 and step i (0: the stage's input).
    let mut boundary: Vec<Option<u64>> = vec![None; size + 1];
    boundary[0] = Some(c.records_in);
    boundary[size] = Some(c.records_out);
    for i in 0..size {
        if boundary[i + 1].is_none() && one(i) {
            boundary[i + 1] = boundary[i];
        }
    }
    for i in (0..size).rev() {
        if boundary[i].is_none() && one(i) {
            boundary[i] = boundary[i + 1];
        }
    }
    (0..size)
        .map(|i| StepCount {
            records_in: boundary[i].unwrap_or(c.records_in),
            records_out: boundary[i + 1].unwrap_or(c.records_out),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(records_in: u64, records_out: u64) -> StepCount {
        StepCount {
            records_in,
            records_out,
        }
    }

    fn sc(records_in: u64, records_out: u64) -> StageCount {
        StageCount {
            records_in,
            records_out,
        }
    }

    #[test]
    fn groups_map_onto_steps() {
        let counts = [sc(10, 10), sc(10, 4), sc(4, 1)];
        let (read, steps) = per_step(&counts, &[2, 1], &["filter", "map", "count"]);
        assert_eq!(read, 10);
        // The map after the filter passes on what it took in: the boundary is known.
        assert_eq!(steps, vec![want(10, 4), want(4, 4), want(4, 1)]);
    }

    #[test]
    fn unknown_boundary_shows_the_stage() {
        let counts = [sc(10, 10), sc(10, 2)];
        let (_, steps) = per_step(&counts, &[3], &["map", "filter", "filter"]);
        assert_eq!(steps, vec![want(10, 10), want(10, 2), want(10, 2)]);
    }

    #[test]
    fn not_started_is_zero() {
        let (read, steps) = per_step(&[], &[1], &["map"]);
        assert_eq!((read, steps), (0, vec![StepCount::default()]));
    }
}
