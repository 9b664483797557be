//! What a killed run of the semaphore lessons leaves behind, and how `status` and
//! `clean` find it: a named semaphore (`/dev/shm/sem.NAME`) and a System V set both
//! outlive every process, like a segment, until someone removes them.
//!
//! Only what the demos made is touched: the named semaphore at the demo's name (or
//! `--sem-name`), a regular file of this user, that no process has mapped (a process
//! that has it open maps it: `/proc/PID/maps` shows it); the set at the demo's key (or
//! `--key`), made by this user (`sem_perm.cuid`), with nobody waiting on it and its last
//! `semop` made by a process that is gone (`semctl(GETPID)`, `GETNCNT`).

use std::path::{Path, PathBuf};

use common::owner::{self, Kind};
use common::{Error, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::unistd::Uid;

use crate::ipc_sys::{self, Get, Key, key_shown};

/// The file of the named semaphore `name` (sem_overview(7): `/dev/shm/sem.NAME`).
pub fn sem_file(name: &str) -> PathBuf {
    PathBuf::from(format!("/dev/shm/sem.{}", name.trim_start_matches('/')))
}

/// The pids of the processes that have the file `st` describes mapped (`/proc/*/maps`),
/// other than this one. The file is matched by its device and inode, not its path:
/// glibc's `sem_open` creates the file under a temporary name and links it to its
/// name, so the mapping shows the temporary one, `(deleted)`. A look, not narrated.
fn mapped_by(st: &nix::sys::stat::FileStat) -> Vec<i32> {
    let me = std::process::id() as i32;
    #[allow(clippy::unnecessary_cast)] // dev_t is u64 on Linux, but not everywhere
    let dev = st.st_dev as u64;
    let device = format!(
        "{:02x}:{:02x}",
        nix::sys::stat::major(dev),
        nix::sys::stat::minor(dev)
    );
    let inode = st.st_ino.to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/maps")).is_ok_and(|maps| {
                maps.lines().any(|l| {
                    let fields: Vec<&str> = l.split_whitespace().collect();
                    fields.get(3) == Some(&device.as_str())
                        && fields.get(4) == Some(&inode.as_str())
                })
            })
        })
        .collect()
}

// ANCHOR: clean_named
/// Removes the named semaphore `name` if a killed run left it: this user's regular file
/// (checked with `lstat`, which does not follow a link), mapped by no process. Returns
/// how many it removed (0 or 1); an error says why it must stay.
pub fn clean_named(n: &Narrator, name: &str) -> Result<u32> {
    let file = sem_file(name);
    let Some(st) = owner::lstat_ours(&file, Kind::File)? else {
        say!(n, "no named semaphore {name}", name);
        return Ok(0);
    };
    let users = mapped_by(&st);
    if !users.is_empty() {
        return Err(Error::bad_data(
            tr!("the named semaphore {name}", name),
            tr!("processes {pids} have it open", pids = format!("{users:?}")),
        )
        .hint(tr!("stop them first: a semaphore in use is not a leftover")));
    }
    say!(
        n,
        "{file} is mine and nobody has it open: a leftover",
        file = file.display()
    );
    ipc_sys::sem_unlink(n, name)?;
    Ok(1)
}
// ANCHOR_END: clean_named

// ANCHOR: clean_set
/// Removes the semaphore set with `key` if a killed run left it: made by this user,
/// nobody waiting in `semop` on it, and its last `semop` made by a process that is gone.
pub fn clean_set(n: &Narrator, key: Key) -> Result<u32> {
    let id = match ipc_sys::semget(n, key, 0, Get::Existing) {
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            say!(
                n,
                "no semaphore set has the key {key}",
                key = key_shown(key)
            );
            return Ok(0);
        }
        found => found?,
    };
    let set = ipc_sys::semctl_stat(n, id)?;
    let what = tr!("the semaphore set {id}", id);
    let me = Uid::current().as_raw();
    if set.creator != me || set.owner != me {
        return Err(
            Error::bad_data(&what, tr!("user {uid} made it, not you", uid = set.creator))
                .hint(tr!("clean removes only what you made")),
        );
    }
    for num in 0..i32::try_from(set.nsems).unwrap_or(0) {
        let last = ipc_sys::semctl_getpid(n, id, num)?;
        if last > 0 && common::process::is_alive(last) {
            return Err(Error::bad_data(
                &what,
                tr!(
                    "its last semop was made by pid {last}, which is still running",
                    last
                ),
            )
            .hint(tr!(
                "stop that process first: a semaphore in use is not a leftover"
            )));
        }
    }
    say!(n, "the set is mine and its last user is gone: a leftover");
    ipc_sys::semctl_rmid(n, id)?;
    Ok(1)
}
// ANCHOR_END: clean_set

/// `status`: what the demos made that exists now, from `/proc/sysvipc` and `/dev/shm`
/// (read, never changed): the named semaphores of this user whose name starts with
/// `ipc-demo`, and the segment and set at the demo's keys, with who uses them.
pub fn status(n: &Narrator, segment_key: Key, set_key: Key) -> Result<u32> {
    let mut found = 0;
    let me = Uid::current().as_raw();
    let entries = std::fs::read_dir("/dev/shm").map_err(|e| {
        Error::sys(
            "opendir(\"/dev/shm\")",
            Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.starts_with("sem.ipc-demo"))
        .collect();
    names.sort();
    for file in names {
        let path = Path::new("/dev/shm").join(&file);
        let Ok(Some(st)) = owner::lstat_ours(&path, Kind::File) else {
            continue;
        };
        found += 1;
        let users = mapped_by(&st);
        n.essential(tr!(
            "named semaphore /{name} ({path}): open in {users}",
            name = file.trim_start_matches("sem."),
            path = path.display(),
            users = if users.is_empty() {
                tr!("no process: a leftover, `shm-demo clean --sem-name /NAME` removes it")
            } else {
                format!("{users:?}")
            }
        ));
    }
    for id in ipc_sys::all_segments() {
        let Ok(seg) = ipc_sys::shm_stat(id) else {
            continue;
        };
        if seg.key != segment_key || seg.creator != me {
            continue;
        }
        found += 1;
        n.essential(tr!(
            "segment key {key} shmid {id}: {size} bytes, nattch {nattch}, last shmat/shmdt by pid {pid}",
            key = key_shown(seg.key),
            id,
            size = seg.size,
            nattch = seg.nattch,
            pid = seg.last_pid
        ));
    }
    for id in ipc_sys::all_sets() {
        let Ok(set) = ipc_sys::sem_stat(id) else {
            continue;
        };
        if set.key != set_key || set.creator != me {
            continue;
        }
        found += 1;
        n.essential(tr!(
            "semaphore set key {key} semid {id}: {nsems} semaphores",
            key = key_shown(set.key),
            id,
            nsems = set.nsems
        ));
    }
    Ok(found)
}

/// `status`: [`status`] at the demo's keys (or `--key` for both), and its summary line.
pub fn status_role(n: &Narrator, key: Option<Key>) -> Result<()> {
    let segment_key = crate::segment::segment_key(n, key)?;
    let set_key = match key {
        Some(key) => key,
        None => crate::sem::default_key(n, crate::sem::SET_PROJECT)?,
    };
    let found = status(n, segment_key, set_key)?;
    common::narrate::print_summary(format_args!("summary: found={found}"))
}
