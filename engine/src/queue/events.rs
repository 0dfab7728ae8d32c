//! A bounded, lock-free queue of keyspace events (key and event-name bytes) for one
//! registration: one producer at a time, one consumer at a time.
//!
//! In the module, producers are notification callbacks, always on a thread holding the
//! Redis lock (the main thread, or a worker whose `execute()` wrote a key), so one pushes
//! at a time and the Redis lock orders them; the consumer is the registration's drain,
//! one at a time (`claim` / `finish_drain` hand the consumer role over without losing a
//! wake-up). Events are packed into a ring of 64-bit words (a header word with the key and
//! event-name lengths, then their bytes): about 16 bytes for a short key, written with
//! plain stores and published with one store — no allocation (ring chunks are allocated on
//! first use and reused), no read-modify-write, and producer and consumer positions on
//! separate cache lines (the producer checks the bound against a cached copy of the
//! consumer's position).
//!
//! Algorithm: Lamport's single-producer/single-consumer ring with monotonically increasing
//! word positions (`end` owned by the producer, `start` by the consumer, each published
//! with `Release`/`SeqCst` and read by the other with `Acquire`), over variable-length
//! records; the wake-up hand-off is the classic "publish, then test the flag" / "clear the
//! flag, then re-check" pair under `SeqCst`. Loom models it (`loom_events`) with a tiny
//! ring; under loom the chunks are allocated up front instead of on first use (loom does
//! not model `OnceLock`).
//!
//! Overflow policy: at most `max_events` events and the ring's bytes wait; an event
//! arriving at a full queue is dropped and counted (`take_dropped`). `push` never blocks.
//! Depends on `sync` only; no `unsafe`.

use crate::sync::{AtomicBool, AtomicU64, Mutex, MutexGuard, Ordering};

/// Words per ring chunk by default (64 KiB).
pub const CHUNK_WORDS: usize = 8192;
/// Chunks per ring by default.
pub const CHUNKS: usize = 256;
/// The default ring's size in bytes (16 MiB), allocated a chunk at a time as it fills.
pub const RING_BYTES: usize = CHUNKS * CHUNK_WORDS * 8;

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; `schedule`: the drain was idle and the caller must start it.
    Accepted { schedule: bool },
    /// The queue was full: dropped and counted.
    Dropped,
}

/// Written by producers only.
#[derive(Debug)]
#[repr(align(64))]
struct ProducerSide {
    /// Words ever written and published.
    end: AtomicU64,
    /// Events ever accepted (the sequence number of the next one).
    pushed: AtomicU64,
    /// A recent (never newer) copy of `ConsumerSide::start`.
    start_seen: AtomicU64,
    /// A recent (never newer) copy of `ConsumerSide::popped`.
    popped_seen: AtomicU64,
    /// Drops not yet folded into the registration's stats.
    dropped: AtomicU64,
}

/// Written by the consumer only.
#[derive(Debug)]
#[repr(align(64))]
struct ConsumerSide {
    /// Words ever consumed.
    start: AtomicU64,
    /// Events ever popped.
    popped: AtomicU64,
}

/// Rarely written.
#[derive(Debug)]
#[repr(align(64))]
struct Control {
    /// True while a drain owns the queue (running or scheduled).
    scheduled: AtomicBool,
    /// Events with a sequence number below this are discarded when popped.
    discard_below: AtomicU64,
}

fn zero() -> AtomicU64 {
    AtomicU64::new(0)
}

/// One chunk of the ring, allocated on first use (up front under loom).
struct Chunk(
    #[cfg(not(loom))] std::sync::OnceLock<Box<[AtomicU64]>>,
    #[cfg(loom)] Box<[AtomicU64]>,
);

impl Chunk {
    fn new(_words: usize) -> Self {
        #[cfg(not(loom))]
        return Chunk(std::sync::OnceLock::new());
        #[cfg(loom)]
        return Chunk((0.._words).map(|_| zero()).collect());
    }

    fn get(&self, _words: usize) -> &[AtomicU64] {
        #[cfg(not(loom))]
        return self.0.get_or_init(|| (0.._words).map(|_| zero()).collect());
        #[cfg(loom)]
        return &self.0;
    }
}

