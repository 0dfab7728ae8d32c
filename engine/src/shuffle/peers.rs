//! Which peers still owe a shuffle step their "done", and when each was last heard from.
//! The idle bound is per peer: progress from one shard (its frames, or the heartbeats the
//! module turns into empty bundles from it) never stands in for another shard's silence,
//! so two shards waiting on a stopped third cannot keep each other waiting forever.
//! Depends on nothing.

use std::time::Instant;

pub(super) struct Peers {
    /// Per shard: when last heard from, or `None` once it said "done" (or never sends here).
    heard: Vec<Option<Instant>>,
}

impl Peers {
    /// The peers of shard `me` among `shards` that send to it (none if `sends_here` is false).
    pub(super) fn new(shards: usize, me: usize, sends_here: bool) -> Self {
        let now = Instant::now();
        let heard = (0..shards)
            .map(|s| (sends_here && s != me).then_some(now))
            .collect();
        Peers { heard }
    }

    /// Something (a bundle, even an empty one) came from shard `from`.
    pub(super) fn heard(&mut self, from: usize, now: Instant) {
        if let Some(Some(t)) = self.heard.get_mut(from) {
            *t = now;
        }
    }

    /// Shard `from` sent its "done": it is no longer waited for.
    pub(super) fn done(&mut self, from: usize) {
        if let Some(h) = self.heard.get_mut(from) {
            *h = None;
        }
    }

    /// The waiting starts now: every peer still out gets a full idle period from here.
    pub(super) fn start(&mut self, now: Instant) {
        self.heard.iter_mut().flatten().for_each(|t| *t = now);
    }

    /// When the longest-silent peer still out was last heard from (none: nobody is out).
    pub(super) fn oldest(&self) -> Option<Instant> {
        self.heard.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn one_peer_heard_does_not_refresh_a_silent_one() {
        let t0 = Instant::now();
        let mut p = Peers::new(3, 0, true);
        p.start(t0);
        p.heard(1, t0 + Duration::from_secs(4));
        assert_eq!(p.oldest(), Some(t0), "shard 2 stays silent since t0");
        p.done(2);
        assert_eq!(p.oldest(), Some(t0 + Duration::from_secs(4)));
        p.done(1);
        assert_eq!(p.oldest(), None);
    }

    #[test]
    fn unknown_senders_and_non_receivers_are_ignored() {
        let mut p = Peers::new(2, 1, false);
        p.heard(usize::MAX, Instant::now());
        p.done(usize::MAX);
        assert_eq!(p.oldest(), None);
    }
}
