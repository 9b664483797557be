//! Windows ALPC rebuilt from Linux parts (note 003, 3.7.3): the message format, the
//! section, and the client's end of a channel.
//!
//! | ALPC | here |
//! | --- | --- |
//! | the server's connection port | a `SOCK_SEQPACKET` socket listening at a path |
//! | a channel: a pair of communication ports | the connection `accept` makes: one socket at each end, with no name |
//! | a message of at most 256 bytes, copied | the data inside the message |
//! | a section object, set up once | a sealed memfd, passed once with `SCM_RIGHTS`, mapped by both |
//! | the server reads or writes the client's memory | `process_vm_readv` / `process_vm_writev` |
//! | a callback while the client waits | a callback message the client answers before its reply comes |
//!
//! Every message is a 48-byte header (little-endian) and, on the inline path, its data:
//!
//! ```text
//! offset size field
//! 0      4    magic      "ALPC"
//! 4      2    kind       1 connect, 2 accept, 3 request, 4 reply, 5 callback,
//!                        6 callback reply, 7 error
//! 6      2    path       0 inline (data follows), 1 section, 2 direct
//! 8      4    id         procedure (request), callback number, channel number (accept)
//! 12     4    seq        the request's number, repeated in its reply and callbacks
//! 16     8    at         section: offset; direct: address in the client
//! 24     8    len        data bytes (connect, accept: the section's size)
//! 32     8    reply_at   request on the direct path: address of the client's reply buffer
//! 40     8    reply_cap  its size (connect: the size of the reply section asked for)
//! 48     len  data       inline path only, at most 256 bytes
//! ```
//!
//! See also: unix(7), memfd_create(2), fcntl(2) (file seals), mmap(2), process_vm_readv(2).

use std::ffi::CStr;
use std::os::fd::OwnedFd;

use common::owner::{self, Kind};
use common::{Error, Narrator, Result, sys, tr};
use nix::fcntl::{FcntlArg, SealFlag};
use nix::sys::memfd::MFdFlags;

use crate::sys::{self as my, Mapping};
use crate::wire::{Reader, Writer};

/// The note's figure: messages up to 256 bytes are copied through the port.
pub const INLINE_MAX: usize = 256;
/// Bytes in a header.
pub const HEADER: usize = 48;
/// The most a request or a reply may carry on the direct path (a client cannot make the
/// server allocate more).
pub const DIRECT_MAX: usize = 64 << 20;
/// The largest section either side may offer.
pub const SECTION_MAX: usize = 64 << 20;

/// The kinds of message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum MsgKind {
    /// Client to server, first: "open a channel" (with the client's section).
    Connect = 1,
    /// Server to client: the channel's number (with the server's reply section).
    Accept = 2,
    /// A call of procedure `id`.
    Request = 3,
    /// The result of request `seq`.
    Reply = 4,
    /// The server calls back into the waiting client.
    Callback = 5,
    /// The client's answer to a callback.
    CallbackReply = 6,
    /// Request `seq` failed; the data says why.
    Failure = 7,
}

/// Where a message's data is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Path {
    /// In the message itself (at most [`INLINE_MAX`] bytes).
    Inline = 0,
    /// In a section, at `at`, `len` bytes.
    Section = 1,
    /// In the client's memory, at address `at`, `len` bytes.
    Direct = 2,
}

/// A message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the message is.
    pub kind: MsgKind,
    /// Where its data is.
    pub path: Path,
    /// Procedure, callback or channel number.
    pub id: u32,
    /// The request's number.
    pub seq: u32,
    /// Section offset or client address.
    pub at: u64,
    /// Data bytes.
    pub len: u64,
    /// The client's reply buffer (direct path).
    pub reply_at: u64,
    /// Its size.
    pub reply_cap: u64,
}

impl Header {
    /// A header of `kind` with everything else 0, inline.
    pub fn new(kind: MsgKind, id: u32, seq: u32) -> Header {
        Header {
            kind,
            path: Path::Inline,
            id,
            seq,
            at: 0,
            len: 0,
            reply_at: 0,
            reply_cap: 0,
        }
    }
}

// ANCHOR: encode
/// The bytes of a message: the header, then `inline` (the data, on the inline path).
pub fn encode(h: &Header, inline: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(b"ALPC")
        .u16(h.kind as u16)
        .u16(h.path as u16)
        .u32(h.id)
        .u32(h.seq)
        .u64(h.at)
        .u64(h.len)
        .u64(h.reply_at)
        .u64(h.reply_cap)
        .bytes(inline);
    w.0
}

