//! A mapping of memory shared with another process: `mmap(2)`, `munmap(2)`, `msync(2)`,
//! `madvise(2)` and `mincore(2)` narrated with their real arguments, and safe,
//! bounds-checked access to the bytes.
//!
//! ```ignore
//! let map = Mapping::map(n, &fd, 4096, Prot::ReadWrite, Share::Shared)?;
//!                         // [producer 4242] mmap(NULL, 4096, PROT_READ|PROT_WRITE, MAP_SHARED, 3, 0) = 0x7f3a...
//! map.u64_at(64)?.store(1, Ordering::Release);       // a counter the other process reads
//! map.copy_in(n, 512, &frame)?;                      // [producer 4242] memcpy(0x7f3a...200, buf, 80) = 0x7f3a...200
//! map.munmap(n)?;                                    // [producer 4242] munmap(0x7f3a..., 4096) = 0
//! ```
//!
//! A [`Mapping`] owns its pages until it is unmapped (by [`Mapping::munmap`], narrated,
//! or silently when it is dropped). It never hands out a plain reference into them: the
//! other process can write any byte at any time, so a field is either an atomic at a
//! checked offset ([`Mapping::u64_at`] and friends) or copied out into private memory
//! before anything looks at it ([`Mapping::read`], [`Mapping::copy_out`]). Every offset
//! is checked against the length mapped and, for atomics, against the alignment; a bad
//! one is an [`Outside`] error, never an access outside the mapping. A mapping made
//! without `PROT_WRITE` (an observer's) gives no atomics and takes no stores.
//!
//! What bounds checks cannot catch is a peer that shrinks the object under the mapping
//! (`ftruncate`): the pages past the new end are then not backed by anything, and a
//! touch raises SIGBUS (mmap(2), "Errors"). A side that keeps the object's descriptor
//! ([`Mapping::keep_descriptor`]) asks its size with `fstat` before each access window
//! ([`Mapping::check_size`]); [`crate::fault::exit_on_sigbus`] turns the SIGBUS of a
//! shrinking between the check and the access into one clear line and exit 1.
//!
//! The second half of this module is how the two sides of a mapping wait for each
//! other when no system call does it for them: for the object to appear
//! ([`wait_for_object`]), for its producer to finish setting it up ([`attach`]), and
//! for a counter the other side writes to move ([`spin_until`]), each wait narrated
//! once, where it happens.
//!
//! All the `unsafe` of the shared-memory demos' mappings is in this file, each block with
//! the reason it is sound. See also: mmap(2), munmap(2), msync(2), madvise(2),
//! mincore(2), and TLPI chapter 49 ("Memory Mappings").

use std::fmt::{self, Display};
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU8, AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::mman::{self, MapFlags, MmapAdvise, MsFlags, ProtFlags};

use crate::error::{Error, Result};
use crate::narrate::{Narrator, Shown};
use crate::{fault, process, tr};

/// How a mapping may be used: `PROT_READ` alone (an observer), or `PROT_READ|PROT_WRITE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prot {
    /// `PROT_READ`: loads only. Bytes are copied out; no atomics, no stores.
    Read,
    /// `PROT_READ|PROT_WRITE`.
    ReadWrite,
}

/// Who sees the stores into a file's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// `MAP_SHARED`: stores go to the object's pages, which every process that maps it
    /// sees, and (for a file) which are written back to the file.
    Shared,
    /// `MAP_PRIVATE`: the first store to a page gives this process its own copy of the
    /// page (copy-on-write); nobody else sees it, and the file never gets it.
    Private,
}

/// What a process tells the kernel about how it will use a mapping (`madvise(2)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advice {
    /// `MADV_NORMAL`: the default, with some readahead around each fault.
    Normal,
    /// `MADV_RANDOM`: pages will be used in no particular order: no readahead.
    Random,
}

impl Prot {
    fn flags(self) -> ProtFlags {
        match self {
            Prot::Read => ProtFlags::PROT_READ,
            Prot::ReadWrite => ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        }
    }
}

impl Display for Prot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Prot::Read => "PROT_READ",
            Prot::ReadWrite => "PROT_READ|PROT_WRITE",
        })
    }
}

impl Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Share::Shared => "MAP_SHARED",
            Share::Private => "MAP_PRIVATE",
        })
    }
}

impl Display for Advice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Advice::Normal => "MADV_NORMAL",
            Advice::Random => "MADV_RANDOM",
        })
    }
}

/// An access the mapping refused, before touching anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outside {
    /// `size` bytes at offset `at` are not all inside the `len` bytes mapped.
    Range {
        /// Where the access starts.
        at: usize,
        /// How many bytes it covers.
        size: usize,
        /// How many bytes are mapped.
        len: usize,
    },
    /// Offset `at` is not a multiple of `align`, which an atomic of that size needs.
    Misaligned {
        /// Where the access starts.
        at: usize,
        /// The alignment it needs.
        align: usize,
    },
    /// A store, or an atomic, in a mapping made without `PROT_WRITE`.
    ReadOnly,
}

