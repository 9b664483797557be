//! Pipes and FIFOs: the bytes waiting in each, its capacity, and who holds its ends.
//!
//! A pipe has no name to open, and opening a FIFO would make the watcher one more reader
//! or writer, which changes when the others see end-of-file or EPIPE. So the watcher
//! finds the ends in the descriptor tables of the processes that hold them
//! (`/proc/PID/fd`, links such as `pipe:[1234]`) and asks through a duplicate of one of
//! them, made with `pidfd_getfd(2)` and closed at once ([`crate::peek::pipe_fill`]).

use std::collections::BTreeMap;
use std::path::Path;

use common::owner::{Kind, lstat_ours};

use crate::peek;
use crate::procfs;
use crate::view::{Part, Screen, Unit};

/// One end of a pipe, in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct End {
    pid: i32,
    fd: i32,
    writes: bool,
}

/// The pipes held by `pid`, or by every pipe-demo process of this user.
pub fn look_pipes(pid: Option<i32>) -> Screen {
    let watched: Vec<i32> = match pid {
        Some(pid) => vec![pid],
        None => procfs::our_processes()
            .into_iter()
            .filter(|(_, name)| name == "pipe-demo")
            .map(|(pid, _)| pid)
            .collect(),
    };
    let title = match pid {
        Some(pid) => common::tr!("pipes of {who}", who = procfs::who(pid)),
        None => common::tr!("pipes of the pipe-demo processes"),
    };
    let mut screen = Screen::new(title);
    if watched.is_empty() || pid.is_some_and(|p| procfs::comm(p).is_none()) {
        screen.push(Part::Missing(match pid {
            Some(pid) => common::tr!("no process {pid} (yet): waiting for it", pid),
            None => common::tr!(
                "no pipe-demo of yours is running yet: waiting (start one with --step or --rate)"
            ),
        }));
        return screen;
    }
    let mut pipes: BTreeMap<u64, Vec<End>> = BTreeMap::new();
    for &pid in &watched {
        for (fd, target) in procfs::fds(pid) {
            if let Some(ino) = procfs::inode_in(&target, "pipe") {
                pipes.entry(ino).or_default().push(end(pid, fd));
            }
        }
    }
    if pipes.is_empty() {
        screen.push(Part::Missing(common::tr!(
            "no pipe is open in these processes (yet)"
        )));
        return screen;
    }
    // The other ends may be in processes not watched (a shell's, a test's): find them.
    for (other, _) in procfs::our_processes() {
        if watched.contains(&other) {
            continue;
        }
        for (fd, target) in procfs::fds(other) {
            if let Some(ends) = procfs::inode_in(&target, "pipe").and_then(|i| pipes.get_mut(&i)) {
                ends.push(end(other, fd));
            }
        }
    }
    for (ino, ends) in &pipes {
        screen.push(Part::Heading(format!("pipe:[{ino}]")));
        show_pipe(&mut screen, ends);
    }
    screen
}

fn end(pid: i32, fd: i32) -> End {
    End {
        pid,
        fd,
        writes: procfs::access_mode(pid, fd) == Some(libc::O_WRONLY),
    }
}

/// The bar and the ends of one pipe.
fn show_pipe(screen: &mut Screen, ends: &[End]) {
    let mut asked = None;
    let mut why = None;
    for e in ends {
        match peek::borrow_fd(e.pid, e.fd).and_then(|dup| peek::pipe_fill(&dup)) {
            Ok(fill) => {
                asked = Some(fill);
                break;
            }
            Err(errno) => why = Some(errno),
        }
    }
    match (asked, why) {
        (Some((waiting, capacity)), _) => {
            screen.gauge(common::tr!("bytes waiting"), waiting, capacity, Unit::Bytes)
        }
        (None, Some(errno)) => screen.line(
            common::tr!("bytes waiting"),
            common::tr!(
                "not visible: pidfd_getfd = {errno} (the watcher needs the right to ptrace the holder: same user, /proc/sys/kernel/yama/ptrace_scope 0, or root)",
                errno = common::error::errno_name(errno)
            ),
        ),
        (None, None) => screen.line(common::tr!("bytes waiting"), "?"),
    }
    for (writes, label) in [
        (false, common::tr!("read ends")),
        (true, common::tr!("write ends")),
    ] {
        let held: Vec<String> = ends
            .iter()
            .filter(|e| e.writes == writes)
            .map(|e| {
                common::tr!(
                    "fd {fd} of {who}",
                    fd = e.fd,
                    who = procfs::who_and_what(e.pid)
                )
            })
            .collect();
        let text = if held.is_empty() {
            if writes {
                common::tr!("none: a reader that has read everything gets end-of-file")
            } else {
                common::tr!("none: a writer gets EPIPE")
            }
        } else {
            held.join("; ")
        };
        screen.line(label, text);
    }
}

/// The FIFO at `path`: its bytes and its ends, found in the descriptor tables of this
/// user's processes by the FIFO's identity (device and inode).
pub fn look_fifo(path: &Path) -> Screen {
    let mut screen = Screen::new(common::tr!("FIFO {path}", path = path.display()));
    let st = match lstat_ours(path, Kind::Fifo) {
        Ok(Some(st)) => st,
        Ok(None) => {
            screen.push(Part::Missing(common::tr!(
                "no FIFO at this path (yet): waiting for a fifo-demo to make it"
            )));
            return screen;
        }
        Err(e) => {
            screen.push(Part::Missing(e.to_string()));
            return screen;
        }
    };
    let mut ends = Vec::new();
    for (pid, _) in procfs::our_processes() {
        for (fd, target) in procfs::fds(pid) {
            // A cheap filter first: the link of a FIFO's descriptor is its path.
            if !target.starts_with('/') {
                continue;
            }
            if procfs::fd_identity(pid, fd) == Some((st.st_dev, st.st_ino)) {
                ends.push(end(pid, fd));
            }
        }
    }
    if ends.is_empty() {
        screen.line(
            common::tr!("ends"),
            common::tr!(
                "nobody has it open: it holds no bytes (the kernel keeps a FIFO's data only while it is open)"
            ),
        );
        return screen;
    }
    show_pipe(&mut screen, &ends);
    screen
}
