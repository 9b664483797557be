//! Note 000's claim that mmap is cheaper than read and write, measured: one file read
//! whole with `pread(2)` into a private buffer, and mapped with `mmap(2)` and read where it
//! lies, in two cases: a large file read once, and a small file read many times.
//!
//! Neither way always wins. `read` copies every byte from the page cache into the
//! buffer, one system call per buffer. A mapping copies nothing, but the kernel must fill
//! in page-table entries on the first touch of each page (a page fault, which maps up to
//! 16 neighbouring pages of the page cache at once, `fault_around_bytes`), and `munmap`
//! must take them down again. For a large file read once, the copy is the larger cost;
//! for a small file read many times, setting up and tearing down a mapping costs more
//! than copying a page. The lesson measures both here and says which won.

use std::path::Path;
use std::time::Instant;

use common::fault::{self, Remove};
use common::mapping::{Mapping, Prot, Share, page_size, sum_words};
use common::narrate::print_summary;
use common::sys::HintOn;
use common::{Error, Narrator, Result, cleanup, say, tr};
use nix::errno::Errno;
use nix::fcntl::OFlag;

use crate::PROGRAM;
use crate::shared::create_file;
use crate::sys;

/// Bytes each `pread` asks for when the large file is read: a common buffer size, which
/// stays in the CPU's cache while it is added up.
const BUFFER: usize = 64 << 10;
/// Each way is timed this many times, alternately, and the median is kept: one pass can
/// be slowed by anything else the machine does.
const PASSES: usize = 5;

/// What [`read_or_map`] measured, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadOrMap {
    /// Reading the whole file with `pread`, `BUFFER` bytes at a time (median pass).
    pub read_ns: f64,
    /// Mapping the whole file, adding it up in place, unmapping it (median pass).
    pub map_ns: f64,
    /// Page faults of one pass of the mapping way.
    pub faults: u64,
    /// Reading the file's first page with one `pread` (per repetition).
    pub small_read_ns: f64,
    /// Mapping the first page, adding it up, unmapping it (per repetition).
    pub small_map_ns: f64,
}

/// The median of `times`.
fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times.get(times.len() / 2).copied().unwrap_or(0.0)
}

/// Page faults of this process so far, minor and major.
fn faults(n: &Narrator) -> Result<u64> {
    let usage = sys::getrusage(n)?;
    Ok((usage.minor_page_faults() + usage.major_page_faults()) as u64)
}

/// The reading way: `pread` the first `len` bytes of the file, `buf.len()` bytes at a
/// time, adding each buffer up. Returns the sum.
fn by_read(n: &Narrator, fd: &impl std::os::fd::AsFd, len: usize, buf: &mut [u8]) -> Result<u64> {
    let mut sum = 0u64;
    let mut offset = 0;
    let rest = tr!("the other preads without narration");
    for _ in n.first_few(0u64.., rest) {
        if offset >= len {
            break;
        }
        let want = buf.len().min(len - offset);
        let got = common::sys::pread(n, fd, &mut buf[..want], offset as u64)?;
        if got == 0 {
            return Err(Error::bad_data(
                "pread",
                tr!(
                    "the file ended at {offset} bytes, before {len}",
                    offset,
                    len
                ),
            )
            .hint(tr!(
                "another process shortened the file (ftruncate) while the lesson read it; run it again"
            )));
        }
        sum = sum.wrapping_add(sum_words(&buf[..got]));
        offset += got;
    }
    Ok(sum)
}

// ANCHOR: by_map
/// The mapping way: `mmap` the first `len` bytes of the file, add them up where they lie,
/// `munmap`. Returns the sum.
fn by_map(n: &Narrator, fd: &impl std::os::fd::AsFd, len: usize) -> Result<u64> {
    // A file shrunk since it was written would make the loads past its new end SIGBUS:
    // ask its size first (the SIGBUS handler still catches a shrink after this look).
    fault::check_size(fd, &tr!("the file"), len).map_err(|e| {
        e.hint(tr!(
            "another process shortened the file (ftruncate) while the lesson read it; run it again"
        ))
    })?;
    let map = Mapping::map(n, fd, len, Prot::Read, Share::Shared)?;
    let sum = map.sum_words(0, len)?;
    map.munmap(n)?;
    Ok(sum)
}
// ANCHOR_END: by_map

