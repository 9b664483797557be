//! The demo message: what producers send and consumers verify, in every demo.
//!
//! One frame, all integers little-endian, written down so that a peer can be written in
//! another language (Python: `struct.pack("<QI", seq, len(p)) + p`, then
//! `struct.pack("<I", zlib.crc32(frame))`):
//!
//! ```text
//! offset     size  field
//! 0          8     seq       u64, 0 for the first message, then 1, 2, ...
//! 8          4     len       u32, the number of payload bytes
//! 12         len   payload   the letters a..z, starting at letter (seq mod 26)
//! 12 + len   4     crc32     u32, CRC-32 (as zlib.crc32) of the 12 + len bytes before it
//! ```
//!
//! Everything that arrives from another process is untrusted: [`decode`] and
//! [`parse_header`] check every length against the buffer and a limit before they use
//! it, and report a bad frame as a [`DecodeError`], never a panic. A wrong checksum is
//! not an error here: the frame is returned with `intact == false` and the consumer's
//! [`crate::tally::Tally`] counts it as corrupt.
//!
//! This module knows nothing about pipes or sockets; [`crate::stream`] reads frames
//! from a byte stream, and datagram demos call [`decode`] on each message.

use std::fmt;

use crate::tr;

/// Bytes before the payload: `seq` and `len`.
pub const HEADER_LEN: usize = 12;
/// Bytes after the payload: `crc32`.
pub const TRAILER_LEN: usize = 4;
/// Bytes a frame adds to its payload.
pub const OVERHEAD: usize = HEADER_LEN + TRAILER_LEN;

/// The fixed part at the start of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The sequence number.
    pub seq: u64,
    /// The payload length in bytes.
    pub len: usize,
}

/// A decoded frame, borrowing its payload from the buffer it was read into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The sequence number the sender wrote.
    pub seq: u64,
    /// The payload bytes.
    pub payload: &'a [u8],
    /// Whether the checksum matched: `false` means the bytes changed on the way.
    pub intact: bool,
}

/// Why bytes from the other process are not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the frame needs.
    Truncated {
        /// Bytes present.
        have: usize,
        /// Bytes the frame needs (at least).
        need: usize,
    },
    /// The header announces a payload longer than the receiver accepts.
    TooLong {
        /// The length in the header.
        len: u64,
        /// The receiver's limit.
        max: usize,
    },
    /// More bytes than the header accounts for (only for one-frame buffers: a datagram).
    TrailingBytes {
        /// Bytes present.
        have: usize,
        /// Bytes the header accounts for.
        frame: usize,
    },
}

impl fmt::Display for DecodeError {
    /// One sentence, in the chosen language (`tr!`): it ends up in an error line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match *self {
            DecodeError::Truncated { have, need } => {
                tr!(
                    "frame truncated: {have} bytes, at least {need} needed",
                    have,
                    need
                )
            }
            DecodeError::TooLong { len, max } => tr!(
                "frame header says {len} payload bytes, over the limit of {max}",
                len,
                max
            ),
            DecodeError::TrailingBytes { have, frame } => tr!(
                "{have} bytes, but the frame header accounts for {frame}",
                have,
                frame
            ),
        };
        f.write_str(&text)
    }
}

impl std::error::Error for DecodeError {}

/// Fills `payload` with the letters the sender of message `seq` writes: printable, so
/// that `strace`, `cat` and a hex dump show something a person can read.
pub fn fill_payload(seq: u64, payload: &mut [u8]) {
    let mut letter = (seq % 26) as u8;
    for byte in payload {
        *byte = b'a' + letter;
        letter = if letter == 25 { 0 } else { letter + 1 };
    }
}

// ANCHOR: encode
/// Writes the frame for message `seq` with a `size`-byte payload of [`fill_payload`]'s
/// letters into `out` (cleared first), so that one buffer serves a whole run.
pub fn encode_into(seq: u64, size: usize, out: &mut Vec<u8>) {
    push_header(seq, size, out);
    out.resize(HEADER_LEN + size, 0);
    fill_payload(seq, &mut out[HEADER_LEN..]);
    push_crc(out);
}

/// Writes the frame for message `seq` carrying `payload` into `out` (cleared first).
pub fn encode_payload(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    push_header(seq, payload.len(), out);
    out.extend_from_slice(payload);
    push_crc(out);
}

fn push_header(seq: u64, size: usize, out: &mut Vec<u8>) {
    // A payload over u32::MAX bytes cannot be described by the header. Every demo's
    // command line keeps sizes far below that, so reaching this panic is a bug.
    let len = u32::try_from(size).unwrap_or_else(|_| panic!("payload of {size} bytes"));
    out.clear();
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
}

fn push_crc(out: &mut Vec<u8>) {
    let crc = crc32fast::hash(out);
    out.extend_from_slice(&crc.to_le_bytes());
}
// ANCHOR_END: encode

