//! `GroupTable`: the accumulate-by-key machinery shared by native and host group steps.
//!
//! Keys are byte strings hashed with ahash; groups keep first-seen order so output is
//! deterministic for a given input order.

use std::convert::Infallible;

use ahash::AHashMap;

/// Accumulators by key, in first-seen order.
#[derive(Debug)]
pub struct GroupTable<A> {
    index: AHashMap<Vec<u8>, usize>,
    groups: Vec<(Vec<u8>, A)>,
}

impl<A> Default for GroupTable<A> {
    fn default() -> Self {
        GroupTable {
            index: AHashMap::new(),
            groups: Vec::new(),
        }
    }
}

impl<A> GroupTable<A> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The accumulator for `key`, created with `init` on first sight.
    pub fn entry(&mut self, key: &[u8], init: impl FnOnce() -> A) -> &mut A {
        let Ok(a) = self.try_entry(key, || Ok::<A, Infallible>(init()));
        a
    }

    /// [`GroupTable::entry`] with an `init` that may fail (then no group is made).
    pub fn try_entry<E>(
        &mut self,
        key: &[u8],
        init: impl FnOnce() -> Result<A, E>,
    ) -> Result<&mut A, E> {
        let i = self.slot(key, init)?;
        Ok(&mut self.groups[i].1)
    }

    /// Where `key`'s group is (created with `init` on first sight; none when `init` fails):
    /// its accumulator is `at(slot)` until the table is drained (groups are only appended).
    pub fn slot<E>(&mut self, key: &[u8], init: impl FnOnce() -> Result<A, E>) -> Result<usize, E> {
        Ok(match self.index.get(key) {
            Some(&i) => i,
            None => {
                let i = self.groups.len();
                let a = init()?;
                self.index.insert(key.to_vec(), i);
                self.groups.push((key.to_vec(), a));
                i
            }
        })
    }

    /// The accumulator of group `slot` (see [`GroupTable::slot`]); none after a drain.
    pub fn at(&mut self, slot: usize) -> Option<&mut A> {
        self.groups.get_mut(slot).map(|g| &mut g.1)
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// All groups in first-seen order, emptying the table.
    pub fn drain(&mut self) -> Vec<(Vec<u8>, A)> {
        self.index.clear();
        std::mem::take(&mut self.groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_keep_first_seen_order() {
        let mut t = GroupTable::new();
        for k in ["b", "a", "b", "c", "a", "b"] {
            *t.entry(k.as_bytes(), || 0) += 1;
        }
        let got: Vec<(String, i32)> = t
            .drain()
            .into_iter()
            .map(|(k, v)| (String::from_utf8(k).unwrap(), v))
            .collect();
        assert_eq!(got, vec![("b".into(), 3), ("a".into(), 2), ("c".into(), 1)]);
        assert!(t.is_empty());
    }
}
