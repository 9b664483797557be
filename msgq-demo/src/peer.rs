//! Waiting for the other side: who it is, and how a wait notices that it died.
//!
//! A System V queue has no end-of-file and no time-out: a `msgrcv` waiting for a producer
//! that was killed would wait for ever, and so would a `msgsnd` in front of a full queue
//! whose consumer was killed. So a role that may wait starts a
//! [`Ticker`](common::process::Ticker), which interrupts its blocking call every
//! [`PEER_CHECK`], and each blocking call takes a [`Patience`] made by [`patience`],
//! which then checks that the [`Peer`] still lives. The call is narrated once, as the
//! blocking call it is: `msgsnd(3, {mtype=1, ...}, 80, 0) ...` before it waits, `= 0`
//! when it returns.

use std::time::Duration;

use common::process::{self, Patience};
use common::{Error, Narrator, Result, tr};
use nix::errno::Errno;

use crate::sysv;

/// How often a waiting role checks that its peer lives.
pub const PEER_CHECK: Duration = Duration::from_millis(500);

/// The process on the other side of a wait, whose death ends the wait.
#[derive(Debug, Clone, Copy)]
pub enum Peer {
    /// A process we know by its pid: the forked consumer, or the parent producer.
    Known {
        /// What it is, for the message: "producer", "consumer".
        role: &'static str,
        /// Its pid.
        pid: i32,
    },
    /// The producer, known only as the last process that sent to the queue
    /// (`msg_lspid`); a consumer in its own terminal waits for it.
    LastSender,
    /// A consumer, known only as the last process that received from the queue
    /// (`msg_lrpid`); a producer in its own terminal, in front of a full queue, waits for it.
    LastReceiver,
}

impl Peer {
    /// Fails if the peer is known and no longer alive. A `LastSender` or `LastReceiver`
    /// (of the System V queue `id`) of pid 0 has not come yet: waiting for it is what a
    /// role in its own terminal does.
    pub fn check(&self, id: Option<libc::c_int>) -> Result<()> {
        let last = |pick: fn(&sysv::Status) -> i32| {
            id.and_then(|id| sysv::stat(id).ok())
                .as_ref()
                .map_or(0, pick)
        };
        let (role, pid) = match *self {
            Peer::Known { role, pid } => (role, pid),
            Peer::LastSender => ("producer", last(|s| s.last_sender)),
            Peer::LastReceiver => ("consumer", last(|s| s.last_receiver)),
        };
        if pid > 0 && !process::is_alive(pid) {
            let after = match self {
                Peer::LastSender => tr!(
                    "and nothing more is in the queue for me: the messages it did not send will never come"
                ),
                Peer::LastReceiver => {
                    tr!("and the queue is full: nobody is left to make room")
                }
                Peer::Known { .. } => tr!("before the end"),
            };
            return Err(process::gone(role, pid).hint(tr!(
                "the {role} (pid {pid}) has gone (killed, or ended without me), {after}",
                role,
                pid,
                after
            )));
        }
        Ok(())
    }
}

/// The patience of a role waiting for `peer` on the System V queue `id` (`None` for a
/// POSIX queue, which does not say who uses it): says `waiting` the first time a wait is
/// interrupted, and checks the peer at every interruption.
pub fn patience(
    n: &Narrator,
    peer: Peer,
    id: Option<libc::c_int>,
    waiting: String,
) -> Patience<'static> {
    Patience::new(n, waiting, move || peer.check(id))
}

/// Adds the hint for a queue that was removed while we used it: a call on an identifier
/// that no longer exists fails with EINVAL, one that was waiting when it was removed
/// with EIDRM (msgsnd(2), msgrcv(2)).
pub fn vanished(e: Error) -> Error {
    match e.errno() {
        Some(Errno::EINVAL | Errno::EIDRM) => e.hint(tr!(
            "the queue was removed (ipcrm or clean) while we used it"
        )),
        _ => e,
    }
}

/// Starts the role's [`Ticker`](common::process::Ticker) for waits on `call`, whose
/// peer is the `peer` role (see [`common::process::tick_while_waiting`]).
pub fn start_ticker(n: &Narrator, call: &str, peer: &str) -> Result<common::process::Ticker> {
    common::process::tick_while_waiting(n, call, peer, PEER_CHECK)
}
