//! Mach client tasks (note 003, 3.7.2): look a name up, send requests that carry a reply
//! port, take the replies; and the ways a client can break the rules, to show that the
//! server refuses the message and goes on serving the others.
//!
//! - [`client`]: `look-up`, a reply port of its own, COUNT requests, each reply checked;
//!   `--hold-replies` first fills its own reply port, so the server must keep a reply;
//! - [`bad`]: one malformed request (a header that lies about its size, a declared right
//!   that does not come, a right that comes undeclared) or a client that vanishes mid-call;
//! - [`look_up`]: only the look-up, and what the right received is;
//! - [`dead`]: a receive right dropped, and the next send failing (a dead name).
//!
//! See also: poll(2), unix(7), and `mach_msg` in the Mach 3 Kernel Interfaces.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;
use std::time::{Duration, Instant};

use common::narrate::print_summary;
use common::process::{self, Fork};
use common::{Error, Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::poll::PollFlags;

use crate::bootstrap;
use crate::mach_server::{KERN_SUCCESS, UPPER};
use crate::port::{
    self, MAKE_SEND_ONCE, Outgoing, ReceiveRight, Received, SendOption, SendRight, Sent,
};
use crate::sys as my;
use crate::wire::{Reader, printable};

/// The largest request body: a reply (header, code, body) must fit in one port message.
pub const MAX_BODY: usize = port::MAX_MESSAGE - port::HEADER - 4;

/// Request `i`'s body: `size` bytes of lowercase text that name the request.
fn body(i: u64, size: usize) -> Vec<u8> {
    let head = format!("request {i}: ");
    head.bytes()
        .chain((b'a'..=b'z').cycle())
        .take(size)
        .collect()
}

/// What the server answered, as a client sees it.
#[derive(Debug)]
enum Answer {
    Data(Vec<u8>),
    Refused(String),
}

// ANCHOR: wait_reply
/// Waits for the reply on `replies`, and for the server's port at the same time: if the
/// server ends first, its port becomes a dead name (POLLHUP) and waiting would be forever.
/// A server that lives but never replies is given `patience` (Mach's `MACH_RCV_TIMEOUT`);
/// `None` waits as long as it lives.
fn wait_reply(
    n: &Narrator,
    replies: &ReceiveRight,
    service: &SendRight,
    patience: Option<Duration>,
) -> Result<Answer> {
    let deadline = patience.map(|p| Instant::now() + p);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ready = sys::poll(
            n,
            &[
                (replies.as_fd(), PollFlags::POLLIN),
                (service.as_fd(), PollFlags::empty()),
            ],
            left,
        )?;
        if ready.has(0, PollFlags::POLLIN) {
            break;
        }
        if ready.has(1, PollFlags::POLLHUP | PollFlags::POLLERR) {
            return Err(Error::bad_data(
                tr!("wait for a reply"),
                tr!("the server's port is a dead name: the server ended before it replied"),
            )
            .hint(tr!(
                "start the server again; a new look-up gives a right to its new port"
            )));
        }
        if let (Some(patience), true) = (patience, ready.timed_out()) {
            return Err(Error::sys(
                tr!(
                    "poll(POLLIN) on reply port {port}",
                    port = port::name(replies)
                ),
                Errno::ETIMEDOUT,
            )
            .hint(tr!(
                "the server's port is alive, but no reply came within {seconds} s (Mach says MACH_RCV_TIMED_OUT): the server is stuck, or paused (Ctrl-Z, --step); --timeout SECONDS waits longer, --timeout 0 forever",
                seconds = patience.as_secs_f64()
            )));
        }
    }
    let msg = match port::receive(n, replies)? {
        Received::Message(m) => m,
        Received::Refused { why, .. } => return Err(Error::bad_data(tr!("receive a reply"), why)),
        Received::NoSenders => {
            return Err(Error::bad_data(
                tr!("receive a reply"),
                tr!("no sender is left"),
            ));
        }
    };
    let mut r = Reader::new(&msg.body, "a reply");
    let code = r.i32("code")?;
    let data = r.rest().to_vec();
    if code == KERN_SUCCESS {
        Ok(Answer::Data(data))
    } else {
        Ok(Answer::Refused(tr!(
            "{name} ({code}): {text}",
            name = bootstrap::code_name(code),
            code,
            text = printable(&data)
        )))
    }
}
// ANCHOR_END: wait_reply

/// Reads standard input up to a newline (or its end): "press Enter".
pub fn wait_for_enter(n: &Narrator) -> Result<()> {
    let stdin = std::io::stdin();
    let mut byte = [0u8; 1];
    while sys::read(n, &stdin.as_fd(), &mut byte)? == 1 && byte[0] != b'\n' {}
    Ok(())
}

