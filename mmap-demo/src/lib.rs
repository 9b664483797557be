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
//! - [`file_poll`]: plain-file IPC, polled, next to a pipe, to see why it is not real-time.
//!
//! Usage: `cargo run -p mmap-demo -- --help`. See also: mmap(2), msync(2), mincore(2),
//! getrusage(2), and TLPI chapter 49.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::cleanup::{self, Guard};
use common::message;
use common::narrate::print_summary;
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

/// A writable MAP_SHARED mapping of the message file, with its header fields.
///
/// The other process writes into the same pages at any time, so nothing here hands out a
/// plain reference into the mapping: counters are atomics, frames are copied out.
pub struct Shared {
    map: MmapMut,
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

    /// Copies frame `seq` out of the mapping into `out`.
    fn read_frame(&self, seq: u64, frame_len: usize, out: &mut Vec<u8>) {
        out.resize(frame_len, 0);
        let at = HEADER + seq as usize * frame_len;
        // SAFETY: the file was checked to hold HEADER + count * frame_len bytes and seq <
        // count, so the frame is inside the mapping; `out` is ours. The bytes are copied
        // once into private memory before anything interprets them.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr(at), out.as_mut_ptr(), frame_len) };
    }

    /// Copies `frame` into the mapping as frame `seq`.
    fn write_frame(&self, seq: u64, frame: &[u8]) {
        let at = HEADER + seq as usize * frame.len();
        // SAFETY: the producer sized the file to HEADER + count * frame_len and seq <
        // count; the consumer reads this frame only after `written` passes it.
        unsafe { std::ptr::copy_nonoverlapping(frame.as_ptr(), self.ptr(at), frame.len()) };
    }
}

/// A guard that removes the file at `path` when dropped or on Ctrl-C.
fn remove_on_drop(n: &Narrator, path: &Path) -> Guard {
    cleanup::unlink_on_drop(n, path)
}

/// `open(path, O_RDWR|O_CREAT|O_EXCL, 0600)`: a new file, readable and writable by its
/// owner only; one that exists already is an error, not something to reuse.
fn create_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .context(format!("open({:?}, O_RDWR|O_CREAT|O_EXCL, 0600)", path.display()))
        .map_err(|e| match e.errno() {
            Some(Errno::EEXIST) => e.hint("the file exists: another run's, or left by a killed one; `mmap-demo clean` removes it"),
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
    let guard = remove_on_drop(n, path);
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
    let shared = Shared { map };
    shared.u64_at(COUNT).store(count, Ordering::Relaxed);
    shared
        .u64_at(FRAME_LEN)
        .store(frame_len as u64, Ordering::Relaxed);
    shared
        .i32_at(PRODUCER)
        .store(unistd::getpid().as_raw(), Ordering::Relaxed);
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
    // past the end is SIGBUS. The demo's own roles never truncate a message file, and a
    // consumer checks the length before it reads; `resize` breaks this on purpose, in a
    // child process that is meant to die.
    let map = unsafe { MmapOptions::new().map_mut(file) }
        .context(format!("mmap(NULL, {len}, .., MAP_SHARED, {fd}, 0)"))?;
    n.say(format_args!(
        "mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, {fd}, 0) = {:p}",
        map.as_ptr()
    ));
    Ok(map)
}

// ANCHOR: open
/// The consumer's side: opens the existing file and maps it, then checks its header and
/// its length. Waits (saying so) for a producer that has not made the file yet.
pub fn open(n: &Narrator, path: &Path) -> Result<Shared> {
    let shown = path.display();
    let mut said = false;
    let started = Instant::now();
    loop {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
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
                return Err(Error::sys(
                    format!("open({shown:?}, O_RDWR)"),
                    Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                ));
            }
        };
        let len = file.metadata().context(format!("fstat({shown:?})"))?.len();
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
        let shared = Shared {
            map: map_shared(n, &file, len)?,
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
        let count = shared.u64_at(COUNT).load(Ordering::Relaxed);
        let frame_len = shared.u64_at(FRAME_LEN).load(Ordering::Relaxed);
        // Both numbers come from the file: check them before using them.
        if count > MAX_COUNT
            || frame_len < message::OVERHEAD as u64
            || HEADER as u64 + count.saturating_mul(frame_len) != len
        {
            return Err(bad(
                path,
                format!("{count} messages of {frame_len} bytes do not fill {len} bytes"),
            ));
        }
        return Ok(shared);
    }
}
// ANCHOR_END: open

fn bad(path: &Path, why: String) -> Error {
    Error::bad_data(format!("the file {}", path.display()), why).hint(
        "it is not an mmap-demo message file, or it was damaged: `mmap-demo clean` removes it",
    )
}

