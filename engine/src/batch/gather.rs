//! Gather kernels for the key columns: rows picked by index into new Arrow arrays, with
//! one bulk copy per row (or per row's item range) rather than a record at a time, and
//! the counting sort that orders rows by destination for `partition`. The gathered arrays
//! are new allocations (a copy of the rows' bytes, not pooled). Depends on `nested`.

use arrow_array::{Array, BinaryArray, UInt8Array};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};

use super::nested::Nested;

/// Rows grouped by destination, each group in input order: `(order, starts)` where part
/// `p` is `order[starts[p]..starts[p+1]]`. `order` is `None` when the rows are already
/// grouped (destinations never decrease): the identity needs no gather.
pub fn counting_sort(dest: &[usize], n: usize) -> (Option<Vec<u32>>, Vec<usize>) {
    let mut starts = vec![0usize; n + 1];
    for &d in dest {
        starts[d + 1] += 1;
    }
    for p in 0..n {
        starts[p + 1] += starts[p];
    }
    if dest.windows(2).all(|w| w[0] <= w[1]) {
        return (None, starts);
    }
    let mut next = starts.clone();
    let mut order = vec![0u32; dest.len()];
    for (i, &d) in dest.iter().enumerate() {
        order[next[d]] = i as u32;
        next[d] += 1;
    }
    (Some(order), starts)
}

/// Validity of the picked rows (`None` stays `None`).
fn take_nulls(nulls: Option<&NullBuffer>, idx: &[u32]) -> Option<NullBuffer> {
    let n = nulls?;
    let bits = BooleanBuffer::from_iter(idx.iter().map(|&i| n.is_valid(i as usize)));
    Some(NullBuffer::new(bits)).filter(|b| b.null_count() > 0)
}

/// The byte strings of `a` in item ranges `ranges`, back to back: each range is one
/// contiguous copy of bytes and one rebased copy of offsets.
fn take_ranges(
    a: &BinaryArray,
    ranges: impl Iterator<Item = std::ops::Range<usize>> + Clone,
    nulls: Option<NullBuffer>,
) -> BinaryArray {
    let offs = a.value_offsets();
    let data = a.value_data();
    let (mut items, mut bytes) = (0usize, 0usize);
    for r in ranges.clone() {
        items += r.len();
        bytes += (offs[r.end] - offs[r.start]) as usize;
    }
    let mut out_offs: Vec<i32> = Vec::with_capacity(items + 1);
    let mut out_data: Vec<u8> = Vec::with_capacity(bytes);
    out_offs.push(0);
    for r in ranges {
        let (lo, hi) = (offs[r.start], offs[r.end]);
        let base = out_data.len() as i32 - lo;
        out_offs.extend(offs[r.start + 1..=r.end].iter().map(|o| o + base));
        out_data.extend_from_slice(&data[lo as usize..hi as usize]);
    }
    // Every offset comes from a valid array, rebased by whole items: still monotone and
    // within the data, which has at most the source's bytes (< 2 GiB).
    let offsets = OffsetBuffer::new(ScalarBuffer::from(out_offs));
    BinaryArray::new(offsets, Buffer::from_vec(out_data), nulls)
}

/// Rows `idx` of `a`.
pub fn take_bytes(a: &BinaryArray, idx: &[u32]) -> BinaryArray {
    let nulls = take_nulls(a.nulls(), idx);
    take_ranges(a, idx.iter().map(|&i| i as usize..i as usize + 1), nulls)
}

/// Rows `idx` of `a`.
pub fn take_u8(a: &UInt8Array, idx: &[u32]) -> UInt8Array {
    let v = a.values();
    let out: Vec<u8> = idx.iter().map(|&i| v[i as usize]).collect();
    UInt8Array::new(ScalarBuffer::from(out), take_nulls(a.nulls(), idx))
}

/// Rows `idx` of `a`: each row's item range is copied whole from every child.
pub fn take_nested(a: &Nested, idx: &[u32]) -> Nested {
    let ranges = idx.iter().map(|&i| a.range(i as usize));
    let offsets = OffsetBuffer::from_lengths(ranges.clone().map(|r| r.len()));
    Nested {
        offsets,
        nulls: take_nulls(a.nulls.as_ref(), idx),
        children: a
            .children
            .iter()
            .map(|c| take_ranges(c, ranges.clone(), None))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_sort_groups_stably() {
        let (order, starts) = counting_sort(&[1, 0, 2, 0, 1], 3);
        assert_eq!(order, Some(vec![1, 3, 0, 4, 2]));
        assert_eq!(starts, vec![0, 2, 4, 5]);
        let (order, starts) = counting_sort(&[0, 0, 2], 3);
        assert_eq!((order, starts), (None, vec![0, 2, 2, 3]));
    }

    #[test]
    fn take_bytes_copies_picked_rows_of_a_slice() {
        let a = BinaryArray::from_iter_values([&b"a"[..], b"bb", b"", b"ccc", b"d"]);
        let s = a.slice(1, 4);
        let t = take_bytes(&s, &[2, 0, 1, 2]);
        let got: Vec<&[u8]> = t.iter().map(|v| v.unwrap_or_default()).collect();
        assert_eq!(got, vec![&b"ccc"[..], b"bb", b"", b"ccc"]);
        assert_eq!(t.value_offsets()[0], 0);
    }
}
