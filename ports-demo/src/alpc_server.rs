//! The ALPC server (note 003, 3.7.3): it publishes a connection port, gives each client
//! that connects a channel of its own, maps the client's section, makes a section for its
//! replies, and answers requests through the procedures of [`crate::rpc`], on whichever
//! path the size asks for.
//!
//! Each channel is served by a thread of its own, so a slow client, a client that sends
//! garbage, or one that vanishes in the middle of a call ends only its own channel.
//! Everything a client sends is checked before use: lengths, offsets into the sections,
//! addresses in its memory (the kernel answers EFAULT for a bad one; the server answers
//! with an error message). Which process to read is the peer the kernel reports
//! (SO_PEERCRED), never a pid the client claims, and its pidfd (SO_PEERPIDFD) makes sure
//! that process is still the one alive before its memory is touched.
//!
//! ```text
//! cargo run -p ports-demo -- alpc-server                # terminal 1
//! cargo run -p ports-demo -- alpc-client                # terminal 2
//! cargo run -p ports-demo -- rpc                        # terminal 3
//! ```
//!
//! See also: unix(7) (SO_PEERCRED), process_vm_readv(2), pidfd_open(2), memfd_create(2).

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Error, HintOn, Narrator, Result, sys, tr};
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::unistd::Pid;

use crate::alpc::{self, DIRECT_MAX, Header, INLINE_MAX, MsgKind, Path as DataPath, SECTION_MAX};
use crate::place;
use crate::rpc;
use crate::sys::{self as my, Mapping};
use crate::wire;

/// What every channel did, added up.
#[derive(Debug, Default)]
pub struct Totals {
    channels: AtomicU64,
    requests: AtomicU64,
    refused: AtomicU64,
    vanished: AtomicU64,
    direct: AtomicU64,
    callbacks: AtomicU64,
}

fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::SeqCst);
}

/// The most channels served at once; a connection beyond that is closed at once, so that
/// idle clients cannot take every thread the server may have.
pub const MAX_CHANNELS: usize = 64;

// ANCHOR: serve
/// Publishes the connection port at `path` and serves each channel in a thread; after
/// `clients` channels have ended (or never), returns its summary line. `ready` gets one
/// byte once the port is published.
pub fn serve(
    n: &Narrator,
    path: &Path,
    clients: Option<u64>,
    ready: Option<OwnedFd>,
) -> Result<String> {
    let (listener, _path_guard) = place::listen(n, path, place::Server::Alpc)?;
    n.essential(tr!(
        "connection port ready at {path}",
        path = path.display()
    ));
    if let Some(fd) = ready {
        sys::write(n, &fd, b"r")?;
    }
    let totals = Arc::new(Totals::default());
    let mut threads = Vec::new();
    let mut number = 0u32;
    while clients.is_none_or(|limit| u64::from(number) < limit) {
        let Some(conn) = place::accept(n, &listener)? else {
            continue;
        };
        number += 1;
        // Channels that have ended leave the list, so that it holds the live ones only.
        threads.retain(|t: &std::thread::JoinHandle<()>| !t.is_finished());
        if threads.len() >= MAX_CHANNELS {
            n.say(tr!(
                "{max} channels are open already: I close this connection at once",
                max = MAX_CHANNELS
            ));
            drop(conn);
            continue;
        }
        let (n2, totals) = (n.clone(), totals.clone());
        // Builder::spawn, not thread::spawn: a thread the system cannot give (a small
        // `ulimit -v`, too many threads) is an error for this one channel, not a panic.
        let spawned = std::thread::Builder::new().spawn(move || {
            add(&totals.channels);
            if let Err(e) = channel(&n2, conn, number, &totals) {
                n2.essential(tr!("channel {number} ended: {e}", number, e));
            }
        });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => n.essential(tr!(
                "pthread_create for channel {number} failed: {e}; that client is turned away, the others go on",
                number,
                e
            )),
        }
    }
    for t in threads {
        let _ = t.join();
    }
    let load = |c: &AtomicU64| c.load(Ordering::SeqCst);
    Ok(format!(
        "summary: channels={} requests={} refused={} vanished={} direct={} callbacks={}",
        load(&totals.channels),
        load(&totals.requests),
        load(&totals.refused),
        load(&totals.vanished),
        load(&totals.direct),
        load(&totals.callbacks)
    ))
}
// ANCHOR_END: serve

/// The server's end of one channel.
struct End<'a> {
    n: &'a Narrator,
    sock: OwnedFd,
    client: Pid,
    /// The client process itself: readable (POLLIN) once it has exited.
    pidfd: Option<OwnedFd>,
    requests: Mapping,
    replies: Mapping,
    totals: &'a Totals,
}

