//! A Mach server task (note 003, 3.7.2): it makes a port, registers a send right to it
//! with the bootstrap server, and answers each request on the reply port that rode in it.
//!
//! The server knows its clients only through the rights it holds: a request says nothing
//! about who sent it, only which reply port to answer on. It never blocks on a client: a
//! reply goes out with `MSG_DONTWAIT`, and if the client's reply port is full the server
//! keeps that one reply and asks `poll` to tell it when there is room, serving the others
//! meanwhile. That is what Mach's fourth send option, `MACH_SEND_NOTIFY`, is for; the
//! difference is that Mach's kernel keeps the message and sends a notification message,
//! where here the server keeps it in its own memory and `poll` is the notification.
//!
//! ```text
//! cargo run -p ports-demo -- bootstrap                 # terminal 1
//! cargo run -p ports-demo -- server --name echo        # terminal 2
//! cargo run -p ports-demo -- client --name echo        # terminal 3, 4, ...
//! ```
//!
//! See also: poll(2), unix(7), and MIG's request/reply convention (a reply's id is the
//! request's plus 100).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use common::{Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::poll::PollFlags;

use crate::bootstrap::{self, BAD_ARGUMENTS, REPLY};
use crate::port::{self, COPY_SEND, Outgoing, ReceiveRight, Received, SendOption, SendRight, Sent};
use crate::sys as my;
use crate::wire::Writer;

/// The one request this server knows: answer the body in capital letters.
pub const UPPER: u32 = 1000;
/// `KERN_SUCCESS`, the code of a reply that worked.
pub const KERN_SUCCESS: i32 = 0;

/// What the server did, for its summary line.
#[derive(Debug, Default)]
struct Stats {
    served: u64,
    refused: u64,
    dead_replies: u64,
    kept: u64,
    dropped: u64,
}

/// A reply kept for a full reply port, waiting for room (the server keeps one at a time,
/// as Mach keeps one `MACH_SEND_NOTIFY` message per sending thread).
#[derive(Debug)]
struct Kept {
    to: SendRight,
    reply: Outgoing,
}

/// The reply body: a return code, then data (or an error's text).
pub fn reply_body(code: i32, data: &[u8]) -> Vec<u8> {
    let mut w = Writer::default();
    w.i32(code).bytes(data);
    w.0
}

// ANCHOR: server
/// Makes a port, registers it as `name`, closes its own send right (the bootstrap server
/// holds one; clients get theirs by look-up) and serves until `requests` messages have
/// come (or forever). `ready`, if given, gets one byte once the name is registered;
/// `patience` bounds the wait for the bootstrap server's answer. Returns its summary line.
pub fn server(
    n: &Narrator,
    bootstrap_path: &Path,
    name: &str,
    requests: Option<u64>,
    ready: Option<OwnedFd>,
    patience: Option<Duration>,
) -> Result<String> {
    let (port, send) = port::allocate(n, port::DEFAULT_QUEUE_BYTES)?;
    bootstrap::register(n, bootstrap_path, name, &send, patience)?;
    sys::close(n, send.0)?;
    say!(
        n,
        "I hold only the receive right now; I know my clients by their reply ports alone"
    );
    n.essential(tr!("server ready: {name} is registered", name));
    if let Some(fd) = ready {
        sys::write(n, &fd, b"r")?;
    }
    let stats = serve(n, &port, requests)?;
    Ok(format!(
        "summary: served={} refused={} dead_replies={} kept={} dropped={}",
        stats.served, stats.refused, stats.dead_replies, stats.kept, stats.dropped
    ))
}
// ANCHOR_END: server

