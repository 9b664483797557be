//! mmap-demo: a file mapped into memory, shared by the processes that map it.
//!
//! Follows `000_5e93fa56600d397d.txt`, "5. 메모리 맵 (Memory Map)", and
//! `001_ffa78007200462ad.txt`, "(4) Memory Map"; `file-poll` follows
//! `002_c8d20cee4fe5d0b4.txt`, "1. file 사용".
//!
//! `mmap` with MAP_SHARED puts a file's pages (the kernel's page cache) into a process's
//! address space. Two processes that map one file share those pages: a store by one is a
//! load by the other, with no `read` or `write`. The file is the name both find it by,
//! and where the data ends up on disk.
//!
//! - [`exchange`], [`producer_role`], [`consumer_role`]: messages through a mapped file;
//!   `msync` and what it does and does not guarantee;
//! - [`private`]: MAP_PRIVATE, copy-on-write: the writer's changes stay its own;
//! - [`lazy`]: map a large sparse file, touch a few pages: only those are loaded;
//! - [`resize`]: shrink the file under the mapping: a touch past the end is SIGBUS;
//! - [`file_poll`]: plain-file IPC, polled, next to a pipe, to see why it is not real-time;
//! - [`clean`]: removes the message file a killed producer left, and nothing else.
//!
//! The file and its contents are not trusted: a consumer opens it with `O_NOFOLLOW` and
//! refuses another user's file, reads each header field once into a local that it
//! checks and then uses, asks the file's size with `fstat` before each access window,
//! and turns the SIGBUS of a file shrunk in between into a clear error
//! ([`common::fault`]). Every lesson creates its files with `O_EXCL` and removes only
//! the file it created.
//!
//! Usage: `cargo run -p mmap-demo -- --help`. See also: mmap(2), msync(2), mincore(2),
//! getrusage(2), and TLPI chapter 49.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::cleanup::{self, Guard};
use common::fault::{self, Remove};
use common::message;
use common::narrate::print_summary;
use common::owner::{self, Kind};
use common::process::{self, Fork};
use common::stream::{self, FdStream, NARRATED_MESSAGES};
use common::tally::{MAX_COUNT, Tally};
use common::{Context, Error, Narrator, Result};
use memmap2::{MmapMut, MmapOptions};
use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd;

/// The largest mapped file the message lessons make.
pub const MAX_FILE: u64 = 1 << 30;
/// The magic at the start of a message file.
pub const MAGIC: [u8; 8] = *b"IPCDMAP1";
/// Bytes before the first frame.
pub const HEADER: usize = 64;
const COUNT: usize = 8;
const FRAME_LEN: usize = 16;
const WRITTEN: usize = 24;
const TAKEN: usize = 32;
const PRODUCER: usize = 40;
const CONSUMER: usize = 44;
/// How long a waiting side sleeps between two looks at the other side's counter.
const POLL: Duration = Duration::from_millis(1);
/// The program's name, which starts its error lines.
const PROGRAM: &str = "mmap-demo";
/// Each side asks the file's size with `fstat` before every this many messages (and
/// while it waits for the other side): an access window. A system call per message would
/// undo what mapping the file is for; a shrinking inside a window is caught as SIGBUS.
pub const SIZE_WINDOW: u64 = 1024;

/// A writable MAP_SHARED mapping of the message file, with its header fields.
///
/// The other process writes into the same pages at any time, so nothing here hands out a
/// plain reference into the mapping: counters are atomics, frames are copied out, and
/// the fields that say how large things are were read once, checked, and kept here.
pub struct Shared {
    map: MmapMut,
    /// The file, kept open so that `fstat` can tell whether a peer shrank it.
    file: File,
    /// Messages in the file (checked: the file holds exactly `count` frames).
    count: u64,
    /// Bytes per frame (checked with `count`).
    frame_len: usize,
    /// The producer's pid (checked > 0, so that "is it alive?" can be asked).
    producer: i32,
    /// The first consumer pid seen in the header; 0 until a consumer attaches.
    consumer: Cell<i32>,
}

impl Shared {
    fn ptr(&self, offset: usize) -> *mut u8 {
        // The mapping is at least HEADER bytes (checked when it is made or opened), and
        // every offset used is inside it.
        self.map.as_ptr().cast_mut().wrapping_add(offset)
    }

    fn u64_at(&self, offset: usize) -> &AtomicU64 {
        // SAFETY: `offset` is one of the header's 8-aligned fields, inside the mapping,
        // whose start is page-aligned; every access to it, in both processes, is atomic;
        // the reference lives no longer than `self`, which keeps the mapping.
        unsafe { AtomicU64::from_ptr(self.ptr(offset).cast::<u64>()) }
    }

    fn i32_at(&self, offset: usize) -> &AtomicI32 {
        // SAFETY: as in u64_at, for the 4-aligned pid fields.
        unsafe { AtomicI32::from_ptr(self.ptr(offset).cast::<i32>()) }
    }

    /// Where frame `seq` starts, if the whole frame is inside the mapping.
    fn frame_at(&self, seq: u64) -> Result<usize> {
        let at = (seq < self.count)
            .then(|| (seq as usize).checked_mul(self.frame_len))
            .flatten()
            .and_then(|off| off.checked_add(HEADER))
            .filter(|at| at.saturating_add(self.frame_len) <= self.map.len());
        at.ok_or_else(|| {
            Error::bad_data(
                format!("frame {seq}"),
                format!("it is not inside the {} bytes mapped", self.map.len()),
            )
        })
    }

