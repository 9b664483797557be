//! The message file's layout, which the producer, the consumer and `ipc-watch` agree on,
//! and the checks of its header ([`parse_header`]).
//!
//! ```text
//! offset  size          field
//! 0       8             magic "IPCDMAP1"       written last by the producer: "ready"
//! 8       8             count                  messages the producer will send
//! 16      8             frame_len              bytes per frame
//! 24      8             written                messages written (the producer raises it)
//! 32      8             taken                  messages taken (the consumer raises it)
//! 40      4             producer pid
//! 44      4             consumer pid           0 until a consumer attaches
//! 48      8             slots                  frames in the file
//! 64      slots × frame_len                    the frames; message seq is frame seq % slots
//! ```
//!
//! The lesson's producer makes one frame per message (`slots` = `count`), so nothing
//! wraps and the file ends up holding every message; the bench makes a few and reuses
//! them, as a ring. Numbers are in the machine's byte order.

use common::mapping::bytes_at;
use common::tr;

/// The magic at the start of a message file.
pub const MAGIC: [u8; 8] = *b"IPCDMAP1";
/// Bytes before the first frame.
pub const HEADER: usize = 64;
/// Offset of the magic.
pub const MAGIC_AT: usize = 0;
/// Offset of `count` (a `u64`).
pub const COUNT_AT: usize = 8;
/// Offset of `frame_len` (a `u64`).
pub const FRAME_LEN_AT: usize = 16;
/// Offset of `written` (a `u64`).
pub const WRITTEN_AT: usize = 24;
/// Offset of `taken` (a `u64`).
pub const TAKEN_AT: usize = 32;
/// Offset of the producer's pid (an `i32`).
pub const PRODUCER_AT: usize = 40;
/// Offset of the consumer's pid (an `i32`).
pub const CONSUMER_AT: usize = 44;
/// Offset of `slots` (a `u64`).
pub const SLOTS_AT: usize = 48;
/// The largest file of frames the message lessons make.
pub const MAX_FILE: u64 = 1 << 30;

/// Why a header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The magic is still zero: the producer has not finished setting the file up.
    NotReady,
    /// Anything else, said in words.
    Bad(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NotReady => f.write_str(&tr!("the producer has not finished setting it up")),
            Problem::Bad(why) => f.write_str(why),
        }
    }
}

/// What a message file's header says, every field checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Messages the producer will send.
    pub count: u64,
    /// Bytes per frame.
    pub frame_len: u64,
    /// Frames in the file.
    pub slots: u64,
    /// Messages written.
    pub written: u64,
    /// Messages taken.
    pub taken: u64,
    /// The producer's pid (> 0).
    pub producer: i32,
    /// The consumer's pid, 0 until one attaches.
    pub consumer: i32,
}

// ANCHOR: parse_header
/// Checks a copy of a message file's header (`h`, its first [`HEADER`] bytes or more, of
/// a file of `len` bytes), copied out once, so that every field checked is the field
/// used: the magic, counts a tally can count, frames long enough for a message, frames
/// that fill the file exactly, and a producer pid that is a process.
pub fn parse_header(h: &[u8], len: u64) -> Result<Header, Problem> {
    if h.len() < HEADER || len < HEADER as u64 {
        return Err(Problem::Bad(tr!(
            "{len} bytes is not the size of a message file",
            len
        )));
    }
    let magic: [u8; 8] = bytes_at(h, MAGIC_AT);
    if magic == [0; 8] {
        return Err(Problem::NotReady);
    }
    if magic != MAGIC {
        return Err(Problem::Bad(tr!(
            "it starts with {bytes}, not \"IPCDMAP1\"",
            bytes = format!("{magic:02x?}")
        )));
    }
    let u64_at = |at| u64::from_ne_bytes(bytes_at(h, at));
    let header = Header {
        count: u64_at(COUNT_AT),
        frame_len: u64_at(FRAME_LEN_AT),
        slots: u64_at(SLOTS_AT),
        written: u64_at(WRITTEN_AT),
        taken: u64_at(TAKEN_AT),
        producer: i32::from_ne_bytes(bytes_at(h, PRODUCER_AT)),
        consumer: i32::from_ne_bytes(bytes_at(h, CONSUMER_AT)),
    };
    let Header {
        count,
        frame_len,
        slots,
        ..
    } = header;
    let fills = (HEADER as u64).checked_add(slots.saturating_mul(frame_len)) == Some(len);
    if count > common::tally::MAX_COUNT
        || !(common::message::OVERHEAD as u64..=MAX_FILE).contains(&frame_len)
        || slots > count
        || (slots == 0 && count > 0)
        || !fills
    {
        return Err(Problem::Bad(tr!(
            "{count} messages in {slots} frames of {frame_len} bytes do not fill {len} bytes",
            count,
            slots,
            frame_len,
            len
        )));
    }
    if header.producer <= 0 {
        return Err(Problem::Bad(tr!(
            "producer pid {pid} is no process, so nobody could tell if the producer dies",
            pid = header.producer
        )));
    }
    Ok(header)
}
// ANCHOR_END: parse_header

#[cfg(test)]
mod tests {
    use super::*;

    fn header(count: u64, slots: u64, frame_len: u64, pid: i32) -> Vec<u8> {
        let mut h = vec![0u8; HEADER];
        h[..8].copy_from_slice(&MAGIC);
        h[COUNT_AT..COUNT_AT + 8].copy_from_slice(&count.to_ne_bytes());
        h[FRAME_LEN_AT..FRAME_LEN_AT + 8].copy_from_slice(&frame_len.to_ne_bytes());
        h[SLOTS_AT..SLOTS_AT + 8].copy_from_slice(&slots.to_ne_bytes());
        h[PRODUCER_AT..PRODUCER_AT + 4].copy_from_slice(&pid.to_ne_bytes());
        h
    }

    #[test]
    fn a_header_must_describe_frames_that_fill_the_file_exactly() {
        let h = header(3, 3, 80, 42);
        assert_eq!(parse_header(&h, 64 + 240).map(|h| h.slots), Ok(3));
        assert!(parse_header(&h, 64 + 241).is_err());
        // A ring of 2 frames for 5 messages, as the bench makes.
        assert!(parse_header(&header(5, 2, 80, 42), 64 + 160).is_ok());
        // More frames than messages, or none for some messages.
        assert!(parse_header(&header(1, 2, 80, 42), 64 + 160).is_err());
        assert!(parse_header(&header(1, 0, 80, 42), 64).is_err());
        assert!(parse_header(&header(0, 0, 80, 42), 64).is_ok());
        // Frames too short for a message, an overflowing product, pid 0.
        assert!(parse_header(&header(1, 1, 2, 42), 66).is_err());
        assert!(parse_header(&header(2, u64::MAX, 80, 42), 64).is_err());
        let err = parse_header(&header(1, 1, 80, 0), 144).unwrap_err();
        assert!(err.to_string().contains("producer pid 0"), "{err}");
        assert_eq!(parse_header(&[0; HEADER], 144), Err(Problem::NotReady));
    }
}