impl Display for Outside {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match *self {
            Outside::Range { at, size, len } => tr!(
                "{size} bytes at offset {at} are not inside the {len} bytes mapped",
                size,
                at,
                len
            ),
            Outside::Misaligned { at, align } => tr!(
                "offset {at} is not a multiple of {align}, as an atomic access needs",
                at,
                align
            ),
            Outside::ReadOnly => tr!("the mapping is read-only (PROT_READ)"),
        };
        f.write_str(&text)
    }
}

impl From<Outside> for Error {
    fn from(outside: Outside) -> Error {
        Error::bad_data(tr!("an access to the mapping"), outside.to_string())
    }
}

/// The sum of `bytes` as native-endian `u64` words (wrapping), as
/// [`Mapping::sum_words`] adds up a mapping in place; a tail shorter than a word is left
/// out. mmap-demo's `read-or-map` adds up what `read` copied with it.
pub fn sum_words(bytes: &[u8]) -> u64 {
    bytes
        .chunks_exact(8)
        .map(|w| u64::from_ne_bytes(w.try_into().unwrap_or_default()))
        .fold(0, u64::wrapping_add)
}

/// A field at an offset that was checked when the mapping was taken over (a header
/// field, once the mapping is known to hold the header). An `Outside` here is a bug in
/// the caller's own checks, which no other process can cause, so it panics.
pub fn inside<T>(field: std::result::Result<T, Outside>) -> T {
    match field {
        Ok(field) => field,
        Err(e) => unreachable!("a field outside a mapping checked to hold it: {e}"),
    }
}

/// An address as `mmap` returns it and strace prints it: `0x7f3a5c2e1000`.
#[derive(Debug, Clone, Copy)]
struct Address(*const u8);

impl Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:p}", self.0)
    }
}

impl Shown for Address {
    fn shown(&self) -> String {
        self.to_string()
    }
}

/// A mapping this process made, unmapped when dropped (or by [`Mapping::munmap`]).
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
    writable: bool,
    /// The object's descriptor, kept by a side that asks with `fstat` whether a peer has
    /// shrunk the object under the mapping ([`Mapping::check_size`]).
    fd: Option<OwnedFd>,
    /// How the pages are given back: `munmap`, or `shmdt` for a System V segment.
    undo: Undo,
}

impl Shown for Mapping {
    /// What `mmap` returns: the mapping's address.
    fn shown(&self) -> String {
        Address(self.base.as_ptr()).to_string()
    }
}

