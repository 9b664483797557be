//! Memory the two sides of an ALPC channel share or reach: sections mapped with `mmap`,
//! and another process's memory read and written with `process_vm_readv`/`writev`. The
//! only way the crate touches such memory is through [`Mapping`]'s bounds-checked copies.
//!
//! See also: mmap(2), process_vm_readv(2), ptrace(2) ("Ptrace access mode checking").

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, AsRawFd};
use std::ptr::NonNull;

use common::narrate::Shown;
use common::{Error, Narrator, Result, tr};
use nix::errno::Errno;
use nix::sys::mman::{self, MapFlags, ProtFlags};
use nix::sys::uio::RemoteIoVec;
use nix::unistd::Pid;

/// A mapping made by [`mmap_shared`] or [`mmap_anonymous`], unmapped when dropped.
///
/// Its bytes may be changed at any time by another process (a shared section) or by the
/// kernel on another process's behalf (`process_vm_writev`), so the program never holds a
/// Rust reference into it: bytes go in and out by copies with checked bounds
/// ([`Mapping::read`], [`Mapping::write`]), and what is read is copied once before it is
/// looked at.
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<c_void>,
    len: usize,
    writable: bool,
}

impl Shown for Mapping {
    fn shown(&self) -> String {
        format!("{:#x}", self.addr())
    }
}

impl Mapping {
    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never: `mmap` refuses a length of 0).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its address in this process, as another process names it in `process_vm_readv`.
    pub fn addr(&self) -> u64 {
        self.base.as_ptr() as usize as u64
    }

    fn check(&self, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(Error::bad_data(
                tr!("copy at offset {offset}, length {len}", offset, len),
                tr!("it ends outside the {size}-byte mapping", size = self.len),
            )),
        }
    }

    /// Copies `len` bytes at `offset` out of the mapping (a bounds error if they do not
    /// lie inside it).
    pub fn read(&self, offset: usize, len: usize) -> Result<Vec<u8>> {
        self.check(offset, len)?;
        let mut out = vec![0u8; len];
        // SAFETY: offset + len <= self.len (checked above), so the source lies inside the
        // mapping, which stays mapped while `self` lives; `out` is a new private buffer, so
        // the two do not overlap. Another process may write the source at the same time; the
        // copy then holds a mix of old and new bytes, which every caller checks as
        // untrusted data before use.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.as_ptr().cast::<u8>().add(offset),
                out.as_mut_ptr(),
                len,
            );
        }
        Ok(out)
    }

    /// Copies `data` into the mapping at `offset` (a bounds error if it does not fit, or
    /// if the mapping is read-only).
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::bad_data(
                tr!("copy into a mapping"),
                tr!("it is mapped read-only"),
            ));
        }
        self.check(offset, data.len())?;
        // SAFETY: offset + data.len() <= self.len (checked above) and the mapping is
        // writable and stays mapped while `self` lives; `data` is private memory of this
        // process, not inside the mapping, so the regions do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.base.as_ptr().cast::<u8>().add(offset),
                data.len(),
            );
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: base and len are exactly what mmap returned and was given; no Rust
        // reference into the mapping exists (all access is by copies), so nothing can
        // use it after this.
        let _ = unsafe { mman::munmap(self.base, self.len) };
    }
}

fn prot_shown(writable: bool) -> &'static str {
    if writable {
        "PROT_READ|PROT_WRITE"
    } else {
        "PROT_READ"
    }
}

/// `mmap(2)` of the file behind `fd` (a memfd section), `MAP_SHARED`: what one process
/// writes there, the other sees, with no copy through the kernel.
pub fn mmap_shared(n: &Narrator, fd: &impl AsFd, len: usize, writable: bool) -> Result<Mapping> {
    let raw = fd.as_fd().as_raw_fd();
    let size = NonZeroUsize::new(len)
        .ok_or_else(|| Error::bad_data(tr!("mmap of fd {raw}", raw), tr!("the length is 0")))?;
    let prot = if writable {
        ProtFlags::PROT_READ | ProtFlags::PROT_WRITE
    } else {
        ProtFlags::PROT_READ
    };
    n.call(
        format_args!(
            "mmap(NULL, {len}, {}, MAP_SHARED, {raw}, 0)",
            prot_shown(writable)
        ),
        || {
            // SAFETY: a new mapping at an address the kernel chooses overlaps no Rust
            // object. The callers seal the memfd against shrinking (F_SEAL_SHRINK) or
            // check that the peer did, so no access inside `len` can meet SIGBUS.
            let base = unsafe { mman::mmap(None, size, prot, MapFlags::MAP_SHARED, fd, 0)? };
            Ok(Mapping {
                base,
                len,
                writable,
            })
        },
    )
}

/// `mmap(2)` of fresh private memory (`MAP_PRIVATE|MAP_ANONYMOUS`), zero-filled: the
/// client's own buffers, which the ALPC server reads or writes with `process_vm_readv` /
/// `process_vm_writev`.
pub fn mmap_anonymous(n: &Narrator, len: usize) -> Result<Mapping> {
    let size = NonZeroUsize::new(len)
        .ok_or_else(|| Error::bad_data(tr!("mmap of anonymous memory"), tr!("the length is 0")))?;
    n.call(
        format_args!("mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)"),
        || {
            // SAFETY: a new anonymous mapping at an address the kernel chooses overlaps no
            // Rust object, and anonymous memory cannot be truncated under us.
            let base = unsafe {
                mman::mmap_anonymous(
                    None,
                    size,
                    ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                    MapFlags::MAP_PRIVATE,
                )?
            };
            Ok(Mapping {
                base,
                len,
                writable: true,
            })
        },
    )
}

/// `process_vm_readv(2)`: copies `out.len()` bytes at address `remote` in process `pid`
/// into `out`, with no shared memory and no help from that process. The kernel checks
/// ptrace access (same user and not made undumpable, or CAP_SYS_PTRACE; and Yama's
/// `ptrace_scope`). Returns the bytes copied, which may be fewer than asked if the range
/// runs into unmapped memory.
pub fn process_vm_readv(n: &Narrator, pid: Pid, out: &mut [u8], remote: u64) -> Result<usize> {
    let len = out.len();
    let base = usize::try_from(remote).map_err(|_| Errno::EFAULT);
    n.call_blocking(
        format_args!(
            "process_vm_readv({pid}, [{{buf, {len}}}], 1, [{{{remote:#x}, {len}}}], 1, 0)"
        ),
        || {
            let remote = [RemoteIoVec { base: base?, len }];
            let mut local = [std::io::IoSliceMut::new(out)];
            nix::sys::uio::process_vm_readv(pid, &mut local, &remote)
        },
    )
}

/// `process_vm_writev(2)`: copies `data` to address `remote` in process `pid` (the same
/// permission check as [`process_vm_readv`]). Returns the bytes copied.
pub fn process_vm_writev(n: &Narrator, pid: Pid, data: &[u8], remote: u64) -> Result<usize> {
    let len = data.len();
    let base = usize::try_from(remote).map_err(|_| Errno::EFAULT);
    n.call_blocking(
        format_args!(
            "process_vm_writev({pid}, [{{buf, {len}}}], 1, [{{{remote:#x}, {len}}}], 1, 0)"
        ),
        || {
            let remote = [RemoteIoVec { base: base?, len }];
            let local = [std::io::IoSlice::new(data)];
            nix::sys::uio::process_vm_writev(pid, &local, &remote)
        },
    )
}
