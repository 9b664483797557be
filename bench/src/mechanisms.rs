//! Every mechanism, as a two-way link between a parent and the child it forks.
//!
//! Each mechanism is built from its demo crate's own code, so that what the book teaches
//! is what the bench measures: `common::stream` for pipes, FIFOs and stream sockets,
//! `fifo_demo` to make and open FIFOs, `msgq_demo::sys` for System V and POSIX queues
//! (the calls the lessons make, with a silent narrator), `shm_demo::{create, put, take}`
//! for shared memory, `mmap_demo::shared::{create, put, take}` for the mapped file,
//! `socket_demo` to listen and connect, `signal_demo::sys` to block and wait for signals.
//!
//! A [`Setup`] holds what must exist before `fork` (descriptors, mappings, names); after
//! the fork, the parent turns it into its [`Link`] and the child into the other one.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use common::message;
use common::process::Patience;
use common::stream::FdStream;
use common::{Error, Narrator, Result};
use mmap_demo::shared::Shared;
use nix::sys::signal::Signal;
use nix::sys::socket::{self, SockType, sockopt};
use nix::unistd::{self, Pid};
use shm_demo::region::{self, Region, Ring, Shape, Wait};

/// One side of a two-way link: sends and receives whole frames.
pub trait Link {
    /// Sends one frame.
    fn send(&mut self, frame: &[u8]) -> Result<()>;
    /// Receives one frame into `buf`, and checks its checksum.
    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()>;
}

/// What exists before the fork; each process turns it into its side of the link.
pub trait Setup {
    /// The parent's side (called in the parent after `fork`).
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>>;
    /// The child's side (called in the child after `fork`).
    fn child(self: Box<Self>, parent: Pid) -> Result<Box<dyn Link>>;
}

/// How a mechanism's latency compares to the hardware: the floor it is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Floor {
    /// A process that sleeps must be woken: the futex round trip.
    Futex,
    /// A process that spins sees the other's store: the cache-line round trip.
    CacheLine,
}

/// A mechanism, with the columns of note 000's summary table.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Spec {
    /// Its name in the report.
    pub name: &'static str,
    /// Shared memory or message passing (notes 001 and 004).
    pub model: &'static str,
    /// What it carries: a stream of bytes, whole messages, slots of a shared region.
    pub unit: &'static str,
    /// One-way or two-way, as the notes' table has it.
    pub direction: &'static str,
    /// Same machine, or across machines.
    pub scope: &'static str,
    /// The floor its latency is compared to.
    pub floor: Floor,
    /// Whether it waits by spinning (skipped when both processes share one CPU).
    pub spins: bool,
    /// Whether it spins briefly before it sleeps (shm-demo's fast ring): an answer that
    /// comes while it spins costs no wake-up, so its round trip may beat the futex floor.
    pub spins_first: bool,
    /// Whether it carries data at all (signals carry none).
    pub carries_data: bool,
}

/// Every mechanism of the demos, in the order of the notes.
pub const ALL: &[Spec] = &[
    spec(
        "pipe",
        "message passing",
        "stream",
        "one-way",
        "same machine",
    ),
    spec(
        "fifo",
        "message passing",
        "stream",
        "one-way",
        "same machine",
    ),
    // One queue carries both directions (type 1 down, type 2 up): two-way, as note 002
    // says, not one-way as note 000's table has it (docs/src/msgq.md, "Both ways").
    spec(
        "sysv-queue",
        "message passing",
        "message",
        "two-way",
        "same machine",
    ),
    spec(
        "posix-queue",
        "message passing",
        "message",
        "one-way",
        "same machine",
    ),
    // shm-demo's textbook ring: head, tail and two semaphores, 16 slots.
    spec(
        "shm-sem",
        "shared memory",
        "slot",
        "two-way",
        "same machine",
    ),
    // shm-demo's fast ring (--ring fast), waiting by spinning briefly, then sleeping on a
    // futex; and the same ring spinning only.
    Spec {
        floor: Floor::Futex,
        spins_first: true,
        ..spec(
            "shm-block",
            "shared memory",
            "slot",
            "two-way",
            "same machine",
        )
    },
    Spec {
        floor: Floor::CacheLine,
        spins: true,
        ..spec(
            "shm-spin",
            "shared memory",
            "slot",
            "two-way",
            "same machine",
        )
    },
    // mmap-demo's sides wait by looking at the other's counter (spinning, then every
    // millisecond), not by sleeping in the kernel: the cache line is their floor.
    Spec {
        floor: Floor::CacheLine,
        ..spec(
            "mmap-file",
            "shared memory",
            "slot",
            "two-way",
            "same machine",
        )
    },
    spec(
        "unix-stream",
        "message passing",
        "stream",
        "two-way",
        "same machine",
    ),
    spec(
        "unix-dgram",
        "message passing",
        "datagram",
        "two-way",
        "same machine",
    ),
    spec(
        "tcp-loopback",
        "message passing",
        "stream",
        "two-way",
        "same and other machines",
    ),
    Spec {
        carries_data: false,
        ..spec(
            "signal",
            "message passing",
            "notification",
            "one-way",
            "same machine",
        )
    },
];

