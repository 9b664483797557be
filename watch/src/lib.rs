//! ipc-watch: the kernel objects of the ipc-demos, live, for a class to see.
//!
//! A teacher runs a producer in one terminal, a consumer in another, and `ipc-watch` in a
//! third, on the projector: how full the pipe is, how many messages of which type wait in
//! the queue, where the ring's head and tail are, what each socket holds unread, which
//! signals are pending. Watching never changes what is watched: objects are opened
//! read-only or not at all, shared memory is mapped PROT_READ and copied out once, no
//! message is taken from a queue, and no pipe or FIFO gets an extra end.
//!
//! - [`view`]: a frame as data (bars, rows of slots, lines), and as plain text (`--once`);
//! - [`live`]: the same frame drawn with ratatui, several times a second;
//! - [`pipes`], [`queues`], [`rings`], [`sockets`], [`signals`]: one look at each kind
//!   of object;
//! - [`peek`] and [`procfs`]: the read-only system calls and `/proc` files they use.
//!
//! Usage: `cargo run -p ipc-watch -- --help`. See also: proc(5), pidfd_getfd(2),
//! msgrcv(2) (MSG_COPY), mq_overview(7), mincore(2), sock_diag(7).

pub mod live;
pub mod peek;
pub mod pipes;
pub mod procfs;
pub mod queues;
pub mod rings;
pub mod signals;
pub mod sockets;
pub mod view;

use std::path::PathBuf;

use view::Screen;

/// What to watch, with its name resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    /// The pipes of one process, or of every pipe-demo.
    Pipe(Option<i32>),
    /// A FIFO at a path.
    Fifo(PathBuf),
    /// A System V queue by key.
    Msgq(msgq_demo::sysv::Key),
    /// A POSIX queue by name.
    Mq(String),
    /// A shm-demo ring by name.
    Shm(String),
    /// An mmap-demo message file.
    Mmap(PathBuf),
    /// The resident pages of a file (mmap-demo lazy).
    Lazy(PathBuf),
    /// A Unix socket by path.
    Unix(PathBuf),
    /// TCP connections on a port.
    Tcp(u16),
    /// The signal sets of one process, or of every signal-demo.
    Signals(Option<i32>),
}

impl Watched {
    /// One look: what the object holds now.
    pub fn look(&self) -> Screen {
        match self {
            Watched::Pipe(pid) => pipes::look_pipes(*pid),
            Watched::Fifo(path) => pipes::look_fifo(path),
            Watched::Msgq(key) => queues::look_sysv(*key),
            Watched::Mq(name) => queues::look_posix(name),
            Watched::Shm(name) => rings::look_shm(name),
            Watched::Mmap(path) => rings::look_mmap(path),
            Watched::Lazy(path) => rings::look_lazy(path),
            Watched::Unix(path) => sockets::look_unix(path),
            Watched::Tcp(port) => sockets::look_tcp(*port),
            Watched::Signals(pid) => signals::look_signals(*pid),
        }
    }
}
