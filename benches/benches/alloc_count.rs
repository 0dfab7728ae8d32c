//! Heap allocations per batch on the shuffle's send and receive path, with the buffer pool
//! and without it (issue #13: steady state allocates close to nothing per batch).
//!
//! A counting global allocator counts `alloc`/`realloc` calls. Two shards of an
//! `InProcessNetwork` run a `collect`: shard 1's `ShuffleOp` encodes each batch into a pooled
//! scratch buffer, gathers the parts into 64 KiB bundles and sends them; shard 0's op
//! receives, decodes and gives the bundles back to the pool. Rounds of `BATCHES_PER_ROUND`
//! batches are sent then drained; after `WARMUP_ROUNDS` the next rounds are counted:
//!
//! - send: allocations inside `process` (encode, bundle, transport push) per batch sent;
//! - receive: allocations while draining, per batch received (this includes decoding the
//!   records themselves: each `Datum` string is its own allocation, pool or not; a key
//!   batch's arrays are slices of the received bundle);
//! - bus: allocations to encode a bundle's cluster-bus message and decode it on the other
//!   shard (the module's send and receive copies), with `pool::global()`.
//!
//! "no pool" gives the op a pool that keeps nothing (every take allocates): the path as it
//! would be without pooling. The in-process transport hands the sender's bundle to the
//! receiver as it is; over the cluster bus the module adds one copy per bundle on receipt
//! (one allocation, not from the pool) and Redis its own copies. Run:
//!
//!     cargo bench -p gearshift-benches --bench alloc_count
//!     cargo test -p gearshift-benches --bench alloc_count -- --quick --max-send-allocs 1 \
//!         --max-key-send-allocs 1 --max-key-recv-allocs 10 --max-datum-recv-allocs 2560 \
//!         --max-bus-allocs 1
//!
//! Each `--max-… N` fails the run (exit 1) when its figure, in steady state, is above N:
//! `send` / `key-send` sending a batch of 256 records / hash keys (pooled); `key-recv`
//! receiving a batch of 256 hash keys (decoded in place: the columns' box, validity
//! bitmaps, array handles; 7.19 when written); `datum-recv` receiving a batch of 256
//! `Datum` records (2,305 when written, about 9 per record: every string and container is
//! its own allocation; not fixed here, the bound of 10 per record only catches a
//! regression); `bus` one `Message::Frame` encoded and decoded (pooled; 0 when written).
//! scripts/test.sh runs the quick form with these bounds.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::batch::{BatchData, KeyBuilder, KeyType};
use engine::ops::{Emit, Finish, Operator};
use engine::pool::BufferPool;
use engine::shuffle::{InProcessNetwork, ShuffleCtx, ShuffleOp, SlotMap, Transport};
use engine::wire::bus::Message;
use engine::{Batch, Datum};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `dealloc`; `new_size` is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROWS: usize = 256;
const BATCHES_PER_ROUND: usize = 64;

fn allocs() -> u64 {
    ALLOCS.load(Ordering::Relaxed)
}

/// A batch of `{'key': 'person:i', 'value': {'name': .., 'age': ..}}` records.
fn batch(round: usize) -> Batch {
    Batch::datums(
        (0..ROWS)
            .map(|i| {
                Datum::Map(vec![
                    ("key".into(), Datum::Str(format!("person:{round}:{i}"))),
                    (
                        "value".into(),
                        Datum::Map(vec![
                            (
                                "name".into(),
                                Datum::Str(format!("First Family{}", i % 100)),
                            ),
                            ("age".into(), Datum::Str((i % 90).to_string())),
                        ]),
                    ),
                ])
            })
            .collect(),
    )
}

fn ctx(me: usize, transport: Arc<dyn Transport>, pool: &Arc<BufferPool>) -> ShuffleCtx {
    ShuffleCtx {
        me,
        shards: 2,
        initiator: 0,
        exec_id: 1,
        transport,
        slots: Arc::new(SlotMap::even(2)),
        idle_timeout: Duration::from_secs(30),
        pool: Arc::clone(pool),
        foreign: None,
        credit_window: 0,
    }
}

/// A batch of 256 hash keys `person:i` (`name`, `age`), as a reader makes them.
fn key_batch(_round: usize) -> Batch {
    let mut k = KeyBuilder::new(true);
    for i in 0..ROWS {
        k.push_key(format!("person:{i}").as_bytes(), KeyType::Hash);
        k.push_field(b"name", format!("First Family{}", i % 100).as_bytes());
        k.push_field(b"age", (i % 90).to_string().as_bytes());
    }
    Batch::new(BatchData::Keys(k.finish().expect("a small batch")))
}