const fn spec(
    name: &'static str,
    model: &'static str,
    unit: &'static str,
    direction: &'static str,
    scope: &'static str,
) -> Spec {
    Spec {
        name,
        model,
        unit,
        direction,
        scope,
        floor: Floor::Futex,
        spins: false,
        spins_first: false,
        carries_data: true,
    }
}

/// The largest frame `spec` can carry here, or `None` for no limit of its own.
pub fn limit(spec: &Spec) -> Option<usize> {
    match spec.name {
        "sysv-queue" => Some(msgq_demo::msgmax()),
        "posix-queue" => Some(read_limit(msgq_demo::posix::MSGSIZE_MAX_PATH).unwrap_or(8192)),
        // A datagram must fit in the send buffer (less the kernel's own overhead).
        "unix-dgram" => {
            Some(read_limit("/proc/sys/net/core/wmem_default").unwrap_or(212_992) - 1024)
        }
        "signal" => Some(0),
        _ => None,
    }
}

fn read_limit(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Makes the kernel objects for `spec`, sized for frames of `frame_len` bytes, before the
/// fork. Names go in `dir`; each object is unlinked as soon as both sides can reach it
/// without its name, so that nothing is left behind even if the bench is killed.
pub fn setup(spec: &Spec, frame_len: usize, dir: &std::path::Path) -> Result<Box<dyn Setup>> {
    let n = Narrator::silent("bench");
    let tag = format!("{}-{}", unistd::getpid(), spec.name);
    Ok(match spec.name {
        "pipe" => {
            let (a, b) = (common::sys::pipe(&n)?, common::sys::pipe(&n)?);
            Box::new(Pipes {
                n,
                down: a,
                up: b,
                max: frame_len,
            })
        }
        "fifo" => {
            let (down, up) = (
                dir.join(format!("bench-{tag}-down")),
                dir.join(format!("bench-{tag}-up")),
            );
            let guards = vec![
                fifo_demo::make_or_find(&n, &down)?,
                fifo_demo::make_or_find(&n, &up)?,
            ];
            Box::new(Fifos {
                n,
                down,
                up,
                max: frame_len,
                _guards: guards,
            })
        }
        "sysv-queue" => {
            // IPC_PRIVATE: a new queue no key names, which only this parent and its child
            // (which inherits the identifier) can use.
            let q = msgq_demo::sys::msgget(
                &n,
                libc::IPC_PRIVATE,
                msgq_demo::sys::Get::New { mode: 0o600 },
            )?;
            Box::new(SysvQueue {
                n,
                q,
                max: frame_len,
            })
        }
        "posix-queue" => {
            let open = |name: &str| -> Result<nix::mqueue::MqdT> {
                let new = msgq_demo::sys::Open::New {
                    capacity: 10,
                    msgsize: frame_len.max(1) as i64,
                };
                let mq = msgq_demo::sys::mq_open(&n, name, new)?;
                // The open descriptors keep the queue; its name is not needed any more.
                msgq_demo::sys::mq_unlink(&n, name)?;
                Ok(mq)
            };
            Box::new(PosixQueues {
                down: open(&format!("/bench-{tag}-down"))?,
                up: open(&format!("/bench-{tag}-up"))?,
                max: frame_len,
                n,
            })
        }
        "shm-sem" | "shm-block" | "shm-spin" => {
            let wait = if spec.spins { Wait::Spin } else { Wait::Block };
            // The textbook ring as the chapter runs it, with 16 slots. The fast ring gets
            // the room a pipe has, 64 KiB (16 slots at least): many small messages
            // between two wake-ups, as a pipe holds them.
            let shape = if spec.name == "shm-sem" {
                Shape::new(Ring::Textbook, 16, frame_len)
            } else {
                let slot = Shape::new(Ring::Fast, 16, frame_len).map_or(1, |s| s.slot_size);
                let slots = ((64 << 10) / slot).clamp(16, region::MAX_SLOTS);
                Shape::new(Ring::Fast, slots, frame_len)
            }
            .ok_or_else(|| Error::usage("frame too large for a ring"))?;
            // shm_demo::create, then drop its guard at once: the mapping stays, the name goes.
            let (down, _) =
                shm_demo::create(&n, &format!("/bench-{tag}-down"), shape, wait, u64::MAX)?;
            let (up, _) = shm_demo::create(&n, &format!("/bench-{tag}-up"), shape, wait, u64::MAX)?;
            Box::new(Rings {
                n,
                down,
                up,
                ops: SHM_RING,
            })
        }
        "mmap-file" => {
            // mmap_demo's message file as a ring of 16 frames for messages without end;
            // its guard removes the file at once: the mappings stay, the name goes.
            let file = |way: &str| {
                let path = dir.join(format!("bench-{tag}-{way}"));
                mmap_demo::shared::create(&n, &path, u64::MAX, 16, frame_len).map(|(f, _)| f)
            };
            let (down, up) = (file("down")?, file("up")?);
            Box::new(Rings {
                n,
                down,
                up,
                ops: MMAP_RING,
            })
        }
        "unix-stream" | "tcp-loopback" => {
            let endpoint = if spec.name == "tcp-loopback" {
                socket_demo::Endpoint::Tcp(std::net::SocketAddrV4::new(
                    std::net::Ipv4Addr::LOCALHOST,
                    0,
                ))
            } else {
                socket_demo::Endpoint::Unix(dir.join(format!("bench-{tag}.sock")))
            };
            let (listener, endpoint, guard) = socket_demo::listen(&n, &endpoint)?;
            Box::new(Sockets {
                n,
                listener,
                endpoint,
                max: frame_len,
                _guard: guard,
            })
        }
        "unix-dgram" => {
            let (a, b) = common::sys::socketpair(&n, SockType::Datagram)?;
            Box::new(Datagrams {
                n,
                a,
                b,
                max: frame_len,
            })
        }
        "signal" => {
            // Blocked before the fork, so that the child starts with it blocked too: a
            // signal that arrives early waits for sigwaitinfo instead of killing.
            let set = signal_demo::sys::SignalSet::of(&[libc::SIGUSR1]);
            signal_demo::sys::sigprocmask(&n, signal_demo::sys::How::Block, &set)?;
            Box::new(Signals { n, set })
        }
        other => return Err(Error::usage(format!("unknown mechanism {other}"))),
    })
}

/// Checks a received frame's checksum: the bench measures correct transfers only.
fn checked(buf: &[u8], max: usize) -> Result<()> {
    match message::decode(buf, max) {
        Ok(frame) if frame.intact => Ok(()),
        Ok(_) => Err(Error::bad_data(
            "check a frame",
            "its checksum does not match",
        )),
        Err(e) => Err(Error::bad_data("check a frame", e.to_string())),
    }
}

/// A byte stream each way: pipes, FIFOs, stream sockets.
struct Streams {
    tx: FdStream<OwnedFd>,
    rx: FdStream<OwnedFd>,
    max: usize,
}

impl Link for Streams {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        self.tx.write_all(frame)
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        match self.rx.read_frame(buf, self.max)? {
            Some(frame) if frame.intact => Ok(()),
            Some(_) => Err(Error::bad_data(
                "check a frame",
                "its checksum does not match",
            )),
            None => Err(Error::bad_data("read a frame", "end of stream")),
        }
    }
}