/// Fills this client's own reply port with `size`-byte messages until it is full, then
/// empties it: how many replies it holds.
fn measure(n: &Narrator, replies: &ReceiveRight, right: &SendRight, size: usize) -> Result<u64> {
    let probe = Outgoing {
        id: 0,
        body: vec![0; size],
        disposition: 0,
    };
    let mut fits = 0u64;
    for _ in n.first_few(0..10_000, tr!("more probes, without narration")) {
        match port::send(n, right, &probe, None, SendOption::Notify)? {
            Sent::Queued { .. } => fits += 1,
            _ => break,
        }
    }
    for _ in n.first_few(0..fits, tr!("more probes taken back, without narration")) {
        port::receive(n, replies)?;
    }
    say!(
        n,
        "my reply port holds {fits} replies of {size} bytes",
        fits,
        size = size + port::HEADER
    );
    Ok(fits)
}

// ANCHOR: client
/// Looks `name` up, makes a reply port, and sends `count` requests of `size` bytes, each
/// with a send-once right to the reply port riding along; checks every reply.
/// With `hold_replies`, it sends one request more than its reply port holds and reads no
/// reply until Enter, so that the server finds the port full. It waits at most `patience`
/// for each answer (`None`: as long as the server lives).
pub fn client(
    n: &Narrator,
    bootstrap_path: &Path,
    name: &str,
    count: u64,
    size: usize,
    hold_replies: bool,
    patience: Option<Duration>,
) -> Result<()> {
    let service = bootstrap::look_up(n, bootstrap_path, name, patience)?;
    let (replies, reply_right) = port::allocate(n, port::DEFAULT_QUEUE_BYTES)?;
    let count = if hold_replies {
        measure(n, &replies, &reply_right, size + 4)? + 1
    } else {
        count
    };
    let (mut ok, mut wrong, mut refused) = (0u64, 0u64, 0u64);
    let mut check = |i: u64, answer: Answer| match answer {
        Answer::Data(data) if data == body(i, size).to_ascii_uppercase() => ok += 1,
        Answer::Data(_) => wrong += 1,
        Answer::Refused(why) => {
            refused += 1;
            n.essential(tr!("the server refused request {i}: {why}", i, why));
        }
    };
    for i in n.first_few(0..count, tr!("the remaining requests, without narration")) {
        let request = Outgoing {
            id: UPPER,
            body: body(i, size),
            disposition: MAKE_SEND_ONCE,
        };
        port::send(
            n,
            &service,
            &request,
            Some(&reply_right.0),
            SendOption::Wait,
        )?;
        if !hold_replies {
            check(i, wait_reply(n, &replies, &service, patience)?);
        }
    }
    if hold_replies {
        n.essential(tr!(
            "holding: {count} requests sent, no reply read; press Enter to read them",
            count
        ));
        wait_for_enter(n)?;
        for i in n.first_few(0..count, tr!("the remaining replies, without narration")) {
            check(i, wait_reply(n, &replies, &service, patience)?);
        }
    }
    print_summary(format_args!(
        "summary: requests={count} ok={ok} wrong={wrong} refused={refused}"
    ))
}
// ANCHOR_END: client

/// The ways [`bad`] breaks the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Bad {
    /// The header's size field says 100 bytes more than the message has.
    LyingSize,
    /// The header declares a reply right, but no descriptor rides along.
    MissingRight,
    /// A descriptor rides along that the header does not declare.
    UndeclaredRight,
    /// The client drops its reply port's receive right and ends before the reply.
    Vanish,
}

