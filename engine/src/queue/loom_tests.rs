//! loom models of the SPSC ring: run with `RUSTFLAGS="--cfg loom" cargo test --lib loom`.

use super::*;
use crate::sync::thread;

#[test]
fn loom_spsc_delivers_in_order_through_a_full_queue() {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(|| {
        let (mut p, mut c) = spsc::<usize>(2);
        let producer = thread::spawn(move || {
            for i in 0..3 {
                let mut v = i;
                loop {
                    match p.push(v) {
                        Ok(()) => break,
                        Err(back) => {
                            v = back;
                            thread::yield_now();
                        }
                    }
                }
            }
        });
        let mut got = Vec::new();
        loop {
            match c.pop() {
                Pop::Item(v) => got.push(v),
                Pop::Empty => thread::yield_now(),
                Pop::Closed => break,
            }
        }
        producer.join().unwrap();
        assert_eq!(got, vec![0, 1, 2]);
    });
}

#[test]
fn loom_spsc_close_is_seen_after_last_item() {
    loom::model(|| {
        let (mut p, mut c) = spsc::<usize>(1);
        let producer = thread::spawn(move || {
            p.push(7).unwrap();
        });
        let mut got = None;
        loop {
            match c.pop() {
                Pop::Item(v) => got = Some(v),
                Pop::Empty => thread::yield_now(),
                Pop::Closed => break,
            }
        }
        producer.join().unwrap();
        assert_eq!(got, Some(7));
    });
}
