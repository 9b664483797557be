//! A Mach port rebuilt from a Unix socket pair (note 003, 3.7.2).
//!
//! | Mach | here |
//! | --- | --- |
//! | a port: a queue in the kernel | a `SOCK_SEQPACKET` socket pair; its queue is the kernel's |
//! | the receive right (one task) | one end, shut for writing: [`ReceiveRight`] |
//! | a send right (any number) | a descriptor of the other end, shut for reading: [`SendRight`] |
//! | a right moved in a message | the descriptor passed with `SCM_RIGHTS` |
//! | a port name (`mach_port_name_t`) | a descriptor number: meaningful in one task only |
//! | the queue limit | `SO_SNDBUF` of the send end: bytes, not messages |
//! | a dead name | `sendmsg` fails with EPIPE; `poll` reports POLLHUP |
//! | `mach_msg(MACH_SEND_MSG)` | [`send`], with a [`SendOption`] for a full queue |
//! | `mach_msg(MACH_RCV_MSG)` | [`receive`] (in [`crate::message`]), which checks the header first |
//!
//! See also: unix(7) (SOCK_SEQPACKET, SCM_RIGHTS), socket(7) (SO_SNDBUF), poll(2),
//! shutdown(2), and `mach_msg` in the Mach 3 Kernel Interfaces.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::{Error, Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{MsgFlags, Shutdown, SockType};

pub use crate::message::{
    COPY_SEND, HEADER, Header, MAKE_SEND, MAKE_SEND_ONCE, MAX_MESSAGE, Message, Outgoing, Received,
    encode, receive,
};
use crate::sys as my;

/// The `SO_SNDBUF` a new port asks for: the kernel's minimum, which holds a handful of
/// small messages, about Mach's default queue limit of 5.
pub const DEFAULT_QUEUE_BYTES: usize = 1;

/// The one receive right of a port: only its holder can take messages out.
#[derive(Debug)]
pub struct ReceiveRight(pub OwnedFd);

/// A send right: any number of tasks may hold one; all of them are descriptors of one
/// socket, so they share the port's queue (and its limit).
#[derive(Debug)]
pub struct SendRight(pub OwnedFd);

impl AsFd for ReceiveRight {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsFd for SendRight {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// The name of a right in this task: its descriptor number.
pub fn name(right: &impl AsFd) -> u32 {
    right.as_fd().as_raw_fd().unsigned_abs()
}

// ANCHOR: allocate
/// `mach_port_allocate` + `mach_port_insert_right(MAKE_SEND)`: a new port, as its receive
/// right and one send right. `queue_bytes` bounds the queue (`SO_SNDBUF`).
pub fn allocate(n: &Narrator, queue_bytes: usize) -> Result<(ReceiveRight, SendRight)> {
    let (receive, send) = sys::socketpair(n, SockType::SeqPacket)?;
    // One way only: the receiver never sends on its right, a sender never receives.
    my::shutdown(n, &receive, Shutdown::Write)?;
    my::shutdown(n, &send, Shutdown::Read)?;
    // Every send right is this one socket, so its send buffer is the port's queue limit.
    sys::setsockopt(n, &send, sys::Opt::SndBuf(queue_bytes))?;
    let limit = sys::getsockopt_sndbuf(n, &send)?;
    say!(
        n,
        "port: receive right {recv}, send right {send}; the queue holds {limit} bytes of messages",
        recv = receive.as_raw_fd(),
        send = send.as_raw_fd(),
        limit
    );
    Ok((ReceiveRight(receive), SendRight(send)))
}
// ANCHOR_END: allocate

/// What `mach_msg` may be told to do when the destination's queue is full (note 003,
/// 3.7.2, the four options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOption {
    /// Wait until there is room (no `MACH_SEND_TIMEOUT`).
    Wait,
    /// Wait at most this long (`MACH_SEND_TIMEOUT` with a time-out).
    Timeout(Duration),
    /// Return at once (`MACH_SEND_TIMEOUT` with 0).
    Now,
    /// `MACH_SEND_NOTIFY`: the sender keeps the message and is told when there is room.
    Notify,
}

/// What became of a message given to [`send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// It is in the queue; `waited` says whether the queue was full first.
    Queued {
        /// The queue was full and the sender waited for room.
        waited: bool,
    },
    /// The queue stayed full for the whole time-out (`MACH_SEND_TIMED_OUT`).
    TimedOut(Duration),
    /// The queue was full and the option said not to wait.
    Full,
}

