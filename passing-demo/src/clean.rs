//! `clean`: removes what a killed run of this `--name` left behind, and nothing else.
//!
//! A run killed with SIGKILL cannot remove its objects. This finds them by the names the
//! lessons use ([`crate::Names`]) and removes each only if it is of the kind the lessons
//! make and belongs to the user running `clean`:
//!
//! - the System V queues of every purpose, if their creator (`cuid`) is this user;
//! - the FIFO and the socket of the mailbox (`lstat`: the type and the owner; a
//!   symbolic link is refused as itself);
//! - the datagram lesson's address files, `passing-NAME-PID.sock`, whose process is
//!   gone;
//! - the POSIX queue, if `fstat` on it says it is this user's.
//!
//! What is refused is said, with the reason, and left in place.

use std::os::fd::AsFd;

use common::narrate::print_summary;
use common::owner::{Kind, fstat_ours, lstat_ours};
use common::{Narrator, Result, say};
use nix::errno::Errno;

use crate::mailbox::queue::creator;
use crate::{Names, Purpose, sys};

/// Removes this name's leftovers; prints `summary: removed=N refused=M`.
pub fn clean(n: &Narrator, names: &Names) -> Result<()> {
    let (mut removed, mut refused) = (0u32, 0u32);
    let mut count = |result: Result<bool>| match result {
        Ok(true) => removed += 1,
        Ok(false) => {}
        Err(e) => {
            n.announce(format_args!("{e}"));
            refused += 1;
        }
    };
    for purpose in Purpose::ALL {
        count(queue(n, names, purpose));
    }
    count(path(n, &names.fifo()?, Kind::Fifo));
    count(path(n, &names.mailbox_socket()?, Kind::Socket));
    for leftover in addresses(names)? {
        count(path(n, &leftover, Kind::Socket));
    }
    count(posix_queue(n, names));
    print_summary(format_args!("summary: removed={removed} refused={refused}"))
}

/// The queue of `purpose`, if there is one and this user created it.
fn queue(n: &Narrator, names: &Names, purpose: Purpose) -> Result<bool> {
    let q = match sys::msgget(n, names.key(purpose)) {
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(false),
        other => other?,
    };
    let me = nix::unistd::Uid::effective().as_raw();
    match creator(q.id()) {
        Some((_, cuid)) if cuid == me => sys::msgctl_rmid(n, q.id()).map(|()| true),
        found => Err(common::Error::bad_data(
            format!("msgget({}, 0)", crate::key_shown(names.key(purpose))),
            common::tr!(
                "queue {id} was created by uid {cuid}, not by you",
                id = q.id(),
                cuid = found.map_or("?".to_string(), |(_, c)| c.to_string())
            ),
        )
        .hint(common::tr!("it is not yours to remove"))),
    }
}

/// A path of ours of `kind`: unlinked. Nothing there: nothing to do. Anything else: an
/// error naming what it is.
fn path(n: &Narrator, path: &std::path::Path, kind: Kind) -> Result<bool> {
    let Some(st) = lstat_ours(path, kind)? else {
        return Ok(false);
    };
    // Never a live run's mailbox: a socket somebody is bound to, or a FIFO somebody
    // has open, belongs to a class that is still running (perhaps with this --name).
    if in_use(path, &st) {
        return Err(common::Error::bad_data(
            format!("lstat({:?})", path.display().to_string()),
            common::tr!("a running process still uses it"),
        )
        .hint(common::tr!(
            "a class is still running with this --name: let it end, or stop it, then clean"
        )));
    }
    common::sys::unlink(n, path).map(|()| true)
}

/// Whether a process uses the socket or FIFO at `path`: for a socket, a datagram
/// `connect` to it succeeds only while some socket is bound there (it sends nothing; a
/// dead one gives ECONNREFUSED); for a FIFO, some process's `/proc/PID/fd` leads to its
/// inode (looked at with stat, which does not open the FIFO).
fn in_use(path: &std::path::Path, st: &nix::sys::stat::FileStat) -> bool {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    use std::os::fd::AsRawFd;
    if st.st_mode & libc::S_IFMT == libc::S_IFSOCK {
        let (Ok(probe), Ok(addr)) = (
            socket(
                AddressFamily::Unix,
                SockType::Datagram,
                SockFlag::SOCK_CLOEXEC,
                None,
            ),
            UnixAddr::new(path),
        ) else {
            return true;
        };
        return !matches!(connect(probe.as_raw_fd(), &addr), Err(Errno::ECONNREFUSED));
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return true;
    };
    procs.flatten().any(|p| {
        std::fs::read_dir(p.path().join("fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                nix::sys::stat::stat(&fd.path())
                    .is_ok_and(|o| o.st_dev == st.st_dev && o.st_ino == st.st_ino)
            })
        })
    })
}

/// The datagram lesson's address files of this name whose process is no longer alive.
fn addresses(names: &Names) -> Result<Vec<std::path::PathBuf>> {
    let prefix = format!("passing-{}@", names.name());
    let Ok(entries) = std::fs::read_dir(names.dir()?) else {
        return Ok(Vec::new());
    };
    Ok(entries
        .flatten()
        .filter_map(|entry| {
            let file = entry.file_name().to_str()?.to_string();
            let pid: i32 = file
                .strip_prefix(&prefix)?
                .strip_suffix(".sock")?
                .parse()
                .ok()?;
            (!common::process::is_alive(pid)).then(|| entry.path())
        })
        .collect())
}

/// The POSIX queue, if `fstat` on it says it is this user's.
fn posix_queue(n: &Narrator, names: &Names) -> Result<bool> {
    let name = names.mq();
    let mq = match sys::mq_open_existing(n, &name) {
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(false),
        other => other?,
    };
    let ours = fstat_ours(mq.as_fd(), Kind::File);
    sys::mq_close(n, mq)?;
    ours?;
    say!(n, "the POSIX queue {name} is yours: removing it", name);
    sys::mq_unlink(n, &name).map(|()| true)
}
