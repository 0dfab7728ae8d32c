//! Benchmarks of the bounded SPSC ring (`engine::queue`) that connects pipeline stages.
//!
//! Benches (layout after DataFusion's `physical-plan/benches/repartition.rs`):
//! - `spsc_threads/<capacity>`: a producer thread pushes 1M `u64`s, the bench thread pops
//!   them; spinning on full/empty, so this is the ring's cross-core throughput ceiling.
//! - `spsc_same_thread/push_pop`: one push then one pop on one thread: the uncontended
//!   per-item cost (two atomic publishes, no cache-line ping-pong).
//!
//! Run: `cargo bench -p gearshift-benches --bench queue`; compare against a saved
//! baseline with `-- --save-baseline before` / `-- --baseline before`.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use engine::queue::{spsc, Consumer, Pop};

/// Items moved per iteration of the threaded bench.
const ITEMS: u64 = 1_000_000;
/// Queue capacities to compare: the executor's default (4) up to a roomy ring.
const CAPACITIES: [usize; 3] = [4, 64, 1024];

/// A producer thread, parked at `start` until the timed routine releases it, so thread
/// creation stays in setup and out of the measurement.
struct Producer {
    start: Arc<Barrier>,
    thread: JoinHandle<()>,
    rx: Consumer<u64>,
}

fn spawn_producer(capacity: usize) -> Producer {
    let (mut tx, rx) = spsc::<u64>(capacity);
    let start = Arc::new(Barrier::new(2));
    let go = Arc::clone(&start);
    let thread = std::thread::spawn(move || {
        go.wait();
        let mut i = 0;
        while i < ITEMS {
            match tx.push(i) {
                Ok(()) => i += 1,
                Err(_) => std::hint::spin_loop(),
            }
        }
    });
    Producer { start, thread, rx }
}

/// Pops until the producer closes the ring; returns the sum so nothing is optimised out.
fn drain(mut p: Producer) -> u64 {
    p.start.wait();
    let mut sum = 0u64;
    loop {
        match p.rx.pop() {
            Pop::Item(v) => sum = sum.wrapping_add(v),
            Pop::Empty => std::hint::spin_loop(),
            Pop::Closed => break,
        }
    }
    p.thread.join().expect("producer thread");
    sum
}

fn bench_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc_threads");
    group.throughput(Throughput::Elements(ITEMS));
    group.sample_size(20);
    for capacity in CAPACITIES {
        group.bench_with_input(
            BenchmarkId::from_parameter(capacity),
            &capacity,
            |b, &cap| {
                b.iter_batched(|| spawn_producer(cap), drain, BatchSize::PerIteration);
            },
        );
    }
    group.finish();
}

fn bench_same_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("spsc_same_thread");
    group.throughput(Throughput::Elements(1));
    let (mut tx, mut rx) = spsc::<u64>(4);
    let mut i = 0u64;
    group.bench_function("push_pop", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            // The ring is empty before and after each pair, so the push cannot fail.
            let _ = tx.push(black_box(i));
            black_box(rx.pop())
        });
    });
    group.finish();
}

criterion_group!(benches, bench_threads, bench_same_thread);
criterion_main!(benches);