    /// Copies frame `seq` out of the mapping into `out`.
    fn read_frame(&self, seq: u64, out: &mut Vec<u8>) -> Result<()> {
        let at = self.frame_at(seq)?;
        out.resize(self.frame_len, 0);
        // SAFETY: frame_at checked that the frame lies inside the mapping, using the
        // checked copies of count and frame_len; `out` is ours and frame_len long. The
        // bytes are copied once into private memory before anything interprets them.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr(at), out.as_mut_ptr(), self.frame_len) };
        Ok(())
    }

    /// Copies `frame` into the mapping as frame `seq`.
    fn write_frame(&self, seq: u64, frame: &[u8]) -> Result<()> {
        let at = self.frame_at(seq)?;
        let len = frame.len().min(self.frame_len);
        // SAFETY: frame_at checked that frame_len bytes from `at` lie inside the mapping,
        // and len <= frame_len; the consumer reads this frame only after `written`
        // passes it.
        unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), self.ptr(at), len) };
        Ok(())
    }

    /// The consumer's pid, 0 until one attaches. The first pid above 0 seen is kept: a
    /// later write (a second consumer, or a 0 written back) does not stop the producer
    /// from watching the consumer it has.
    fn consumer_pid(&self) -> i32 {
        if self.consumer.get() == 0 {
            let pid = self.i32_at(CONSUMER).load(Ordering::Acquire);
            if pid > 0 {
                self.consumer.set(pid);
            }
        }
        self.consumer.get()
    }

    /// `fstat` on the file: an error if a peer shrank it under the mapping.
    fn check_size(&self) -> Result<()> {
        fault::check_size(&self.file, "the shared file", self.map.len())
    }
}

/// A guard that removes the file at `path` when dropped or on Ctrl-C, if it is still the
/// file `file` is open on: `lstat(2)` must find the same device and inode. A file that
/// someone put at that path since is not ours to remove.
fn remove_own_on_drop(n: &Narrator, path: &Path, file: &File) -> Result<Guard> {
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => {
            // The caller created the file a moment ago: remove it now rather than leave it.
            let _ = n.call(
                format_args!("unlink({:?})", path.display().to_string()),
                || unistd::unlink(path),
            );
            return Err(Error::sys(
                format!("fstat({})", file.as_raw_fd()),
                Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            ));
        }
    };
    let (made, n, path) = ((meta.dev(), meta.ino()), n.clone(), path.to_path_buf());
    Ok(Guard::new(move || {
        let shown = path.display().to_string();
        match std::fs::symlink_metadata(&path) {
            Ok(now) if (now.dev(), now.ino()) == made => {
                // A failure here has nobody left to report to but the narration itself.
                let _ = n.call(format_args!("unlink({shown:?})"), || unistd::unlink(&path));
            }
            Ok(_) => n.say(format_args!(
                "{shown} is no longer the file I created: I leave it"
            )),
            Err(_) => n.say(format_args!("{shown} is gone already")),
        }
    }))
}

/// `open(path, O_RDWR|O_CREAT|O_EXCL, 0600)`: a new file, readable and writable by its
/// owner only; one that exists already is an error, not something to reuse. With O_EXCL,
/// a symbolic link at the path is never followed either: it fails with EEXIST (open(2)).
fn create_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .context(format!("open({:?}, O_RDWR|O_CREAT|O_EXCL, 0600)", path.display()))
        .map_err(|e| match e.errno() {
            Some(Errno::EEXIST) => e.hint("the file exists: another run's, or left by a killed one; `mmap-demo clean` removes it if a killed producer left it"),
            _ => e,
        })
}

// ANCHOR: create
/// The producer's side: creates the file (it must not exist yet), sets its length with
/// `ftruncate`, and maps it MAP_SHARED, readable and writable.
pub fn create(n: &Narrator, path: &Path, count: u64, frame_len: usize) -> Result<(Shared, Guard)> {
    let shown = path.display();
    let file = create_file(path)?;
    n.say(format_args!(
        "open({shown:?}, O_RDWR|O_CREAT|O_EXCL, 0600) = {}",
        std::os::fd::AsRawFd::as_raw_fd(&file)
    ));
    let guard = remove_own_on_drop(n, path, &file)?;
    let len = HEADER as u64 + count * frame_len as u64;
    n.call(
        format_args!(
            "ftruncate({}, {len})",
            std::os::fd::AsRawFd::as_raw_fd(&file)
        ),
        || {
            file.set_len(len)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        },
    )?;
    let map = map_shared(n, &file, len)?;
    let producer = unistd::getpid().as_raw();
    let shared = Shared {
        map,
        file,
        count,
        frame_len,
        producer,
        consumer: Cell::new(0),
    };
    shared.u64_at(COUNT).store(count, Ordering::Relaxed);
    shared
        .u64_at(FRAME_LEN)
        .store(frame_len as u64, Ordering::Relaxed);
    shared.i32_at(PRODUCER).store(producer, Ordering::Relaxed);
    // The magic last, with a release store: a consumer that sees it sees the rest.
    shared
        .u64_at(0)
        .store(u64::from_ne_bytes(MAGIC), Ordering::Release);
    Ok((shared, guard))
}
// ANCHOR_END: create

/// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`, through memmap2.
fn map_shared(n: &Narrator, file: &File, len: u64) -> Result<MmapMut> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(file);
    n.step(format_args!(
        "mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, {fd}, 0)"
    ));
    // SAFETY: memmap2 requires that the file not be truncated while mapped, or a touch
    // past the end is SIGBUS. The demo's own roles never truncate a message file; against
    // a peer that does, both roles check the length with fstat before each access window
    // and turn the SIGBUS that can still come into exit 1 (common::fault), and no Rust
    // reference into the mapping is held across it. `resize` breaks the rule on purpose,
    // in a child process that is meant to die.
    let map = unsafe { MmapOptions::new().map_mut(file) }
        .context(format!("mmap(NULL, {len}, .., MAP_SHARED, {fd}, 0)"))?;
    n.say(format_args!(
        "mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, {fd}, 0) = {:p}",
        map.as_ptr()
    ));
    Ok(map)
}

// ANCHOR: open
/// The consumer's side: opens the existing file (never through a symbolic link, and only
/// if it is this user's) and maps it, then reads each header field once, checks it, and
/// keeps the checked copy. Waits (saying so) for a producer that has not made the file
/// yet.
pub fn open(n: &Narrator, path: &Path) -> Result<Shared> {
    let shown = path.display();
    let mut said = false;
    let started = Instant::now();
    loop {
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path);
        let file = match opened {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !said {
                    n.announce(format_args!(
                        "waiting for a producer to create {shown} (Ctrl-C to stop)"
                    ));
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => {
                let errno = Errno::from_raw(e.raw_os_error().unwrap_or(0));
                let e = Error::sys(format!("open({shown:?}, O_RDWR|O_NOFOLLOW)"), errno);
                return Err(match errno {
                    Errno::ELOOP => e.hint(
                        "it is a symbolic link, which the demo never follows: someone may have \
                         planted it to send the consumer into a file of theirs or of yours; \
                         remove it yourself if it is yours, or use another --path",
                    ),
                    _ => e,
                });
            }
        };
        // Anyone who can write to the folder may have put a file there first.
        let call = format!("fstat({}) of {shown:?}", file.as_raw_fd());
        let st = nix::sys::stat::fstat(&file).map_err(|e| Error::sys(call.clone(), e))?;
        owner::check(&st, Kind::File, &call)?;
        let len = u64::try_from(st.st_size).unwrap_or(0);
        if len < HEADER as u64 || len > MAX_FILE + HEADER as u64 {
            if len == 0 && started.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            return Err(bad(
                path,
                format!("{len} bytes is not the size of a message file"),
            ));
        }
        let map = map_shared(n, &file, len)?;
        let shared = Shared {
            map,
            file,
            count: 0,
            frame_len: 0,
            producer: 0,
            consumer: Cell::new(0),
        };
        let magic = shared.u64_at(0).load(Ordering::Acquire).to_ne_bytes();
        if magic == [0; 8] && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if magic != MAGIC {
            return Err(bad(
                path,
                format!("it starts with {magic:02x?}, not \"IPCDMAP1\""),
            ));
        }
        // Each field comes from the file, and the producer can change it at any time:
        // read it once into a local, check the local, and use only the local from here.
        let count = shared.u64_at(COUNT).load(Ordering::Relaxed);
        let frame_len = shared.u64_at(FRAME_LEN).load(Ordering::Relaxed);
        let producer = shared.i32_at(PRODUCER).load(Ordering::Relaxed);
        if count > MAX_COUNT
            || !(message::OVERHEAD as u64..=MAX_FILE).contains(&frame_len)
            || HEADER as u64 + count.saturating_mul(frame_len) != len
        {
            return Err(bad(
                path,
                format!("{count} messages of {frame_len} bytes do not fill {len} bytes"),
            ));
        }
        if producer <= 0 {
            return Err(bad(
                path,
                format!(
                    "producer pid {producer} is no process, so nobody could tell if the producer dies"
                ),
            ));
        }
        return Ok(Shared {
            count,
            frame_len: frame_len as usize,
            producer,
            ..shared
        });
    }
}
// ANCHOR_END: open

fn bad(path: &Path, why: String) -> Error {
    Error::bad_data(format!("the file {}", path.display()), why).hint(
        "it is not an mmap-demo message file, or it was damaged: `mmap-demo clean` removes it",
    )
}

/// Waits until `ready`, polling every [`POLL`], and checking every hundred looks that the
/// file still has its size and that the process `peer` (0: not known yet) lives.
fn wait_for(
    shared: &Shared,
    peer: impl Fn() -> i32,
    role: &str,
    ready: impl Fn() -> bool,
) -> Result<()> {
    let mut looks = 0u32;
    while !ready() {
        looks += 1;
        if looks < 1000 {
            std::hint::spin_loop();
            continue;
        }
        std::thread::sleep(POLL);
        if looks % 100 != 0 {
            continue;
        }
        shared.check_size()?;
        let pid = peer();
        if pid != 0 && !process::is_alive(pid) {
            // The peer may have done its part and exited between our last look and now:
            // only if the condition still does not hold is it gone too early.
            return if ready() {
                Ok(())
            } else {
                Err(process::gone(role, pid))
            };
        }
    }
    Ok(())
}

