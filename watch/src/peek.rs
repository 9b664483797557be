//! Looking without touching: the few system calls that let the watcher see inside an
//! object without becoming one of its users. All of ipc-watch's `unsafe` is here.
//!
//! - [`pipe_fill`]: how many bytes wait in a pipe or FIFO, through a *duplicate* of a
//!   descriptor another process already has (`pidfd_getfd(2)`), asked with `FIONREAD`
//!   and `F_GETPIPE_SZ`, and closed at once. A duplicate is not a new end: the kernel
//!   counts a pipe's readers and writers by opens, not by descriptors, so end-of-file
//!   and EPIPE come exactly as without the watcher (see the chapter for the one limit).
//! - [`Mapping`]: a read-only (`PROT_READ`) shared mapping of a file or shared memory
//!   object, read only through [`Mapping::snapshot`], which copies bytes out with
//!   `process_vm_readv(2)` on this process: a page that is gone (a peer shrank the file)
//!   makes that call fail with EFAULT instead of killing the watcher with SIGBUS.
//! - [`Mapping::resident_groups`]: `mincore(2)`, which pages of a file are in memory.

use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

use nix::errno::Errno;
use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};

// ANCHOR: borrow_fd
/// `pidfd_open(pid, 0)` then `pidfd_getfd(pidfd, fd, 0)`: a duplicate, in this process, of
/// descriptor `fd` of process `pid`. It needs the right to ptrace `pid` (the same user,
/// and Yama's ptrace_scope allowing it, or root).
pub fn borrow_fd(pid: i32, fd: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new descriptor.
    let pidfd = Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: the kernel just returned `pidfd` as a new descriptor nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as i32) };
    // SAFETY: pidfd_getfd takes two descriptors and flags by value; the new descriptor it
    // returns has close-on-exec set (pidfd_getfd(2)).
    let dup =
        Errno::result(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) })?;
    // SAFETY: as above, a new descriptor that only this OwnedFd owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup as i32) })
}

/// Bytes waiting in the pipe behind `fd` (`ioctl(FIONREAD)`, which pipe(7) documents) and
/// its capacity (`fcntl(F_GETPIPE_SZ)`). Both work on either end and move no data.
pub fn pipe_fill(fd: &impl AsFd) -> nix::Result<(u64, u64)> {
    let mut waiting: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer, which points to `waiting`.
    Errno::result(unsafe { libc::ioctl(fd.as_fd().as_raw_fd(), libc::FIONREAD, &mut waiting) })?;
    let capacity = nix::fcntl::fcntl(fd.as_fd(), nix::fcntl::FcntlArg::F_GETPIPE_SZ)?;
    Ok((
        u64::try_from(waiting).unwrap_or(0),
        u64::try_from(capacity).unwrap_or(0),
    ))
}
// ANCHOR_END: borrow_fd

/// A read-only shared mapping, unmapped when dropped. Nothing hands out a reference into
/// it: bytes leave it only as copies ([`Mapping::snapshot`]).
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<libc::c_void>,
    len: usize,
}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0)`. PROT_READ: the watcher cannot
    /// write into the object even by mistake (a store would fault). MAP_SHARED: it sees
    /// the object's own pages as the demos change them, not a private copy.
    pub fn read_only(fd: &impl AsFd, len: usize) -> nix::Result<Mapping> {
        let size = NonZeroUsize::new(len).ok_or(Errno::EINVAL)?;
        // SAFETY: a new mapping at an address the kernel chooses aliases no Rust object;
        // it is read-only, and this Mapping unmaps it in Drop.
        let base = unsafe {
            mmap(
                None,
                size,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                fd.as_fd(),
                0,
            )?
        };
        Ok(Mapping { base, len })
    }

    // ANCHOR: snapshot
    /// Copies `out.len()` bytes from offset `at` of the mapping into `out`, with
    /// `process_vm_readv(2)` from this very process. Each byte is read once; a page the
    /// object no longer has (it was truncated under the mapping) is EFAULT here, where a
    /// plain load would be SIGBUS.
    pub fn snapshot(&self, at: usize, out: &mut [u8]) -> nix::Result<()> {
        let end = at.checked_add(out.len()).ok_or(Errno::EINVAL)?;
        if end > self.len {
            return Err(Errno::EINVAL);
        }
        let local = libc::iovec {
            iov_base: out.as_mut_ptr().cast(),
            iov_len: out.len(),
        };
        let remote = libc::iovec {
            // The address is only passed to the kernel, which checks it; no Rust
            // reference to the mapping is made.
            iov_base: self.base.as_ptr().cast::<u8>().wrapping_add(at).cast(),
            iov_len: out.len(),
        };
        // SAFETY: `local` describes `out`, writable for its length; `remote` describes a
        // range inside the mapping (checked above), which the kernel reads as another
        // process's memory would be read, failing with EFAULT on a page it cannot read.
        let got = Errno::result(unsafe {
            libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0)
        })?;
        if got as usize != out.len() {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }
    // ANCHOR_END: snapshot

    /// `mincore(2)` over the first `pages` pages of the mapping (for a file: whether each
    /// is in the page cache, whoever brought it there; no page is touched), summed into groups of
    /// `per` consecutive pages (the cells of a view): for each group, how many of its
    /// pages are in memory, and how many pages it has. mincore writes one byte a page, so
    /// it is called on windows of at most [`MINCORE_WINDOW`] pages: the memory this takes
    /// stays the same for a file of a terabyte (an earlier version made one vector as
    /// long as the file's page count, gigabytes for a large sparse file).
    pub fn resident_groups(&self, pages: usize, per: usize) -> nix::Result<Vec<(u64, u64)>> {
        let page = page_size();
        let pages = pages.min(self.len.div_ceil(page));
        let per = per.max(1);
        let mut groups = vec![(0u64, 0u64); pages.div_ceil(per)];
        let mut window = vec![0u8; MINCORE_WINDOW.min(pages)];
        let mut first = 0;
        while first < pages {
            let count = window.len().min(pages - first);
            let bytes = (count * page).min(self.len - first * page);
            // SAFETY: `first` pages in is inside this live mapping (first < pages, which
            // is at most its page count), page-aligned since the mapping is; `bytes` ends
            // at or before the mapping's end; `window` has at least one byte for each of
            // the `count` pages, which is what mincore writes.
            Errno::result(unsafe {
                libc::mincore(
                    self.base.as_ptr().cast::<u8>().add(first * page).cast(),
                    bytes,
                    window.as_mut_ptr(),
                )
            })?;
            for (i, byte) in window[..count].iter().enumerate() {
                let group = &mut groups[(first + i) / per];
                group.0 += u64::from(byte & 1);
                group.1 += 1;
            }
            first += count;
        }
        Ok(groups)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` describe the mapping this value owns, and nothing
        // borrows from it.
        let _ = unsafe { munmap(self.base, self.len) };
    }
}