struct Pipes {
    n: Narrator,
    down: (OwnedFd, OwnedFd),
    up: (OwnedFd, OwnedFd),
    max: usize,
}

impl Setup for Pipes {
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>> {
        let Pipes { n, down, up, max } = *self;
        // As common::stream::produce does for the demos: room for whole frames.
        common::stream::widen(&n, &down.1, max)?;
        Ok(Box::new(Streams {
            tx: FdStream::new(down.1, &n),
            rx: FdStream::new(up.0, &n),
            max,
        }))
    }

    fn child(self: Box<Self>, _: Pid) -> Result<Box<dyn Link>> {
        let Pipes { n, down, up, max } = *self;
        common::stream::widen(&n, &up.1, max)?;
        Ok(Box::new(Streams {
            tx: FdStream::new(up.1, &n),
            rx: FdStream::new(down.0, &n),
            max,
        }))
    }
}

struct Fifos {
    n: Narrator,
    down: PathBuf,
    up: PathBuf,
    max: usize,
    _guards: Vec<Option<common::cleanup::Guard>>,
}

impl Setup for Fifos {
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>> {
        // The same order as the child's, or the two blocking opens would wait for each other.
        let tx = fifo_demo::open_end(&self.n, &self.down, true)?;
        let rx = fifo_demo::open_end(&self.n, &self.up, false)?;
        common::stream::widen(&self.n, &tx, self.max)?;
        // Both ends of both FIFOs are open in both processes now: the names can go (the
        // guards unlink them as they drop).
        Ok(Box::new(Streams {
            tx: FdStream::new(tx, &self.n),
            rx: FdStream::new(rx, &self.n),
            max: self.max,
        }))
    }

