//! Reader records through a key-extraction stage as their key batch (cluster runs only).
//!
//! A stage that only extracts partition keys (the first half of `groupby`, `batchgroupby`
//! and `repartition`) hands on the very records it was given. When they were made from a
//! key batch of string, hash or missing keys (values Python cannot change in place but
//! through a dict) and the extractor changed none of their dicts (`dict_version`), the
//! stage hands on `KeyedRows`: the Python records stay with this shard's part, and the
//! parts for other shards travel as the key batch (Arrow buffers, no `marshal`); the
//! receiving shard makes the same records from it. Otherwise the records are marshalled,
//! as before (1.2's way: what crosses is the record as the extractor left it).
//!
//! Part of `PyStage` (`super`); depends on `step`, `column`, `dict_version` and `cluster`.

use engine::batch::{BatchData, KeyColumns, KeyType};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::PyStage;
use crate::dict_version::version;
use crate::step::PyStep;

/// A stage's input key batch and the version tags of the records made from it.
pub(super) struct Watch {
    keys: KeyColumns,
    /// Per record: its dict's tag and its value's, when the value is a dict (a hash).
    tags: Vec<(u64, Option<u64>)>,
}

impl PyStage {
    /// Whether this stage may hand its input records on as their key batch: it only
    /// extracts keys, in a cluster.
    pub(super) fn extracts_only(steps: &[std::sync::Arc<PyStep>]) -> bool {
        matches!(steps, [s] if matches!(**s, PyStep::ExtractKey(_))) && crate::cluster::is_cluster()
    }
}

/// The key batch of `data`, when its records may travel as it.
pub(super) fn candidate(data: &BatchData) -> Option<KeyColumns> {
    let BatchData::Keys(k) = data else {
        return None;
    };
    let plain = (0..k.len()).all(|i| {
        matches!(
            k.key_type(i),
            KeyType::String | KeyType::Hash | KeyType::Empty
        )
    });
    plain.then(|| k.clone())
}

impl Watch {
    /// Watches `rows`, the records made from `keys` (none if one is not a dict).
    pub(super) fn new(keys: KeyColumns, rows: &[Bound<'_, PyAny>]) -> Option<Watch> {
        let tags = rows.iter().map(tags_of).collect::<Option<Vec<_>>>()?;
        (tags.len() == keys.len()).then_some(Watch { keys, tags })
    }

    /// The key batch, when `out` are the watched records, in order, none changed.
    pub(super) fn unchanged(self, py: Python<'_>, out: &[Py<PyAny>]) -> Option<KeyColumns> {
        let same = out.len() == self.tags.len()
            && out
                .iter()
                .zip(&self.tags)
                .all(|(o, t)| tags_of(o.bind(py)).as_ref() == Some(t));
        same.then_some(self.keys)
    }
}

/// A record's dict tag and its value's (when a dict); none if the record is not a dict.
/// Tags are unique across dicts, so an equal pair means the same, unchanged dicts.
fn tags_of(row: &Bound<'_, PyAny>) -> Option<(u64, Option<u64>)> {
    let d = row.cast::<PyDict>().ok()?;
    let inner = match d.get_item(pyo3::intern!(row.py(), "value")) {
        Ok(Some(v)) => v.cast::<PyDict>().ok().map(|v| version(v)),
        _ => None,
    };
    Some((version(d), inner))
}
