//! Unit tests of the shuffle operator (included by `op.rs`).

use super::*;
use crate::batch::{BatchData, BinaryColumn};
use crate::datum::Datum;
use crate::ops::Emit;
use crate::pool::BufferPool;
use crate::shuffle::{InProcessNetwork, SlotMap};

/// Two shards of one in-process network, shard 0 initiating.
fn two_shards() -> Vec<ShuffleCtx> {
    let slots = Arc::new(SlotMap::even(2));
    InProcessNetwork::new(2)
        .into_iter()
        .enumerate()
        .map(|(me, transport)| ShuffleCtx {
            me,
            shards: 2,
            initiator: 0,
            exec_id: 7,
            transport,
            slots: Arc::clone(&slots),
            idle_timeout: Duration::from_secs(5),
            pool: BufferPool::new(4, 1 << 20),
            foreign: None,
            credit_window: 0,
        })
        .collect()
}

/// (record, partition key) pairs of what `out` holds.
fn keyed(out: &mut Emit) -> Vec<(Datum, Option<Vec<u8>>)> {
    let mut got = Vec::new();
    for b in out.drain() {
        let BatchData::Datums(rows) = b.data else {
            panic!("datums expected");
        };
        for (i, d) in rows.into_iter().enumerate() {
            let k = b.partition_keys.as_ref().map(|k| k.get(i).to_vec());
            got.push((d, k));
        }
    }
    got
}

#[test]
fn repartitioned_records_keep_their_partition_keys_on_both_sides() {
    // Slot 0 ("06S") is shard 0's, slot 12182 ("foo") shard 1's.
    let mut ctxs = two_shards().into_iter();
    let (c0, c1) = (ctxs.next().unwrap(), ctxs.next().unwrap());
    let receiver = crate::sync::thread::spawn(move || {
        let mut op = ShuffleOp::new(c1, 1, false);
        let mut out = Emit::new();
        op.finish(&mut out).unwrap();
        keyed(&mut out)
    });
    let mut op = ShuffleOp::new(c0, 1, false);
    let mut b = Batch::datums(vec![Datum::Int(1), Datum::Int(2), Datum::Int(3)]);
    b.partition_keys = Some(BinaryColumn::from_iter([&b"06S"[..], b"foo", b"foo"]));
    let mut out = Emit::new();
    op.process(b, &mut out).unwrap();
    op.finish(&mut out).unwrap();
    assert_eq!(
        keyed(&mut out),
        vec![(Datum::Int(1), Some(b"06S".to_vec()))]
    );
    let remote = receiver.join().unwrap();
    assert_eq!(
        remote,
        vec![
            (Datum::Int(2), Some(b"foo".to_vec())),
            (Datum::Int(3), Some(b"foo".to_vec())),
        ]
    );
}
