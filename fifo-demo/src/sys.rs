//! The system call only fifo-demo makes, narrated the way `common::sys` narrates the
//! shared ones: its `strace`-style line built from its typed arguments.
//!
//! See also: fpathconf(3), pipe(7) ("PIPE_BUF").

use std::os::fd::{AsFd, AsRawFd};

use common::narrate::Shown;
use common::{Narrator, Result};
use nix::unistd::{self, PathconfVar};

/// A limit `fpathconf` returned, or `-1` for "no limit".
struct Limit(Option<i64>);

impl Shown for Limit {
    fn shown(&self) -> String {
        self.0
            .map_or_else(|| "-1".into(), |limit| limit.to_string())
    }
}

/// `fpathconf(fd, _PC_PIPE_BUF)`: how many bytes one `write` to this pipe or FIFO may
/// carry and still arrive in one piece, never mixed with another writer's (pipe(7)).
/// `None` if the system sets no limit.
pub fn fpathconf_pipe_buf(n: &Narrator, fd: &impl AsFd) -> Result<Option<i64>> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(format_args!("fpathconf({raw}, _PC_PIPE_BUF)"), || {
        unistd::fpathconf(fd, PathconfVar::PIPE_BUF).map(Limit)
    })
    .map(|limit| limit.0)
}

/// What `ioctl(FIONREAD)` wrote: the bytes waiting in the FIFO.
struct Unread(usize);

impl Shown for Unread {
    fn shown(&self) -> String {
        format!("0   ({} bytes unread)", self.0)
    }
}

/// `ioctl(fd, FIONREAD, &count)`: how many bytes wait in the pipe or FIFO, unread by
/// anyone (ioctl_fionread(2), pipe(7)). The one way a process can see whether the other
/// side has taken what it wrote: the FIFO itself never says who read.
pub fn ioctl_fionread(n: &Narrator, fd: &impl AsFd) -> Result<usize> {
    let raw = fd.as_fd().as_raw_fd();
    n.call(format_args!("ioctl({raw}, FIONREAD, &count)"), || {
        let mut count: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer, which points at `count`,
        // alive for the call; `raw` is an open descriptor borrowed from `fd`.
        let r = unsafe { libc::ioctl(raw, libc::FIONREAD, &mut count) };
        nix::errno::Errno::result(r).map(|_| Unread(usize::try_from(count).unwrap_or(0)))
    })
    .map(|unread| unread.0)
}
