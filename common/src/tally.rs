//! The consumer's tally, and the one summary line every demo ends with.
//!
//! ```text
//! summary: received=1000 ok=1000 corrupt=0 out_of_order=0 missing=0 bytes=65536000
//! ```
//!
//! - `received`: whole frames read;
//! - `ok`: frames whose checksum matched;
//! - `corrupt`: frames whose checksum did not match;
//! - `out_of_order`: good frames whose `seq` was not the one after the previous good frame
//!   (a repeat counts here too);
//! - `missing`: sequence numbers `0..count` that never arrived intact;
//! - `bytes`: payload bytes of all frames received.
//!
//! Tests and people read this line; its words and their order do not change.

use crate::error::{Error, Result};
use crate::message::Frame;
use crate::tr;

/// The largest `--count` a consumer accepts: the tally keeps one bit per expected message
/// (100 million messages: 12.5 MB).
pub const MAX_COUNT: u64 = 100_000_000;

/// What a consumer has seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    expected: u64,
    received: u64,
    ok: u64,
    corrupt: u64,
    out_of_order: u64,
    bytes: u64,
    /// One bit per sequence number in `0..expected`: has it arrived intact?
    seen: Vec<u64>,
    distinct: u64,
    next_seq: u64,
}

impl Tally {
    /// A tally for a run that should deliver messages `0..expected` (at most [`MAX_COUNT`]).
    pub fn new(expected: u64) -> Tally {
        let expected = expected.min(MAX_COUNT);
        Tally {
            expected,
            received: 0,
            ok: 0,
            corrupt: 0,
            out_of_order: 0,
            bytes: 0,
            seen: vec![0; expected.div_ceil(64) as usize],
            distinct: 0,
            next_seq: 0,
        }
    }

    /// Counts one frame.
    pub fn record(&mut self, frame: &Frame<'_>) {
        self.received += 1;
        self.bytes += frame.payload.len() as u64;
        if !frame.intact {
            self.corrupt += 1;
            return;
        }
        self.ok += 1;
        if frame.seq != self.next_seq {
            self.out_of_order += 1;
        }
        self.next_seq = frame.seq.wrapping_add(1);
        if frame.seq < self.expected {
            let (word, bit) = ((frame.seq / 64) as usize, frame.seq % 64);
            if self.seen[word] & (1 << bit) == 0 {
                self.seen[word] |= 1 << bit;
                self.distinct += 1;
            }
        }
    }

    /// Counts a message that could not even be decoded as a frame (a datagram or queue
    /// message of `len` bytes with a bad header): received, and corrupt.
    pub fn record_undecodable(&mut self, len: usize) {
        self.received += 1;
        self.corrupt += 1;
        self.bytes += len as u64;
    }

    /// Adds `other`'s counts to these, for one summary over several streams (one per
    /// message type, say). Afterwards only [`Tally::summary`] and [`Tally::verdict`] of
    /// `self` are meaningful.
    pub fn absorb(&mut self, other: &Tally) {
        self.expected += other.expected;
        self.received += other.received;
        self.ok += other.ok;
        self.corrupt += other.corrupt;
        self.out_of_order += other.out_of_order;
        self.bytes += other.bytes;
        self.distinct += other.distinct;
    }

    /// Frames received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Payload bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Sequence numbers in `0..expected` that have not arrived intact.
    pub fn missing(&self) -> u64 {
        self.expected - self.distinct
    }

    /// The summary line (without a newline).
    pub fn summary(&self) -> String {
        format!(
            "summary: received={} ok={} corrupt={} out_of_order={} missing={} bytes={}",
            self.received,
            self.ok,
            self.corrupt,
            self.out_of_order,
            self.missing(),
            self.bytes
        )
    }

    /// `Ok` if every expected message arrived once, intact and in order; otherwise an
    /// error that says what was wrong (the consumer then exits 1).
    pub fn verdict(&self) -> Result<()> {
        let extra = self.ok - self.distinct;
        if self.corrupt == 0 && self.out_of_order == 0 && self.missing() == 0 && extra == 0 {
            return Ok(());
        }
        Err(Error::bad_data(
            tr!("verify the messages"),
            tr!(
                "{corrupt} corrupt, {out_of_order} out of order, {missing} missing, {extra} unexpected",
                corrupt = self.corrupt,
                out_of_order = self.out_of_order,
                missing = self.missing(),
                extra
            ),
        )
        .hint(tr!(
            "does the consumer's --count match the producer's? was a peer killed?"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, intact: bool) -> Frame<'static> {
        Frame {
            seq,
            payload: b"abcd",
            intact,
        }
    }

    #[test]
    fn a_perfect_run() {
        let mut t = Tally::new(3);
        for seq in 0..3 {
            t.record(&frame(seq, true));
        }
        assert_eq!(
            t.summary(),
            "summary: received=3 ok=3 corrupt=0 out_of_order=0 missing=0 bytes=12"
        );
        assert_eq!(t.verdict(), Ok(()));
    }

    #[test]
    fn nothing_expected_nothing_received_is_a_perfect_run() {
        let t = Tally::new(0);
        assert_eq!(t.missing(), 0);
        assert_eq!(t.verdict(), Ok(()));
    }

    #[test]
    fn a_gap_a_swap_a_repeat_and_a_corruption_are_each_counted() {
        let mut t = Tally::new(5);
        for (seq, intact) in [(0, true), (2, true), (1, true), (1, true), (3, false)] {
            t.record(&frame(seq, intact));
        }
        // 2 after 0, 1 after 2 and the repeated 1 are out of order; 3 is corrupt and 4
        // never came, so both are missing.
        assert_eq!(
            t.summary(),
            "summary: received=5 ok=4 corrupt=1 out_of_order=3 missing=2 bytes=20"
        );
        let err = t.verdict().unwrap_err().to_string();
        assert!(
            err.contains("1 corrupt, 3 out of order, 2 missing, 1 unexpected"),
            "{err}"
        );
    }

    #[test]
    fn undecodable_messages_are_corrupt_and_tallies_combine() {
        let mut a = Tally::new(2);
        a.record(&frame(0, true));
        a.record(&frame(1, true));
        let mut b = Tally::new(2);
        b.record(&frame(0, true));
        b.record_undecodable(7);
        a.absorb(&b);
        assert_eq!(
            a.summary(),
            "summary: received=4 ok=3 corrupt=1 out_of_order=0 missing=1 bytes=19"
        );
        assert!(a.verdict().is_err());
    }

    #[test]
    fn a_sequence_number_beyond_the_count_is_unexpected_not_a_panic() {
        let mut t = Tally::new(1);
        t.record(&frame(0, true));
        t.record(&frame(u64::MAX, true));
        assert_eq!(t.missing(), 0);
        assert!(t.verdict().is_err());
    }
}
