//! A Mach message, rebuilt (note 003, 3.7.2): a fixed header and a body, sent on a port
//! ([`crate::port`]) with at most one right riding along as a descriptor.
//!
//! The message format, little-endian, 24 bytes of header then the body, as in
//! `<mach/message.h>`:
//!
//! ```text
//! offset size field        meaning
//! 0      4    bits         remote disposition | local disposition << 8 (0 = no right)
//! 4      4    size         bytes in the whole message, header included
//! 8      4    remote_port  the destination, as the sender names it (its descriptor)
//! 12     4    local_port   the right that rides along (a reply port), as the sender names it
//! 16     4    voucher      0 (Mach's vouchers are not rebuilt)
//! 20     4    id           what the message asks for
//! 24     ...  body
//! ```
//!
//! On receive, as Mach does, `remote_port` becomes the rider's name in the receiver (the
//! new descriptor the kernel installed) and `local_port` the receiving port's own name.
//!
//! See also: unix(7) (SCM_RIGHTS), recvmsg(2), and `mach_msg_header_t` in
//! `<mach/message.h>`.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use common::owner::{self, Kind};
use common::{Narrator, Result, tr};

use crate::port::{SendRight, name};
use crate::wire::{self, Reader, Writer};

/// Bytes in a message header.
pub const HEADER: usize = 24;
/// The largest message a port accepts, header included (a rebuilt port keeps messages
/// small, as Mach's inline messages are; large data is what sections are for).
pub const MAX_MESSAGE: usize = 1024;
/// `MACH_MSG_TYPE_COPY_SEND`: the sender keeps its send right; the message uses a copy.
pub const COPY_SEND: u32 = 19;
/// `MACH_MSG_TYPE_MAKE_SEND`: a new send right made from a receive right the sender holds.
pub const MAKE_SEND: u32 = 20;
/// `MACH_MSG_TYPE_MAKE_SEND_ONCE`: a reply right meant to be used once.
pub const MAKE_SEND_ONCE: u32 = 21;
/// A message header, as in `<mach/message.h>` (`mach_msg_header_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    /// Dispositions: remote (low byte) and local (next byte); 0 means no right.
    pub bits: u32,
    /// Bytes in the whole message, header included.
    pub size: u32,
    /// The destination (sent), or the rider's name here (received).
    pub remote: u32,
    /// The right that rides along (sent), or this port's name (received).
    pub local: u32,
    /// What the message asks for.
    pub id: u32,
}

impl Header {
    /// The disposition of the right that rides along (`MACH_MSGH_BITS_LOCAL`); 0: none.
    pub fn local_disposition(&self) -> u32 {
        (self.bits >> 8) & 0xff
    }
}

/// A message to send: the header's fields and the body; the right that rides along, if
/// any, is given to [`crate::port::send`].
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// What the message asks for.
    pub id: u32,
    /// The body.
    pub body: Vec<u8>,
    /// How the rider is given (`MAKE_SEND`, `MAKE_SEND_ONCE`, `COPY_SEND`); 0: no rider.
    pub disposition: u32,
}

// ANCHOR: encode
/// The bytes of `msg` sent to the port this task names `dest`, with `rider` (a
/// descriptor) riding along.
pub fn encode(msg: &Outgoing, dest: u32, rider: Option<&OwnedFd>) -> Vec<u8> {
    let size = HEADER + msg.body.len();
    let local_bits = if rider.is_some() { msg.disposition } else { 0 };
    let mut w = Writer::default();
    w.u32(COPY_SEND | (local_bits << 8))
        .u32(u32::try_from(size).unwrap_or(u32::MAX))
        .u32(dest)
        .u32(rider.map_or(0, |fd| fd.as_raw_fd().unsigned_abs()))
        .u32(0)
        .u32(msg.id)
        .bytes(&msg.body);
    w.0
}
// ANCHOR_END: encode

/// A message taken from a port, its header checked and translated to this task's names.
#[derive(Debug)]
pub struct Message {
    /// The header as this task sees it (`remote` = the rider's name here).
    pub header: Header,
    /// The body.
    pub body: Vec<u8>,
    /// The right that rode along (a reply port), if the header declared one.
    pub rider: Option<SendRight>,
}

