//! Properties of the module's wire decoders (`engine::wire`), run on stable in CI. The same
//! properties are fuzzed with cargo-fuzz in `fuzz/fuzz_targets/{bus_message,bus_reply,
//! sessions_blob,time_event_value}.rs`; here they run on seeded random input:
//! - any valid value survives encode → decode unchanged;
//! - decoding never panics on arbitrary bytes (random, and mutations of valid encodings so
//!   the decoder gets past the magic bytes), and whatever it accepts re-encodes to bytes
//!   that decode to the same value;
//! - every time-event period that is stored (accepted or clamped) fits a Redis timer, and
//!   identities (`run_as`) decode only from their one encoding.
//!
//! Reproducers of anything the fuzzers find are added at the bottom as regression tests.

mod common;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use common::{mutate, random_bytes};
use engine::wire::bus::{Message, Query, RunOrder};
use engine::wire::reply::{decode_reply, encode_reply, Reply};
use engine::wire::requirements::{self, Package, Wheel};
use engine::wire::run_as::{self, RunAs};
use engine::wire::sessions::{self, SavedSession};
use engine::wire::time_event::{check_period, clamp_period, timer_millis, MAX_PERIOD_SECS};

const SEED: u64 = 0x77_69_72_65; // "wire"
const VALUES: usize = 2_000;
const BYTE_STRINGS: usize = 20_000;

fn text(rng: &mut StdRng) -> String {
    (0..rng.random_range(0..6))
        .map(|_| rng.random::<char>())
        .collect()
}

fn texts(rng: &mut StdRng) -> Vec<String> {
    (0..rng.random_range(0..4)).map(|_| text(rng)).collect()
}

fn random_run_as(rng: &mut StdRng) -> RunAs {
    if rng.random_bool(0.3) {
        RunAs::Superuser
    } else {
        RunAs::user(&text(rng))
    }
}

fn random_reply(rng: &mut StdRng, depth: usize) -> Reply {
    match rng.random_range(0..if depth < 3 { 7 } else { 6 }) {
        // Any bits: NaNs and negative zero included.
        5 => Reply::Double(f64::from_bits(rng.random())),
        0 => Reply::Null,
        1 => Reply::Int(rng.random()),
        2 => Reply::Bulk(random_bytes(rng, 8)),
        3 => Reply::Status(text(rng)),
        4 => Reply::Error(text(rng)),
        _ => Reply::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_reply(rng, depth + 1))
                .collect(),
        ),
    }
}

fn random_query(rng: &mut StdRng) -> Query {
    match rng.random_range(0..9) {
        0 => Query::GetExecution(text(rng)),
        1 => Query::DropExecution(text(rng)),
        2 => Query::AbortExecution(text(rng)),
        3 => Query::Session(random_bytes(rng, 16)),
        4 => Query::Call(
            random_run_as(rng),
            (0..rng.random_range(0..4))
                .map(|_| random_bytes(rng, 6))
                .collect(),
        ),
        5 => Query::Pause(text(rng), rng.random()),
        6 => Query::ClearStats,
        7 => Query::Install(texts(rng)),
        _ => Query::IsRunning(text(rng)),
    }
}

fn random_message(rng: &mut StdRng) -> Message {
    match rng.random_range(0..8) {
        0 => Message::Frame {
            exec: rng.random(),
            step: rng.random(),
            from: rng.random(),
            frame: random_bytes(rng, 16),
        },
        1 => Message::Run(RunOrder {
            id: text(rng),
            initiator: rng.random(),
            shards: texts(rng),
            ranges: (0..rng.random_range(0..4))
                .map(|_| (rng.random(), rng.random(), rng.random()))
                .collect(),
            wire: random_bytes(rng, 16),
            run_as: random_run_as(rng),
            depth: rng.random(),
        }),
        2 => Message::Done { id: text(rng) },
        3 => Message::Alive { id: text(rng) },
        4 => Message::PartFailed {
            id: text(rng),
            from: rng.random(),
            error: text(rng),
        },
        5 => Message::Ask {
            req: rng.random(),
            query: random_query(rng),
        },
        6 => Message::Answer {
            req: rng.random(),
            reply: encode_reply(&random_reply(rng, 0)),
        },
        _ => Message::Unregister {
            id: text(rng),
            abort_pending: rng.random(),
        },
    }
}

