//! Shared memory by key, as note 002 writes it: System V segments (`shm-demo --api sysv`).
//!
//! The producer turns an agreed path and letter into a key (`ftok`), or takes one
//! (`--key`), makes a segment for it (`shmget` with `IPC_CREAT|IPC_EXCL`, 0600), and
//! attaches it (`shmat`); the consumer finds the segment by the same key and attaches it
//! too. From there on it is the same ring as the POSIX path, over the same kind of
//! [`Mapping`]: only how the memory was found differs.
//!
//! What differs from POSIX, and what the narration shows:
//! - a segment has no name in a file system, only a key and an identifier; `ipcs -m`
//!   lists it, with how many processes have it attached (`nattch`);
//! - it outlives every process until `shmctl(IPC_RMID)`: a killed producer leaves it
//!   behind for good (`shm-demo clean --api sysv` removes it);
//! - `IPC_RMID` while processes have it attached only marks it for destruction (`ipcs
//!   -m` shows the status `dest` and the key 0x00000000): it goes when the last process
//!   detaches (`shmdt`, or exit);
//! - a segment cannot be resized (`shmget` of a larger size is EINVAL), so a peer cannot
//!   shrink it under the mapping, as `ftruncate` can a POSIX object.
//!
//! See also: svipc(7), shmget(2), shmat(2), shmctl(2), ftok(3), ipcs(1), and TLPI
//! chapter 48 ("System V Shared Memory").

use std::time::Duration;