    fn child(self: Box<Self>, _: Pid) -> Result<Box<dyn Link>> {
        let rx = fifo_demo::open_end(&self.n, &self.down, false)?;
        let tx = fifo_demo::open_end(&self.n, &self.up, true)?;
        common::stream::widen(&self.n, &tx, self.max)?;
        // The guards' copies in a forked child are inert (common::process::fork forgets
        // them), so dropping them here unlinks nothing.
        Ok(Box::new(Streams {
            tx: FdStream::new(tx, &self.n),
            rx: FdStream::new(rx, &self.n),
            max: self.max,
        }))
    }
}

struct Sockets {
    n: Narrator,
    listener: OwnedFd,
    endpoint: socket_demo::Endpoint,
    max: usize,
    _guard: Option<common::cleanup::Guard>,
}

impl Sockets {
    fn link(n: &Narrator, fd: OwnedFd, max: usize, tcp: bool) -> Result<Box<dyn Link>> {
        if tcp {
            // Nagle's algorithm would hold small messages back waiting for more: off.
            socket::setsockopt(&fd, sockopt::TcpNoDelay, &true)
                .map_err(|e| Error::sys("setsockopt(TCP_NODELAY)", e))?;
        }
        let rx = fd
            .try_clone()
            .map_err(|e| Error::bad_data("dup", e.to_string()))?;
        Ok(Box::new(Streams {
            tx: FdStream::new(fd, n),
            rx: FdStream::new(rx, n),
            max,
        }))
    }
}

impl Setup for Sockets {
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>> {
        let conn = common::sys::accept(&self.n, &self.listener)?;
        let tcp = matches!(self.endpoint, socket_demo::Endpoint::Tcp(_));
        Sockets::link(&self.n, conn, self.max, tcp)
    }

    fn child(self: Box<Self>, _: Pid) -> Result<Box<dyn Link>> {
        let conn = socket_demo::connect(&self.n, &self.endpoint)?;
        let tcp = matches!(self.endpoint, socket_demo::Endpoint::Tcp(_));
        Sockets::link(&self.n, conn, self.max, tcp)
    }
}

struct SysvQueue {
    n: Narrator,
    q: msgq_demo::sysv::Queue,
    max: usize,
}

/// One System V queue carries both directions: type 1 down, type 2 up, with the
/// lessons' `msgsnd` and `msgrcv` (which wait as long as it takes: the peer here is the
/// bench's own child). The parent's side owns the queue and removes it when dropped.
struct QueueLink {
    n: Narrator,
    q: msgq_demo::sysv::Queue,
    send_type: i64,
    recv_type: i64,
    max: usize,
    owner: bool,
    patience: Patience<'static>,
}