/// Waits until `ready`, polling every [`POLL`] and checking that `peer` lives.
fn wait_for(shared: &Shared, peer_at: usize, role: &str, ready: impl Fn() -> bool) -> Result<()> {
    let mut looks = 0u32;
    while !ready() {
        looks += 1;
        if looks < 1000 {
            std::hint::spin_loop();
            continue;
        }
        std::thread::sleep(POLL);
        let pid = shared.i32_at(peer_at).load(Ordering::Acquire);
        if looks % 100 == 0 && pid != 0 && !process::is_alive(pid) {
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
        message::encode_into(seq, size, &mut frame);
        shared.write_frame(seq, &frame);
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
    wait_for(shared, CONSUMER, "consumer", || {
        shared.u64_at(TAKEN).load(Ordering::Acquire) == count
    })
}
// ANCHOR_END: produce

// ANCHOR: consume
/// The consumer's loop: waits for `written` to pass each message, copies the frame out of
/// the mapping (no `read()`), checks it, and raises `taken`.
pub fn consume(n: &Narrator, shared: &Shared) -> Result<()> {
    shared
        .i32_at(CONSUMER)
        .store(unistd::getpid().as_raw(), Ordering::Release);
    let count = shared.u64_at(COUNT).load(Ordering::Relaxed);
    let frame_len = shared.u64_at(FRAME_LEN).load(Ordering::Relaxed) as usize;
    let mut tally = Tally::new(count);
    let mut frame = Vec::new();
    for seq in 0..count {
        if seq == NARRATED_MESSAGES {
            n.mute("... the rest without narration");
        }
        wait_for(shared, PRODUCER, "producer", || {
            shared.u64_at(WRITTEN).load(Ordering::Acquire) > seq
        })?;
        shared.read_frame(seq, frame_len, &mut frame);
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
    cleanup::exit_on_interrupt(n)?;
    n.announce(format_args!(
        "ready: run `mmap-demo consumer --path {}` in another terminal",
        path.display()
    ));
    produce(n, &shared, count, size)
}

/// The consumer's whole role. If the producer died, its file is left; the consumer
/// removes it.
pub fn consumer_role(n: &Narrator, path: &Path) -> Result<()> {
    let shared = open(n, path)?;
    let result = consume(n, &shared);
    if result
        .as_ref()
        .is_err_and(|e| e.errno() == Some(Errno::ESRCH))
    {
        drop(shared);
        n.announce("the producer cannot remove its file any more, so I do");
        let _ = n.call(format_args!("unlink({:?})", path.display()), || {
            unistd::unlink(path)
        });
    }
    result
}

/// Both roles in one terminal: the parent creates and maps the file and forks; the
/// child maps it again by name, as an unrelated process would.
pub fn exchange(n: &Narrator, path: &Path, count: u64, size: usize) -> Result<()> {
    let (shared, _remove) = create(n, path, count, size + message::OVERHEAD)?;
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            drop(shared);
            let result = open(&me, path).and_then(|shared| consume(&me, &shared));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
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
    let _remove = remove_on_drop(n, path);
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
        let _remove = remove_on_drop(n, path);
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
    let _remove = remove_on_drop(n, path);
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
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .context(format!(
                "open({:?}, O_RDWR|O_APPEND|O_CREAT, 0600)",
                path.display()
            ))?;
        let _remove = remove_on_drop(n, path);
        match process::fork(n, "reader")? {
            Fork::Child(me) => {
                me.mute("reading");
                let result = stream::close(&me, read_end)
                    .and_then(|()| stream::close(&me, data_write))
                    .and_then(|()| {
                        read_lines(
                            &me,
                            &mut file,
                            data_read,
                            count,
                            poll,
                            through_pipe,
                            write_end,
                        )
                    });
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
                    if through_pipe {
                        data.write_all(line.as_bytes())?;
                    } else {
                        file.write_all(line.as_bytes()).context("write(fd, line)")?;
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

/// The reader: polls the file (or reads the pipe) until `count` lines came, and sends
/// each line's delay in microseconds back through `results`.
fn read_lines(
    n: &Narrator,
    file: &mut File,
    data: std::os::fd::OwnedFd,
    count: u64,
    poll: Duration,
    through_pipe: bool,
    results: std::os::fd::OwnedFd,
) -> Result<()> {
    let mut text = String::new();
    let mut seen = 0usize;
    let mut out = FdStream::new(results, n);
    let mut pipe = FdStream::new(data, n);
    let mut lines = 0u64;
    while lines < count {
        let mut chunk = vec![0u8; 4096];
        let got = if through_pipe {
            pipe.read(&mut chunk)?
        } else {
            // Look at the file; if nothing new, sleep until the next look.
            file.seek(SeekFrom::Start(seen as u64)).context("lseek")?;
            let got = file.read(&mut chunk).context("read(fd, buf, 4096)")?;
            if got == 0 {
                std::thread::sleep(poll);
                continue;
            }
            got
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

/// Removes the file at `path` if a killed run left it (only a regular file).
pub fn clean(n: &Narrator, path: &Path) -> Result<()> {
    common::cleanup::remove_leftover(n, path, "a regular file", std::fs::FileType::is_file)
}