// ANCHOR: send
/// `mach_msg(MACH_SEND_MSG)`: puts `msg` (with `rider`) in the queue of the port `dest`
/// names. It first tries without waiting (`MSG_DONTWAIT`, for this call only: the send
/// right's open file is shared by every holder, so `O_NONBLOCK` would change it for all);
/// if the queue is full, `option` decides. A dead port is an error (EPIPE): a dead name.
pub fn send(
    n: &Narrator,
    dest: &impl AsFd,
    msg: &Outgoing,
    rider: Option<&OwnedFd>,
    option: SendOption,
) -> Result<Sent> {
    let bytes = encode(msg, name(dest), rider);
    let fds: Vec<i32> = rider.map(|fd| fd.as_raw_fd()).into_iter().collect();
    let dead = |e: Error| {
        if e.errno() == Some(Errno::EPIPE) {
            e.hint(tr!(
                "a dead name: the port's receive right is gone (its task ended or dropped it)"
            ))
        } else {
            e
        }
    };
    match sys::sendmsg_flags(n, dest, &bytes, &fds, MsgFlags::MSG_DONTWAIT) {
        Ok(_) => return Ok(Sent::Queued { waited: false }),
        Err(e) if e.errno() == Some(Errno::EAGAIN) => {}
        Err(e) => return Err(dead(e)),
    }
    match option {
        SendOption::Wait => {
            say!(
                n,
                "the queue is full: option wait: I sleep in sendmsg until there is room"
            );
            sys::sendmsg_flags(n, dest, &bytes, &fds, MsgFlags::empty()).map_err(dead)?;
            Ok(Sent::Queued { waited: true })
        }
        SendOption::Timeout(limit) => {
            let ms = limit.as_millis();
            say!(
                n,
                "the queue is full: option timeout: I wait at most {ms} ms for room",
                ms
            );
            let start = Instant::now();
            loop {
                let left = limit.saturating_sub(start.elapsed());
                let ready = sys::poll(n, &[(dest.as_fd(), PollFlags::POLLOUT)], Some(left))?;
                if ready.has(0, PollFlags::POLLHUP | PollFlags::POLLERR) {
                    return Err(dead(Error::sys(
                        tr!("poll(POLLOUT) on send right {name}", name = name(dest)),
                        Errno::EPIPE,
                    )));
                }
                if !ready.has(0, PollFlags::POLLOUT) {
                    return Ok(Sent::TimedOut(start.elapsed()));
                }
                // Room was reported, but another sender may take it first: try again.
                match sys::sendmsg_flags(n, dest, &bytes, &fds, MsgFlags::MSG_DONTWAIT) {
                    Ok(_) => return Ok(Sent::Queued { waited: true }),
                    Err(e) if e.errno() == Some(Errno::EAGAIN) => continue,
                    Err(e) => return Err(dead(e)),
                }
            }
        }
        SendOption::Now => {
            say!(
                n,
                "the queue is full: option now: I return at once, the message not sent"
            );
            Ok(Sent::Full)
        }
        SendOption::Notify => Ok(Sent::Full),
    }
}
// ANCHOR_END: send

/// Whether the port a send right names has died (its receive right is gone): a dead
/// name. Asks `poll` without waiting; POLLHUP means dead.
pub fn is_dead(n: &Narrator, right: &impl AsFd) -> Result<bool> {
    let ready = sys::poll(
        n,
        &[(right.as_fd(), PollFlags::empty())],
        Some(Duration::ZERO),
    )?;
    Ok(ready.has(0, PollFlags::POLLHUP | PollFlags::POLLERR))
}
