//! How the two sides of a FIFO meet: one makes it (`mkfifo`), both open it, and each
//! `open` waits for the other side. A producer or a server then takes the FIFO for
//! itself (`flock`), so that a second one is refused instead of mixing its bytes in.

use std::os::fd::OwnedFd;
use std::path::Path;

use common::cleanup::{self, Guard};
use common::owner::{Kind, fstat_ours, lstat_ours};
use common::{Error, HintOn, Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode};

// ANCHOR: make_or_find
/// Creates the FIFO at `path` with mode 0600, or uses the one already there (made by the
/// other role, or left by a run that was killed). Returns a guard that removes it if
/// this process made it; `None` if it was there already.
pub fn make_or_find(n: &Narrator, path: &Path) -> Result<Option<Guard>> {
    common::owner::parent_ours_or_root(path)?;
    match sys::mkfifo(n, path, Mode::S_IRUSR | Mode::S_IWUSR) {
        Ok(()) => {
            say!(
                n,
                "I made the FIFO, and I remove it when I end; look: ls -l {path}",
                path = path.display()
            );
            Ok(Some(cleanup::unlink_on_drop(n, path)))
        }
        Err(e) if e.errno() == Some(Errno::EEXIST) => {
            check_is_fifo(path)?;
            say!(
                n,
                "{path} exists already: the other side made it, or a killed run left it (`fifo-demo clean` removes it); I use it",
                path = path.display()
            );
            Ok(None)
        }
        Err(e) => Err(e.hint(tr!("does the folder exist, and may you write in it?"))),
    }
}
// ANCHOR_END: make_or_find

/// Refuses anything at `path` that is not a FIFO of ours: a regular file there is some
/// other program's, a FIFO of another user's could be a trap, and a symbolic link is
/// never followed (`lstat`, which describes the link itself).
fn check_is_fifo(path: &Path) -> Result<FileStat> {
    match lstat_ours(path, Kind::Fifo) {
        Ok(Some(st)) => Ok(st),
        Ok(None) => Err(Error::sys(
            format!("lstat({:?})", path.display().to_string()),
            Errno::ENOENT,
        )
        .hint(tr!("the FIFO vanished just now (its maker ended?); start again"))),
        Err(e) => Err(e.hint(tr!(
            "it is not ours to use or remove: choose another --path (a symbolic link is never followed)"
        ))),
    }
}

/// `open(2)` of a FIFO with O_NOFOLLOW (a symbolic link planted at the path makes it
/// fail with ELOOP instead of sending us elsewhere), then `fstat(2)` on what was opened:
/// a FIFO of ours, or the descriptor is closed again. The check is on the descriptor,
/// so nothing can be swapped between the check and the use.
pub(crate) fn open_fifo(n: &Narrator, path: &Path, flags: OFlag) -> Result<OwnedFd> {
    let fd = sys::open(n, path, flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
        .hint_on(Errno::ENOENT, tr!("there is no FIFO at this path: start the other side first, or give both the same --path"))
        .hint_on(Errno::EACCES, tr!("the FIFO's permissions do not let you open it"))
        .hint_on(Errno::ELOOP, tr!("a symbolic link is at this path, and the demo never follows one: someone may have planted it; remove it yourself if it is yours, or use another --path"))?;
    fstat_ours(&fd, Kind::Fifo).map_err(|e| {
        e.hint(tr!(
            "what was opened is not a FIFO of yours; it is left alone: use another --path"
        ))
    })?;
    Ok(fd)
}

// ANCHOR: open_end
/// Opens one end of the FIFO. A blocking `open` of a FIFO waits until some process has
/// opened the other end (fifo(7)): that is how the two sides meet.
pub fn open_end(n: &Narrator, path: &Path, write: bool) -> Result<OwnedFd> {
    if write {
        say!(
            n,
            "the open of a FIFO for writing waits until a reader opens the other end"
        );
        open_fifo(n, path, OFlag::O_WRONLY)
    } else {
        say!(
            n,
            "the open of a FIFO for reading waits until a writer opens the other end"
        );
        open_fifo(n, path, OFlag::O_RDONLY)
    }
}
// ANCHOR_END: open_end

/// Who takes a FIFO for itself with [`claim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimant {
    /// The one writer of a producer/consumer FIFO.
    Producer,
    /// The one reader of a server's well-known FIFO.
    Server,
}

/// Takes the FIFO for this role alone: `flock(fd, LOCK_EX|LOCK_NB)`. A FIFO has no
/// idea how many processes write into it or read from it; two producers on one path
/// would mix their messages, and two servers would each take half of every client's
/// requests. So a producer and a server lock the FIFO they opened, and the second one
/// is refused at once (EWOULDBLOCK) with the pid of the first, from /proc/locks.
///
/// The lock belongs to this open file description (flock(2)) and goes when the last
/// descriptor to it is closed, which ends the role: no unlock to forget, and a killed
/// process holds nothing. (Several writers on purpose is the `writers` lesson.)
pub fn claim(n: &Narrator, fd: &OwnedFd, path: &Path, who: Claimant) -> Result<()> {
    match who {
        Claimant::Producer => say!(
            n,
            "one producer per FIFO: I lock it, and a second producer is refused"
        ),
        Claimant::Server => say!(
            n,
            "one server per FIFO: I lock it, and a second server is refused"
        ),
    }
    match sys::flock_exclusive(n, fd) {
        Err(e) if e.errno() == Some(Errno::EWOULDBLOCK) => {
            let holder = nix::sys::stat::fstat(fd)
                .ok()
                .and_then(|st| lock_holder(&st));
            Err(e.hint(taken(who, path, holder)))
        }
        other => other,
    }
}

/// The hint for a FIFO another producer or server holds: who (`holder`, from
/// /proc/locks, if it says), and why a second one may not share it.
fn taken(who: Claimant, path: &Path, holder: Option<i32>) -> String {
    let path = path.display();
    let holder = holder
        .map(|pid| tr!(" (pid {pid}, says /proc/locks)", pid))
        .unwrap_or_default();
    match who {
        Claimant::Producer => tr!(
            "another producer uses {path} already{holder}: two producers on one FIFO would mix their bytes; wait for it to end, or use another --path",
            path,
            holder
        ),
        Claimant::Server => tr!(
            "another server uses {path} already{holder}: two servers on one FIFO would each take half of the requests; wait for it to end, or use another --path",
            path,
            holder
        ),
    }
}

/// The pid that holds a `flock` on the file `st` describes, from /proc/locks (proc(5)):
/// lines such as `1: FLOCK  ADVISORY  WRITE 4242 fe:00:1234 0 EOF`, where the device's
/// major and minor numbers are in hexadecimal and the inode in decimal.
pub fn lock_holder(st: &FileStat) -> Option<i32> {
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let me = format!(
        "{:02x}:{:02x}:{}",
        nix::sys::stat::major(st.st_dev),
        nix::sys::stat::minor(st.st_dev),
        st.st_ino
    );
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A line with "->" is a process waiting for the lock, not holding it.
        match fields.as_slice() {
            [_, "FLOCK", _, _, pid, file, ..] if *file == me => pid.parse().ok(),
            _ => None,
        }
    })
}