/// The queue. See the module docs for who pushes and pops.
pub struct EventQueue {
    chunks: Box<[Chunk]>,
    /// log2 of the words per chunk.
    chunk_shift: u32,
    /// Words in the ring (a power of two).
    ring_words: u64,
    max_events: u64,
    producer: ProducerSide,
    consumer: ConsumerSide,
    control: Control,
    /// The consumer's scratch space (only the drain locks it).
    scratch: Mutex<Vec<u8>>,
}

impl std::fmt::Debug for EventQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventQueue")
            .field("ring_words", &self.ring_words)
            .field("max_events", &self.max_events)
            .field("producer", &self.producer)
            .field("consumer", &self.consumer)
            .field("control", &self.control)
            .finish_non_exhaustive()
    }
}

/// Key and event bytes packed through a stack buffer (longer ones byte by byte).
const SHORT: usize = 64;

fn words_for(bytes: usize) -> u64 {
    bytes.div_ceil(8) as u64
}

impl EventQueue {
    /// A queue for at most `max_events` events (and `RING_BYTES`).
    pub fn new(max_events: usize) -> Self {
        Self::with_geometry(max_events, CHUNK_WORDS, CHUNKS)
    }

    /// A queue for at most `max_events` events in a ring of `chunks` chunks of
    /// `chunk_words` words each (both rounded up to powers of two).
    pub fn with_geometry(max_events: usize, chunk_words: usize, chunks: usize) -> Self {
        let chunk_words = chunk_words.max(1).next_power_of_two();
        let chunks = chunks.max(1).next_power_of_two();
        EventQueue {
            chunks: (0..chunks).map(|_| Chunk::new(chunk_words)).collect(),
            chunk_shift: chunk_words.trailing_zeros(),
            ring_words: (chunks * chunk_words) as u64,
            max_events: max_events.max(1) as u64,
            producer: ProducerSide {
                end: zero(),
                pushed: zero(),
                start_seen: zero(),
                popped_seen: zero(),
                dropped: zero(),
            },
            consumer: ConsumerSide {
                start: zero(),
                popped: zero(),
            },
            control: Control {
                scheduled: AtomicBool::new(false),
                discard_below: zero(),
            },
            scratch: Mutex::new(Vec::new()),
        }
    }

    /// Words in the ring.
    pub fn ring_words(&self) -> u64 {
        self.ring_words
    }

    fn chunk_words(&self) -> usize {
        1 << self.chunk_shift
    }

    fn chunk(&self, i: usize) -> &[AtomicU64] {
        self.chunks[i].get(self.chunk_words())
    }

    fn word(&self, pos: u64) -> &AtomicU64 {
        let i = (pos & (self.ring_words - 1)) as usize;
        &self.chunk(i >> self.chunk_shift)[i & (self.chunk_words() - 1)]
    }

    /// The `n` words from `pos`, if they lie in one chunk.
    fn run(&self, pos: u64, n: usize) -> Option<&[AtomicU64]> {
        let i = (pos & (self.ring_words - 1)) as usize;
        let off = i & (self.chunk_words() - 1);
        (off + n <= self.chunk_words()).then(|| &self.chunk(i >> self.chunk_shift)[off..off + n])
    }

    /// True if `need` more words and one more event fit (refreshing the cached consumer
    /// position when the cached one says no).
    fn has_room(&self, end: u64, pushed: u64, need: u64) -> bool {
        let p = &self.producer;
        let fits = |start: u64, popped: u64| {
            end + need - start <= self.ring_words && pushed - popped < self.max_events
        };
        if fits(
            p.start_seen.load(Ordering::Relaxed),
            p.popped_seen.load(Ordering::Relaxed),
        ) {
            return true;
        }
        let (start, popped) = (
            self.consumer.start.load(Ordering::Acquire),
            self.consumer.popped.load(Ordering::Acquire),
        );
        p.start_seen.store(start, Ordering::Relaxed);
        p.popped_seen.store(popped, Ordering::Relaxed);
        fits(start, popped)
    }