/// What [`receive`] found in the queue.
#[derive(Debug)]
pub enum Received {
    /// A well-formed message.
    Message(Message),
    /// A message refused for what it claims: why, its id, and the rider if it carried a
    /// well-declared one (so that the server can still answer with an error).
    Refused {
        /// Why, in one line.
        why: String,
        /// The message's id as it claimed it (0 if too short to say).
        id: u32,
        /// The declared right that came with it, to answer on.
        rider: Option<SendRight>,
    },
    /// Every send right is gone: no message can ever come (Mach's no-senders notification).
    NoSenders,
}

// ANCHOR: receive
/// `mach_msg(MACH_RCV_MSG)`: waits for the next message on `port` and checks it before
/// anything uses it: the header's size against the bytes that arrived, the declared right
/// against the descriptors that came (none missing, none extra), and the rider's type.
pub fn receive(n: &Narrator, port: &impl AsFd) -> Result<Received> {
    // One byte more than the limit: a message that fills it is too long.
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    let Some(got) = wire::receive(n, port, &mut buf)? else {
        return Ok(Received::NoSenders);
    };
    let mut fds = got.fds;
    let refuse =
        |why: String, id: u32, rider: Option<SendRight>| Received::Refused { why, id, rider };
    if got.len < HEADER {
        return Ok(refuse(
            tr!(
                "it has {len} bytes, fewer than the {header}-byte header",
                len = got.len,
                header = HEADER
            ),
            0,
            None,
        ));
    }
    let mut r = Reader::new(&buf[..got.len], "a Mach message");
    let bits = r.u32("bits")?;
    let size = r.u32("size")?;
    let _remote = r.u32("remote_port")?;
    let _local = r.u32("local_port")?;
    let _voucher = r.u32("voucher")?;
    let id = r.u32("id")?;
    let body = r.rest().to_vec();
    let declared = (bits >> 8) & 0xff;
    // The rider, if the message declared one and one came (checked below).
    let declared_ok = matches!(declared, MAKE_SEND | MAKE_SEND_ONCE | COPY_SEND);
    let rider = if declared_ok && fds.len() == 1 {
        fds.pop().map(SendRight)
    } else {
        None
    };
    if got.len > MAX_MESSAGE {
        return Ok(refuse(
            tr!(
                "it is longer than the {max}-byte limit of a port message",
                max = MAX_MESSAGE
            ),
            id,
            rider,
        ));
    }
    if size as usize != got.len {
        return Ok(refuse(
            tr!(
                "its header says {size} bytes, but {len} arrived",
                size,
                len = got.len
            ),
            id,
            rider,
        ));
    }
    if declared != 0 && !declared_ok {
        return Ok(refuse(
            tr!(
                "it declares a right of unknown disposition {declared}",
                declared
            ),
            id,
            None,
        ));
    }
    if declared_ok && rider.is_none() && fds.is_empty() {
        return Ok(refuse(
            tr!(
                "its header declares a right (disposition {declared}), but no descriptor came with it",
                declared
            ),
            id,
            None,
        ));
    }
    if !fds.is_empty() {
        // Dropping them closes them: rights the header does not declare are not kept.
        let count = fds.len();
        let why = if declared == 0 {
            tr!(
                "{count} descriptors came with it, but its header declares no right",
                count
            )
        } else {
            tr!(
                "{count} descriptors came with it, but its header declares one right",
                count
            )
        };
        return Ok(refuse(why, id, None));
    }
    if let Some(right) = &rider {
        // A right must be a socket (a port), and one of this user's: a client cannot make
        // the server write into a FIFO or a file by passing it as a "reply port".
        if let Err(e) = owner::fstat_ours(right, Kind::Socket) {
            return Ok(refuse(
                tr!("the right it carries is not a port: {e}", e),
                id,
                None,
            ));
        }
    }
    let header = Header {
        bits,
        size,
        remote: rider.as_ref().map_or(0, name),
        local: name(port),
        id,
    };
    Ok(Received::Message(Message {
        header,
        body,
        rider,
    }))
}
// ANCHOR_END: receive
