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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use common::{Error, HintOn, Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::Shutdown;
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

/// The most channels served at once. A newcomer beyond that takes the place of the
/// channel whose client has been silent longest, so that idle clients cannot take every
/// thread the server may have and keep the others out.
pub const MAX_CHANNELS: usize = 64;

/// When a channel's client last sent something, shared by two threads: the channel's
/// own sets it at each message, the accepting one reads it to find the channel silent
/// longest.
#[derive(Debug)]
struct Heard {
    /// The server's start: the clock's zero.
    start: Instant,
    /// Nanoseconds from `start` to the client's last message (or its connection).
    at_ns: AtomicU64,
}

impl Heard {
    fn new(start: Instant) -> Heard {
        let heard = Heard {
            start,
            at_ns: AtomicU64::new(0),
        };
        heard.now();
        heard
    }

    /// The client has just sent something.
    fn now(&self) {
        let ns = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.at_ns.store(ns, Ordering::SeqCst);
    }

    /// How long the client has said nothing.
    fn silent_for(&self) -> Duration {
        let at = Duration::from_nanos(self.at_ns.load(Ordering::SeqCst));
        self.start.elapsed().saturating_sub(at)
    }
}

/// What the accepting thread keeps of a live channel: its thread, when its client last
/// spoke, and a weak handle on its socket. Weak, so that the socket closes as soon as
/// the channel's thread lets it go (its client then reads end-of-file at once), while a
/// channel still alive can be shut down from here to make room.
#[derive(Debug)]
struct Live {
    number: u32,
    thread: std::thread::JoinHandle<()>,
    heard: Arc<Heard>,
    sock: Weak<OwnedFd>,
}

// ANCHOR: serve
/// Publishes the connection port at `path` and serves each channel in a thread; after
/// `clients` channels have ended (or never), returns its summary line. `ready` gets one
/// byte once the port is published. A client that sends nothing for `idle` while the
/// server waits for it (its connect, an answer to a callback) loses its channel, and when
/// all [`MAX_CHANNELS`] are open, a newcomer takes the place of the channel whose client
/// has been silent longest: clients that say nothing cannot keep the others out.
pub fn serve(
    n: &Narrator,
    path: &Path,
    clients: Option<u64>,
    ready: Option<OwnedFd>,
    idle: Duration,
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
    let start = Instant::now();
    let mut live: Vec<Live> = Vec::new();
    let mut closing = Vec::new();
    let mut number = 0u32;
    while clients.is_none_or(|limit| u64::from(number) < limit) {
        let Some(conn) = place::accept(n, &listener)? else {
            continue;
        };
        number += 1;
        // Channels that have ended leave the list, so that it holds the live ones only.
        live.retain(|l| !l.thread.is_finished());
        if live.len() >= MAX_CHANNELS {
            closing.extend(make_room(n, &mut live)?);
        }
        let conn = Arc::new(conn);
        let heard = Arc::new(Heard::new(start));
        let (n2, totals, sock, heard2) = (n.clone(), totals.clone(), conn.clone(), heard.clone());
        // Builder::spawn, not thread::spawn: a thread the system cannot give (a small
        // `ulimit -v`, too many threads) is an error for this one channel, not a panic.
        let spawned = std::thread::Builder::new().spawn(move || {
            add(&totals.channels);
            if let Err(e) = channel(&n2, sock, number, &totals, &heard2, idle) {
                n2.essential(tr!("channel {number} ended: {e}", number, e));
            }
        });
        match spawned {
            Ok(thread) => live.push(Live {
                number,
                thread,
                heard,
                sock: Arc::downgrade(&conn),
            }),
            Err(e) => n.essential(tr!(
                "pthread_create for channel {number} failed: {e}; that client is turned away, the others go on",
                number,
                e
            )),
        }
    }
    for t in live.into_iter().map(|l| l.thread).chain(closing) {
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

/// Every place is taken: shuts down the channel whose client has been silent longest
/// (`shutdown(SHUT_RDWR)`: its thread reads end-of-file and ends, its client is told the
/// channel is closed). A real client sends as soon as it has connected, so the channels
/// that lose their places are the ones that keep saying nothing. Returns the thread, to
/// join at the end.
fn make_room(n: &Narrator, live: &mut Vec<Live>) -> Result<Option<std::thread::JoinHandle<()>>> {
    // Of two silent as long, the older channel (the lower number) goes.
    let longest = (0..live.len()).max_by_key(|&i| {
        (
            live[i].heard.silent_for(),
            std::cmp::Reverse(live[i].number),
        )
    });
    let Some(longest) = longest else {
        return Ok(None);
    };
    let gone = live.swap_remove(longest);
    say!(
        n,
        "{max} channels are open already: I close channel {number}, silent longest ({ms} ms), to make room",
        max = MAX_CHANNELS,
        number = gone.number,
        ms = gone.heard.silent_for().as_millis()
    );
    // Its thread may have let the socket go meanwhile: then the channel is closed already.
    if let Some(sock) = gone.sock.upgrade() {
        my::shutdown(n, &*sock, Shutdown::Both)?;
    }
    Ok(Some(gone.thread))
}

/// Waits at most `idle` for the client to send something on `sock` (or to hang up, which
/// the receive that follows sees). `call` names what the server waits for, for the error
/// a silent client gets: so that it cannot hold this channel's thread forever.
fn wait_for_client(n: &Narrator, sock: &impl AsFd, idle: Duration, call: String) -> Result<()> {
    let ready = sys::poll(n, &[(sock.as_fd(), PollFlags::POLLIN)], Some(idle))?;
    if ready.timed_out() {
        return Err(Error::sys(call, Errno::ETIMEDOUT).hint(tr!(
            "the client sent nothing for {seconds} s: its channel is closed, so that a silent client cannot hold a thread of the server (--idle-timeout)",
            seconds = idle.as_secs_f64()
        )));
    }
    Ok(())
}

/// The server's end of one channel.
struct End<'a> {
    n: &'a Narrator,
    sock: Arc<OwnedFd>,
    client: Pid,
    /// The client process itself: readable (POLLIN) once it has exited.
    pidfd: Option<OwnedFd>,
    requests: Mapping,
    replies: Mapping,
    totals: &'a Totals,
    heard: &'a Heard,
    idle: Duration,
}

// ANCHOR: channel
/// One channel: learn who the client is from the kernel, set up both sections, then
/// answer requests until the client closes its end. Its connect must come within `idle`.
fn channel(
    n: &Narrator,
    sock: Arc<OwnedFd>,
    number: u32,
    totals: &Totals,
    heard: &Heard,
    idle: Duration,
) -> Result<()> {
    let peer = sys::getsockopt_peercred(n, &sock)?;
    let client = Pid::from_raw(peer.pid());
    let pidfd = my::getsockopt_peerpidfd(n, &sock)
        .or_else(|_| my::pidfd_open(n, client))
        .ok();
    let mut buf = alpc::buffer();
    wait_for_client(
        n,
        &sock,
        idle,
        tr!("wait for the connect of channel {number}", number),
    )?;
    let Some(got) = wire::receive(n, &sock, &mut buf)? else {
        return Ok(());
    };
    heard.now();
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
        heard,
        idle,
    };
    for _ in n.first_few(
        0u64..,
        tr!("further requests on this channel, without narration"),
    ) {
        let Some(got) = wire::receive(n, &end.sock, &mut buf)? else {
            n.announce(tr!("channel {number}: the client closed its end", number));
            return Ok(());
        };
        heard.now();
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
            Err(e) if e.errno() == Some(Errno::ETIMEDOUT) => {
                n.essential(tr!(
                    "channel {number}: the client did not answer my callback: {e}",
                    number,
                    e
                ));
                return Ok(());
            }
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
            wait_for_client(n, sock, self.idle, tr!("wait for the callback's answer"))?;
            let got = wire::receive(n, sock, &mut buf)?.ok_or_else(vanished)?;
            self.heard.now();
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