    /// Appends an event, or drops it when full. Never blocks. One producer at a time
    /// (callers hold the Redis lock, which also orders them).
    pub fn push(&self, key: &[u8], event: &[u8]) -> Pushed {
        let p = &self.producer;
        let end = p.end.load(Ordering::Relaxed);
        let pushed = p.pushed.load(Ordering::Relaxed);
        let len = key.len() + event.len();
        let need = 1 + words_for(len);
        if key.len() > u32::MAX as usize
            || event.len() > u32::MAX as usize
            || !self.has_room(end, pushed, need)
        {
            p.dropped.fetch_add(1, Ordering::Relaxed);
            return Pushed::Dropped;
        }
        let header = key.len() as u64 | (event.len() as u64) << 32;
        match self.run(end, need as usize) {
            // The usual case: a short record inside one chunk.
            Some(words) if len <= SHORT => {
                let mut bytes = [0u8; SHORT];
                bytes[..key.len()].copy_from_slice(key);
                bytes[key.len()..len].copy_from_slice(event);
                words[0].store(header, Ordering::Relaxed);
                for (w, b) in words[1..].iter().zip(bytes.chunks_exact(8)) {
                    w.store(
                        u64::from_le_bytes(b.try_into().unwrap_or_default()),
                        Ordering::Relaxed,
                    );
                }
            }
            _ => {
                self.word(end).store(header, Ordering::Relaxed);
                let mut w = [0u8; 8];
                let mut filled = 0;
                let mut at = end + 1;
                for &b in key.iter().chain(event) {
                    w[filled] = b;
                    filled += 1;
                    if filled == 8 {
                        self.word(at)
                            .store(u64::from_le_bytes(w), Ordering::Relaxed);
                        at += 1;
                        filled = 0;
                    }
                }
                if filled > 0 {
                    w[filled..].fill(0);
                    self.word(at)
                        .store(u64::from_le_bytes(w), Ordering::Relaxed);
                }
            }
        }
        p.pushed.store(pushed + 1, Ordering::Relaxed);
        // Publishes the words. SeqCst pairs with `finish_drain`: either the drain sees
        // this event, or we see it idle and start a new one (no lost wake-up).
        p.end.store(end + need, Ordering::SeqCst);
        let s = &self.control.scheduled;
        let schedule = !s.load(Ordering::SeqCst) && !s.swap(true, Ordering::SeqCst);
        Pushed::Accepted { schedule }
    }

    /// Events waiting (exact for the consumer, a recent value for anyone else).
    pub fn len(&self) -> usize {
        let pushed = self.producer.pushed.load(Ordering::SeqCst);
        pushed.saturating_sub(self.consumer.popped.load(Ordering::SeqCst)) as usize
    }

    /// True when no event waits.
    pub fn is_empty(&self) -> bool {
        self.producer.end.load(Ordering::SeqCst) == self.consumer.start.load(Ordering::SeqCst)
    }

    /// Events ever accepted.
    pub fn pushed(&self) -> u64 {
        self.producer.pushed.load(Ordering::Relaxed)
    }

    /// Drops since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.producer.dropped.swap(0, Ordering::Relaxed)
    }

    /// Discards every event queued so far (they are skipped when popped); returns how
    /// many. Call under the Redis lock, so no push is half done.
    pub fn discard_pending(&self) -> usize {
        let upto = self.producer.pushed.load(Ordering::SeqCst);
        let prev = self.control.discard_below.fetch_max(upto, Ordering::SeqCst);
        let popped = self.consumer.popped.load(Ordering::SeqCst);
        upto.saturating_sub(prev.max(popped)) as usize
    }

    /// True if the event with sequence number `seq` was discarded (`discard_pending`).
    pub fn discarded(&self, seq: u64) -> bool {
        seq < self.control.discard_below.load(Ordering::SeqCst)
    }

    /// The consumer side; only the drain that owns the queue calls it.
    pub fn consumer(&self) -> Consumer<'_> {
        Consumer {
            q: self,
            scratch: self.scratch.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Claims the queue for a new drain; false if one owns it already.
    pub fn claim(&self) -> bool {
        !self.control.scheduled.swap(true, Ordering::SeqCst)
    }

    /// The drain found the queue empty and stops; true if it must go on after all (an
    /// event arrived meanwhile and no other drain claimed it).
    pub fn finish_drain(&self) -> bool {
        self.control.scheduled.store(false, Ordering::SeqCst);
        !self.is_empty() && self.claim()
    }
}

/// One popped event, borrowed from the consumer's scratch space.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    pub key: &'a [u8],
    pub event: &'a [u8],
    /// Its sequence number (see `EventQueue::discarded`).
    pub seq: u64,
}

/// The popping end, held by the drain for a batch.
pub struct Consumer<'a> {
    q: &'a EventQueue,
    scratch: MutexGuard<'a, Vec<u8>>,
}