impl Mapping {
    // ANCHOR: map
    /// `mmap(NULL, len, prot, MAP_SHARED or MAP_PRIVATE, fd, 0)`: maps the first `len`
    /// bytes of the object `fd` refers to (a shared memory object, a file) at an address
    /// the kernel chooses. With MAP_SHARED, stores go to the object's own pages, which
    /// every process that maps it sees: that is what makes it shared. The descriptor can
    /// be closed afterwards; the mapping stays.
    pub fn map(
        n: &Narrator,
        fd: &impl AsFd,
        len: usize,
        prot: Prot,
        share: Share,
    ) -> Result<Mapping> {
        let raw = fd.as_fd().as_raw_fd();
        let flags = match share {
            Share::Shared => MapFlags::MAP_SHARED,
            Share::Private => MapFlags::MAP_PRIVATE,
        };
        n.call(
            format_args!("mmap(NULL, {len}, {prot}, {share}, {raw}, 0)"),
            || {
                let size = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
                // SAFETY: a new mapping at an address the kernel chooses (no MAP_FIXED)
                // overlaps no memory this program uses. The Mapping owns it until munmap.
                let base = unsafe { mman::mmap(None, size, prot.flags(), flags, fd, 0)? };
                Ok(Mapping::at(base.cast(), len, prot))
            },
        )
    }
    // ANCHOR_END: map

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_ANONYMOUS, -1, 0)`: zeroed
    /// memory with no name, shared with the children this process forks afterwards and
    /// with nobody else.
    pub fn anonymous(n: &Narrator, len: usize) -> Result<Mapping> {
        let prot = Prot::ReadWrite;
        n.call(
            format_args!("mmap(NULL, {len}, {prot}, MAP_SHARED|MAP_ANONYMOUS, -1, 0)"),
            || {
                let size = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
                // SAFETY: as in `map`; an anonymous mapping starts zero-filled.
                let base = unsafe {
                    mman::mmap_anonymous(None, size, prot.flags(), MapFlags::MAP_SHARED)?
                };
                Ok(Mapping::at(base.cast(), len, prot))
            },
        )
    }

    fn at(base: NonNull<u8>, len: usize, prot: Prot) -> Mapping {
        Mapping {
            base,
            len,
            writable: prot == Prot::ReadWrite,
            fd: None,
            undo: Undo::Munmap,
        }
    }

    /// Bytes mapped.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is mapped (never: `mmap` refuses a length of 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the mapping starts in this process, as `mmap` returned it.
    pub fn address(&self) -> *const u8 {
        self.base.as_ptr()
    }

    /// Keeps the object's descriptor open, for [`Mapping::check_size`].
    pub fn keep_descriptor(&mut self, fd: OwnedFd) {
        self.fd = Some(fd);
    }

    /// The object's descriptor, if it was kept.
    pub fn descriptor(&self) -> Option<&OwnedFd> {
        self.fd.as_ref()
    }

    /// Asks the object's size with `fstat` on the kept descriptor: an error if a peer
    /// has shrunk it below what is mapped, since touching the part that is gone would
    /// raise SIGBUS. Without a kept descriptor there is nothing to ask. `what` names the
    /// object for the error.
    pub fn check_size(&self, what: &str) -> Result<()> {
        match &self.fd {
            Some(fd) => fault::check_size(fd, what, self.len),
            None => Ok(()),
        }
    }

    /// Where `size` bytes at `at` start, if they are all inside the mapping.
    #[inline]
    fn span(&self, at: usize, size: usize) -> std::result::Result<*mut u8, Outside> {
        match at.checked_add(size) {
            Some(end) if end <= self.len => Ok(self.base.as_ptr().wrapping_add(at)),
            _ => Err(Outside::Range {
                at,
                size,
                len: self.len,
            }),
        }
    }

    /// Where a `T` at `at` starts, if it is inside, aligned, and the mapping writable.
    #[inline]
    fn place<T>(&self, at: usize) -> std::result::Result<NonNull<T>, Outside> {
        if !self.writable {
            return Err(Outside::ReadOnly);
        }
        let align = std::mem::align_of::<T>();
        let start = self.span(at, std::mem::size_of::<T>())?;
        if (start as usize) % align != 0 {
            return Err(Outside::Misaligned { at, align });
        }
        // `start` is inside a mapping whose base is not null (mmap never returns 0
        // without MAP_FIXED), so it is not null either.
        NonNull::new(start.cast::<T>()).ok_or(Outside::Misaligned { at, align })
    }

    /// Copies `out.len()` bytes at offset `at` out of the mapping into `out`.
    ///
    /// This is how a side reads what the other process wrote: once, into private memory,
    /// before anything interprets it. If the object was shrunk under the mapping, the
    /// copy raises SIGBUS (see [`crate::fault`]).
    #[inline]
    pub fn read(&self, at: usize, out: &mut [u8]) -> std::result::Result<(), Outside> {
        let from = self.span(at, out.len())?;
        // SAFETY: span checked that the bytes lie inside the mapping, which lives as long
        // as `self`; `out` is private memory, so the two do not overlap. The bytes are
        // plain u8 (every value is valid). A Mapping is neither Send nor Sync (it holds a
        // raw pointer), so no other thread of this process touches the bytes meanwhile.
        // The other process may store into them while they are copied only by breaking
        // the protocol (it owns a slot only while the reader does not); then the copy
        // holds some old and some new bytes, which the reader's checks (lengths, the
        // frame's checksum) refuse.
        unsafe { std::ptr::copy_nonoverlapping(from, out.as_mut_ptr(), out.len()) };
        Ok(())
    }

    /// Adds up the `len` bytes at `at` as native-endian `u64` words (wrapping), reading
    /// them where they are, with no copy into private memory: what a program that maps a
    /// file to read it does (mmap-demo's `read-or-map` times it against `read(2)`).
    /// `len` must be a multiple of 8 and `at` aligned to 8.
    pub fn sum_words(&self, at: usize, len: usize) -> std::result::Result<u64, Outside> {
        let from = self.span(at, len)?;
        if len % 8 != 0 || (from as usize) % 8 != 0 {
            return Err(Outside::Misaligned { at, align: 8 });
        }
        let mut sum = 0u64;
        for i in 0..len / 8 {
            // SAFETY: span checked that the `len` bytes lie inside the mapping, which
            // lives as long as `self`, and the word is aligned (checked above); every
            // bit pattern is a valid u64. As in `read`, a store by another process
            // during the loop can only make the sum wrong, never unsound for this one:
            // the value is a plain number that nothing trusts.
            sum = sum.wrapping_add(unsafe { from.cast::<u64>().add(i).read() });
        }
        Ok(sum)
    }

    /// Copies `bytes` into the mapping at offset `at`.
    #[inline]
    pub fn write(&self, at: usize, bytes: &[u8]) -> std::result::Result<(), Outside> {
        if !self.writable {
            return Err(Outside::ReadOnly);
        }
        let to = self.span(at, bytes.len())?;
        // SAFETY: span checked that the bytes lie inside the mapping, which is writable
        // (PROT_WRITE) and lives as long as `self`; `bytes` is private memory, so they do
        // not overlap. The only references the mapping hands out are to atomics, whose
        // contents may change behind a shared reference (they are UnsafeCells), and a
        // Mapping is neither Send nor Sync, so no other thread of this process accesses
        // the bytes while they are stored.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), to, bytes.len()) };
        Ok(())
    }

    /// [`Mapping::write`], narrated as the `memcpy(3)` it is: no system call, just the
    /// processor storing into pages the other process sees.
    #[inline]
    pub fn copy_in(&self, n: &Narrator, at: usize, bytes: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Outside::ReadOnly.into());
        }
        let to = Address(self.span(at, bytes.len())?.cast_const());
        // Checked above, so the copy itself cannot fail.
        n.call(format_args!("memcpy({to}, buf, {})", bytes.len()), || {
            self.write(at, bytes)
                .map(|()| to)
                .map_err(|_| Errno::EFAULT)
        })
        .map(drop)
    }

    /// [`Mapping::read`], narrated as the `memcpy(3)` it is.
    #[inline]
    pub fn copy_out(&self, n: &Narrator, at: usize, out: &mut [u8]) -> Result<()> {
        let from = Address(self.span(at, out.len())?.cast_const());
        let to = Address(out.as_ptr());
        // Checked above, so the copy itself cannot fail.
        n.call(format_args!("memcpy({to}, {from}, {})", out.len()), || {
            self.read(at, out).map(|()| to).map_err(|_| Errno::EFAULT)
        })
        .map(drop)
    }

    /// The `u64` at `at` as an atomic, which both processes may load and store.
    #[inline]
    pub fn u64_at(&self, at: usize) -> std::result::Result<&AtomicU64, Outside> {
        let place = self.place::<u64>(at)?;
        // SAFETY: place checked that the 8 bytes are inside the writable mapping and
        // aligned; AtomicU64 has the size and alignment of u64, and every bit pattern is
        // a valid u64. The reference lives no longer than `self`, which keeps the
        // mapping. The memory model asks that no non-atomic access race with it: in this
        // process, the field is reached only through atomics; the other process is
        // outside this program, and a peer that breaks the protocol can only make the
        // value wrong, which every reader checks.
        Ok(unsafe { AtomicU64::from_ptr(place.as_ptr()) })
    }

    /// The `u32` at `at` as an atomic.
    #[inline]
    pub fn u32_at(&self, at: usize) -> std::result::Result<&AtomicU32, Outside> {
        let place = self.place::<u32>(at)?;
        // SAFETY: as in u64_at, for 4 aligned bytes.
        Ok(unsafe { AtomicU32::from_ptr(place.as_ptr()) })
    }

    /// The `i32` at `at` (a process id) as an atomic.
    #[inline]
    pub fn i32_at(&self, at: usize) -> std::result::Result<&AtomicI32, Outside> {
        let place = self.place::<i32>(at)?;
        // SAFETY: as in u64_at, for 4 aligned bytes.
        Ok(unsafe { AtomicI32::from_ptr(place.as_ptr()) })
    }

    /// The byte at `at` as an atomic: touching one byte of a page, as `lazy` does.
    pub fn u8_at(&self, at: usize) -> std::result::Result<&AtomicU8, Outside> {
        let place = self.place::<u8>(at)?;
        // SAFETY: as in u64_at, for one byte.
        Ok(unsafe { AtomicU8::from_ptr(place.as_ptr()) })
    }

    /// Where an object of the C library that lives in the mapping starts (a `sem_t`
    /// with `pshared = 1`), checked to be inside, aligned, and writable. Using it is the
    /// caller's `unsafe` (an FFI call), which may rely on those three checks.
    pub fn ptr_at<T>(&self, at: usize) -> std::result::Result<NonNull<T>, Outside> {
        self.place::<T>(at)
    }

    /// `msync(addr, len, MS_SYNC)`: writes the changed pages of a file's mapping to the
    /// disk and returns when they are there. It is not what makes them visible to the
    /// other process: it sees them at once, in the same pages of the page cache.
    pub fn msync(&self, n: &Narrator) -> Result<()> {
        n.call(
            format_args!("msync({}, {}, MS_SYNC)", self.shown(), self.len),
            // SAFETY: the address and length are those of this live mapping.
            || unsafe { mman::msync(self.base.cast(), self.len, MsFlags::MS_SYNC) },
        )
    }

    /// `madvise(addr, len, advice)`: tells the kernel how the pages will be used.
    pub fn madvise(&self, n: &Narrator, advice: Advice) -> Result<()> {
        let flag = match advice {
            Advice::Normal => MmapAdvise::MADV_NORMAL,
            Advice::Random => MmapAdvise::MADV_RANDOM,
        };
        n.call(
            format_args!("madvise({}, {}, {advice})", self.shown(), self.len),
            // SAFETY: the address and length are those of this live mapping; these two
            // pieces of advice change only how pages are read in, never their contents.
            || unsafe { mman::madvise(self.base.cast(), self.len, flag) },
        )
    }

    /// `mincore(addr, len, vec)`: for each page of the mapping, whether it is in memory
    /// now (nix has no wrapper for it).
    pub fn mincore(&self, n: &Narrator) -> Result<Vec<bool>> {
        let page = page_size();
        let mut vec = vec![0u8; self.len.div_ceil(page)];
        n.call(
            format_args!("mincore({}, {}, vec)", self.shown(), self.len),
            || {
                // SAFETY: the address (page-aligned, as mmap returned it) and length are
                // those of this live mapping, and `vec` has the one byte per page of it
                // that mincore writes.
                Errno::result(unsafe {
                    libc::mincore(self.base.as_ptr().cast(), self.len, vec.as_mut_ptr())
                })
                .map(drop)
            },
        )?;
        Ok(vec.iter().map(|byte| byte & 1 == 1).collect())
    }

    /// `munmap(addr, len)`: removes the mapping from this process. The object itself
    /// stays until it is unlinked and nobody maps or opens it any more.
    pub fn munmap(self, n: &Narrator) -> Result<()> {
        // Drop must not unmap a second time: the mapping is taken apart by hand here.
        let mut this = std::mem::ManuallyDrop::new(self);
        let (base, len) = (this.base, this.len);
        // The descriptor, if kept, is closed after the mapping is gone, as Drop would.
        let fd = this.fd.take();
        if this.undo == Undo::Shmdt {
            let result = n.call(
                format_args!("shmdt({})", Address(base.as_ptr())),
                // SAFETY: base is the address shmat returned for the attachment `this`
                // owned; `self` is consumed, so nothing can reach the pages afterwards.
                || Errno::result(unsafe { libc::shmdt(base.as_ptr().cast()) }).map(drop),
            );
            drop(fd);
            return result;
        }
        let result = n.call(
            format_args!("munmap({}, {len})", Address(base.as_ptr())),
            // SAFETY: base and len describe the mapping `this` owned; `self` is consumed,
            // so nothing can reach the pages afterwards (the atomics and pointers it
            // handed out borrowed it).
            || unsafe { mman::munmap(base.cast(), len) },
        );
        drop(fd);
        result
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.undo == Undo::Shmdt {
            // SAFETY: base is the address shmat returned for the attachment this value
            // owns; nothing borrows from it any more once it is dropped.
            let _ = unsafe { libc::shmdt(self.base.as_ptr().cast()) };
            return;
        }
        // SAFETY: base and len describe the mapping this value owns; nothing borrows from
        // it any more once it is dropped. A failure would leave the pages mapped until
        // the process ends, which harms nothing.
        let _ = unsafe { mman::munmap(self.base.cast(), self.len) };
    }
}

/// How a [`Mapping`]'s pages are given back: what made them says what undoes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Undo {
    /// `munmap(2)`, for what `mmap(2)` mapped.
    Munmap,
    /// `shmdt(2)`, for a System V segment `shmat(2)` attached.
    Shmdt,
}

impl Mapping {
    // ANCHOR: shmat
    /// `shmat(shmid, NULL, 0)` (or `SHM_RDONLY` for [`Prot::Read`]): attaches the System
    /// V segment `shmid` at an address the kernel chooses, and gives its first `len`
    /// bytes the same checked access as a mapping made by `mmap`. A segment cannot be
    /// resized, so `len` is checked once, against its size (`shmctl(IPC_STAT)`, not
    /// narrated: the caller narrates the one it makes itself), and no access can ever
    /// reach past it. [`Mapping::munmap`] (or dropping it) detaches it with `shmdt`.
    pub fn shmat(n: &Narrator, shmid: i32, len: usize, prot: Prot) -> Result<Mapping> {
        let (flags, shown) = match prot {
            Prot::Read => (libc::SHM_RDONLY, "SHM_RDONLY"),
            Prot::ReadWrite => (0, "0"),
        };
        n.call(format_args!("shmat({shmid}, NULL, {shown})"), || {
            // SAFETY: shmid_ds is plain data, for which all zero bytes are a valid value.
            let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
            // SAFETY: `ds` is valid for the kernel to write a shmid_ds into.
            Errno::result(unsafe { libc::shmctl(shmid, libc::IPC_STAT, &mut ds) })?;
            if len == 0 || len > ds.shm_segsz {
                return Err(Errno::EINVAL);
            }
            // SAFETY: without an address (NULL) the kernel chooses where to attach, in
            // no memory this program uses; the Mapping owns the attachment until shmdt.
            let base = unsafe { libc::shmat(shmid, std::ptr::null(), flags) };
            if base as isize == -1 {
                return Err(Errno::last());
            }
            let base = NonNull::new(base.cast::<u8>()).ok_or(Errno::EINVAL)?;
            let mut map = Mapping::at(base, len, prot);
            map.undo = Undo::Shmdt;
            Ok(map)
        })
    }
    // ANCHOR_END: shmat
}

/// The size of a page (`sysconf(_SC_PAGESIZE)`), 4096 if it cannot be asked.
pub fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|size| usize::try_from(size).ok())
        .unwrap_or(4096)
}

// ---------------------------------------------------------------------------------------
// Waiting for the other side of a mapping, where no system call waits for us.

/// How often a side that waits on the other looks at the clock to check that the other
/// side still lives and the object still has its size.
pub const CHECK_EVERY: Duration = Duration::from_millis(200);
/// How long a side that waits for its producer to finish setting the object up (its
/// size, its header) waits before it calls the object broken.
pub const SETUP_TIME: Duration = Duration::from_secs(5);
/// Between two looks for an object that does not exist yet or is not set up yet.
const POLL_OBJECT: Duration = Duration::from_millis(20);

// ANCHOR: wait_for_object
/// Waits until something has the name `path` (`lstat(2)` every 20 ms, not narrated),
/// saying once, if it must wait at all, that it waits for a producer to create `shown`.
/// A consumer started before its producer waits here instead of failing.
pub fn wait_for_object(n: &Narrator, path: &Path, shown: &str) {
    let mut said = false;
    while nix::sys::stat::lstat(path) == Err(Errno::ENOENT) {
        if !said {
            n.announce(tr!(
                "waiting for a producer to create {shown} (Ctrl-C to stop)",
                shown
            ));
            said = true;
        }
        std::thread::sleep(POLL_OBJECT);
    }
}
// ANCHOR_END: wait_for_object

/// Tries to attach to an object that exists, until its producer has set it up: each
/// `attempt(patient)` opens, checks and maps it, and returns `Ok(None)` while the object
/// is not ready yet (a size of 0, no magic). After [`SETUP_TIME`], `patient` is false:
/// the attempt must then return the object or the error that says why it is not ready.
/// The first few attempts are narrated; the rest go quietly, every 20 ms.
pub fn attach<T>(n: &Narrator, mut attempt: impl FnMut(bool) -> Result<Option<T>>) -> Result<T> {
    let started = Instant::now();
    for _ in n.first_few(
        0u64..,
        tr!("its producer has not finished setting it up: trying again every 20 ms, without narration"),
    ) {
        let patient = started.elapsed() < SETUP_TIME;
        match attempt(patient)? {
            Some(found) => return Ok(found),
            None if patient => std::thread::sleep(POLL_OBJECT),
            None => break,
        }
    }
    Err(Error::bad_data(
        tr!("attach to the shared object"),
        tr!("its producer did not finish setting it up in time"),
    ))
}

/// How a side that waits by looking at shared memory spends the time between looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looking {
    /// Look again at once, keeping a CPU busy: the fastest answer, at the price of a
    /// whole CPU for as long as the wait lasts.
    Spin,
    /// Look again at once a thousand times, then sleep this long between looks.
    ThenSleep(Duration),
}

/// Looks this many times without sleeping before [`Looking::ThenSleep`] sleeps.
const SPINS_BEFORE_SLEEP: u32 = 1000;

// ANCHOR: spin_until
/// Waits until `ready()` is true by looking at memory the other process writes: no
/// system call waits here, so nothing in the kernel knows that this process waits.
/// The wait is announced once (`what()`, such as "spin until head > 3", made only then),
/// and `--step` stops there, only if the first look finds it must wait at all.
///
/// Every [`CHECK_EVERY`], `check()` asks whether the wait can still end: the other
/// process lives, the object still has its size. If not, one more look decides: the
/// other side may have done its part just before it exited.
pub fn spin_until(
    n: &Narrator,
    what: impl FnOnce() -> String,
    looking: Looking,
    mut ready: impl FnMut() -> bool,
    mut check: impl FnMut() -> Result<()>,
) -> Result<()> {
    if ready() {
        return Ok(());
    }
    // The sentence is made only for a reader: a silent side (the bench) that waits on
    // every message would otherwise format and translate one each time.
    if !n.is_silent() {
        let what = what();
        if !n.step(&what) {
            n.say(format_args!("{what} ..."));
        }
    }
    // Reading the clock costs more than a look: do it only every 128 looks, and not at
    // all for a wait that ends before (most of them, between two busy processes).
    let mut last_check: Option<Instant> = None;
    let mut looks = 0u32;
    while !ready() {
        looks = looks.wrapping_add(1);
        match looking {
            Looking::ThenSleep(pause) if looks > SPINS_BEFORE_SLEEP => std::thread::sleep(pause),
            _ => std::hint::spin_loop(),
        }
        if looks % 128 != 0 {
            continue;
        }
        let now = Instant::now();
        match last_check {
            Some(then) if now.duration_since(then) >= CHECK_EVERY => {}
            Some(_) => continue,
            None => {
                last_check = Some(now);
                continue;
            }
        }
        last_check = Some(now);
        if let Err(e) = check() {
            return if ready() { Ok(()) } else { Err(e) };
        }
    }
    Ok(())
}
// ANCHOR_END: spin_until

/// Whether the `role` process `pid` (0: not known yet) still lives: a side that waits on
/// shared memory cannot be told by the kernel that the other side is gone, so it asks.
pub fn peer_alive(role: &str, pid: i32) -> Result<()> {
    if pid != 0 && !process::is_alive(pid) {
        return Err(process::gone(role, pid));
    }
    Ok(())
}

/// `N` bytes at `at` of a header copied out of a mapping, or zeros where the copy is too
/// short (a parser checks the copy's length first; this only keeps it from panicking).
pub fn bytes_at<const N: usize>(header: &[u8], at: usize) -> [u8; N] {
    let mut word = [0u8; N];
    if let Some(bytes) = at.checked_add(N).and_then(|end| header.get(at..end)) {
        word.copy_from_slice(bytes);
    }
    word
}

/// The other side's pid, as a header field gives it: 0 until that side attaches, then the
/// first pid above 0 seen, kept. A later write (a second consumer, or a 0 written back)
/// does not stop this side from watching the process it has.
#[derive(Debug, Default)]
pub struct FirstPid(std::cell::Cell<i32>);

impl FirstPid {
    /// The kept pid, or the one `field` holds now if none was kept yet.
    pub fn seen(&self, field: &AtomicI32) -> i32 {
        if self.0.get() == 0 {
            let pid = field.load(std::sync::atomic::Ordering::Acquire);
            if pid > 0 {
                self.0.set(pid);
            }
        }
        self.0.get()
    }
}

/// Whether what a killed producer left may be removed, from the start of its header
/// (read with `pread`, not mapped, so that a shrunk object cannot raise SIGBUS): it must
/// begin with `magic`, which says it is `demo`'s, and the producer pid at `pid_at` must
/// not be a running process. Returns that pid; otherwise an error about `what`, with a
/// hint that names `rm`, the command that removes it if it is the user's anyway.
pub fn leftover_producer(
    header: &[u8],
    magic: &[u8; 8],
    pid_at: usize,
    (demo, what, rm): (&str, &str, &str),
) -> Result<i32> {
    if header.len() < pid_at + 4 || header[..magic.len()] != magic[..] {
        let magic = String::from_utf8_lossy(magic);
        return Err(Error::bad_data(
            what,
            tr!(
                "it does not start with the magic \"{magic}\", so nothing says it is {demo}'s",
                magic,
                demo
            ),
        )
        .hint(tr!(
            "clean removes only what {demo} made; if it is yours, `{rm}` removes it",
            demo,
            rm
        )));
    }
    let producer = i32::from_ne_bytes(bytes_at(header, pid_at));
    if producer > 0 && process::is_alive(producer) {
        return Err(Error::bad_data(
            what,
            tr!("its producer (pid {producer}) is still running", producer),
        )
        .hint(tr!(
            "stop that producer (Ctrl-C): it removes what it made itself"
        )));
    }
    Ok(producer)
}

/// Says why a leftover whose header names `producer` may go: that process is gone, or
/// the pid is no process at all.
pub fn say_leftover(n: &Narrator, producer: i32) {
    if producer > 0 {
        crate::say!(
            n,
            "its producer (pid {producer}) is gone: a leftover",
            producer
        );
    } else {
        crate::say!(
            n,
            "its header names producer pid {producer}, which is no process: it was damaged",
            producer
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn quiet() -> Narrator {
        Narrator::silent("test")
    }

    /// A scratch file of `len` bytes, removed when the test ends.
    struct Scratch(std::path::PathBuf, std::fs::File);

    impl Scratch {
        fn new(name: &str, len: u64) -> Scratch {
            let path = std::env::temp_dir()
                .join(format!("ipc-demos-mapping-{}-{name}", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .unwrap();
            file.set_len(len).unwrap();
            Scratch(path, file)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn bytes_and_atomics_outside_the_mapping_are_refused_before_any_access() {
        let f = Scratch::new("bounds", 4096);
        let map = Mapping::map(&quiet(), &f.1, 100, Prot::ReadWrite, Share::Shared).unwrap();
        assert_eq!(
            map.write(96, b"12345"),
            Err(Outside::Range {
                at: 96,
                size: 5,
                len: 100
            })
        );
        assert!(
            map.read(usize::MAX, &mut [0; 2]).is_err(),
            "an offset that overflows"
        );
        assert!(map.u64_at(96).is_err(), "8 bytes at 96 end past 100");
        assert_eq!(
            map.u64_at(4).unwrap_err(),
            Outside::Misaligned { at: 4, align: 8 }
        );
        map.u64_at(8).unwrap().store(7, Ordering::Release);
        map.write(0, b"abcd").unwrap();
        let mut out = [0u8; 4];
        map.read(0, &mut out).unwrap();
        assert_eq!(&out, b"abcd");
        assert_eq!(map.u64_at(8).unwrap().load(Ordering::Acquire), 7);
        let err = Error::from(map.u32_at(98).unwrap_err()).to_string();
        assert!(
            err.contains("4 bytes at offset 98 are not inside the 100 bytes mapped"),
            "{err}"
        );
    }

    #[test]
    fn a_read_only_mapping_sees_the_file_and_refuses_stores_and_atomics() {
        let f = Scratch::new("read-only", 4096);
        nix::sys::uio::pwrite(&f.1, b"seen", 0).unwrap();
        let map = Mapping::map(&quiet(), &f.1, 4096, Prot::Read, Share::Shared).unwrap();
        let mut out = [0u8; 4];
        map.read(0, &mut out).unwrap();
        assert_eq!(&out, b"seen");
        assert_eq!(map.write(0, b"x"), Err(Outside::ReadOnly));
        assert_eq!(map.u64_at(0).unwrap_err(), Outside::ReadOnly);
        assert_eq!(map.ptr_at::<u32>(0).unwrap_err(), Outside::ReadOnly);
    }

    #[test]
    fn shared_stores_reach_the_file_and_private_ones_do_not() {
        let f = Scratch::new("share", 4096);
        let n = quiet();
        let shared = Mapping::map(&n, &f.1, 4096, Prot::ReadWrite, Share::Shared).unwrap();
        let private = Mapping::map(&n, &f.1, 4096, Prot::ReadWrite, Share::Private).unwrap();
        shared.write(0, b"shared").unwrap();
        shared.msync(&n).unwrap();
        private.write(100, b"private").unwrap();
        let mut disk = [0u8; 107];
        nix::sys::uio::pread(&f.1, &mut disk, 0).unwrap();
        assert_eq!(&disk[..6], b"shared");
        assert_eq!(&disk[100..], &[0u8; 7]);
        shared.munmap(&n).unwrap();
        private.munmap(&n).unwrap();
    }

    #[test]
    fn the_narrated_calls_name_the_real_arguments() {
        let f = Scratch::new("narrated", 8192);
        let n = quiet();
        let raw = f.1.as_raw_fd();
        let err = Mapping::map(&n, &f.1, 0, Prot::Read, Share::Private).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "mmap(NULL, 0, PROT_READ, MAP_PRIVATE, {raw}, 0) failed: EINVAL (Invalid argument)"
            )
        );
        let map = Mapping::map(&n, &f.1, 8192, Prot::ReadWrite, Share::Shared).unwrap();
        assert!(map.shown().starts_with("0x"), "{}", map.shown());
        map.madvise(&n, Advice::Random).unwrap();
        assert_eq!(map.mincore(&n).unwrap().len(), 8192 / page_size());
        map.u8_at(4096).unwrap().store(1, Ordering::Relaxed);
        assert!(map.mincore(&n).unwrap()[4096 / page_size()]);
        let anon = Mapping::anonymous(&n, 4096).unwrap();
        assert_eq!(anon.u64_at(0).unwrap().load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_kept_descriptor_tells_when_a_peer_shrank_the_object() {
        let f = Scratch::new("shrunk", 4096);
        let n = quiet();
        let mut map = Mapping::map(&n, &f.1, 4096, Prot::Read, Share::Shared).unwrap();
        map.keep_descriptor(f.1.try_clone().unwrap().into());
        assert!(map.check_size("the scratch file").is_ok());
        f.1.set_len(100).unwrap();
        let err = map.check_size("the scratch file").unwrap_err().to_string();
        assert!(
            err.contains("shrank the shared object to 100 bytes"),
            "{err}"
        );
    }

    #[test]
    fn a_spin_wait_ends_when_ready_or_when_the_check_fails_and_it_is_still_not() {
        let n = quiet();
        let mut looks = 0;
        spin_until(
            &n,
            || "spin".into(),
            Looking::Spin,
            || {
                looks += 1;
                looks > 10
            },
            || Ok(()),
        )
        .unwrap();
        let err = spin_until(
            &n,
            || "spin".into(),
            Looking::ThenSleep(Duration::from_millis(1)),
            || false,
            || Err(Error::bad_data("peer", "gone")),
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "peer failed: gone");
        assert!(peer_alive("peer", std::process::id() as i32).is_ok());
        assert!(peer_alive("peer", 0).is_ok(), "0: not known yet");
        assert_eq!(
            peer_alive("peer", i32::MAX).unwrap_err().errno(),
            Some(Errno::ESRCH)
        );
    }
}
