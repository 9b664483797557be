//! Bytes on the wire: little-endian fields in, and a reader that trusts nothing out.
//!
//! Every message either rebuilt system receives comes from another process, so its bytes
//! are read through [`Reader`], which never reads past the end and says which field was
//! missing; and [`receive`] tells a peer that has gone (no sender left) from a message that
//! is merely empty, which `recvmsg` returns alike, as 0 bytes (unix(7)).

use std::os::fd::{AsFd, OwnedFd};

use common::{Error, Narrator, Result, sys, tr};
use nix::poll::PollFlags;

/// Appends little-endian fields to a message being built.
#[derive(Debug, Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// A 16-bit field.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A 32-bit field.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A signed 32-bit field.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A 64-bit field.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A signed 64-bit field.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Raw bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
}

/// Reads little-endian fields from untrusted bytes, front to back; a field that is not
/// all there is an error naming it, never a panic.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`, which are `what` (for the errors: "a Mach message").
    pub fn new(bytes: &'a [u8], what: &'static str) -> Reader<'a> {
        Reader { rest: bytes, what }
    }

    /// The next `len` bytes.
    pub fn take(&mut self, len: usize, field: &str) -> Result<&'a [u8]> {
        if self.rest.len() < len {
            return Err(Error::bad_data(
                tr!("decode {what}", what = self.what),
                tr!(
                    "it ends before its field {field} ({len} bytes needed, {left} left)",
                    field,
                    len,
                    left = self.rest.len()
                ),
            ));
        }
        let (head, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// A 16-bit field.
    pub fn u16(&mut self, field: &str) -> Result<u16> {
        self.array(field).map(u16::from_le_bytes)
    }
    /// A 32-bit field.
    pub fn u32(&mut self, field: &str) -> Result<u32> {
        self.array(field).map(u32::from_le_bytes)
    }
    /// A signed 32-bit field.
    pub fn i32(&mut self, field: &str) -> Result<i32> {
        self.array(field).map(i32::from_le_bytes)
    }
    /// A 64-bit field.
    pub fn u64(&mut self, field: &str) -> Result<u64> {
        self.array(field).map(u64::from_le_bytes)
    }
    /// A signed 64-bit field.
    pub fn i64(&mut self, field: &str) -> Result<i64> {
        self.array(field).map(i64::from_le_bytes)
    }

    /// Whatever is left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// An error unless every byte was read.
    pub fn end(&self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::bad_data(
                tr!("decode {what}", what = self.what),
                tr!(
                    "{extra} bytes follow its last field",
                    extra = self.rest.len()
                ),
            ))
        }
    }
}

/// One message as `recvmsg` delivered it: its bytes (in the caller's buffer) and the
/// descriptors that came with it.
#[derive(Debug)]
pub struct Incoming {
    /// How many bytes of the buffer the message filled.
    pub len: usize,
    /// The descriptors (rights) that came with it, already installed in this process.
    pub fds: Vec<OwnedFd>,
}

/// `recvmsg` of one message into `buf`, or `None` when no sender is left.
///
/// `recvmsg` returns 0 bytes both at the end (every peer descriptor closed) and for a
/// message of 0 bytes, which any sender may send. A server that took the second for the
/// first would stop serving everybody because one client sent nothing; so on 0 bytes a
/// `poll` asks the kernel which it was: POLLHUP means the end.
pub fn receive(n: &Narrator, fd: &impl AsFd, buf: &mut [u8]) -> Result<Option<Incoming>> {
    let got = sys::recvmsg_fds(n, fd, buf)?;
    if got.len == 0 && got.fds.is_empty() {
        let hup = sys::poll(
            n,
            &[(fd.as_fd(), PollFlags::POLLIN)],
            Some(std::time::Duration::ZERO),
        )?;
        if hup.has(0, PollFlags::POLLHUP) {
            return Ok(None);
        }
    }
    Ok(Some(Incoming {
        len: got.len,
        fds: got.fds,
    }))
}

/// Text from another process, made safe to print on one line: at most 200 characters.
/// The peer may write in Korean (its reasons are translated), so any printable UTF-8
/// stays; what could change what the terminal shows becomes '?': control characters (C0,
/// DEL and C1, where escape sequences begin), bidirectional formatting characters (they
/// reorder the text around them), and bytes that are not UTF-8.
pub fn printable(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut chars = text.chars();
    let mut shown: String = chars
        .by_ref()
        .take(200)
        .map(|c| {
            if c.is_control() || is_bidi_format(c) || c == char::REPLACEMENT_CHARACTER {
                '?'
            } else {
                c
            }
        })
        .collect();
    if chars.next().is_some() {
        shown.push_str("...");
    }
    shown
}

/// The bidirectional formatting characters of Unicode (UAX #9): marks, embeddings,
/// overrides and isolates.
fn is_bidi_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_never_reads_past_the_end_and_names_the_missing_field() {
        let mut w = Writer::default();
        w.u32(7).u16(2);
        let mut r = Reader::new(&w.0, "a test message");
        assert_eq!(r.u32("first"), Ok(7));
        let err = r.u32("second").unwrap_err().to_string();
        assert!(
            err.contains("field second (4 bytes needed, 2 left)"),
            "{err}"
        );
    }

    #[test]
    fn printable_text_is_one_short_line() {
        assert_eq!(printable(b"ok\n\x1b[2J"), "ok??[2J");
        assert!(printable(&[b'a'; 300]).ends_with("..."));
    }

    #[test]
    fn printable_text_keeps_korean_and_nothing_that_moves_the_terminal() {
        let reason = "nobody: 이 이름으로 등록된 포트가 없습니다";
        assert_eq!(printable(reason.as_bytes()), reason);
        assert_eq!(printable("a\u{202E}b\u{9B}c".as_bytes()), "a?b?c");
        assert_eq!(printable(b"a\xffb"), "a?b");
        let long = "가".repeat(300);
        assert_eq!(
            printable(long.as_bytes()),
            format!("{}...", "가".repeat(200))
        );
    }
}