/// The most pages one `mincore` call looks at in [`Mapping::resident_groups`]: a
/// mebibyte of result, for 4 GiB of mapping.
pub const MINCORE_WINDOW: usize = 1 << 20;

/// The size of a page (sysconf(_SC_PAGESIZE)).
pub fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(4096)
}

/// `sem_getvalue(3)` of a process-shared semaphore copied out of a snapshot: the value
/// is in the bytes, and sem_getvalue only reads them.
pub fn sem_value(bytes: &[u8]) -> Option<i32> {
    if bytes.len() < std::mem::size_of::<libc::sem_t>() {
        return None;
    }
    // SAFETY: sem_t is plain data for which any bytes are a value sem_getvalue may read;
    // the copy is aligned by being a local of its own type.
    let mut sem: libc::sem_t = unsafe { std::mem::zeroed() };
    // SAFETY: `sem` is size_of::<sem_t>() bytes and `bytes` at least that many; the two
    // do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(
            bytes.as_ptr(),
            (&raw mut sem).cast::<u8>(),
            std::mem::size_of::<libc::sem_t>(),
        )
    };
    let mut value = 0;
    // SAFETY: `sem` and `value` are valid for the call; sem_getvalue writes only `value`.
    let ok = unsafe { libc::sem_getvalue(&mut sem, &mut value) } == 0;
    ok.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_of_a_pipe_end_counts_the_bytes_and_adds_no_end() {
        let (r, w) = nix::unistd::pipe().unwrap();
        nix::unistd::write(&w, b"hello").unwrap();
        let dup = borrow_fd(std::process::id() as i32, w.as_raw_fd()).unwrap();
        assert_eq!(pipe_fill(&dup).unwrap().0, 5);
        drop(dup);
        // The write end's only open is still the one `w` holds: closing it is end-of-file.
        drop(w);
        let mut buf = [0u8; 16];
        assert_eq!(nix::unistd::read(&r, &mut buf).unwrap(), 5);
        assert_eq!(nix::unistd::read(&r, &mut buf).unwrap(), 0);
    }

    #[test]
    fn a_page_past_the_end_of_a_shrunk_file_is_efault_not_sigbus() {
        let path = std::env::temp_dir().join(format!("ipc-watch-unit-{}", std::process::id()));
        let file = std::fs::File::create_new(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let page = page_size();
        file.set_len(2 * page as u64).unwrap();
        let map = Mapping::read_only(&file, 2 * page).unwrap();
        let mut out = [1u8; 8];
        map.snapshot(page, &mut out).unwrap();
        assert_eq!(out, [0; 8]);
        file.set_len(page as u64).unwrap();
        assert_eq!(map.snapshot(page, &mut out), Err(Errno::EFAULT));
        assert_eq!(map.snapshot(2 * page, &mut out), Err(Errno::EINVAL));
        let groups = map.resident_groups(usize::MAX, 1).unwrap();
        assert_eq!(groups.len(), 2);
        assert!(groups.iter().all(|g| g.1 == 1));
    }
}
