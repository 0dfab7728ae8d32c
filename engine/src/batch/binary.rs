//! `BinaryColumn`: variable-length byte strings in one buffer plus offsets (Arrow layout).

/// A column of byte strings: `offsets[i]..offsets[i+1]` is row `i` in `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryColumn {
    offsets: Vec<u32>,
    data: Vec<u8>,
}

impl Default for BinaryColumn {
    fn default() -> Self {
        Self::with_capacity(0, 0)
    }
}

// A trait impl rather than an inherent `from_iter` (clippy::should_implement_trait); callers
// keep writing `BinaryColumn::from_iter(..)` (the trait is in the prelude) and gain
// `.collect()`.
impl<'a> FromIterator<&'a [u8]> for BinaryColumn {
    fn from_iter<I: IntoIterator<Item = &'a [u8]>>(items: I) -> Self {
        let mut c = Self::default();
        for i in items {
            c.push(i);
        }
        c
    }
}

impl BinaryColumn {
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        BinaryColumn {
            offsets,
            data: Vec::with_capacity(bytes),
        }
    }

    pub fn push(&mut self, v: &[u8]) {
        self.data.extend_from_slice(v);
        self.offsets.push(self.data.len() as u32);
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> &[u8] {
        &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Total payload bytes.
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// Rows `start..end` as a new column.
    pub fn slice(&self, start: usize, end: usize) -> BinaryColumn {
        let mut c = Self::with_capacity(end - start, 0);
        for i in start..end {
            c.push(self.get(i));
        }
        c
    }

    /// Raw parts (offsets, data), for codecs.
    pub fn parts(&self) -> (&[u32], &[u8]) {
        (&self.offsets, &self.data)
    }

    /// Rebuilds a column from raw parts, validating them.
    pub fn from_parts(offsets: Vec<u32>, data: Vec<u8>) -> Option<BinaryColumn> {
        let ok = offsets.first() == Some(&0)
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets
                .last()
                .map(|&l| l as usize == data.len())
                .unwrap_or(false);
        ok.then_some(BinaryColumn { offsets, data })
    }
}