// ANCHOR: produce
/// The producer's loop: writes each frame into the mapping with a plain memory copy and
/// then raises `written`. No system call per message. At the end, `msync` writes the
/// pages to the disk, and the producer waits until the consumer has taken everything.
pub fn produce(n: &Narrator, shared: &Shared, count: u64, size: usize) -> Result<()> {
    let mut frame = Vec::with_capacity(size + message::OVERHEAD);
    for seq in 0..count {
        if seq == NARRATED_MESSAGES {
            n.mute("... the rest without narration");
        }
        n.step(format_args!("write message {seq} into the mapping"));
        if seq % SIZE_WINDOW == 0 {
            shared.check_size()?;
        }
        message::encode_into(seq, size, &mut frame);
        shared.write_frame(seq, &frame)?;
        shared.u64_at(WRITTEN).store(seq + 1, Ordering::Release);
        n.say(format_args!(
            "wrote message {seq} into the mapping (a memcpy, no write()); written = {}",
            seq + 1
        ));
    }
    n.unmute();
    // msync: the other process saw every byte already, through the shared page cache;
    // what msync adds is that the bytes are on the disk when it returns.
    n.call(
        "msync(addr, len, MS_SYNC)   (make it durable, not visible: it already is)",
        || {
            shared
                .map
                .flush()
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        },
    )?;
    n.say("waiting until the consumer has taken everything");
    wait_for(
        shared,
        || shared.consumer_pid(),
        "consumer",
        || shared.u64_at(TAKEN).load(Ordering::Acquire) == count,
    )
}
// ANCHOR_END: produce

// ANCHOR: consume
/// The consumer's loop: waits for `written` to pass each message, copies the frame out of
/// the mapping (no `read()`), checks it, and raises `taken`. The count and the frame
/// length are the copies `open` checked, never read from the file again.
pub fn consume(n: &Narrator, shared: &Shared) -> Result<()> {
    shared
        .i32_at(CONSUMER)
        .store(unistd::getpid().as_raw(), Ordering::Release);
    let (count, frame_len) = (shared.count, shared.frame_len);
    let mut tally = Tally::new(count);
    let mut frame = Vec::new();
    for seq in 0..count {
        if seq == NARRATED_MESSAGES {
            n.mute("... the rest without narration");
        }
        if seq % SIZE_WINDOW == 0 {
            shared.check_size()?;
        }
        wait_for(
            shared,
            || shared.producer,
            "producer",
            || shared.u64_at(WRITTEN).load(Ordering::Acquire) > seq,
        )?;
        shared.read_frame(seq, &mut frame)?;
        match message::decode(&frame, frame_len) {
            Ok(f) => tally.record(&f),
            Err(_) => tally.record_undecodable(frame.len()),
        }
        shared.u64_at(TAKEN).store(seq + 1, Ordering::Release);
        n.say(format_args!(
            "message {seq} is in my memory already: copied it out, no read()"
        ));
    }
    n.unmute();
    print_summary(tally.summary())?;
    tally.verdict()
}
// ANCHOR_END: consume

/// The producer's whole role.
pub fn producer_role(n: &Narrator, path: &Path, count: u64, size: usize) -> Result<()> {
    let (shared, _remove) = create(n, path, count, size + message::OVERHEAD)?;
    let shown = path.display().to_string();
    fault::exit_on_sigbus(PROGRAM, &shown, Remove::File(path.to_path_buf()))?;
    cleanup::exit_on_interrupt(n)?;
    n.announce(format_args!(
        "ready: run `mmap-demo consumer --path {}` in another terminal",
        path.display()
    ));
    produce(n, &shared, count, size)
}

/// The consumer's whole role. It creates nothing, so a SIGBUS leaves nothing behind. If
/// the producer died, its file is left; the consumer removes it, if the path still holds
/// that file, and otherwise says how to remove what is there.
pub fn consumer_role(n: &Narrator, path: &Path) -> Result<()> {
    fault::exit_on_sigbus(PROGRAM, &path.display().to_string(), Remove::Nothing)?;
    let shared = open(n, path)?;
    let result = consume(n, &shared);
    if result
        .as_ref()
        .is_err_and(|e| e.errno() == Some(Errno::ESRCH))
    {
        let used = shared.file.metadata().ok().map(|m| (m.dev(), m.ino()));
        drop(shared);
        remove_after_dead_producer(n, path, used);
    }
    result
}

