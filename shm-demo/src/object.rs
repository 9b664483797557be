//! The shared memory object and its mapping: the producer creates them ([`create`]), the
//! consumer opens them ([`open`]), and [`clean`] removes what a killed run left.
//!
//! Note 003 lists the calls in this order: `shm_open` makes the object (a file in
//! `/dev/shm`), `ftruncate` gives it a size, `mmap` maps it. Anyone may create a name in
//! `/dev/shm` first, so a side that did not just create the object checks with `fstat`
//! that it is this user's before it maps it, and checks the header before it trusts it.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use common::cleanup::Guard;
use common::mapping::{self, Mapping, Prot, Share};
use common::owner::{self, Kind};
use common::{Error, HintOn, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{FileStat, Mode, fstat};
use nix::unistd;

use crate::region::{Corrupt, MAGIC, PRODUCER_OFFSET, Region, Ring, Shape, Wait};
use crate::sys;

/// The permission bits of a new object unless `--mode` says otherwise: the owner only.
pub const DEFAULT_MODE: u32 = 0o600;

/// [`create_with_mode`] with the [`DEFAULT_MODE`], 0600.
pub fn create(
    n: &Narrator,
    name: &str,
    shape: Shape,
    wait: Wait,
    count: u64,
) -> Result<(Region, Guard)> {
    create_with_mode(n, name, DEFAULT_MODE, shape, wait, count)
}

// ANCHOR: create
/// The producer's side of note 003's three calls: `shm_open` creates the object (it must
/// not exist: O_EXCL) with permission bits `mode` (0600 unless `--mode`), `ftruncate`
/// gives it a size, `mmap` maps it. The descriptor is closed afterwards: the mapping
/// stays. Then the header and the two semaphores, and the magic last. Returns the ring
/// and a guard that unlinks the object.
pub fn create_with_mode(
    n: &Narrator,
    name: &str,
    mode: u32,
    shape: Shape,
    wait: Wait,
    count: u64,
) -> Result<(Region, Guard)> {
    let mode = Mode::from_bits_truncate(mode & 0o777);
    let fd = sys::shm_open(
        n,
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        mode,
    )
    .hint_on(
        Errno::EEXIST,
        tr!(
            "the object exists already (ls -l /dev/shm): another producer's, or left by a killed \
             run; `shm-demo clean --name {name}` removes it if a killed run left it",
            name
        ),
    )?;
    let unlink = unlink_on_drop(n, name);
    exact_mode(n, &fd, mode)?;
    common::sys::ftruncate(n, &fd, shape.region_len() as u64)?;
    let map = Mapping::map(n, &fd, shape.region_len(), Prot::ReadWrite, Share::Shared)?;
    common::sys::close(n, fd)?;
    say!(
        n,
        "the descriptor is closed; the mapping stays until munmap (or exit)"
    );
    let region = set_up(n, map, shape, wait, count)?;
    say!(
        n,
        "{ring} ring ready: {slots} slots of {size} bytes, waiting by {wait}; look: ls -l \
         /dev/shm, grep {file} /proc/{pid}/maps",
        ring = format!("{:?}", shape.ring),
        slots = shape.slots,
        size = shape.slot_size,
        wait = format!("{wait:?}"),
        file = name.trim_start_matches('/'),
        pid = unistd::getpid()
    );
    Ok((region, unlink))
}
// ANCHOR_END: create

/// Sets the ring up in a fresh, zero-filled mapping of the producer (a POSIX object's,
/// or a System V segment's): the header, the two semaphores, and the magic last.
pub(crate) fn set_up(
    n: &Narrator,
    map: Mapping,
    shape: Shape,
    wait: Wait,
    count: u64,
) -> Result<Region> {
    let region = Region::initialise(map, shape, wait, count)?;
    // The fast ring waits on its slots' stamps and on futex words, not on semaphores.
    if shape.ring == Ring::Textbook {
        sys::sem_init(n, region.full(), 0)?;
        sys::sem_init(n, region.empty(), shape.slots)?;
    }
    region.publish();
    Ok(region)
}

/// The mode given to `shm_open` passes through the process's umask, as for `open(2)`:
/// 0666 with the usual umask 022 becomes 0644. If the umask took bits away, `fchmod(2)`
/// sets exactly the mode asked for.
fn exact_mode(n: &Narrator, fd: &OwnedFd, mode: Mode) -> Result<()> {
    let st = owner::fstat_ours(fd, Kind::File)?;
    let got = st.st_mode & 0o777;
    if got != mode.bits() {
        say!(
            n,
            "the umask made it {got}, not {mode} (see umask(2)): fchmod sets it exactly",
            got = format!("{got:04o}"),
            mode = common::sys::mode(mode)
        );
        common::sys::fchmod(n, fd, mode)?;
    }
    Ok(())
}

/// A guard that `shm_unlink`s the object when dropped or on Ctrl-C.
fn unlink_on_drop(n: &Narrator, name: &str) -> Guard {
    let (n, name) = (n.clone(), name.to_string());
    Guard::new(move || {
        // A failure here has nobody left to report to but the narration itself.
        let _ = sys::shm_unlink(&n, &name);
    })
}

// ANCHOR: open
/// The consumer's side: `shm_open` the existing object, check with `fstat` that it is
/// this user's, map it, then check its header. If the producer has not created it yet,
/// waits for it (saying so), unless `no_wait`; if the producer has not finished setting
/// it up, tries again. The descriptor stays open, for `fstat` to tell later whether the
/// object was shrunk under the mapping.
pub fn open(n: &Narrator, name: &str, no_wait: bool) -> Result<Region> {
    if !no_wait {
        mapping::wait_for_object(n, Path::new(&format!("/dev/shm{name}")), name);
    }
    mapping::attach(n, |patient| {
        let fd = sys::shm_open(n, name, OFlag::O_RDWR, Mode::empty())
            .hint_on(
                Errno::ENOENT,
                tr!("no such object: start the producer first, or leave out --no-wait"),
            )
            .hint_on(Errno::EACCES, tr!("the object belongs to another user"))?;
        // Anyone may create a name in /dev/shm first: use only an object of this user.
        let len = usize::try_from(ours(&fd, name)?.st_size).unwrap_or(0);
        let attached = match len {
            // The producer has made the object but not yet sized it.
            0 => Err(Corrupt::NotReady),
            _ => Region::attach(Mapping::map(n, &fd, len, Prot::ReadWrite, Share::Shared)?),
        };
        match attached {
            Ok(mut region) => {
                region.keep_descriptor(fd);
                Ok(Some(region))
            }
            Err(Corrupt::NotReady) if patient => common::sys::close(n, fd).map(|()| None),
            Err(why) => Err(corrupt(name, why)),
        }
    })
}
// ANCHOR_END: open

/// The object `name` cannot be used, found when opening it.
fn corrupt(name: &str, why: Corrupt) -> Error {
    let hint = if why.has_magic() {
        tr!(
            "something damaged it; once no producer uses it, `shm-demo clean --name {name}` removes it",
            name
        )
    } else {
        tr!(
            "it is not a shm-demo ring (no magic), so `shm-demo clean` leaves it; if it is yours, \
             `rm /dev/shm{name}` removes it, or use another --name",
            name
        )
    };
    Error::bad_data(
        tr!("the shared memory object {name}", name),
        why.to_string(),
    )
    .hint(hint)
}

/// `fstat(2)` on the object `name` (not narrated: a look, not a step of the lesson).
fn fstat_of(fd: &OwnedFd, name: &str) -> Result<(FileStat, String)> {
    let call = format!("fstat({}) of {name:?}", fd.as_raw_fd());
    match fstat(fd) {
        Ok(st) => Ok((st, call)),
        Err(errno) => Err(Error::sys(call, errno)),
    }
}

/// [`fstat_of`] and the type and owner check of [`owner::check`].
fn ours(fd: &OwnedFd, name: &str) -> Result<FileStat> {
    let (st, call) = fstat_of(fd, name)?;
    owner::check(&st, Kind::File, &call)?;
    Ok(st)
}

/// What [`leftover`] found at a name.
enum Found {
    /// Nothing has the name.
    Nothing,
    /// Another object than the one asked about (`used`) has the name now.
    Another,
    /// A shm-demo ring of this user whose producer is not running: it may be removed.
    Leftover {
        /// The producer pid its header names (dead, or no process at all).
        producer: i32,
    },
}

/// Opens `name` read-only and checks that the object there may be removed: the one this
/// process used (`used`: its device and inode, if it used one), this user's (a regular
/// file, the user's uid), shm-demo's (its magic), and not a live producer's (the pid in
/// its header). An error says why it must stay. The header is read with `pread`, not
/// mapped, so that a shrunk object cannot raise SIGBUS here.
fn leftover(n: &Narrator, name: &str, used: Option<(u64, u64)>) -> Result<Found> {
    // Look before opening: a FIFO planted at /dev/shm/NAME would block a read-only open
    // (or wake a writer waiting on it). lstat refuses it, and anything not ours, by name.
    // (Nothing there: shm_open below says so, ENOENT, as the lesson shows it.)
    common::owner::lstat_ours(&common::owner::shm_path(name), Kind::File)?;
    let fd = match sys::shm_open(n, name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty()) {
        Err(e) if e.errno() == Some(Errno::ENOENT) => return Ok(Found::Nothing),
        opened => opened?,
    };
    let (st, _) = fstat_of(&fd, name)?;
    // An object that took the name is judged by clean, not by the consumer that used
    // the old one.
    if used.is_some_and(|used| used != (st.st_dev, st.st_ino)) {
        return Ok(Found::Another);
    }
    ours(&fd, name)?;
    let mut header = [0u8; PRODUCER_OFFSET + 4];
    let got = common::sys::pread(n, &fd, &mut header, 0)?;
    let (what, rm) = (
        tr!("the shared memory object {name}", name),
        format!("rm /dev/shm{name}"),
    );
    let producer = mapping::leftover_producer(
        &header[..got],
        &MAGIC,
        PRODUCER_OFFSET,
        ("shm-demo", &what, &rm),
    )?;
    Ok(Found::Leftover { producer })
}

/// Removes what a dead producer left at `name`, if it is the object this consumer used
/// (`used`: its device and inode) and [`leftover`] finds it removable. Otherwise it
/// leaves the object and says why, and which command removes it.
pub(crate) fn remove_after_dead_producer(n: &Narrator, name: &str, used: Option<(u64, u64)>) {
    match leftover(n, name, used) {
        Ok(Found::Nothing) => say!(n, "nothing is left at {name}", name),
        Ok(Found::Leftover { .. }) if used.is_some() => {
            n.announce(tr!(
                "the producer cannot remove its object any more, so I do"
            ));
            if let Err(e) = sys::shm_unlink(n, name) {
                n.essential(tr!(
                    "I could not remove {name}: {e}; `shm-demo clean --name {name}` removes it",
                    name,
                    e
                ));
            }
        }
        Ok(_) => n.essential(tr!(
            "I leave {name}: it now names another object than the one my producer made; if \
             that is a leftover too, `shm-demo clean --name {name}` checks it and removes it",
            name
        )),
        Err(e) => n.essential(tr!("I leave {name}: {e}", name, e)),
    }
}

// ANCHOR: clean
/// Removes the object `name` if a killed run left it: only an object of this user, with
/// shm-demo's magic, whose producer is not running. Anything else stays, and the error
/// says why. Returns how many it removed (0 or 1), for `clean`'s summary line.
pub fn clean(n: &Narrator, name: &str) -> Result<u32> {
    let Found::Leftover { producer } = leftover(n, name, None)? else {
        say!(n, "no such object: nothing to clean");
        return Ok(0);
    };
    mapping::say_leftover(n, producer);
    // Only this user (and root) can remove it: /dev/shm is sticky (S_ISVTX), so between
    // the checks above and this call, nobody else can swap another object in.
    sys::shm_unlink(n, name)?;
    Ok(1)
}
// ANCHOR_END: clean