// ANCHOR: bad
/// Sends one request that breaks the rules in the way `how` says, then (unless it
/// vanishes) one good request, to show that the server still serves. Waits at most
/// `patience` for each answer.
pub fn bad(
    n: &Narrator,
    bootstrap_path: &Path,
    name: &str,
    how: Bad,
    patience: Option<Duration>,
) -> Result<()> {
    let service = bootstrap::look_up(n, bootstrap_path, name, patience)?;
    let (replies, reply_right) = port::allocate(n, port::DEFAULT_QUEUE_BYTES)?;
    let request = Outgoing {
        id: UPPER,
        body: body(0, 16),
        disposition: MAKE_SEND_ONCE,
    };
    let rider = reply_right.0.as_raw_fd();
    let (label, mut refused) = match how {
        Bad::LyingSize => {
            let mut bytes = port::encode(&request, port::name(&service), Some(&reply_right.0));
            let lie = u32::try_from(bytes.len() + 100).unwrap_or(u32::MAX);
            bytes[4..8].copy_from_slice(&lie.to_le_bytes());
            say!(
                n,
                "my header says {lie} bytes; the message has {len}",
                lie,
                len = bytes.len()
            );
            sys::sendmsg_fds(n, &service, &bytes, &[rider])?;
            match wait_reply(n, &replies, &service, patience)? {
                Answer::Refused(why) => n.essential(tr!("the server refused it: {why}", why)),
                Answer::Data(_) => {
                    return Err(Error::bad_data(
                        tr!("send a lying header"),
                        tr!("the server accepted it"),
                    ));
                }
            }
            ("lying-size", 1)
        }
        Bad::MissingRight => {
            let bytes = port::encode(&request, port::name(&service), Some(&reply_right.0));
            say!(
                n,
                "my header declares a reply right, but I attach no descriptor"
            );
            sys::sendmsg_flags(
                n,
                &service,
                &bytes,
                &[],
                nix::sys::socket::MsgFlags::empty(),
            )?;
            ("missing-right", 0)
        }
        Bad::UndeclaredRight => {
            let bytes = port::encode(&request, port::name(&service), None);
            say!(
                n,
                "my header declares no right, but I attach descriptor {rider}",
                rider
            );
            sys::sendmsg_fds(n, &service, &bytes, &[rider])?;
            ("undeclared-right", 0)
        }
        Bad::Vanish => {
            say!(
                n,
                "I drop my reply port's receive right, send a request, and end: the server's reply meets a dead name"
            );
            sys::close(n, replies.0)?;
            port::send(
                n,
                &service,
                &request,
                Some(&reply_right.0),
                SendOption::Wait,
            )?;
            return print_summary("summary: bad=vanish requests=1 ok=0 wrong=0 refused=0");
        }
    };
    // The server must still answer a good request, from this client as from any other.
    port::send(
        n,
        &service,
        &request,
        Some(&reply_right.0),
        SendOption::Wait,
    )?;
    let ok = match wait_reply(n, &replies, &service, patience)? {
        Answer::Data(d) if d == body(0, 16).to_ascii_uppercase() => 1,
        Answer::Data(_) => 0,
        Answer::Refused(why) => {
            refused += 1;
            n.essential(tr!("the server refused the good request: {why}", why));
            0
        }
    };
    print_summary(format_args!(
        "summary: bad={label} requests=2 ok={ok} wrong=0 refused={refused}"
    ))
}
// ANCHOR_END: bad

/// The `look-up` subcommand: asks the bootstrap server for `name` (waiting at most
/// `patience` for its answer) and shows the right.
pub fn look_up(
    n: &Narrator,
    bootstrap_path: &Path,
    name: &str,
    patience: Option<Duration>,
) -> Result<()> {
    let right = bootstrap::look_up(n, bootstrap_path, name, patience)?;
    let st = my::fstat(n, &right)?;
    let dead = port::is_dead(n, &right)?;
    say!(
        n,
        "send right {right}: socket inode {ino}; look: ls -l /proc/{pid}/fd/{right}",
        right = port::name(&right),
        ino = st.0.st_ino,
        pid = std::process::id()
    );
    print_summary(format_args!(
        "summary: name={name} found=1 dead={}",
        u8::from(dead)
    ))
}

// ANCHOR: dead
/// A dead name, in one terminal: a child takes the receive right (by `fork`), takes one
/// message and ends; the parent's next send fails with EPIPE.
pub fn dead(n: &Narrator) -> Result<()> {
    let (receive, send) = port::allocate(n, port::DEFAULT_QUEUE_BYTES)?;
    let hello = Outgoing {
        id: 1,
        body: b"hello".to_vec(),
        disposition: 0,
    };
    match process::fork(n, "receiver")? {
        Fork::Child(me) => {
            let result = sys::close(&me, send.0)
                .and_then(|()| port::receive(&me, &receive))
                .map(|_| {
                    say!(
                        me,
                        "I took one message; I end now, and my receive right goes with me"
                    );
                });
            drop(receive);
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            sys::close(n, receive.0)?;
            port::send(n, &send, &hello, None, SendOption::Wait)?;
            process::wait_for(n, child, "receiver")?;
            let dead = port::is_dead(n, &send)?;
            say!(
                n,
                "poll says POLLHUP: {dead}; my send right now names a dead port",
                dead
            );
            match port::send(n, &send, &hello, None, SendOption::Now) {
                Err(e) if e.errno() == Some(nix::errno::Errno::EPIPE) => {
                    n.announce(tr!(
                        "EPIPE: a dead name; Mach would say MACH_SEND_INVALID_DEST"
                    ));
                    print_summary("summary: sent=1 dead_name=1")
                }
                Err(e) => Err(e),
                Ok(_) => Err(Error::bad_data(
                    tr!("send to a dead port"),
                    tr!("the kernel took the message"),
                )),
            }
        }
    }
}
// ANCHOR_END: dead