/// Checks and decodes a message of `bytes` (everything `recvmsg` delivered): the magic,
/// the kind, the path, and on the inline path that `len` is what really follows.
pub fn decode(bytes: &[u8]) -> Result<(Header, &[u8])> {
    let mut r = Reader::new(bytes, "an ALPC message");
    if r.take(4, "magic")? != b"ALPC" {
        return Err(Error::bad_data(
            tr!("decode an ALPC message"),
            tr!("it does not start with ALPC"),
        ));
    }
    let kind = match r.u16("kind")? {
        1 => MsgKind::Connect,
        2 => MsgKind::Accept,
        3 => MsgKind::Request,
        4 => MsgKind::Reply,
        5 => MsgKind::Callback,
        6 => MsgKind::CallbackReply,
        7 => MsgKind::Failure,
        other => {
            return Err(Error::bad_data(
                tr!("decode an ALPC message"),
                tr!("unknown kind {other}", other),
            ));
        }
    };
    let path = match r.u16("path")? {
        0 => Path::Inline,
        1 => Path::Section,
        2 => Path::Direct,
        other => {
            return Err(Error::bad_data(
                tr!("decode an ALPC message"),
                tr!("unknown path {other}", other),
            ));
        }
    };
    let h = Header {
        kind,
        path,
        id: r.u32("id")?,
        seq: r.u32("seq")?,
        at: r.u64("at")?,
        len: r.u64("len")?,
        reply_at: r.u64("reply_at")?,
        reply_cap: r.u64("reply_cap")?,
    };
    let inline = r.rest();
    let carried = inline.len() as u64;
    if path == Path::Inline
        && kind != MsgKind::Connect
        && kind != MsgKind::Accept
        && h.len != carried
    {
        return Err(Error::bad_data(
            tr!("decode an ALPC message"),
            tr!(
                "its header says {len} bytes of data, but {carried} came with it",
                len = h.len,
                carried
            ),
        ));
    }
    if carried > INLINE_MAX as u64 {
        return Err(Error::bad_data(
            tr!("decode an ALPC message"),
            tr!(
                "it carries {carried} bytes, more than the {max} a message may",
                carried,
                max = INLINE_MAX
            ),
        ));
    }
    if path != Path::Inline && carried != 0 {
        return Err(Error::bad_data(
            tr!("decode an ALPC message"),
            tr!(
                "its data is elsewhere, yet {carried} bytes came with it",
                carried
            ),
        ));
    }
    Ok((h, inline))
}
// ANCHOR_END: encode

/// The `seq` field of a message that may be malformed (0 if it is too short to have one):
/// only to address an error reply to the request it came from.
pub fn seq_of(bytes: &[u8]) -> u32 {
    bytes
        .get(12..16)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The receive buffer: a header, the largest inline data, and one byte to see more.
pub fn buffer() -> Vec<u8> {
    vec![0u8; HEADER + INLINE_MAX + 1]
}

// ANCHOR: section
/// A new section of `len` bytes: `memfd_create` (sealable), `ftruncate`, then seals so
/// that nobody can shrink or grow it (F_SEAL_SHRINK|F_SEAL_GROW) or change the seals
/// (F_SEAL_SEAL): the peer that maps it can never meet SIGBUS. Returns the descriptor
/// (to pass once) and this side's mapping.
pub fn create_section(n: &Narrator, name: &CStr, len: usize) -> Result<(OwnedFd, Mapping)> {
    let fd = sys::memfd_create_flags(n, name, MFdFlags::MFD_ALLOW_SEALING)?;
    sys::ftruncate(n, &fd, len as u64)?;
    let seals = SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SEAL;
    sys::fcntl(n, &fd, FcntlArg::F_ADD_SEALS(seals))?;
    let map = my::mmap_shared(n, &fd, len, true)?;
    Ok((fd, map))
}

/// Maps a section the peer sent, after checking it: a regular file of ours (a memfd is
/// one), sealed against shrinking, of the size the peer announced and at most
/// [`SECTION_MAX`]. `writable` for the section the server will write into.
pub fn map_peer_section(
    n: &Narrator,
    fd: &OwnedFd,
    announced: u64,
    writable: bool,
) -> Result<Mapping> {
    let st = owner::fstat_ours(fd, Kind::File)?;
    let seals = sys::fcntl(n, fd, FcntlArg::F_GET_SEALS)?;
    let call = tr!("check the peer's section");
    if SealFlag::from_bits_truncate(seals) & SealFlag::F_SEAL_SHRINK != SealFlag::F_SEAL_SHRINK {
        return Err(Error::bad_data(
            call,
            tr!("it is not sealed against shrinking: a mapping of it could meet SIGBUS"),
        ));
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    if size != announced || size == 0 || size > SECTION_MAX as u64 {
        return Err(Error::bad_data(
            call,
            tr!(
                "it has {size} bytes; {announced} were announced, at most {max} allowed",
                size,
                announced,
                max = SECTION_MAX
            ),
        ));
    }
    my::mmap_shared(n, fd, size as usize, writable)
}
// ANCHOR_END: section

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_a_lying_length_is_refused() {
        let mut h = Header::new(MsgKind::Request, 3, 9);
        h.len = 5;
        let bytes = encode(&h, b"hello");
        let (back, data) = decode(&bytes).unwrap();
        assert_eq!((back, data), (h, &b"hello"[..]));
        h.len = 200;
        let err = decode(&encode(&h, b"hello")).unwrap_err().to_string();
        assert!(err.contains("says 200 bytes of data, but 5 came"), "{err}");
        assert!(decode(b"ALPC").is_err());
        assert!(decode(&[0u8; HEADER]).is_err());
    }
}