/// Removes what a dead producer left at `path`, if it is the file this consumer used
/// (`used`: its device and inode) and [`leftover`] finds it removable. Otherwise it
/// leaves the file and says why, and which command removes it.
fn remove_after_dead_producer(n: &Narrator, path: &Path, used: Option<(u64, u64)>) {
    let shown = path.display().to_string();
    let another = || {
        n.essential(format_args!(
            "I leave {shown}: it now names another file than the one my producer made; \
             if that is a leftover too, `mmap-demo clean --path {shown}` checks it and removes it"
        ));
    };
    // lstat first: a file that took the path is judged by clean, not here.
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return n.say(format_args!("nothing is left at {shown}"));
        }
        Err(e) => return n.essential(format_args!("I leave {shown}: lstat failed: {e}")),
        Ok(now) if used != Some((now.dev(), now.ino())) => return another(),
        Ok(_) => {}
    }
    match leftover(n, path) {
        Ok(None) => n.say(format_args!("nothing is left at {shown}")),
        Ok(Some(found)) if used == Some(found.id) => {
            n.announce("the producer cannot remove its file any more, so I do");
            if let Err(e) = n.call(format_args!("unlink({shown:?})"), || unistd::unlink(path)) {
                n.essential(format_args!(
                    "I could not remove {shown}: {e}; `mmap-demo clean --path {shown}` removes it"
                ));
            }
        }
        Ok(Some(_)) => another(),
        Err(e) => n.essential(format_args!("I leave {shown}: {e}")),
    }
}

/// What [`leftover`] found: a message file that may be removed.
struct Leftover {
    /// Its device and inode.
    id: (u64, u64),
    /// The producer pid its header names (dead, or no process at all).
    producer: i32,
}

/// Checks that the file at `path` may be removed: a regular file of this user, not a
/// symbolic link (`lstat`), the same file once opened with O_NOFOLLOW, starting with the
/// message file's magic, and not a live producer's (the pid in its header). `Ok(None)`
/// if nothing is there; an error saying why if it must stay. The header is read with
/// `pread`, not mapped, so that a shrunk file cannot raise SIGBUS here.
fn leftover(n: &Narrator, path: &Path) -> Result<Option<Leftover>> {
    let shown = path.display().to_string();
    let Some(st) = owner::lstat_ours(path, Kind::File)? else {
        return Ok(None);
    };
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .context(format!("open({shown:?}, O_RDONLY|O_NOFOLLOW)"))?;
    let meta = file
        .metadata()
        .context(format!("fstat({})", file.as_raw_fd()))?;
    let id = (meta.dev(), meta.ino());
    if id != (st.st_dev, st.st_ino) {
        return Err(Error::bad_data(
            format!("open({shown:?})"),
            "another file took the path between lstat and open",
        ));
    }
    let mut header = [0u8; HEADER];
    let call = format!("pread({}, buf, {HEADER}, 0)", file.as_raw_fd());
    let got = n.call(&call, || {
        file.read_at(&mut header, 0)
            .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
    })?;
    if got < HEADER || header[..MAGIC.len()] != MAGIC {
        return Err(Error::bad_data(
            format!("{call} of {shown:?}"),
            "it does not start with the magic \"IPCDMAP1\", so nothing says it is mmap-demo's",
        )
        .hint(format!(
            "clean removes only mmap-demo's own message files; if it is yours, `rm {shown}` removes it"
        )));
    }
    let mut pid = [0u8; 4];
    pid.copy_from_slice(&header[PRODUCER..PRODUCER + 4]);
    let producer = i32::from_ne_bytes(pid);
    if producer > 0 && process::is_alive(producer) {
        return Err(Error::bad_data(
            format!("the file {shown}"),
            format!("its producer (pid {producer}) is still running"),
        )
        .hint("stop that producer (Ctrl-C): it removes its file itself"));
    }
    Ok(Some(Leftover { id, producer }))
}

/// Both roles in one terminal: the parent creates and maps the file and forks; the
/// child maps it again by name, as an unrelated process would.
pub fn exchange(n: &Narrator, path: &Path, count: u64, size: usize) -> Result<()> {
    let (shared, _remove) = create(n, path, count, size + message::OVERHEAD)?;
    let shown = path.display().to_string();
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            // The file is the parent's: on SIGBUS the child removes nothing.
            drop(shared);
            let result = fault::exit_on_sigbus(PROGRAM, &shown, Remove::Nothing)
                .and_then(|()| open(&me, path))
                .and_then(|shared| consume(&me, &shared));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            fault::exit_on_sigbus(PROGRAM, &shown, Remove::File(path.to_path_buf()))?;
            cleanup::exit_on_interrupt(n)?;
            produce(n, &shared, count, size)?;
            process::wait_for(n, child, "consumer")
        }
    }
}

const ORIGINAL: &[u8; 16] = b"original content";
const CHANGED: &[u8; 16] = b"PRIVATE CHANGES!";