impl Consumer<'_> {
    /// The next event to run, skipping discarded ones.
    pub fn pop(&mut self) -> Option<EventRef<'_>> {
        let q = self.q;
        loop {
            let start = q.consumer.start.load(Ordering::Relaxed);
            if start == q.producer.end.load(Ordering::Acquire) {
                return None;
            }
            let header = q.word(start).load(Ordering::Relaxed);
            let (k, e) = ((header & 0xffff_ffff) as usize, (header >> 32) as usize);
            let n = words_for(k + e);
            let seq = q.consumer.popped.load(Ordering::Relaxed);
            let keep = !q.discarded(seq);
            if keep {
                self.scratch.clear();
                for i in 0..n {
                    let w = q.word(start + 1 + i).load(Ordering::Relaxed);
                    self.scratch.extend_from_slice(&w.to_le_bytes());
                }
            }
            q.consumer.popped.store(seq + 1, Ordering::Release);
            // The words are copied out: the producer may reuse them.
            q.consumer.start.store(start + 1 + n, Ordering::SeqCst);
            if keep {
                let (key, rest) = self.scratch.split_at(k);
                return Some(EventRef {
                    key,
                    event: &rest[..e],
                    seq,
                });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn pop_owned(c: &mut Consumer<'_>) -> Option<(Vec<u8>, Vec<u8>)> {
        c.pop().map(|e| (e.key.to_vec(), e.event.to_vec()))
    }

    #[test]
    fn fifo_bounded_and_counted() {
        let q = EventQueue::new(2);
        assert_eq!(q.push(b"a", b"set"), Pushed::Accepted { schedule: true });
        assert_eq!(q.push(b"b", b"hset"), Pushed::Accepted { schedule: false });
        assert_eq!(q.push(b"c", b"set"), Pushed::Dropped);
        assert_eq!((q.len(), q.pushed(), q.take_dropped()), (2, 2, 1));
        let mut c = q.consumer();
        assert_eq!(pop_owned(&mut c), Some((b"a".to_vec(), b"set".to_vec())));
        // Room again once the consumer popped.
        assert_eq!(q.push(b"d", b"del"), Pushed::Accepted { schedule: false });
        assert_eq!(pop_owned(&mut c).unwrap().1, b"hset");
        assert_eq!(pop_owned(&mut c).unwrap().0, b"d");
        assert!(c.pop().is_none());
        assert!(q.is_empty());
    }

    #[test]
    fn any_lengths_and_discard() {
        let q = EventQueue::new(100);
        let long = [b'x'; 60];
        q.push(&long, b"set");
        q.push(b"k2", &long);
        assert_eq!(q.discard_pending(), 2);
        q.push(b"k3", b"del");
        let mut c = q.consumer();
        assert_eq!(pop_owned(&mut c).unwrap().0, b"k3");
        assert!(q.is_empty());
        for (k, e) in [
            (&long[..], &b"set"[..]),
            (b"k", &long[..]),
            (b"", b""),
            (b"1234567", b"8"),
        ] {
            q.push(k, e);
            assert_eq!(pop_owned(&mut c), Some((k.to_vec(), e.to_vec())));
        }
    }

    #[test]
    fn the_ring_wraps_and_bounds_bytes() {
        let q = EventQueue::new(usize::MAX);
        assert_eq!(q.ring_words() * 8, RING_BYTES as u64);
        let key = [7u8; 1000]; // with "set": 126 words, and the header
        let mut c = q.consumer();
        let mut n = 0u64;
        while q.push(&key, b"set") != Pushed::Dropped {
            n += 1;
        }
        assert_eq!(n, q.ring_words() / 127);
        for round in 0..3 * n {
            assert_eq!(pop_owned(&mut c).unwrap().0, key.to_vec(), "round {round}");
            assert_ne!(q.push(&key, b"set"), Pushed::Dropped);
        }
    }

    #[test]
    fn drain_handoff_loses_no_event() {
        let q = EventQueue::new(10);
        assert_eq!(q.push(b"a", b"set"), Pushed::Accepted { schedule: true });
        q.consumer().pop();
        // An event arrives after the drain's last pop but before it stops.
        assert_eq!(q.push(b"b", b"set"), Pushed::Accepted { schedule: false });
        assert!(q.finish_drain(), "the drain must go on");
        q.consumer().pop();
        assert!(!q.finish_drain());
        assert_eq!(q.push(b"c", b"set"), Pushed::Accepted { schedule: true });
    }
}