// ANCHOR: channel
/// One channel: learn who the client is from the kernel, set up both sections, then
/// answer requests until the client closes its end.
fn channel(n: &Narrator, sock: OwnedFd, number: u32, totals: &Totals) -> Result<()> {
    let peer = sys::getsockopt_peercred(n, &sock)?;
    let client = Pid::from_raw(peer.pid());
    let pidfd = my::getsockopt_peerpidfd(n, &sock)
        .or_else(|_| my::pidfd_open(n, client))
        .ok();
    let mut buf = alpc::buffer();
    let Some(got) = wire::receive(n, &sock, &mut buf)? else {
        return Ok(());
    };
    let (hello, _) = alpc::decode(&buf[..got.len])?;
    let [section_fd] = <[OwnedFd; 1]>::try_from(got.fds).map_err(|_| {
        Error::bad_data(
            tr!("accept channel {number}", number),
            tr!("a connect must carry exactly one section"),
        )
    })?;
    if hello.kind != MsgKind::Connect {
        return Err(Error::bad_data(
            tr!("accept channel {number}", number),
            tr!("the first message is not a connect"),
        ));
    }
    let requests = alpc::map_peer_section(n, &section_fd, hello.len, false)?;
    sys::close(n, section_fd)?;
    let size = usize::try_from(hello.reply_cap)
        .unwrap_or(usize::MAX)
        .clamp(1, SECTION_MAX);
    let (reply_fd, replies) = alpc::create_section(n, c"alpc-reply-section", size)?;
    let mut accept = Header::new(MsgKind::Accept, number, 0);
    accept.len = replies.len() as u64;
    sys::sendmsg_fds(
        n,
        &sock,
        &alpc::encode(&accept, &[]),
        &[std::os::fd::AsRawFd::as_raw_fd(&reply_fd)],
    )?;
    sys::close(n, reply_fd)?;
    n.essential(tr!(
        "channel {number}: client pid {pid} (from SO_PEERCRED); nobody else holds this connection",
        number,
        pid = client
    ));
    let mut end = End {
        n,
        sock,
        client,
        pidfd,
        requests,
        replies,
        totals,
    };
    for _ in n.first_few(
        0u64..,
        tr!("further requests on this channel, without narration"),
    ) {
        let Some(got) = wire::receive(n, &end.sock, &mut buf)? else {
            n.announce(tr!("channel {number}: the client closed its end", number));
            return Ok(());
        };
        add(&totals.requests);
        let outcome = alpc::decode(&buf[..got.len]).and_then(|(h, data)| {
            if !got.fds.is_empty() {
                return Err(Error::bad_data(
                    tr!("take a request"),
                    tr!("descriptors came with it"),
                ));
            }
            if h.kind != MsgKind::Request {
                return Err(Error::bad_data(
                    tr!("take a request"),
                    tr!("it is not a request"),
                ));
            }
            Ok(h).and_then(|h| end.answer(&h, data.to_vec()).map(|()| h))
        });
        match outcome {
            Ok(_) => {}
            Err(e) if e.errno() == Some(Errno::EPIPE) || e.errno() == Some(Errno::ECONNRESET) => {
                add(&totals.vanished);
                n.essential(tr!(
                    "channel {number}: the client vanished mid-call ({e}); serving the others",
                    number,
                    e
                ));
                return Ok(());
            }
            Err(e) => {
                add(&totals.refused);
                n.essential(tr!("channel {number}: refused a request: {e}", number, e));
                let why = e.to_string();
                let mut h = Header::new(MsgKind::Failure, 0, alpc::seq_of(&buf[..got.len]));
                let text = &why.as_bytes()[..why.len().min(INLINE_MAX)];
                h.len = text.len() as u64;
                sys::sendmsg_fds(n, &end.sock, &alpc::encode(&h, text), &[])?;
            }
        }
    }
    Ok(())
}
// ANCHOR_END: channel

/// The client's end closed while the server waited for its answer to a callback: as
/// ECONNRESET, the errno a send to it would have met.
fn vanished() -> Error {
    Error::sys(tr!("wait for the callback's answer"), Errno::ECONNRESET)
        .hint(tr!("the client closed its end of the channel"))
}

/// Why the kernel may refuse to let the server touch the client's memory.
fn ptrace_hint() -> String {
    tr!(
        "reading or writing another process's memory needs ptrace access to it: the same user (and the client not made undumpable) or CAP_SYS_PTRACE, and Yama's ptrace_scope permitting (1: the client must name the server with PR_SET_PTRACER)"
    )
}