// ANCHOR: private
/// MAP_PRIVATE: the writer gets its own copy of each page it writes to (copy-on-write).
/// A child maps the same file MAP_SHARED and checks, after the writer has written, that
/// neither its view nor the file changed.
pub fn private(n: &Narrator, path: &Path) -> Result<()> {
    let mut file = create_file(path)?;
    let _remove = remove_own_on_drop(n, path, &file)?;
    file.write_all(ORIGINAL)
        .context("write(fd, \"original content\", 16)")?;
    let (go_read, go_write) = n.call("pipe()   (writer -> other: look now)", unistd::pipe)?;
    match process::fork(n, "other")? {
        Fork::Child(me) => {
            let result = stream::close(&me, go_write).and_then(|()| {
                let map = map_shared(&me, &file, ORIGINAL.len() as u64)?;
                if FdStream::new(go_read, &me).read(&mut [0])? == 0 {
                    return Err(Error::bad_data("wait for the writer", "it exited first"));
                }
                let seen = &map[..];
                me.say(format_args!(
                    "my MAP_SHARED view: {:?}",
                    String::from_utf8_lossy(seen)
                ));
                if seen == ORIGINAL {
                    Ok(())
                } else {
                    Err(Error::bad_data("my view", "it changed"))
                }
            });
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            stream::close(n, go_read)?;
            n.step("mmap(NULL, 16, PROT_READ|PROT_WRITE, MAP_PRIVATE, fd, 0)");
            // SAFETY: the file is ours and nothing truncates it while it is mapped.
            let mut mine = unsafe { MmapOptions::new().map_copy(&file) }
                .context("mmap(.., MAP_PRIVATE, ..)")?;
            n.say(format_args!(
                "mmap(NULL, 16, PROT_READ|PROT_WRITE, MAP_PRIVATE, fd, 0) = {:p}",
                mine.as_ptr()
            ));
            mine.copy_from_slice(CHANGED);
            n.say(format_args!(
                "wrote into my MAP_PRIVATE mapping; my view: {:?}",
                String::from_utf8_lossy(&mine)
            ));
            FdStream::new(go_write, n).write_all(b"g")?;
            process::wait_for(n, child, "other")?;
            let mut on_disk = Vec::new();
            file.seek(SeekFrom::Start(0))
                .context("lseek(fd, 0, SEEK_SET)")?;
            file.read_to_end(&mut on_disk)
                .context("read(fd, buf, 16)")?;
            n.say(format_args!(
                "read() of the file: {:?}",
                String::from_utf8_lossy(&on_disk)
            ));
            let mine_changed = &mine[..] == CHANGED;
            let file_unchanged = on_disk == ORIGINAL;
            print_summary(format_args!(
                "summary: private_view={} file={} other_process=unchanged",
                if mine_changed { "changed" } else { "unchanged" },
                if file_unchanged {
                    "unchanged"
                } else {
                    "changed"
                }
            ))?;
            if !(mine_changed && file_unchanged) {
                return Err(Error::bad_data(
                    "MAP_PRIVATE",
                    "copy-on-write did not behave as mmap(2) says",
                ));
            }
            Ok(())
        }
    }
}
// ANCHOR_END: private

/// What [`lazy`] measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lazy {
    /// Bytes mapped.
    pub mapped: u64,
    /// Pages written to.
    pub touched: u64,
    /// Page faults the touching took, minor and major (getrusage), with MADV_RANDOM.
    pub faults: u64,
    /// Pages `mincore` finds in memory after the touches, with the default advice
    /// (readahead brings in neighbours of each touched page).
    pub resident_normal: u64,
    /// The same with `madvise(MADV_RANDOM)`: no readahead.
    pub resident_random: u64,
    /// Bytes the file takes on the disk (st_blocks × 512).
    pub disk: u64,
}

// ANCHOR: lazy
/// Maps a sparse file of `size` bytes and writes one byte in each of `touch` pages spread
/// over it, twice: with the default advice, and with `madvise(MADV_RANDOM)`. Only touched
/// pages (and, by default, the kernel's readahead around them) are brought in.
pub fn lazy(n: &Narrator, path: &Path, size: u64, touch: u64) -> Result<Lazy> {
    let page = unistd::sysconf(unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    let pages = size / page;
    if pages < touch.max(1) {
        return Err(Error::usage(format!(
            "--size {size}: {pages} whole pages of {page} bytes, fewer than the {touch} to touch; \
             give at least {} bytes",
            touch.max(1) * page
        )));
    }
    let mut result = Lazy {
        mapped: size,
        touched: touch,
        faults: 0,
        resident_normal: 0,
        resident_random: 0,
        disk: 0,
    };
    for advice in [memmap2::Advice::Normal, memmap2::Advice::Random] {
        let file = create_file(path)?;
        let _remove = remove_own_on_drop(n, path, &file)?;
        // A sparse file: the length is set, no data block is written.
        n.call(
            format_args!("ftruncate(fd, {size})   (a sparse file: no block written)"),
            || {
                file.set_len(size)
                    .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
            },
        )?;
        let mut map = map_shared(n, &file, size)?;
        let name = if advice == memmap2::Advice::Random {
            "MADV_RANDOM"
        } else {
            "MADV_NORMAL"
        };
        n.call(format_args!("madvise(addr, {size}, {name})"), || {
            map.advise(advice)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        })?;
        let before = faults()?;
        for i in 0..touch {
            let offset = (i * (pages / touch.max(1))) * page;
            map[offset as usize] = 1;
        }
        let taken = faults()? - before;
        let resident = resident_pages(&map, page)?;
        result.disk = file.metadata().context("fstat(fd)")?.blocks() * 512;
        n.say(format_args!(
            "{name}: touched {touch} of {pages} pages: {} page faults, {resident} pages resident (mincore), {} bytes on disk",
            taken,
            result.disk
        ));
        if advice == memmap2::Advice::Random {
            result.faults = taken;
            result.resident_random = resident;
        } else {
            result.resident_normal = resident;
        }
    }
    n.say("a fault on a page the page cache does not have yet counts as major, even for a hole that needs no disk read");
    Ok(result)
}

/// Page faults of this process so far, minor and major (`getrusage(RUSAGE_SELF)`).
fn faults() -> Result<u64> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .context("getrusage(RUSAGE_SELF)")?;
    Ok((usage.minor_page_faults() + usage.major_page_faults()) as u64)
}