impl Drop for QueueLink {
    fn drop(&mut self) {
        if self.owner {
            let _ = msgq_demo::sys::msgctl_rmid(&self.n, self.q.id());
        }
    }
}

impl Link for QueueLink {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        msgq_demo::sys::msgsnd(
            &self.n,
            &mut self.q,
            self.send_type,
            frame,
            false,
            &mut self.patience,
        )
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        let got = msgq_demo::sys::msgrcv(
            &self.n,
            &mut self.q,
            self.recv_type,
            self.max,
            &mut self.patience,
        )?;
        buf.clear();
        buf.extend_from_slice(self.q.text(got.len));
        checked(buf, self.max)
    }
}

impl Setup for SysvQueue {
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>> {
        Ok(Box::new(QueueLink {
            n: self.n,
            q: self.q,
            send_type: 1,
            recv_type: 2,
            max: self.max,
            owner: true,
            patience: Patience::forever(),
        }))
    }

    fn child(self: Box<Self>, _: Pid) -> Result<Box<dyn Link>> {
        Ok(Box::new(QueueLink {
            n: self.n,
            q: self.q,
            send_type: 2,
            recv_type: 1,
            max: self.max,
            owner: false,
            patience: Patience::forever(),
        }))
    }
}

struct PosixQueues {
    n: Narrator,
    down: nix::mqueue::MqdT,
    up: nix::mqueue::MqdT,
    max: usize,
}

/// Two POSIX queues, one each way, with the lessons' `mq_send` and `mq_receive`.
struct MqLink {
    n: Narrator,
    tx: nix::mqueue::MqdT,
    rx: nix::mqueue::MqdT,
    max: usize,
    patience: Patience<'static>,
}

impl Drop for MqLink {
    fn drop(&mut self) {
        // nix's MqdT is not closed when it is dropped, and the bench is one process that
        // measures many cells: every queue it opened would stay charged to the user's
        // RLIMIT_MSGQUEUE until mq_open failed with EMFILE (`--runs 7` did). On Linux a
        // queue descriptor is a file descriptor (mq_overview(7)), and this link is the
        // only owner of these two, so close(2) is their mq_close(3).
        for mq in [&self.tx, &self.rx] {
            let _ = nix::unistd::close(mq.as_raw_fd());
        }
    }
}

impl Link for MqLink {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        msgq_demo::sys::mq_send(&self.n, &self.tx, frame, 0, &mut self.patience)
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(self.max.max(1), 0);
        let got = msgq_demo::sys::mq_receive(&self.n, &self.rx, buf, &mut self.patience)?;
        buf.truncate(got.len);
        checked(buf, self.max)
    }
}

impl Setup for PosixQueues {
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>> {
        Ok(Box::new(MqLink {
            n: self.n,
            tx: self.down,
            rx: self.up,
            max: self.max,
            patience: Patience::forever(),
        }))
    }

    fn child(self: Box<Self>, _: Pid) -> Result<Box<dyn Link>> {
        Ok(Box::new(MqLink {
            n: self.n,
            tx: self.up,
            rx: self.down,
            max: self.max,
            patience: Patience::forever(),
        }))
    }
}

/// A demo's own one-message steps over its ring (`put`, `take`), and how many bytes one
/// of its frames holds.
struct RingOps<R> {
    put: fn(&Narrator, &R, u64, &[u8]) -> Result<()>,
    take: fn(&Narrator, &R, u64, &mut Vec<u8>) -> Result<()>,
    capacity: fn(&R) -> usize,
}

impl<R> Clone for RingOps<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for RingOps<R> {}

/// shm-demo's ring in shared memory.
const SHM_RING: RingOps<Region> = RingOps {
    put: shm_demo::put,
    take: shm_demo::take,
    capacity: Region::slot_capacity,
};

/// mmap-demo's message file, used as a ring.
const MMAP_RING: RingOps<Shared> = RingOps {
    put: mmap_demo::shared::put,
    take: mmap_demo::shared::take,
    capacity: Shared::frame_len,
};

/// Two rings of a shared-memory demo, one each way.
struct Rings<R> {
    n: Narrator,
    down: R,
    up: R,
    ops: RingOps<R>,
}

struct RingLink<R> {
    n: Narrator,
    tx: R,
    rx: R,
    sent: u64,
    taken: u64,
    ops: RingOps<R>,
}