// ANCHOR: decode
/// Reads the header at the start of `bytes`, refusing a payload longer than `max_len`.
pub fn parse_header(bytes: &[u8], max_len: usize) -> Result<Header, DecodeError> {
    let (Some(seq), Some(len)) = (bytes.get(0..8), bytes.get(8..HEADER_LEN)) else {
        return Err(DecodeError::Truncated {
            have: bytes.len(),
            need: HEADER_LEN,
        });
    };
    let seq = u64::from_le_bytes(seq.try_into().unwrap_or_default());
    let len = u32::from_le_bytes(len.try_into().unwrap_or_default());
    match usize::try_from(len) {
        Ok(len) if len <= max_len => Ok(Header { seq, len }),
        _ => Err(DecodeError::TooLong {
            len: len.into(),
            max: max_len,
        }),
    }
}

/// Checks the trailer of a whole frame (`header.len` payload bytes and the CRC after the
/// header in `frame`) and returns it as a [`Frame`].
pub fn check_frame(header: Header, frame: &[u8]) -> Result<Frame<'_>, DecodeError> {
    let need = HEADER_LEN + header.len + TRAILER_LEN;
    let (Some(covered), Some(crc)) = (
        frame.get(..need - TRAILER_LEN),
        frame.get(need - TRAILER_LEN..need),
    ) else {
        return Err(DecodeError::Truncated {
            have: frame.len(),
            need,
        });
    };
    let crc = u32::from_le_bytes(crc.try_into().unwrap_or_default());
    Ok(Frame {
        seq: header.seq,
        payload: &covered[HEADER_LEN..],
        intact: crc32fast::hash(covered) == crc,
    })
}

/// Decodes a buffer that holds exactly one frame (a datagram, a queue message, a slot of
/// shared memory).
pub fn decode(bytes: &[u8], max_len: usize) -> Result<Frame<'_>, DecodeError> {
    let header = parse_header(bytes, max_len)?;
    let frame = HEADER_LEN + header.len + TRAILER_LEN;
    if bytes.len() > frame {
        return Err(DecodeError::TrailingBytes {
            have: bytes.len(),
            frame,
        });
    }
    check_frame(header, bytes)
}
// ANCHOR_END: decode

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64, size: usize) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(seq, size, &mut out);
        out
    }

    #[test]
    fn a_frame_round_trips() {
        let bytes = frame(41, 30);
        assert_eq!(bytes.len(), 30 + OVERHEAD);
        let f = decode(&bytes, 100).unwrap();
        assert_eq!((f.seq, f.payload.len(), f.intact), (41, 30, true));
        assert_eq!(
            &f.payload[..3],
            b"pqr",
            "seq 41 starts at letter 41 mod 26 = 15 (p)"
        );
    }

    #[test]
    fn the_layout_matches_the_documentation() {
        let bytes = frame(1, 2);
        assert_eq!(&bytes[..12], &[1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&bytes[12..14], b"bc");
        assert_eq!(bytes[14..], crc32fast::hash(&bytes[..14]).to_le_bytes());
    }

    #[test]
    fn the_documented_python_sender_produces_the_same_bytes() {
        // docs/src/message.md's Python `frame(1, b"bc")`, run with CPython's zlib.crc32,
        // printed these bytes; a peer written from the book must interoperate.
        let python = "01000000000000000200000062637d000c82";
        let rust: String = frame(1, 2).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(rust, python);
    }

    #[test]
    fn a_given_payload_is_framed_the_same_way() {
        let mut out = Vec::new();
        encode_payload(41, &frame(41, 30)[HEADER_LEN..HEADER_LEN + 30], &mut out);
        assert_eq!(out, frame(41, 30));
    }

    #[test]
    fn an_empty_payload_is_a_valid_frame() {
        assert_eq!(decode(&frame(0, 0), 0).unwrap().payload, b"");
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = frame(3, 50);
        for cut in 0..bytes.len() {
            let err = decode(&bytes[..cut], 100).unwrap_err();
            assert!(
                matches!(err, DecodeError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
        }
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_it_is_used() {
        let mut bytes = frame(0, 8);
        bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode(&bytes, 1 << 20),
            Err(DecodeError::TooLong {
                len: u32::MAX.into(),
                max: 1 << 20
            })
        );
        assert_eq!(
            decode(&frame(0, 8), 7),
            Err(DecodeError::TooLong { len: 8, max: 7 })
        );
    }

    #[test]
    fn extra_bytes_after_a_datagram_are_refused() {
        let mut bytes = frame(0, 8);
        bytes.push(0);
        assert!(matches!(
            decode(&bytes, 100),
            Err(DecodeError::TrailingBytes { .. })
        ));
    }

    #[test]
    fn a_flipped_bit_anywhere_makes_the_frame_corrupt_or_invalid() {
        let good = frame(7, 20);
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            match decode(&bad, 100) {
                Ok(f) => assert!(!f.intact, "flip at byte {i} went unnoticed"),
                Err(_) => assert!((8..12).contains(&i), "only a bad length may fail to decode"),
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_the_decoder() {
        // A small xorshift generator: reproducible, no dependency.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut intact = 0;
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            // Half the time, make the length field plausible so the checksum path runs.
            if len >= HEADER_LEN && next() % 2 == 0 {
                let claimed = (len.saturating_sub(OVERHEAD)) as u32;
                buf[8..12].copy_from_slice(&claimed.to_le_bytes());
            }
            if let Ok(f) = decode(&buf, 1 << 16) {
                intact += usize::from(f.intact);
            }
        }
        assert_eq!(intact, 0, "random bytes passed the CRC check");
    }
}