fn random_sessions(rng: &mut StdRng) -> Vec<SavedSession> {
    (0..rng.random_range(0..3))
        .map(|_| SavedSession {
            id: text(rng),
            desc: rng.random_bool(0.5).then(|| text(rng)),
            code: text(rng),
            registrations: texts(rng),
            requirements: texts(rng),
            run_as: random_run_as(rng),
            from_steps: texts(rng)
                .into_iter()
                .map(|id| (id, text(rng).into_bytes()))
                .collect(),
        })
        .collect()
}

/// Random bytes, or a mutation of a valid encoding, so the decoder sees both.
fn input(rng: &mut StdRng, valid: impl FnOnce(&mut StdRng) -> Vec<u8>) -> Vec<u8> {
    if rng.random_bool(0.25) {
        random_bytes(rng, 64)
    } else {
        let v = valid(rng);
        mutate(rng, v)
    }
}

#[test]
fn valid_values_roundtrip_exactly() {
    let mut rng = StdRng::seed_from_u64(SEED);
    for i in 0..VALUES {
        let m = random_message(&mut rng);
        assert_eq!(Message::decode(&m.encode()), Some(m.clone()), "message {i}");
        let r = random_reply(&mut rng, 0);
        assert_eq!(
            decode_reply(&encode_reply(&r)),
            Some(r.clone()),
            "reply {i}"
        );
        let s = random_sessions(&mut rng);
        assert_eq!(
            sessions::decode(&sessions::encode(&s)),
            Some(s),
            "sessions {i}"
        );
    }
}

#[test]
fn bus_messages_never_panic_and_roundtrip_when_accepted() {
    let mut rng = StdRng::seed_from_u64(SEED + 1);
    let mut accepted = 0;
    for _ in 0..BYTE_STRINGS {
        let bytes = input(&mut rng, |r| random_message(r).encode());
        if let Some(m) = Message::decode(&bytes) {
            assert_eq!(Message::decode(&m.encode()), Some(m), "from {bytes:?}");
            accepted += 1;
        }
    }
    assert!(
        accepted > BYTE_STRINGS / 100,
        "only {accepted} inputs decoded"
    );
}

#[test]
fn bus_replies_never_panic_and_have_one_encoding() {
    let mut rng = StdRng::seed_from_u64(SEED + 2);
    let mut accepted = 0;
    for _ in 0..BYTE_STRINGS {
        let bytes = input(&mut rng, |r| encode_reply(&random_reply(r, 0)));
        if let Some(r) = decode_reply(&bytes) {
            assert_eq!(encode_reply(&r), bytes, "two encodings of {r:?}");
            accepted += 1;
        }
    }
    assert!(
        accepted > BYTE_STRINGS / 100,
        "only {accepted} inputs decoded"
    );
}

#[test]
fn sessions_blobs_never_panic_and_roundtrip_when_accepted() {
    let mut rng = StdRng::seed_from_u64(SEED + 3);
    let mut accepted = 0;
    for _ in 0..BYTE_STRINGS {
        let bytes = input(&mut rng, |r| sessions::encode(&random_sessions(r)));
        if let Some(s) = sessions::decode(&bytes) {
            assert_eq!(sessions::decode(&sessions::encode(&s)), Some(s));
            accepted += 1;
        }
    }
    assert!(
        accepted > BYTE_STRINGS / 100,
        "only {accepted} inputs decoded"
    );
}

fn random_packages(rng: &mut StdRng) -> Vec<Package> {
    (0..rng.random_range(0..3))
        .map(|i| Package {
            name: format!("p{i}{}", text(rng)),
            os: text(rng),
            wheels: (0..rng.random_range(0..3))
                .map(|j| Wheel {
                    file: format!("w{j}.whl"),
                    bytes: random_bytes(rng, 16),
                })
                .collect(),
        })
        .collect()
}

