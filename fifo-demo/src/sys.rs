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
