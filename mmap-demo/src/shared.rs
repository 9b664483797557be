//! The message file, mapped MAP_SHARED: the producer creates it ([`create`]), the
//! consumer opens it ([`open`]), and each moves one message with [`put`] or [`take`]
//! (which the bench measures too), with no `read` or `write`.
//!
//! The other process writes into the same pages at any time, so nothing here is a plain
//! reference into the mapping: counters are atomics, frames are copied out, and the
//! fields that say how large things are were copied out once, checked
//! ([`crate::layout::parse_header`]), and kept in [`Shared`].

use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use common::cleanup::{self, Guard};
use common::mapping::{self, FirstPid, Looking, Mapping, Prot, Share, inside};
use common::owner::{self, Kind};
use common::{Error, HintOn, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd;
use std::os::fd::OwnedFd;

use crate::SIZE_WINDOW;
use crate::layout::{
    CONSUMER_AT, COUNT_AT, FRAME_LEN_AT, HEADER, MAGIC, MAGIC_AT, MAX_FILE, PRODUCER_AT, Problem,
    SLOTS_AT, TAKEN_AT, WRITTEN_AT, parse_header,
};

/// How long a waiting side sleeps between two looks at the other side's counter, once
/// it has looked a thousand times without sleeping.
const POLL: Duration = Duration::from_millis(1);

/// A writable MAP_SHARED mapping of the message file, with its header fields.
#[derive(Debug)]
pub struct Shared {
    /// The mapping; it keeps the file's descriptor, for `fstat` to tell whether a peer
    /// shrank the file.
    map: Mapping,
    /// Messages in the file (checked: a tally can count them).
    count: u64,
    /// Bytes per frame (checked with `slots`: the frames fill the file).
    frame_len: usize,
    /// Frames in the file (checked: at least one if there are messages).
    slots: u64,
    /// The producer's pid (checked > 0, so that "is it alive?" can be asked).
    producer: i32,
    /// The first consumer pid seen in the header; 0 until a consumer attaches.
    consumer: FirstPid,
}

/// `open(path, flags|O_CREAT|O_EXCL, 0600)`: a new file, readable and writable by its
/// owner only, and a guard that removes it (that very file, and nothing that took its
/// path since). A file that exists already is an error, not something to reuse; with
/// O_EXCL, a symbolic link at the path is never followed either: it fails with EEXIST
/// (open(2)).
pub fn create_file(n: &Narrator, path: &Path, flags: OFlag) -> Result<(OwnedFd, Guard)> {
    let flags = flags | OFlag::O_CREAT | OFlag::O_EXCL;
    owner::parent_ours_or_root(path)?;
    let fd = common::sys::open(n, path, flags, Mode::from_bits_truncate(0o600))?;
    match owner::fstat_ours(&fd, Kind::File) {
        Ok(made) => Ok((fd, cleanup::remove_own_on_drop(n, path, &made))),
        Err(e) => {
            // It was created a moment ago: remove it now rather than leave it.
            let _ = common::sys::unlink(n, path);
            Err(e)
        }
    }
}

/// The hint for a message file that exists already.
fn exists_hint() -> String {
    tr!(
        "the file exists: another run's, or left by a killed one; `mmap-demo clean` removes it if a killed producer left it"
    )
}

// ANCHOR: create
/// The producer's side: creates the file (it must not exist yet), sets its length with
/// `ftruncate` (a header and `slots` frames), and maps it MAP_SHARED, readable and
/// writable. The header goes in with the magic last.
pub fn create(
    n: &Narrator,
    path: &Path,
    count: u64,
    slots: u64,
    frame_len: usize,
) -> Result<(Shared, Guard)> {
    let (fd, remove) = create_file(n, path, OFlag::O_RDWR).hint_on(Errno::EEXIST, exists_hint())?;
    let len = HEADER as u64 + slots * frame_len as u64;
    common::sys::ftruncate(n, &fd, len)?;
    let mut map = Mapping::map(n, &fd, len as usize, Prot::ReadWrite, Share::Shared)?;
    map.keep_descriptor(fd);
    let producer = unistd::getpid().as_raw();
    let shared = Shared {
        map,
        count,
        frame_len,
        slots,
        producer,
        consumer: FirstPid::default(),
    };
    shared.field(COUNT_AT).store(count, Ordering::Relaxed);
    shared
        .field(FRAME_LEN_AT)
        .store(frame_len as u64, Ordering::Relaxed);
    shared.field(SLOTS_AT).store(slots, Ordering::Relaxed);
    shared.pid(PRODUCER_AT).store(producer, Ordering::Relaxed);
    // The magic last, with a release store: a consumer that sees it sees the rest.
    shared
        .field(MAGIC_AT)
        .store(u64::from_ne_bytes(MAGIC), Ordering::Release);
    Ok((shared, remove))
}
// ANCHOR_END: create

// ANCHOR: open
/// The consumer's side: opens the existing file (never through a symbolic link, and only
/// if it is this user's), maps it, then copies the header out once, checks it, and keeps
/// the checked copy. Waits (saying so) for a producer that has not made the file yet, or
/// not finished setting it up.
pub fn open(n: &Narrator, path: &Path) -> Result<Shared> {
    mapping::wait_for_object(n, path, &path.display().to_string());
    mapping::attach(n, |patient| {
        let fd = common::sys::open(n, path, OFlag::O_RDWR | OFlag::O_NOFOLLOW, Mode::empty())
            .hint_on(
                Errno::ELOOP,
                tr!(
                    "it is a symbolic link, which the demo never follows: someone may have planted \
                 it to send the consumer into a file of theirs or of yours; remove it yourself \
                 if it is yours, or use another --path"
                ),
            )?;
        // Anyone who can write to the folder may have put a file there first.
        let len = u64::try_from(owner::fstat_ours(&fd, Kind::File)?.st_size).unwrap_or(0);
        if len == 0 && patient {
            // The producer has made the file but not yet sized it.
            return common::sys::close(n, fd).map(|()| None);
        }
        if !(HEADER as u64..=MAX_FILE + HEADER as u64).contains(&len) {
            return Err(bad(
                path,
                tr!("{len} bytes is not the size of a message file", len),
            ));
        }
        let mut map = Mapping::map(n, &fd, len as usize, Prot::ReadWrite, Share::Shared)?;
        map.keep_descriptor(fd);
        match Shared::attach(map) {
            Ok(shared) => Ok(Some(shared)),
            Err(Problem::NotReady) if patient => Ok(None),
            Err(why) => Err(bad(path, why.to_string())),
        }
    })
}
// ANCHOR_END: open

/// The file at `path` is not a message file this demo can use.
fn bad(path: &Path, why: String) -> Error {
    Error::bad_data(tr!("the file {path}", path = path.display()), why).hint(tr!(
        "it is not an mmap-demo message file, or it was damaged: `mmap-demo clean` removes it"
    ))
}

impl Shared {
    /// Checks the header of a mapped file and keeps the checked fields.
    fn attach(map: Mapping) -> std::result::Result<Shared, Problem> {
        // Acquire: what the producer wrote before the magic is visible after it.
        let magic = map
            .u64_at(MAGIC_AT)
            .map_or(0, |m| m.load(Ordering::Acquire));
        if magic == 0 {
            return Err(Problem::NotReady);
        }
        // One copy of the header, which is then checked and used: never a second read.
        let mut h = [0u8; HEADER];
        map.read(0, &mut h)
            .map_err(|e| Problem::Bad(e.to_string()))?;
        let header = parse_header(&h, map.len() as u64)?;
        Ok(Shared {
            map,
            count: header.count,
            frame_len: header.frame_len as usize,
            slots: header.slots,
            producer: header.producer,
            consumer: FirstPid::default(),
        })
    }

    /// The mapping under the file.
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// `munmap` of the file's mapping, narrated.
    pub fn munmap(self, n: &Narrator) -> Result<()> {
        self.map.munmap(n)
    }

    /// Messages in the file, as checked.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Bytes per frame, as checked.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// Messages written so far (the producer's counter).
    pub fn written(&self) -> u64 {
        self.field(WRITTEN_AT).load(Ordering::Acquire)
    }

    /// Messages taken so far (the consumer's counter).
    pub fn taken(&self) -> u64 {
        self.field(TAKEN_AT).load(Ordering::Acquire)
    }

    /// A consumer writes its pid, so that the producer can tell if it dies.
    pub fn set_consumer_pid(&self, pid: i32) {
        self.pid(CONSUMER_AT).store(pid, Ordering::Release);
    }

    /// The consumer's pid, 0 until one attaches. The first pid above 0 seen is kept: a
    /// later write (a second consumer, or a 0 written back) does not stop the producer
    /// from watching the consumer it has.
    pub fn consumer_pid(&self) -> i32 {
        self.consumer.seen(self.pid(CONSUMER_AT))
    }

    /// The producer's pid, as checked.
    pub fn producer_pid(&self) -> i32 {
        self.producer
    }

    /// Whether a wait for `role` (pid `pid`) can still end: the file still has its size,
    /// and the other process lives.
    fn can_end(&self, role: &str, pid: i32) -> Result<()> {
        self.map.check_size(&tr!("the shared file"))?;
        mapping::peer_alive(role, pid)
    }

    /// Where frame `seq` starts: frame `seq % slots`, inside the file by the checked
    /// `slots` and `frame_len` (the mapping checks each access too).
    fn frame_at(&self, seq: u64) -> usize {
        HEADER + (seq % self.slots.max(1)) as usize * self.frame_len
    }

    fn field(&self, at: usize) -> &AtomicU64 {
        inside(self.map.u64_at(at))
    }

    fn pid(&self, at: usize) -> &AtomicI32 {
        inside(self.map.i32_at(at))
    }
}

// ANCHOR: put
/// Puts message `seq` (a whole frame) into the file: waits until its frame is free (in
/// the lesson's file, where every message has its own frame, it always is), copies the
/// frame into the mapping, and raises `written`. No system call.
pub fn put(n: &Narrator, shared: &Shared, seq: u64, frame: &[u8]) -> Result<()> {
    if seq % SIZE_WINDOW == 0 {
        shared.map.check_size(&tr!("the shared file"))?;
    }
    if frame.len() != shared.frame_len {
        return Err(Error::bad_data(
            tr!("message {seq}", seq),
            tr!(
                "{len} bytes, not the file's {frame_len}",
                len = frame.len(),
                frame_len = shared.frame_len
            ),
        ));
    }
    let free = || seq.saturating_sub(shared.taken()) < shared.slots;
    let what = || {
        tr!(
            "look at taken until frame {seq} is free (spin, then every 1 ms)",
            seq
        )
    };
    let check = || shared.can_end("consumer", shared.consumer_pid());
    mapping::spin_until(n, what, Looking::ThenSleep(POLL), free, check)?;
    shared.map.copy_in(n, shared.frame_at(seq), frame)?;
    shared.field(WRITTEN_AT).store(seq + 1, Ordering::Release);
    say!(
        n,
        "wrote message {seq} into the mapping (a memcpy, no write()); written = {written}",
        seq,
        written = seq + 1
    );
    Ok(())
}

/// Takes message `seq` out of the file into `out`: waits for `written` to pass it,
/// copies the frame out of the mapping (no `read()`), and raises `taken`.
pub fn take(n: &Narrator, shared: &Shared, seq: u64, out: &mut Vec<u8>) -> Result<()> {
    if seq % SIZE_WINDOW == 0 {
        shared.map.check_size(&tr!("the shared file"))?;
    }
    let what = || {
        tr!(
            "look at written until it passes {seq} (spin, then every 1 ms)",
            seq
        )
    };
    let check = || shared.can_end("producer", shared.producer);
    mapping::spin_until(
        n,
        what,
        Looking::ThenSleep(POLL),
        || shared.written() > seq,
        check,
    )?;
    out.resize(shared.frame_len, 0);
    shared.map.copy_out(n, shared.frame_at(seq), out)?;
    shared.field(TAKEN_AT).store(seq + 1, Ordering::Release);
    say!(
        n,
        "message {seq} is in my memory already: copied it out, no read()",
        seq
    );
    Ok(())
}
// ANCHOR_END: put

/// Waits until the consumer has taken all `count` messages.
pub fn wait_until_taken(n: &Narrator, shared: &Shared, count: u64) -> Result<()> {
    let what = || {
        tr!(
            "look at taken until it is {count} (spin, then every 1 ms)",
            count
        )
    };
    let check = || shared.can_end("consumer", shared.consumer_pid());
    mapping::spin_until(
        n,
        what,
        Looking::ThenSleep(POLL),
        || shared.taken() == count,
        check,
    )
}
