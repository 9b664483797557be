//! What a producer killed with SIGKILL leaves: its message file. [`clean`] removes it,
//! and a consumer whose producer died removes it too, but only that very file, and only
//! if nothing says it is another's.

use std::os::fd::AsRawFd;
use std::path::Path;

use common::mapping;
use common::narrate::print_summary;
use common::owner::{self, Kind};
use common::{Error, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, fstat, lstat};

use crate::layout::{HEADER, MAGIC, PRODUCER_AT};

/// What [`leftover`] found at a path.
enum Found {
    /// Nothing is there.
    Nothing,
    /// Another file than the one asked about (`used`) is there now.
    Another,
    /// A message file of this user whose producer is not running: it may be removed.
    Leftover {
        /// The producer pid its header names (dead, or no process at all).
        producer: i32,
    },
}

/// Checks that the file at `path` may be removed: the one this process used (`used`: its
/// device and inode, if it used one), a regular file of this user, not a symbolic link
/// (`lstat`), the same file once opened with O_NOFOLLOW, starting with the message
/// file's magic, and not a live producer's (the pid in its header). An error says why it
/// must stay. The header is read with `pread`, not mapped, so that a shrunk file cannot
/// raise SIGBUS here.
fn leftover(n: &Narrator, path: &Path, used: Option<(u64, u64)>) -> Result<Found> {
    let shown = path.display().to_string();
    let call = format!("lstat({shown:?})");
    let st = match lstat(path) {
        Err(Errno::ENOENT) => return Ok(Found::Nothing),
        Err(errno) => return Err(Error::sys(call, errno)),
        Ok(st) => st,
    };
    // A file that took the path is judged by clean, not by the consumer that used the
    // old one.
    if used.is_some_and(|used| used != (st.st_dev, st.st_ino)) {
        return Ok(Found::Another);
    }
    owner::check(&st, Kind::File, &call)?;
    let fd = common::sys::open(n, path, OFlag::O_RDONLY | OFlag::O_NOFOLLOW, Mode::empty())?;
    let call = format!("fstat({}) of {shown:?}", fd.as_raw_fd());
    let now = fstat(&fd).map_err(|errno| Error::sys(call, errno))?;
    if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
        return Err(Error::bad_data(
            tr!("the file {path}", path = shown),
            tr!("another file took the path between lstat and open"),
        ));
    }
    let mut header = [0u8; HEADER];
    let got = common::sys::pread(n, &fd, &mut header, 0)?;
    let (what, rm) = (tr!("the file {path}", path = shown), format!("rm {shown}"));
    let producer = mapping::leftover_producer(
        &header[..got],
        &MAGIC,
        PRODUCER_AT,
        ("mmap-demo", &what, &rm),
    )?;
    Ok(Found::Leftover { producer })
}

/// Removes what a dead producer left at `path`, if it is the file this consumer used
/// (`used`: its device and inode) and [`leftover`] finds it removable. Otherwise it
/// leaves the file and says why, and which command removes it.
pub(crate) fn remove_after_dead_producer(n: &Narrator, path: &Path, used: Option<(u64, u64)>) {
    let shown = path.display().to_string();
    match leftover(n, path, used) {
        Ok(Found::Nothing) => say!(n, "nothing is left at {path}", path = shown),
        Ok(Found::Leftover { .. }) if used.is_some() => {
            n.announce(tr!("the producer cannot remove its file any more, so I do"));
            if let Err(e) = common::sys::unlink(n, path) {
                n.essential(tr!(
                    "I could not remove {path}: {e}; `mmap-demo clean --path {path}` removes it",
                    path = shown,
                    e
                ));
            }
        }
        Ok(_) => n.essential(tr!(
            "I leave {path}: it now names another file than the one my producer made; if that \
             is a leftover too, `mmap-demo clean --path {path}` checks it and removes it",
            path = shown
        )),
        Err(e) => n.essential(tr!("I leave {path}: {e}", path = shown, e)),
    }
}

// ANCHOR: clean
/// Removes the message file at `path` if a killed producer left it: only a regular file
/// of this user, with the message file's magic, whose producer is not running. Anything
/// else stays, and the error says why.
pub fn clean(n: &Narrator, path: &Path) -> Result<()> {
    let Found::Leftover { producer } = leftover(n, path, None)? else {
        say!(n, "nothing at {path}", path = path.display());
        return print_summary("summary: removed=0");
    };
    mapping::say_leftover(n, producer);
    // Between the checks and this call, only someone who may write to the folder can
    // put another file at the path; the default folder is private (common::paths).
    common::sys::unlink(n, path)?;
    print_summary("summary: removed=1")
}
// ANCHOR_END: clean