/// The loop: one `poll` on the port (for requests) and on the kept reply's port (for
/// room), until `requests` messages have been taken and no reply is kept.
fn serve(n: &Narrator, port: &ReceiveRight, requests: Option<u64>) -> Result<Stats> {
    let mut stats = Stats::default();
    let mut kept: Option<Kept> = None;
    let mut taken = 0u64;
    for _ in n.first_few(0u64.., tr!("further requests, without narration")) {
        let listening = requests.is_none_or(|limit| taken < limit);
        if !listening && kept.is_none() {
            break;
        }
        let mut watch = Vec::new();
        if listening {
            watch.push((port.as_fd(), PollFlags::POLLIN));
        }
        if let Some(k) = &kept {
            watch.push((k.to.as_fd(), PollFlags::POLLOUT));
        }
        let ready = sys::poll(n, &watch, None)?;
        let kept_at = usize::from(listening);
        if kept.is_some()
            && ready.has(
                kept_at,
                PollFlags::POLLOUT | PollFlags::POLLHUP | PollFlags::POLLERR,
            )
        {
            kept = deliver_kept(n, kept, &mut stats)?;
        }
        if !(listening && ready.has(0, PollFlags::POLLIN | PollFlags::POLLHUP)) {
            continue;
        }
        match port::receive(n, port)? {
            Received::NoSenders => {
                n.announce(tr!("no send right is left anywhere: no request can come (Mach's no-senders notification)"));
                break;
            }
            Received::Refused { why, id, rider } => {
                taken += 1;
                stats.refused += 1;
                n.essential(tr!("refused a message: {why}", why));
                if let Some(to) = rider {
                    let error = Outgoing {
                        id: id.wrapping_add(REPLY),
                        body: reply_body(BAD_ARGUMENTS, why.as_bytes()),
                        disposition: 0,
                    };
                    // Best effort: a client that sent garbage may not be listening.
                    let _ = port::send(n, &to, &error, None, SendOption::Now);
                }
            }
            Received::Message(request) => {
                taken += 1;
                answer(n, request, &mut kept, &mut stats)?;
            }
        }
    }
    Ok(stats)
}

// ANCHOR: answer
/// Answers one request on its reply port, without ever waiting for the client.
fn answer(
    n: &Narrator,
    request: port::Message,
    kept: &mut Option<Kept>,
    stats: &mut Stats,
) -> Result<()> {
    let Some(to) = request.rider else {
        stats.refused += 1;
        n.essential(tr!(
            "refused a request with no reply port: there is nothing to answer on"
        ));
        return Ok(());
    };
    // Two requests from one client bring two descriptors; fstat shows they name one port.
    let st = my::fstat(n, &to)?;
    say!(
        n,
        "request id {id}, {len} bytes, reply port {name} (socket inode {ino})",
        id = request.header.id,
        len = request.body.len(),
        name = port::name(&to),
        ino = st.0.st_ino
    );
    let reply = if request.header.id == UPPER {
        Outgoing {
            id: UPPER + REPLY,
            body: reply_body(KERN_SUCCESS, &request.body.to_ascii_uppercase()),
            disposition: COPY_SEND,
        }
    } else {
        let why = tr!("no request has id {id}", id = request.header.id);
        Outgoing {
            id: request.header.id.wrapping_add(REPLY),
            body: reply_body(bootstrap::BAD_ID, why.as_bytes()),
            disposition: COPY_SEND,
        }
    };
    match port::send(n, &to, &reply, None, SendOption::Notify) {
        Ok(Sent::Queued { .. }) => stats.served += 1,
        Ok(_) if kept.is_none() => {
            stats.served += 1;
            stats.kept += 1;
            n.essential(tr!("kept: the reply port is full; I keep this reply, ask poll(2) to tell me when there is room, and serve the others meanwhile (MACH_SEND_NOTIFY)"));
            *kept = Some(Kept { to, reply });
        }
        Ok(_) => {
            stats.dropped += 1;
            n.essential(tr!("dropped a reply: its port is full and I keep only one message at a time (Mach says MACH_SEND_NOTIFY_IN_PROGRESS)"));
        }
        Err(e) if e.errno() == Some(Errno::EPIPE) => {
            stats.dead_replies += 1;
            n.essential(tr!("the reply port is a dead name: the client vanished mid-call; I go on serving the others"));
        }
        Err(e) => return Err(e),
    }
    Ok(())
}
// ANCHOR_END: answer

/// There is room (or the port died): sends the kept reply. Returns what is still kept.
fn deliver_kept(n: &Narrator, kept: Option<Kept>, stats: &mut Stats) -> Result<Option<Kept>> {
    let Some(k) = kept else { return Ok(None) };
    match port::send(n, &k.to, &k.reply, None, SendOption::Notify) {
        Ok(Sent::Queued { .. }) => {
            n.essential(tr!(
                "notified: the reply port has room, and the kept reply is in its queue now"
            ));
            Ok(None)
        }
        Ok(_) => Ok(Some(k)),
        Err(e) if e.errno() == Some(Errno::EPIPE) => {
            stats.dead_replies += 1;
            n.essential(tr!(
                "the kept reply's port died before it had room: the reply is destroyed"
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
