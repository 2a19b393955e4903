//! Delivery validation: every subscriber checks, per publisher, that each
//! sequence number arrives exactly once and in order.
//!
//! Memory is proportional to the gaps seen, not to the message count: a
//! number that arrives ahead of its predecessors opens a gap (the skipped
//! numbers are remembered as missing); a missing number arriving later is a
//! reordering, a number neither expected nor missing is a duplicate, and what
//! is still missing at the end (plus what never arrived at the tail) is lost.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Gaps larger than this are counted as lost without remembering each number.
const MAX_GAP_TRACKED: u64 = 1 << 20;

/// How one arrival compared with what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// The next number.
    InOrder,
    /// Ahead of the next number: the numbers in between are missing (for now).
    Gap,
    /// A missing number arriving after later ones.
    Late,
    /// Already received.
    Duplicate,
}

impl Arrival {
    /// Whether this arrival is a first delivery of its number.
    pub fn is_new(self) -> bool {
        self != Self::Duplicate
    }
}

/// One subscriber's view of one publisher's sequence (numbers from 0).
#[derive(Debug, Clone, Default)]
pub struct SeqCheck {
    expected: u64,
    missing: BTreeSet<u64>,
    untracked_gap: u64,
    received: u64,
    duplicates: u64,
    reordered: u64,
}

impl SeqCheck {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record the arrival of number `n`.
    pub fn record(&mut self, n: u64) -> Arrival {
        if n == self.expected {
            self.expected += 1;
            self.received += 1;
            Arrival::InOrder
        } else if n > self.expected {
            let gap = n - self.expected;
            if gap <= MAX_GAP_TRACKED {
                self.missing.extend(self.expected..n);
            } else {
                self.untracked_gap += gap;
            }
            self.expected = n + 1;
            self.received += 1;
            Arrival::Gap
        } else if self.missing.remove(&n) {
            self.received += 1;
            self.reordered += 1;
            Arrival::Late
        } else {
            self.duplicates += 1;
            Arrival::Duplicate
        }
    }

    /// The count of `sent` numbers (0..sent) judged now.
    pub fn tally(&self, sent: u64) -> Tally {
        let tail = sent.saturating_sub(self.expected);
        let beyond = self.expected.saturating_sub(sent); // numbers never sent: protocol error, count as duplicates
        Tally {
            expected: sent,
            received: self.received,
            lost: self.missing.len() as u64 + self.untracked_gap + tail,
            duplicates: self.duplicates + beyond,
            reordered: self.reordered,
        }
    }
}

/// Delivery accounting, summable over subscribers and runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Deliveries that should have happened.
    pub expected: u64,
    /// First deliveries that did happen.
    pub received: u64,
    /// Never delivered.
    pub lost: u64,
    /// Delivered more than once (extra copies).
    pub duplicates: u64,
    /// Delivered after a later number from the same publisher.
    pub reordered: u64,
}

impl Tally {
    /// Whether every delivery arrived once and in order.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.reordered == 0
    }

    pub fn add(&mut self, o: &Tally) {
        self.expected += o.expected;
        self.received += o.received;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lost {} / dup {} / reordered {}", self.lost, self.duplicates, self.reordered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(seq: &[u64], sent: u64) -> (Vec<Arrival>, Tally) {
        let mut c = SeqCheck::new();
        let arrivals = seq.iter().map(|&n| c.record(n)).collect();
        (arrivals, c.tally(sent))
    }

    #[test]
    fn clean_sequence() {
        let (a, t) = run(&[0, 1, 2, 3], 4);
        assert!(a.iter().all(|&x| x == Arrival::InOrder));
        assert_eq!(t, Tally { expected: 4, received: 4, lost: 0, duplicates: 0, reordered: 0 });
        assert!(t.is_clean());
    }

    #[test]
    fn loss_in_the_middle_and_at_the_tail() {
        let (a, t) = run(&[0, 2, 3], 6);
        assert_eq!(a, [Arrival::InOrder, Arrival::Gap, Arrival::InOrder]);
        assert_eq!(t.lost, 1 + 2); // 1 missing, 4 and 5 never came
        assert_eq!(t.received, 3);
        assert!(!t.is_clean());
    }

    #[test]
    fn reordering_is_not_loss() {
        let (a, t) = run(&[0, 2, 1, 3], 4);
        assert_eq!(a[2], Arrival::Late);
        assert_eq!((t.lost, t.reordered, t.duplicates, t.received), (0, 1, 0, 4));
    }

    #[test]
    fn duplicates() {
        let (a, t) = run(&[0, 1, 1, 0, 2], 3);
        assert_eq!(a[2], Arrival::Duplicate);
        assert!(!a[2].is_new());
        assert_eq!((t.duplicates, t.lost, t.received), (2, 0, 3));
        // A late number delivered twice: once late, then duplicate.
        let (_, t) = run(&[1, 0, 0], 2);
        assert_eq!((t.reordered, t.duplicates, t.lost), (1, 1, 0));
    }

    #[test]
    fn numbers_never_sent_count_as_duplicates() {
        let (_, t) = run(&[0, 1, 2], 2);
        assert_eq!(t.duplicates, 1);
    }

    #[test]
    fn huge_gap_is_counted_not_stored() {
        let mut c = SeqCheck::new();
        c.record(MAX_GAP_TRACKED * 4);
        assert!(c.missing.is_empty());
        assert_eq!(c.tally(MAX_GAP_TRACKED * 4 + 1).lost, MAX_GAP_TRACKED * 4);
    }

    #[test]
    fn tallies_sum() {
        let mut total = Tally::default();
        total.add(&run(&[0, 2], 3).1);
        total.add(&run(&[0, 0], 1).1);
        assert_eq!(total, Tally { expected: 4, received: 3, lost: 1, duplicates: 1, reordered: 0 });
    }
}