use common::cleanup::{self, Guard};
use common::mapping::{self, Prot};
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::{Error, HintOn, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::unistd::{Uid, getpid};

use crate::ipc_sys::{self, Get, Key, Segment, key_shown};
use crate::region::{Corrupt, HEADER, MAGIC, PRODUCER_OFFSET, Region, Shape, Wait};
use crate::{consume, produce, sem, sys};

/// The project letter of the segment's default key: `ftok(private folder, 'm')`.
pub const SEGMENT_PROJECT: u8 = b'm';

/// The segment's key: `key` if given (`--key`), else the default, `ftok` of this user's
/// private folder and 'm'.
pub fn segment_key(n: &Narrator, key: Option<Key>) -> Result<Key> {
    match key {
        Some(key) => Ok(key),
        None => sem::default_key(n, SEGMENT_PROJECT),
    }
}

/// A guard that removes the segment `id` (`shmctl(IPC_RMID)`) when dropped or on Ctrl-C.
fn rmid_on_drop(n: &Narrator, id: i32) -> Guard {
    let n = n.clone();
    Guard::new(move || {
        // A failure here has nobody left to report to but the narration itself.
        let _ = ipc_sys::shmctl_rmid(&n, id);
    })
}

/// Says what `ipcs -m` would say about the segment now: `nattch`, and `dest` once marked.
fn show(n: &Narrator, id: i32) -> Result<Segment> {
    let seg = ipc_sys::shmctl_stat(n, id)?;
    if seg.marked() {
        say!(
            n,
            "ipcs -m shows it as {key} with status dest and nattch {nattch}: marked for \
             destruction, it goes when the last process detaches",
            key = key_shown(seg.key),
            nattch = seg.nattch
        );
    } else {
        say!(
            n,
            "ipcs -m shows it: key {key}, shmid {id}, {size} bytes, nattch {nattch}",
            key = key_shown(seg.key),
            id,
            size = seg.size,
            nattch = seg.nattch
        );
    }
    Ok(seg)
}

// ANCHOR: sysv_create
/// The producer's side: `shmget` makes a new segment for `key` (IPC_CREAT|IPC_EXCL,
/// `mode`) as large as the ring, `shmat` attaches it, and the ring is set up in it as
/// on the POSIX path. Returns the ring, the segment's id, and a guard that removes it.
pub fn create(
    n: &Narrator,
    key: Key,
    mode: u32,
    shape: Shape,
    wait: Wait,
    count: u64,
) -> Result<(Region, i32, Guard)> {
    let len = shape.region_len();
    let id = ipc_sys::shmget(n, key, len, Get::New { mode }).hint_on(
        Errno::EEXIST,
        tr!(
            "the key has a segment already (ipcs -m): another producer's, or left by a killed \
             run, since a segment outlives every process; `shm-demo clean --api sysv` removes \
             it if a killed run left it"
        ),
    )?;
    let remove = rmid_on_drop(n, id);
    say!(
        n,
        "unlike a POSIX object, the segment has no name in /dev/shm: ipcs -m lists it by its \
         key, and it stays, attached or not, until shmctl(IPC_RMID)"
    );
    let map = sys::shmat(n, id, len, Prot::ReadWrite)?;
    show(n, id)?;
    let region = crate::object::set_up(n, map, shape, wait, count)?;
    say!(
        n,
        "ring ready in the segment; look: ipcs -m -i {id}, grep SYSV /proc/{pid}/maps",
        id,
        pid = getpid()
    );
    Ok((region, id, remove))
}
// ANCHOR_END: sysv_create

// ANCHOR: sysv_open
/// The consumer's side: `shmget(key, 0, 0)` finds the segment, `shmctl(IPC_STAT)` says
/// whose it is and how large, `shmat` attaches exactly that size, and the header is
/// checked as on the POSIX path. Waits for the producer to make it, unless `no_wait`.
pub fn open(n: &Narrator, key: Key, no_wait: bool) -> Result<(Region, i32)> {
    if !no_wait {
        wait_for_segment(n, key);
    }
    let id = ipc_sys::shmget(n, key, 0, Get::Existing)
        .hint_on(
            Errno::ENOENT,
            tr!("no segment has that key: start the producer first (with the same --key), or leave out --no-wait"),
        )
?;
    // shmget with no flags asks for no permission, so another user's segment is found;
    // the first call that reads it says EACCES.
    let seg = ipc_sys::shmctl_stat(n, id).hint_on(
        Errno::EACCES,
        tr!(
            "the segment's permission bits do not let you in: another user made it (ipcs -m \
             shows its owner), and 0600 lets only that user attach it"
        ),
    )?;
    ours(&seg, id)?;
    mapping::attach(n, |patient| {
        let map = sys::shmat(n, id, seg.size, Prot::ReadWrite)?;
        match Region::attach(map) {
            Ok(region) => Ok(Some((region, id))),
            Err(Corrupt::NotReady) if patient => Ok(None),
            Err(why) => Err(foreign(key, id, &why)),
        }
    })
}
// ANCHOR_END: sysv_open

/// Waits until a segment has `key` (a quiet `shmget` every 20 ms), saying once that it
/// waits. A consumer started before its producer waits here instead of failing.
fn wait_for_segment(n: &Narrator, key: Key) {
    let mut said = false;
    while !ipc_sys::key_has_segment(key) {
        if !said {
            n.announce(tr!(
                "waiting for a producer to make a segment with key {key} (Ctrl-C to stop)",
                key = key_shown(key)
            ));
            said = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A segment another user made is refused, even where the kernel would let this user in
/// (root may attach any segment): its data cannot be trusted, nor may it be removed.
fn ours(seg: &Segment, id: i32) -> Result<()> {
    let me = Uid::current().as_raw();
    if seg.creator != me || seg.owner != me {
        return Err(Error::sys(
            format!(
                "shmctl({id}, IPC_STAT, &ds) = 0   (shm_perm.cuid={}, shm_perm.uid={})",
                seg.creator, seg.owner
            ),
            Errno::EACCES,
        )
        .hint(tr!(
            "another user made this segment: I use only my own; pick another --key"
        )));
    }
    Ok(())
}

/// A segment with the key whose contents are not a ring this program can use.
fn foreign(key: Key, id: i32, why: &Corrupt) -> Error {
    let hint = if why.has_magic() {
        tr!(
            "something damaged it; once no producer uses it, `shm-demo clean --api sysv --key {key}` removes it",
            key = key_shown(key)
        )
    } else {
        tr!(
            "it is not a shm-demo ring (no magic), so `shm-demo clean` leaves it; if it is yours, \
             `ipcrm -m {id}` removes it, or use another --key",
            id
        )
    };
    Error::bad_data(
        tr!(
            "the segment with key {key} (shmid {id})",
            key = key_shown(key),
            id
        ),
        why.to_string(),
    )
    .hint(hint)
}

// ANCHOR: sysv_end
/// The producer's end, once the consumer has taken everything: `shmctl(IPC_RMID)` while
/// both may still be attached only marks the segment, which `ipcs -m` shows; `shmdt`
/// detaches this process, and the segment goes with the last one.
fn remove_and_detach(n: &Narrator, region: Region, id: i32, remove: Guard) -> Result<()> {
    remove.disarm();
    ipc_sys::shmctl_rmid(n, id)?;
    if let Ok(seg) = ipc_sys::shm_stat(id) {
        // Still attached here (and perhaps by the consumer): marked, not gone.
        say!(
            n,
            "after IPC_RMID: nattch {nattch}, status {status}; the memory stays until the last shmdt",
            nattch = seg.nattch,
            status = if seg.marked() { "dest" } else { "-" }
        );
    }
    region.munmap(n)
}
// ANCHOR_END: sysv_end

/// The producer's whole role over a segment.
pub fn producer_role(
    n: &Narrator,
    key: Key,
    mode: u32,
    shape: Shape,
    wait: Wait,
    count: u64,
    size: usize,
) -> Result<()> {
    let (region, id, remove) = create(n, key, mode, shape, wait, count)?;
    cleanup::exit_on_interrupt(n)?;
    n.announce(tr!(
        "ready: run `shm-demo consumer --api sysv --key {key}` in another terminal",
        key = key_shown(key)
    ));
    produce(n, &region, count, size)?;
    remove_and_detach(n, region, id, remove)
}

/// The consumer's whole role over a segment. If the producer died, the segment stays
/// (nobody else removes it), so the consumer removes it if it is a leftover: ours, with
/// the magic, and nobody else attached.
pub fn consumer_role(n: &Narrator, key: Key, no_wait: bool) -> Result<()> {
    let (region, id) = open(n, key, no_wait)?;
    show(n, id)?;
    let result = consume(n, &region);
    region.munmap(n)?;
    if let Err(e) = &result {
        if e.errno() == Some(Errno::ESRCH) {
            match leftover(n, id) {
                Ok(Some(_)) => {
                    n.announce(tr!(
                        "the producer cannot remove its segment any more, so I do"
                    ));
                    ipc_sys::shmctl_rmid(n, id)?;
                }
                Ok(None) => {}
                Err(why) => n.essential(tr!("I leave the segment {id}: {why}", id, why)),
            }
        }
    }
    result
}

// ANCHOR: sysv_exchange
/// Both roles in one terminal over a segment: the parent makes it and forks; the child
/// finds it by key, as an unrelated process would, and consumes.
pub fn exchange(
    n: &Narrator,
    key: Key,
    mode: u32,
    shape: Shape,
    wait: Wait,
    count: u64,
    size: usize,
) -> Result<()> {
    let (region, id, remove) = create(n, key, mode, shape, wait, count)?;
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            // The child inherited the attachment too (fork(2): attached segments are
            // inherited); it attaches again by key to show what a second program does.
            drop(region);
            let result = open(&me, key, true).and_then(|(region, id)| {
                show(&me, id)?;
                consume(&me, &region)?;
                region.munmap(&me)
            });
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            cleanup::exit_on_interrupt(n)?;
            produce(n, &region, count, size)?;
            process::wait_for(n, child, "consumer")?;
            remove_and_detach(n, region, id, remove)
        }
    }
}
// ANCHOR_END: sysv_exchange

/// Whether the segment `id` may be removed as a leftover: this user's (cuid and uid),
/// nobody attached (`shm_nattch` 0: a process that dies is detached by the kernel, so
/// an attachment means a live process), at least a header long, starting with the
/// magic, and naming a producer that is not running. `Ok(None)`: something else now has
/// the id (it went meanwhile). An error says why it must stay.
pub fn leftover(n: &Narrator, id: i32) -> Result<Option<i32>> {
    let seg = match ipc_sys::shmctl_stat(n, id) {
        Err(e) if matches!(e.errno(), Some(Errno::EINVAL | Errno::EIDRM)) => return Ok(None),
        other => other?,
    };
    ours(&seg, id)?;
    let what = tr!("the segment {id}", id);
    if seg.nattch > 0 {
        return Err(Error::bad_data(
            &what,
            tr!(
                "{nattch} processes have it attached (the last shmat or shmdt was pid {pid})",
                nattch = seg.nattch,
                pid = seg.last_pid
            ),
        )
        .hint(tr!("stop them first: a segment in use is not a leftover")));
    }
    if seg.size < HEADER {
        return Err(Error::bad_data(
            &what,
            tr!(
                "{size} bytes, too small to be a shm-demo ring",
                size = seg.size
            ),
        )
        .hint(tr!(
            "clean removes only what shm-demo made; if it is yours, `ipcrm -m {id}` removes it",
            id
        )));
    }
    // A look at the header through a read-only attachment, copied out once.
    let map = sys::shmat(n, id, HEADER, Prot::Read)?;
    let mut header = [0u8; PRODUCER_OFFSET + 4];
    map.read(0, &mut header)?;
    map.munmap(n)?;
    let rm = format!("ipcrm -m {id}");
    let producer =
        mapping::leftover_producer(&header, &MAGIC, PRODUCER_OFFSET, ("shm-demo", &what, &rm))?;
    Ok(Some(producer))
}

// ANCHOR: sysv_clean
/// Removes the segment with `key` if a killed run left it (see [`leftover`]).
pub fn clean(n: &Narrator, key: Key) -> Result<u32> {
    let id = match ipc_sys::shmget(n, key, 0, Get::Existing) {
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            say!(n, "no segment has the key {key}", key = key_shown(key));
            return Ok(0);
        }
        found => found?,
    };
    let Some(producer) = leftover(n, id)? else {
        return Ok(0);
    };
    mapping::say_leftover(n, producer);
    ipc_sys::shmctl_rmid(n, id)?;
    Ok(1)
}
// ANCHOR_END: sysv_clean

/// `clean --api sysv`: the segment, and the summary line.
pub fn clean_role(n: &Narrator, key: Key) -> Result<()> {
    let removed = clean(n, key)?;
    print_summary(format_args!("summary: removed={removed}"))
}