/// Pages of `map` in memory now (`mincore(2)`, which nix does not wrap).
fn resident_pages(map: &MmapMut, page: u64) -> Result<u64> {
    let pages = (map.len() as u64).div_ceil(page) as usize;
    let mut vec = vec![0u8; pages];
    // SAFETY: the address and length are those of a live mapping, and `vec` has one byte
    // per page of it, which is what mincore writes.
    let r = unsafe { libc::mincore(map.as_ptr().cast_mut().cast(), map.len(), vec.as_mut_ptr()) };
    Errno::result(r).map_err(|e| Error::sys("mincore(addr, len, vec)", e))?;
    Ok(vec.iter().filter(|&&b| b & 1 == 1).count() as u64)
}
// ANCHOR_END: lazy

// ANCHOR: resize
/// Maps a two-page file, truncates it to one page while mapped, and lets a child touch
/// the second page: the kernel sends it SIGBUS. The parent reports how the child ended.
pub fn resize(n: &Narrator, path: &Path) -> Result<()> {
    let file = create_file(path)?;
    let _remove = remove_own_on_drop(n, path, &file)?;
    let page = unistd::sysconf(unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u64;
    file.set_len(2 * page).context("ftruncate(fd, 2 pages)")?;
    let map = map_shared(n, &file, 2 * page)?;
    n.call(
        format_args!("ftruncate(fd, {page})   (shrink the file under the mapping)"),
        || {
            file.set_len(page)
                .map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))
        },
    )?;
    n.say("the kernel allowed it: the mapping still covers two pages, but the file has one");
    match process::fork(n, "toucher")? {
        Fork::Child(me) => {
            // No core file: this child is meant to die, and a core dump of it would be
            // a file left behind.
            let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
            me.say(format_args!(
                "reading the byte at offset {page}, in the second page ..."
            ));
            // SAFETY: this read is past the end of the file and will raise SIGBUS, which
            // ends this child (the default action); it is the lesson. The address itself
            // is inside the mapping, so nothing but the file's end is violated.
            let byte = unsafe { std::ptr::read_volatile(map.as_ptr().add(page as usize)) };
            me.say(format_args!("read {byte}: no SIGBUS?"));
            process::exit_child(&me, Ok(()))
        }
        Fork::Parent { child } => {
            let status = n.call(format_args!("waitpid({child}, &status, 0)"), || {
                waitpid(child, None)
            })?;
            match status {
                WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGBUS, _) => {
                    n.say("SIGBUS: the page past the end of the file has nothing behind it");
                    print_summary("summary: truncate=allowed access_beyond_end=SIGBUS")
                }
                other => Err(Error::bad_data(
                    "the toucher",
                    format!("it ended with {other:?}, not SIGBUS"),
                )),
            }
        }
    }
}
// ANCHOR_END: resize