#[test]
fn requirement_packages_never_panic_and_roundtrip_when_accepted() {
    let mut rng = StdRng::seed_from_u64(SEED + 7);
    let mut accepted = 0;
    for _ in 0..BYTE_STRINGS {
        let bytes = input(&mut rng, |r| requirements::encode_list(&random_packages(r)));
        if let Some(p) = requirements::decode_list(&bytes) {
            assert_eq!(
                requirements::decode_list(&requirements::encode_list(&p)),
                Some(p)
            );
            accepted += 1;
        }
        if let Some(p) = requirements::decode(&bytes) {
            assert_eq!(requirements::decode(&requirements::encode(&p)), Some(p));
        }
    }
    assert!(
        accepted > BYTE_STRINGS / 100,
        "only {accepted} inputs decoded"
    );
}

#[test]
fn time_event_periods_that_are_stored_fit_a_timer() {
    let mut rng = StdRng::seed_from_u64(SEED + 4);
    let edges = [
        0,
        1,
        MAX_PERIOD_SECS,
        MAX_PERIOD_SECS + 1,
        i64::MAX as u64,
        u64::MAX,
    ];
    let random = (0..BYTE_STRINGS).map(|_| rng.random::<u64>() >> rng.random_range(0..64));
    for secs in edges.into_iter().chain(random) {
        // RDB loads clamp; RG.INNERTIMEEVENT refuses. Either way the timer can hold it.
        let clamped = clamp_period(Duration::from_secs(secs));
        assert!(clamped >= Duration::from_secs(1));
        assert!(
            timer_millis(clamped).is_some(),
            "{secs} s clamps to {clamped:?}"
        );
        if let Ok(p) = check_period(secs) {
            assert_eq!(clamp_period(p), p, "{secs} s accepted, then clamped");
        }
    }
}

#[test]
fn identities_never_panic_and_roundtrip_when_accepted() {
    let mut rng = StdRng::seed_from_u64(SEED + 5);
    for _ in 0..BYTE_STRINGS {
        let bytes = input(&mut rng, |r| run_as::encode(&random_run_as(r)));
        if let Some(r) = run_as::decode(&bytes) {
            assert_eq!(run_as::encode(&r), bytes, "two encodings of {r:?}");
        }
    }
}

// --- regressions ----------------------------------------------------------------------------

/// `RG.INNERTIMEEVENT k 9223372036854775807 x` (issue 10): the period was stored, the
/// timer panicked (`Value must fit in 64 bits`) and the next RDB load failed.
#[test]
fn regression_time_event_period_of_i64_max_seconds_is_refused() {
    assert!(check_period(9_223_372_036_854_775_807).is_err());
    let clamped = clamp_period(Duration::from_secs(9_223_372_036_854_775_807));
    assert!(timer_millis(clamped).is_some());
}

/// Nested arrays deeper than the decoder's bound are refused, not recursed into.
#[test]
fn regression_deeply_nested_reply_is_refused() {
    let bytes: Vec<u8> = std::iter::repeat_n([5u8, 1, 0, 0, 0], 10_000)
        .flatten()
        .chain([0])
        .collect();
    assert_eq!(decode_reply(&bytes), None);
}

/// A count of 2^32-1 elements in a few bytes must fail on the missing bytes, without
/// reserving room for the count first.
#[test]
fn regression_huge_counts_do_not_allocate() {
    let mut run = b"GS\x02\x02".to_vec();
    run.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(Message::decode(&run), None);
    let blob = [b'S', 3, 0xff, 0xff, 0xff, 0xff];
    assert_eq!(sessions::decode(&blob), None);
    assert_eq!(decode_reply(&[5, 0xff, 0xff, 0xff, 0xff]), None);
}

/// A NaN double (found by the `bus_reply` fuzz target): it decodes, and re-encodes to the
/// same bytes and an equal reply (doubles compare by their bits).
#[test]
fn regression_nan_double_round_trips() {
    let bytes = [
        5u8, 3, 0, 0, 0, 0, 6, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
    ];
    let r = decode_reply(&bytes).expect("an array of a null, a NaN and a null");
    assert_eq!(encode_reply(&r), bytes);
    assert_eq!(decode_reply(&encode_reply(&r)), Some(r));
    assert_ne!(Reply::Double(0.0), Reply::Double(-0.0));
}