/// Allocations per batch in steady state, for batches made by `make`: (send, receive).
fn measure(
    pool: Arc<BufferPool>,
    make: fn(usize) -> Batch,
    warmup: usize,
    rounds: usize,
) -> (f64, f64) {
    let net = InProcessNetwork::new(2);
    let mut receiver = ShuffleOp::new(ctx(0, Arc::clone(&net[0]), &pool), 0, true);
    let mut sender = ShuffleOp::new(ctx(1, Arc::clone(&net[1]), &pool), 0, true);
    let mut out = Emit::new();
    let (mut sent, mut received) = (0usize, 0usize);
    let (mut send_allocs, mut recv_allocs) = (0u64, 0u64);
    let (mut sent_counted, mut received_counted) = (0usize, 0usize);
    for round in 0..warmup + rounds {
        let counted = round >= warmup;
        let batches: Vec<Batch> = (0..BATCHES_PER_ROUND).map(|_| make(round)).collect();
        for b in batches {
            let before = allocs();
            sender.process(b, &mut out).expect("send");
            if counted {
                send_allocs += allocs() - before;
                sent_counted += 1;
            }
            sent += 1;
        }
        // Drain what was sent (parts still gathering in a bundle come in a later round).
        let received_before = received;
        loop {
            let before = allocs();
            let r = receiver.try_finish(&mut out).expect("receive");
            let got = out.drain().count();
            if counted {
                recv_allocs += allocs() - before;
            }
            received += got;
            if got == 0 || r != Finish::Yield {
                break;
            }
        }
        if counted {
            received_counted += received - received_before;
        }
    }
    assert!(received <= sent);
    let per = |n: u64, d: usize| n as f64 / d.max(1) as f64;
    (
        per(send_allocs, sent_counted),
        per(recv_allocs, received_counted),
    )
}

/// Allocations per bundle carried over the cluster bus (module side): the frame message
/// encoded for sending, then decoded on the receiving shard (its receive copy), both
/// given back to `pool::global()` as the module does.
fn measure_bus(warmup: usize, rounds: usize) -> f64 {
    let pool = engine::pool::global();
    let mut counted = 0u64;
    for i in 0..warmup + rounds {
        let mut bundle = pool.take_vec(96 * 1024);
        bundle.resize(70_000, i as u8);
        let before = allocs();
        let m = Message::Frame {
            exec: 1,
            step: 0,
            from: 1,
            frame: bundle,
        };
        let bytes = m.encode();
        if let Message::Frame { frame, .. } = m {
            pool.recycle(frame);
        }
        let Some(Message::Frame { frame, .. }) = Message::decode(&bytes) else {
            panic!("a frame message decodes");
        };
        pool.recycle(bytes);
        pool.recycle(frame);
        if i >= warmup {
            counted += allocs() - before;
        }
    }
    counted as f64 / rounds.max(1) as f64
}

/// The value after `--name` on the command line, if given.
fn limit(args: &[String], name: &str) -> Option<f64> {
    let i = args.iter().position(|a| a == name)?;
    let v = args.get(i + 1).unwrap_or_else(|| panic!("{name} N"));
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name} N: not a number: {v}")),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let (warmup, rounds) = if quick { (4, 8) } else { (10, 50) };
    println!(
        "alloc_count: {ROWS}-record batches, {BATCHES_PER_ROUND} per round, \
         {warmup} warm-up + {rounds} counted rounds"
    );
    let (no_send, no_recv) = measure(BufferPool::new(1, 0), batch, warmup, rounds);
    println!("  no pool: send {no_send:.2} allocs/batch, receive {no_recv:.2} allocs/batch");
    let (send, recv) = measure(BufferPool::new(64, 64 << 20), batch, warmup, rounds);
    println!("  pooled:  send {send:.2} allocs/batch, receive {recv:.2} allocs/batch");
    println!("  receive includes decoding {ROWS} records per batch (their strings)");
    let (key_send, key_recv) = measure(BufferPool::new(64, 64 << 20), key_batch, warmup, rounds);
    println!(
        "  pooled, {ROWS} hash keys per batch: send {key_send:.2} allocs/batch, \
         receive {key_recv:.2} allocs/batch (arrays read in place)"
    );
    let bus = measure_bus(warmup, rounds * 10);
    println!(
        "  bus Message::Frame (encode + decode of a 70 KB bundle, pooled; the fallback for a \
         bundle without header room): {bus:.2} allocs"
    );
    // (flag, measured, what): each flag given on the command line bounds its figure.
    let checks = [
        (
            "--max-send-allocs",
            send,
            "pooled datum send path, per batch",
        ),
        (
            "--max-datum-recv-allocs",
            recv,
            "pooled datum receive path, per batch",
        ),
        (
            "--max-key-send-allocs",
            key_send,
            "key batch send path, per batch",
        ),
        (
            "--max-key-recv-allocs",
            key_recv,
            "key batch receive path, per batch",
        ),
        ("--max-bus-allocs", bus, "bus frame message, per bundle"),
    ];
    let mut bounded = false;
    let mut failed = Vec::new();
    for (flag, measured, what) in checks {
        if let Some(max) = limit(&args, flag) {
            bounded = true;
            if measured > max {
                failed.push(format!(
                    "{what}: {measured:.2} allocations, over {flag} {max}"
                ));
            }
        }
    }
    if bounded {
        if !failed.is_empty() {
            eprintln!("alloc_count: {}", failed.join("; "));
            println!("alloc_count: 0 passed, 1 failed");
            std::process::exit(1);
        }
        println!("alloc_count: 1 passed, 0 failed");
    }
}