/// The delays [`file_poll`] measured, in microseconds.
#[derive(Debug, Clone)]
pub struct Delays {
    /// Through the file, noticed by polling.
    pub file: Vec<u64>,
    /// Through a pipe, the reader blocked in read().
    pub pipe: Vec<u64>,
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

// ANCHOR: file_poll
/// Note 002's plain-file IPC: the writer appends a timestamped line to a file now and
/// then; the reader looks at the file every `poll` and measures how late it noticed
/// each line. Then the same through a pipe, where the reader sleeps in `read` and the
/// kernel wakes it. Returns both sets of delays.
pub fn file_poll(n: &Narrator, path: &Path, count: u64, poll: Duration) -> Result<Delays> {
    let mut delays = Delays {
        file: Vec::new(),
        pipe: Vec::new(),
    };
    for through_pipe in [false, true] {
        let (read_end, write_end) = n.call("pipe()   (for the results)", unistd::pipe)?;
        let (data_read, data_write) = n.call("pipe()   (the pipe run's data)", unistd::pipe)?;
        // The file run's file is the writer's own: created now, removed at the end.
        let mut log = if through_pipe {
            None
        } else {
            Some(create_log(n, path)?)
        };
        match process::fork(n, "reader")? {
            Fork::Child(me) => {
                me.mute("reading");
                let result = stream::close(&me, read_end)
                    .and_then(|()| stream::close(&me, data_write))
                    .and_then(|()| match &log {
                        // The reader opens the file by its name, as another program would.
                        Some(log) => open_log(path, &log.made).map(Some),
                        None => Ok(None),
                    })
                    .and_then(|file| read_lines(&me, file, data_read, count, poll, write_end));
                process::exit_child(&me, result)
            }
            Fork::Parent { child } => {
                stream::close(n, write_end)?;
                stream::close(n, data_read)?;
                let mut data = FdStream::new(data_write, n);
                n.mute("writing");
                for seq in 0..count {
                    // Uneven gaps, so that lines land at every phase of the reader's polling.
                    std::thread::sleep(poll / 3 + poll * ((seq * 7 % 10) as u32) / 10);
                    let line = format!("{seq} {}\n", now_us());
                    match &mut log {
                        Some(log) => log
                            .file
                            .write_all(line.as_bytes())
                            .context("write(fd, line)")?,
                        None => data.write_all(line.as_bytes())?,
                    }
                }
                n.unmute();
                drop(data);
                let mut results = Vec::new();
                FdStream::new(read_end, n).read_to_end(&mut results)?;
                process::wait_for(n, child, "reader")?;
                let got: Vec<u64> = results
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect();
                if through_pipe {
                    delays.pipe = got
                } else {
                    delays.file = got
                }
            }
        }
    }
    Ok(delays)
}

/// The writer's file in [`file_poll`], and the guard that removes it.
struct Log {
    file: File,
    /// Its device and inode, for the reader to check it opened the same file.
    made: (u64, u64),
    _remove: Guard,
}

/// `open(path, O_WRONLY|O_APPEND|O_CREAT|O_EXCL|O_NOFOLLOW, 0600)`: a new file of the
/// writer's own. Whatever is at the path already (someone's file, a symbolic link) is
/// neither written nor removed: the run stops with EEXIST (or ELOOP).
fn create_log(n: &Narrator, path: &Path) -> Result<Log> {
    let shown = path.display().to_string();
    let call = format!("open({shown:?}, O_WRONLY|O_APPEND|O_CREAT|O_EXCL|O_NOFOLLOW, 0600)");
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
        .context(call.clone())
        .map_err(|e| match e.errno() {
            Some(Errno::EEXIST | Errno::ELOOP) => e.hint(
                "something is at that path already: file-poll writes only into a file it \
                 creates, and removes only that one; use another --path",
            ),
            _ => e,
        })?;
    n.say(format_args!("{call} = {}", file.as_raw_fd()));
    let meta = file
        .metadata()
        .context(format!("fstat({})", file.as_raw_fd()))?;
    let _remove = remove_own_on_drop(n, path, &file)?;
    Ok(Log {
        file,
        made: (meta.dev(), meta.ino()),
        _remove,
    })
}

/// The reader's `open(path, O_RDONLY|O_NOFOLLOW)` and `fstat`: a regular file of this
/// user, and the very file the writer created (`made`: its device and inode).
fn open_log(path: &Path, made: &(u64, u64)) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .context(format!("open({:?}, O_RDONLY|O_NOFOLLOW)", path.display()))?;
    let st = owner::fstat_ours(&file, Kind::File)?;
    if (st.st_dev, st.st_ino) != *made {
        return Err(Error::bad_data(
            format!("fstat({})", file.as_raw_fd()),
            "it is not the file the writer created: another took its path",
        ));
    }
    Ok(file)
}

/// The reader: polls `file` (or, without one, reads the pipe `data`) until `count` lines
/// came, and sends each line's delay in microseconds back through `results`.
fn read_lines(
    n: &Narrator,
    mut file: Option<File>,
    data: std::os::fd::OwnedFd,
    count: u64,
    poll: Duration,
    results: std::os::fd::OwnedFd,
) -> Result<()> {
    let mut text = String::new();
    let mut seen = 0usize;
    let mut out = FdStream::new(results, n);
    let mut pipe = FdStream::new(data, n);
    let mut lines = 0u64;
    while lines < count {
        let mut chunk = vec![0u8; 4096];
        let got = match &mut file {
            None => pipe.read(&mut chunk)?,
            Some(file) => {
                // Look at the file; if nothing new, sleep until the next look.
                file.seek(SeekFrom::Start(seen as u64)).context("lseek")?;
                let got = file.read(&mut chunk).context("read(fd, buf, 4096)")?;
                if got == 0 {
                    std::thread::sleep(poll);
                    continue;
                }
                got
            }
        };
        if got == 0 {
            return Err(Error::bad_data(
                "read the lines",
                "the writer stopped early",
            ));
        }
        let now = now_us();
        seen += got;
        text.push_str(&String::from_utf8_lossy(&chunk[..got]));
        while let Some(end) = text.find('\n') {
            let line: String = text.drain(..=end).collect();
            let sent = line
                .split_whitespace()
                .nth(1)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(now);
            out.write_all(&now.saturating_sub(sent).to_le_bytes())?;
            lines += 1;
        }
    }
    Ok(())
}
// ANCHOR_END: file_poll

/// Removes the message file at `path` if a killed producer left it: only a regular file
/// of this user, with the message file's magic, whose producer is not running. Anything
/// else stays, and the error says why.
pub fn clean(n: &Narrator, path: &Path) -> Result<()> {
    let shown = path.display().to_string();
    let Some(found) = leftover(n, path)? else {
        n.say(format_args!("nothing at {shown}"));
        return print_summary("summary: removed=0");
    };
    if found.producer > 0 {
        n.say(format_args!(
            "its producer (pid {}) is gone: a leftover",
            found.producer
        ));
    } else {
        n.say(format_args!(
            "its header names producer pid {}, which is no process: a damaged file",
            found.producer
        ));
    }
    // Between the checks and this call, only someone who may write to the folder can
    // put another file at the path; the default folder is private (common::paths).
    n.call(format_args!("unlink({shown:?})"), || unistd::unlink(path))?;
    print_summary("summary: removed=1")
}