impl<R> Link for RingLink<R> {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        (self.ops.put)(&self.n, &self.tx, self.sent, frame)?;
        self.sent += 1;
        Ok(())
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        (self.ops.take)(&self.n, &self.rx, self.taken, buf)?;
        self.taken += 1;
        checked(buf, (self.ops.capacity)(&self.rx))
    }
}

impl<R: 'static> Setup for Rings<R> {
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>> {
        Ok(Box::new(RingLink {
            n: self.n,
            tx: self.down,
            rx: self.up,
            sent: 0,
            taken: 0,
            ops: self.ops,
        }))
    }

    fn child(self: Box<Self>, _: Pid) -> Result<Box<dyn Link>> {
        Ok(Box::new(RingLink {
            n: self.n,
            tx: self.up,
            rx: self.down,
            sent: 0,
            taken: 0,
            ops: self.ops,
        }))
    }
}

struct Datagrams {
    n: Narrator,
    a: OwnedFd,
    b: OwnedFd,
    max: usize,
}

/// One side of a Unix datagram socket pair: `send` and `recv` of `common::sys`, as
/// socket-demo's `dgram` lesson makes them.
struct DgramLink {
    n: Narrator,
    fd: OwnedFd,
    max: usize,
}

impl Link for DgramLink {
    fn send(&mut self, frame: &[u8]) -> Result<()> {
        common::sys::send(&self.n, &self.fd, frame).map(drop)
    }

    fn recv(&mut self, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(self.max + 1, 0);
        let len = common::sys::recv(&self.n, &self.fd, buf)?;
        buf.truncate(len);
        checked(buf, self.max)
    }
}

impl Setup for Datagrams {
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>> {
        Ok(Box::new(DgramLink {
            n: self.n,
            fd: self.a,
            max: self.max,
        }))
    }

    fn child(self: Box<Self>, _: Pid) -> Result<Box<dyn Link>> {
        Ok(Box::new(DgramLink {
            n: self.n,
            fd: self.b,
            max: self.max,
        }))
    }
}

/// SIGUSR1 each way, sent with `kill` and taken with `sigwaitinfo`, as the signal lessons
/// do: a notification, no data.
struct Signals {
    n: Narrator,
    set: signal_demo::sys::SignalSet,
}

struct SignalLink {
    n: Narrator,
    set: signal_demo::sys::SignalSet,
    peer: Pid,
}

impl Link for SignalLink {
    fn send(&mut self, _frame: &[u8]) -> Result<()> {
        common::sys::kill(&self.n, self.peer, Signal::SIGUSR1)
    }

    fn recv(&mut self, _buf: &mut Vec<u8>) -> Result<()> {
        signal_demo::sys::sigwaitinfo(&self.n, &self.set).map(drop)
    }
}

impl Setup for Signals {
    fn parent(self: Box<Self>) -> Result<Box<dyn Link>> {
        // The parent learns its peer's pid from the first signal it gets: the child
        // signals first (see measure), so the parent waits for it here.
        let caught = signal_demo::sys::sigwaitinfo(&self.n, &self.set)?;
        Ok(Box::new(SignalLink {
            n: self.n,
            set: self.set,
            peer: caught.sender,
        }))
    }

    fn child(self: Box<Self>, parent: Pid) -> Result<Box<dyn Link>> {
        common::sys::kill(&self.n, parent, Signal::SIGUSR1)?;
        Ok(Box::new(SignalLink {
            n: self.n,
            set: self.set,
            peer: parent,
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test says it failed by panicking

    use super::*;

    /// A bench run sets up every cell anew, many times in one process. POSIX queues are
    /// charged to RLIMIT_MSGQUEUE (800 KiB by default) until they are closed: a link that
    /// did not close its queues made the 12th or so set-up fail with EMFILE.
    #[test]
    fn posix_queue_links_close_their_queues() {
        let spec = ALL.iter().find(|s| s.name == "posix-queue").unwrap();
        let dir = std::env::temp_dir();
        for _ in 0..100 {
            let link = setup(spec, 4096 + common::message::OVERHEAD, &dir)
                .unwrap()
                .parent()
                .unwrap();
            drop(link);
        }
    }
}
