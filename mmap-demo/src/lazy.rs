//! Note 001's claim that a mapping loads only the parts of a file that are used: a large
//! sparse file, mapped whole, with a few bytes touched.

use std::sync::atomic::Ordering;

use common::fault::{self, Remove};
use common::mapping::{self, Advice, Mapping, Prot, Share};
use common::narrate::print_summary;
use common::owner::{self, Kind};
use common::{Error, Narrator, Result, cleanup, say, tr};
use nix::fcntl::OFlag;

use crate::PROGRAM;
use crate::shared::create_file;
use crate::sys;

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

/// Page faults of this process so far, minor and major.
fn faults(n: &Narrator) -> Result<u64> {
    let usage = sys::getrusage(n)?;
    Ok((usage.minor_page_faults() + usage.major_page_faults()) as u64)
}

// ANCHOR: lazy
/// Maps a sparse file of `size` bytes and writes one byte in each of `touch` pages spread
/// over it, twice: with the default advice, and with `madvise(MADV_RANDOM)`. Only touched
/// pages (and, by default, the kernel's readahead around them) are brought in. Prints
/// the summary line.
pub fn lazy(n: &Narrator, path: &std::path::Path, size: u64, touch: u64) -> Result<Lazy> {
    let page = mapping::page_size() as u64;
    let pages = size / page;
    if pages < touch.max(1) {
        return Err(Error::usage(tr!(
            "--size {size}: {pages} whole pages of {page} bytes, fewer than the {touch} to touch; \
             give at least {least} bytes",
            size,
            pages,
            page,
            touch,
            least = touch.max(1) * page
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
    // Ctrl-C removes the file of the moment (the guard below is pending while it lives).
    cleanup::exit_on_interrupt(n)?;
    for advice in [Advice::Normal, Advice::Random] {
        let (fd, _remove) = create_file(n, path, OFlag::O_RDWR)?;
        // A store into a page past the end of a file someone shrank is SIGBUS: one line,
        // and this file removed, not a crash.
        fault::exit_on_sigbus(
            PROGRAM,
            &path.display().to_string(),
            Remove::File(path.to_path_buf()),
        )?;
        say!(
            n,
            "a sparse file: ftruncate sets its length and writes no block"
        );
        common::sys::ftruncate(n, &fd, size)?;
        let map = Mapping::map(n, &fd, size as usize, Prot::ReadWrite, Share::Shared)?;
        map.madvise(n, advice)?;
        let before = faults(n)?;
        for i in 0..touch {
            let offset = (i * (pages / touch.max(1))) * page;
            map.u8_at(offset as usize)?.store(1, Ordering::Relaxed);
        }
        let taken = faults(n)? - before;
        let resident = map.mincore(n)?.into_iter().filter(|&r| r).count() as u64;
        let st = owner::fstat_ours(&fd, Kind::File)?;
        result.disk = st.st_blocks as u64 * 512;
        say!(
            n,
            "{advice}: touched {touch} of {pages} pages: {taken} page faults, {resident} pages \
             resident (mincore), {disk} bytes on disk",
            advice,
            touch,
            pages,
            taken,
            resident,
            disk = result.disk
        );
        map.munmap(n)?;
        if advice == Advice::Random {
            result.faults = taken;
            result.resident_random = resident;
        } else {
            result.resident_normal = resident;
        }
    }
    say!(
        n,
        "a fault on a page the page cache does not have yet counts as major, even for a hole \
         that needs no disk read"
    );
    print_summary(format_args!(
        "summary: mapped={} touched={} faults={} resident_normal={} resident_random={} disk_bytes={}",
        result.mapped,
        result.touched,
        result.faults,
        result.resident_normal,
        result.resident_random,
        result.disk
    ))?;
    Ok(result)
}
// ANCHOR_END: lazy