impl End<'_> {
    /// Whether the client process is still the one that connected and still running.
    fn check_alive(&self) -> Result<()> {
        let Some(pidfd) = &self.pidfd else {
            return Ok(());
        };
        let ready = sys::poll(
            self.n,
            &[(pidfd.as_fd(), PollFlags::POLLIN)],
            Some(Duration::ZERO),
        )?;
        if ready.has(0, PollFlags::POLLIN) {
            return Err(
                Error::sys(tr!("pidfd of {pid}", pid = self.client), Errno::ESRCH).hint(tr!(
                    "the client process has exited: its memory is not touched"
                )),
            );
        }
        Ok(())
    }

    // ANCHOR: answer
    /// Fetches a request's data from wherever it is, runs the procedure, sends the result.
    fn answer(&mut self, h: &Header, inline: Vec<u8>) -> Result<()> {
        let n = self.n;
        let len = usize::try_from(h.len).unwrap_or(usize::MAX);
        let data = match h.path {
            DataPath::Inline => inline,
            DataPath::Section => self
                .requests
                .read(usize::try_from(h.at).unwrap_or(usize::MAX), len)?,
            DataPath::Direct => {
                if len > DIRECT_MAX {
                    return Err(Error::bad_data(
                        tr!("read the client's memory"),
                        tr!(
                            "{len} bytes is more than the {max} allowed",
                            len,
                            max = DIRECT_MAX
                        ),
                    ));
                }
                self.check_alive()?;
                let mut data = vec![0u8; len];
                let copied = my::process_vm_readv(n, self.client, &mut data, h.at)
                    .hint_on(Errno::EPERM, ptrace_hint())
                    .hint_on(
                        Errno::EFAULT,
                        tr!("nothing is mapped at that address in the client"),
                    )?;
                if copied != len {
                    return Err(Error::bad_data(
                        tr!("read the client's memory"),
                        tr!("only {copied} of {len} bytes are mapped there", copied, len),
                    ));
                }
                add(&self.totals.direct);
                data
            }
        };
        let sock = &self.sock;
        let mut callback = |id: u32, question: &[u8]| -> Result<Vec<u8>> {
            add(&self.totals.callbacks);
            let mut cb = Header::new(MsgKind::Callback, id, h.seq);
            cb.len = question.len() as u64;
            sys::sendmsg_fds(n, sock, &alpc::encode(&cb, question), &[])?;
            let mut buf = alpc::buffer();
            let got = wire::receive(n, sock, &mut buf)?.ok_or_else(vanished)?;
            let (back, answer) = alpc::decode(&buf[..got.len])?;
            if back.kind != MsgKind::CallbackReply || back.seq != h.seq {
                return Err(Error::bad_data(
                    tr!("wait for the callback's answer"),
                    tr!("another message came"),
                ));
            }
            Ok(answer.to_vec())
        };
        let result = rpc::dispatch(n, h.id, &data, &mut callback)?;
        self.reply(h, &result)
    }
    // ANCHOR_END: answer

    /// Sends `result` by the path its size asks for.
    fn reply(&mut self, h: &Header, result: &[u8]) -> Result<()> {
        let n = self.n;
        let mut r = Header::new(MsgKind::Reply, h.id, h.seq);
        r.len = result.len() as u64;
        let mut inline: &[u8] = &[];
        if result.len() <= INLINE_MAX {
            inline = result;
        } else if result.len() <= self.replies.len() {
            self.replies.write(0, result)?;
            r.path = DataPath::Section;
        } else if h.reply_at != 0 && result.len() as u64 <= h.reply_cap {
            self.check_alive()?;
            let copied = my::process_vm_writev(n, self.client, result, h.reply_at)
                .hint_on(Errno::EPERM, ptrace_hint())
                .hint_on(
                    Errno::EFAULT,
                    tr!("nothing writable is mapped at that address in the client"),
                )?;
            if copied != result.len() {
                return Err(Error::bad_data(
                    tr!("write the client's memory"),
                    tr!(
                        "only {copied} of {len} bytes are mapped there",
                        copied,
                        len = result.len()
                    ),
                ));
            }
            add(&self.totals.direct);
            r.path = DataPath::Direct;
        } else {
            return Err(Error::bad_data(
                tr!("reply"),
                tr!(
                    "the result has {len} bytes: more than my section, and the client gave a buffer of {cap}",
                    len = result.len(),
                    cap = h.reply_cap
                ),
            ));
        }
        sys::sendmsg_fds(n, &self.sock, &alpc::encode(&r, inline), &[]).map(drop)
    }
}
