//! Credit-based flow control for shuffle bundles: a sender has at most `window` bundles in
//! flight to each destination; the receiver returns a credit for every bundle it has taken
//! off its inbox, and each credit releases one queued bundle.
//!
//! Senders never block: a bundle without a credit waits in its destination's queue (on
//! the sender, which owns the memory anyway) until credits come back. Queues are FIFO per
//! destination, so frames keep their order and the "done" frame stays last. Pure state,
//! no I/O: the shuffle operator moves what this hands back. Depends on nothing.

use std::collections::VecDeque;

/// Per-destination credits and queued bundles (`T`: a bundle).
#[derive(Debug)]
pub struct Credits<T> {
    /// Bundles in flight allowed per destination; 0: unlimited (no flow control).
    window: usize,
    available: Vec<usize>,
    queued: Vec<VecDeque<T>>,
}

impl<T> Credits<T> {
    /// Credits for `shards` destinations, each starting with a full `window`.
    pub fn new(window: usize, shards: usize) -> Self {
        Credits {
            window,
            available: vec![window; shards],
            queued: (0..shards).map(|_| VecDeque::new()).collect(),
        }
    }

    /// Offers `bundle` for `to`: returns it to send now (a credit was taken), or `None`
    /// when it was queued behind earlier bundles or for lack of credit.
    pub fn offer(&mut self, to: usize, bundle: T) -> Option<T> {
        if self.window == 0 {
            return Some(bundle);
        }
        let (Some(avail), Some(queue)) = (self.available.get_mut(to), self.queued.get_mut(to))
        else {
            // An unknown destination is the transport's error to report, not ours.
            return Some(bundle);
        };
        if *avail == 0 || !queue.is_empty() {
            queue.push_back(bundle);
            return None;
        }
        *avail -= 1;
        Some(bundle)
    }

    /// `n` credits came back from `from`: the queued bundles they release, oldest first.
    /// Credits never exceed the window (a peer granting too many cannot lift the bound).
    pub fn grant(&mut self, from: usize, n: usize) -> Vec<T> {
        let (Some(avail), Some(queue)) = (self.available.get_mut(from), self.queued.get_mut(from))
        else {
            return Vec::new();
        };
        if self.window == 0 {
            return queue.drain(..).collect();
        }
        *avail = (*avail + n).min(self.window);
        let take = (*avail).min(queue.len());
        *avail -= take;
        queue.drain(..take).collect()
    }

    /// Bundles waiting for credit, over all destinations.
    pub fn queued(&self) -> usize {
        self.queued.iter().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_bounds_bundles_in_flight_and_credits_release_them_in_order() {
        let mut c = Credits::new(2, 3);
        assert_eq!(c.offer(1, 'a'), Some('a'));
        assert_eq!(c.offer(1, 'b'), Some('b'));
        assert_eq!(c.offer(1, 'c'), None);
        assert_eq!(c.offer(1, 'd'), None);
        // Another destination has its own window.
        assert_eq!(c.offer(2, 'x'), Some('x'));
        assert_eq!(c.queued(), 2);
        assert_eq!(c.grant(1, 1), vec!['c']);
        assert_eq!(c.grant(1, 5), vec!['d']);
        assert_eq!(c.queued(), 0);
        // Over-granting is capped at the window (2, one of them taken by 'd'): one more
        // goes out, the next waits.
        assert_eq!(c.offer(1, 'e'), Some('e'));
        assert_eq!(c.offer(1, 'f'), None);
    }

    #[test]
    fn a_queued_bundle_keeps_later_ones_behind_it() {
        let mut c = Credits::new(1, 2);
        assert_eq!(c.offer(0, 1), Some(1));
        assert_eq!(c.offer(0, 2), None);
        // A credit arriving while a bundle waits goes to the waiting one first.
        assert_eq!(c.grant(0, 1), vec![2]);
        assert_eq!(c.offer(0, 3), None);
        assert_eq!(c.grant(0, 1), vec![3]);
    }

    #[test]
    fn window_zero_is_unlimited_and_unknown_shards_pass_through() {
        let mut c = Credits::new(0, 2);
        for i in 0..100 {
            assert_eq!(c.offer(1, i), Some(i));
        }
        assert_eq!(c.queued(), 0);
        let mut c = Credits::new(1, 1);
        assert_eq!(c.offer(5, 'z'), Some('z'));
        assert!(c.grant(5, 1).is_empty());
    }
}