/// Creates a file of `size` bytes (a multiple of the page size) in `path`, reads it both
/// ways [`PASSES`] times, then its first page both ways `reps` times; removes the file
/// and prints the summary line.
pub fn read_or_map(n: &Narrator, path: &Path, size: usize, reps: u64) -> Result<ReadOrMap> {
    let page = page_size();
    if size % page != 0 {
        return Err(Error::usage(tr!(
            "--size {size}: give a whole number of pages of {page} bytes",
            size,
            page
        )));
    }
    let (fd, _remove) = create_file(n, path, OFlag::O_RDWR).hint_on(
        Errno::EEXIST,
        tr!(
            "something is at that path already, perhaps the file of a run that was killed; read-or-map writes only into a file it creates: remove it (rm {path}) if it is yours, or use another --path",
            path = path.display()
        ),
    )?;
    // The file is this lesson's own: Ctrl-C removes it, and so does the SIGBUS of a
    // mapping whose file someone shrank (only this user or root can).
    let shown = path.display().to_string();
    fault::exit_on_sigbus(PROGRAM, &shown, Remove::File(path.to_path_buf()))?;
    cleanup::exit_on_interrupt(n)?;
    // The file's bytes: each 8-byte word is its own index times an odd constant, so
    // that no two pages are alike, and a sum that matches means the same bytes were read.
    say!(
        n,
        "write {size} bytes into a new file; its pages stay in the page cache, so both ways below read memory, not the disk",
        size
    );
    let mut block = vec![0u8; BUFFER];
    let mut written = 0;
    let rest = tr!("the other writes without narration");
    for round in n.first_few(0u64.., rest) {
        if written >= size {
            break;
        }
        for (i, word) in block.chunks_exact_mut(8).enumerate() {
            let index = round * (BUFFER / 8) as u64 + i as u64;
            word.copy_from_slice(&index.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_ne_bytes());
        }
        let want = BUFFER.min(size - written);
        written += common::sys::write(n, &fd, &block[..want])?;
    }

    // One pass of each way before the clock runs: the first touch of a buffer or a
    // page-table page costs what later passes do not.
    let mut buf = vec![0u8; BUFFER];
    let by_read_sum = by_read(n, &fd, size, &mut buf)?;
    say!(
        n,
        "the same bytes again, by mapping the file instead of reading it"
    );
    let by_map_sum = by_map(n, &fd, size)?;
    if by_read_sum != by_map_sum {
        return Err(Error::bad_data(
            "read or map",
            tr!(
                "read and mmap found different bytes (sums {read} and {map})",
                read = format!("{by_read_sum:#x}"),
                map = format!("{by_map_sum:#x}")
            ),
        ));
    }
    say!(
        n,
        "both ways add up to {sum}; now {passes} timed passes of each, without narration",
        sum = format!("{by_read_sum:#x}"),
        passes = PASSES
    );

    let quiet = Narrator::silent("timed");
    let (mut reads, mut maps) = (Vec::new(), Vec::new());
    let mut pass_faults = 0;
    for _ in 0..PASSES {
        let start = Instant::now();
        by_read(&quiet, &fd, size, &mut buf)?;
        reads.push(start.elapsed().as_nanos() as f64);
        let before = faults(&quiet)?;
        let start = Instant::now();
        by_map(&quiet, &fd, size)?;
        maps.push(start.elapsed().as_nanos() as f64);
        pass_faults = faults(&quiet)? - before;
    }
    let (read_ns, map_ns) = (median(reads), median(maps));
    let ms = |ns: f64| format!("{:.2}", ns / 1e6);
    say!(
        n,
        "a {size}-byte file read once: pread {read} ms, mmap {map} ms ({faults} page faults: one for each group of pages the kernel maps at once)",
        size,
        read = ms(read_ns),
        map = ms(map_ns),
        faults = pass_faults
    );

    // The small case: one page, read again and again, as a program reads a small
    // configuration or status file each time it needs it.
    let mut one = vec![0u8; page];
    let start = Instant::now();
    for _ in 0..reps {
        by_read(&quiet, &fd, page, &mut one)?;
    }
    let small_read_ns = start.elapsed().as_nanos() as f64 / reps as f64;
    let start = Instant::now();
    for _ in 0..reps {
        by_map(&quiet, &fd, page)?;
    }
    let small_map_ns = start.elapsed().as_nanos() as f64 / reps as f64;
    say!(
        n,
        "one {page}-byte page, {reps} times: pread {read} ns, mmap and munmap {map} ns each time",
        page,
        reps,
        read = format!("{small_read_ns:.0}"),
        map = format!("{small_map_ns:.0}")
    );

    let faster = |read: f64, map: f64| if map < read { "mmap" } else { "pread" };
    say!(
        n,
        "here, {large} was faster for the large file read once, and {small} for the small one read many times",
        large = faster(read_ns, map_ns),
        small = faster(small_read_ns, small_map_ns)
    );
    say!(
        n,
        "read copies every byte once more; a mapping copies nothing, but pays for page faults, page tables and munmap: worth it for large files, or files read in place many times while mapped"
    );
    print_summary(format_args!(
        "summary: size={size} read_ns={read_ns:.0} mmap_ns={map_ns:.0} faults={pass_faults} \
         small_read_ns={small_read_ns:.0} small_mmap_ns={small_map_ns:.0} same_bytes=yes"
    ))?;
    Ok(ReadOrMap {
        read_ns,
        map_ns,
        faults: pass_faults,
        small_read_ns,
        small_map_ns,
    })
}
