//! Shared memory: shm-demo's ring, mmap-demo's message file, and the pages of
//! mmap-demo's `lazy` file that are in memory.
//!
//! Each look opens the object read-only, checks that it is a regular file of this user
//! (`fstat`), maps the part it needs with PROT_READ, copies that part out once
//! ([`crate::peek::Mapping::snapshot`]), and only then reads the copy: the other
//! processes can change the memory at any moment, and a field read twice could be two
//! different values. Every number from the copy is checked before it is used.

use std::os::fd::OwnedFd;
use std::path::Path;

use common::owner::{Kind, fstat_ours};
use mmap_demo::layout;
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sys::mman::shm_open;
use nix::sys::stat::Mode;
use shm_demo::region;

use crate::peek::{self, Mapping};
use crate::procfs;
use crate::view::{Cell, Part, Screen, Unit, squeeze};

/// The widest row of cells drawn one cell per slot, message or group of pages.
pub const ROW: usize = 64;
/// The most pages of a file `lazy` looks at on each refresh: 64 GiB of 4 KiB pages.
pub const LAZY_PAGES: usize = 1 << 24;

/// What a look at a shm-demo region found, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ring {
    slots: u32,
    slot_size: u32,
    spin: bool,
    /// shm-demo's fast ring (`--ring fast`): no semaphores, a futex word per side.
    fast: bool,
    producer: i32,
    consumer: i32,
    count: u64,
    head: u64,
    tail: u64,
    full: Option<i32>,
    empty: Option<i32>,
}

/// Reads the header copy `h` (`region::HEADER` bytes of an object of `len` bytes) with
/// shm-demo's own checks ([`region::parse_header`], what a consumer checks before it
/// uses a ring), and the ring counters on top.
fn parse_ring(h: &[u8], len: usize) -> Result<Ring, String> {
    let header = region::parse_header(h, len).map_err(|why| match why {
        region::Corrupt::BadMagic(magic) => common::tr!(
            "not a shm-demo ring: it starts with {magic}",
            magic = format!("{magic:02x?}")
        ),
        why => why.to_string(),
    })?;
    let region::Header {
        shape,
        head,
        tail,
        count,
        ..
    } = header;
    let slots = shape.slots;
    if tail > head || head - tail > u64::from(slots) || head > count {
        return Err(common::tr!(
            "head = {head}, tail = {tail} with {slots} slots and {count} messages: inconsistent",
            head,
            tail,
            slots,
            count
        ));
    }
    let sem = |at: usize| peek::sem_value(&h[at..at + region::SEM_SIZE]);
    Ok(Ring {
        slots,
        slot_size: shape.slot_size,
        spin: header.wait == region::Wait::Spin,
        fast: shape.ring == region::Ring::Fast,
        producer: header.producer,
        consumer: header.consumer,
        count,
        head,
        tail,
        full: sem(region::FULL_OFFSET),
        empty: sem(region::EMPTY_OFFSET),
    })
}

/// The checked size of what `fd` refers to, if it is a regular file of this user.
fn our_file_len(fd: &OwnedFd) -> Result<usize, String> {
    let st = fstat_ours(fd, Kind::File).map_err(|e| e.to_string())?;
    usize::try_from(st.st_size).map_err(|_| "a negative size".to_string())
}

/// Maps the first `want` bytes of `fd` (an object of `len` bytes) read-only and copies
/// them out.
fn copy_head(fd: &OwnedFd, len: usize, want: usize) -> Result<Vec<u8>, String> {
    if len < want {
        return Err(common::tr!(
            "{len} bytes, less than the {want}-byte header",
            len,
            want
        ));
    }
    let map = Mapping::read_only(fd, want).map_err(|e| {
        format!(
            "mmap(NULL, {want}, PROT_READ, MAP_SHARED) = -1 {}",
            common::error::errno_name(e)
        )
    })?;
    let mut copy = vec![0u8; want];
    map.snapshot(0, &mut copy).map_err(|e| {
        common::tr!(
            "the object shrank under the mapping ({errno})",
            errno = common::error::errno_name(e)
        )
    })?;
    Ok(copy)
}

/// shm-demo's ring in the shared memory object `name`.
pub fn look_shm(name: &str) -> Screen {
    let mut screen = Screen::new(common::tr!("shared memory ring {name}", name));
    // Look before opening: a FIFO planted at /dev/shm/NAME would block a read-only open,
    // or wake a writer waiting on it; neither may happen to something we only watch.
    if let Err(e) = common::owner::lstat_ours(&common::owner::shm_path(name), Kind::File) {
        screen.push(Part::Missing(e.to_string()));
        return screen;
    }
    // O_RDONLY: the watcher could not write into the object even if it tried.
    // O_NONBLOCK: should the name become a FIFO after the look, the open still returns.
    let fd = match shm_open(name, OFlag::O_RDONLY | OFlag::O_NONBLOCK, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => {
            screen.push(Part::Missing(common::tr!(
                "no such object (yet): waiting for a producer (ls -l /dev/shm)"
            )));
            return screen;
        }
        Err(errno) => {
            screen.push(Part::Missing(format!(
                "shm_open({name:?}, O_RDONLY) = -1 {}",
                common::error::errno_name(errno)
            )));
            return screen;
        }
    };
    // A header copied while the two sides move can pair a new head with an old tail:
    // take another copy before calling it inconsistent.
    let mut result = Err(String::new());
    for _ in 0..3 {
        result = our_file_len(&fd)
            .and_then(|len| copy_head(&fd, len, region::HEADER).map(|h| (h, len)))
            .and_then(|(h, len)| parse_ring(&h, len));
        if result.is_ok() {
            break;
        }
    }
    match result {
        Ok(ring) => show_ring(&mut screen, &ring),
        Err(why) => screen.push(Part::Missing(why)),
    }
    screen
}

fn show_ring(screen: &mut Screen, r: &Ring) {
    screen.title = common::tr!(
        "{title}: {slots} slots of {size} bytes, waiting by {how}",
        title = screen.title.clone(),
        slots = r.slots,
        size = r.slot_size,
        how = match (r.spin, r.fast) {
            (true, _) => "spinning",
            (false, true) => "futex",
            (false, false) => "semaphores",
        }
    );
    let slots = u64::from(r.slots);
    let used = r.head - r.tail;
    screen.gauge(common::tr!("slots full"), used, slots, Unit::Slots);
    let mut cells = vec![Cell::Empty; r.slots as usize];
    for seq in r.tail..r.head {
        cells[(seq % slots) as usize] = Cell::Full;
    }
    let marks = if cells.len() <= ROW {
        vec![
            ((r.head % slots) as usize, common::tr!("head")),
            ((r.tail % slots) as usize, common::tr!("tail")),
        ]
    } else {
        Vec::new()
    };
    screen.push(Part::Cells {
        label: common::tr!("slots"),
        cells: squeeze(&cells, ROW),
        marks,
    });
    screen.line(
        common::tr!("head, tail"),
        common::tr!(
            "head = {head} (published), tail = {tail} (taken), of {count} messages",
            head = r.head,
            tail = r.tail,
            count = r.count
        ),
    );
    if let (false, Some(full), Some(empty)) = (r.fast, r.full, r.empty) {
        screen.line(
            common::tr!("semaphores"),
            common::tr!("full = {full}, empty = {empty}", full, empty),
        );
    }
    let waits_for = if used == slots {
        common::tr!("the ring is full: the producer waits for a free slot")
    } else if used == 0 && r.head < r.count {
        common::tr!("the ring is empty: the consumer waits for a message")
    } else if r.head == r.count && used == 0 {
        common::tr!("all messages sent and taken")
    } else {
        common::tr!("both sides can go on")
    };
    screen.line(common::tr!("who waits"), waits_for);
    for (label, pid) in [
        (common::tr!("producer"), r.producer),
        (common::tr!("consumer"), r.consumer),
    ] {
        screen.line(label, process_line(pid));
    }
}

/// `pid 4242 (shm-demo), waits in futex: ...`, or "not attached yet" for pid 0.
fn process_line(pid: i32) -> String {
    if pid <= 0 {
        common::tr!("not attached yet")
    } else {
        procfs::who_and_what(pid)
    }
}

/// What a look at an mmap-demo message file found, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MessageFile {
    count: u64,
    frame_len: u64,
    written: u64,
    taken: u64,
    producer: i32,
    consumer: i32,
}

/// Reads the header copy `h` of a message file of `len` bytes with mmap-demo's own
/// checks ([`layout::parse_header`]), and the counters on top.
fn parse_message_file(h: &[u8], len: usize) -> Result<MessageFile, String> {
    let f = layout::parse_header(h, len as u64).map_err(|why| match why {
        layout::Problem::NotReady => why.to_string(),
        layout::Problem::Bad(_) if h[..8] != layout::MAGIC => common::tr!(
            "not an mmap-demo message file: it starts with {magic}",
            magic = format!("{:02x?}", &h[..8])
        ),
        layout::Problem::Bad(why) => why,
    })?;
    if f.taken > f.written || f.written > f.count || f.slots != f.count {
        return Err(common::tr!(
            "{count} messages of {frame} bytes, written {written}, taken {taken}, in {len} bytes: inconsistent",
            count = f.count,
            frame = f.frame_len,
            written = f.written,
            taken = f.taken,
            len
        ));
    }
    Ok(MessageFile {
        count: f.count,
        frame_len: f.frame_len,
        written: f.written,
        taken: f.taken,
        producer: f.producer,
        consumer: f.consumer,
    })
}

/// Opens `path` read-only without following a symbolic link, and checks it is a
/// regular file of this user. `Ok(None)`: there is nothing at `path`.
fn open_our_file(path: &Path) -> Result<Option<(OwnedFd, usize)>, String> {
    // Look before opening: even a non-blocking read-only open of a FIFO wakes a writer
    // waiting in its open(), which would then write into a pipe nobody reads. Only a
    // regular file of ours is opened (fstat checks it again once it is open).
    match common::owner::lstat_ours(path, Kind::File) {
        Ok(None) => return Ok(None),
        Ok(Some(_)) => {}
        Err(e) => return Err(e.to_string()),
    }
    match open(
        path,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    ) {
        Ok(fd) => {
            let len = our_file_len(&fd)?;
            Ok(Some((fd, len)))
        }
        Err(Errno::ENOENT) => Ok(None),
        Err(Errno::ELOOP) => Err(common::tr!(
            "{path} is a symbolic link: never followed",
            path = path.display()
        )),
        Err(errno) => Err(format!(
            "open({:?}, O_RDONLY|O_NOFOLLOW) = -1 {}",
            path.display(),
            common::error::errno_name(errno)
        )),
    }
}

/// mmap-demo's message file at `path`.
pub fn look_mmap(path: &Path) -> Screen {
    let mut screen = Screen::new(common::tr!(
        "mapped message file {path}",
        path = path.display()
    ));
    let (fd, len) = match open_our_file(path) {
        Ok(Some(found)) => found,
        Ok(None) => {
            screen.push(Part::Missing(common::tr!(
                "no file at this path (yet): waiting for `mmap-demo producer`"
            )));
            return screen;
        }
        Err(why) => {
            screen.push(Part::Missing(why));
            return screen;
        }
    };
    let mut result = Err(String::new());
    for _ in 0..3 {
        result = copy_head(&fd, len, layout::HEADER).and_then(|h| parse_message_file(&h, len));
        if result.is_ok() {
            break;
        }
    }
    let f = match result {
        Ok(f) => f,
        Err(why) => {
            screen.push(Part::Missing(why));
            return screen;
        }
    };
    screen.gauge(common::tr!("written"), f.written, f.count, Unit::Messages);
    screen.gauge(common::tr!("taken"), f.taken, f.count, Unit::Messages);
    let cells: Vec<Cell> = (0..f.count)
        .map(|seq| {
            if seq < f.taken {
                Cell::Done
            } else if seq < f.written {
                Cell::Full
            } else {
                Cell::Empty
            }
        })
        .collect();
    let marks = if cells.len() <= ROW {
        vec![
            (f.written as usize, common::tr!("written")),
            (f.taken as usize, common::tr!("taken")),
        ]
    } else {
        Vec::new()
    };
    screen.push(Part::Cells {
        label: common::tr!("messages"),
        cells: squeeze(&cells, ROW),
        marks,
    });
    screen.line(
        common::tr!("frames"),
        common::tr!(
            "{count} of {len} bytes after a {header}-byte header",
            count = f.count,
            len = f.frame_len,
            header = layout::HEADER
        ),
    );
    for (label, pid) in [
        (common::tr!("producer"), f.producer),
        (common::tr!("consumer"), f.consumer),
    ] {
        screen.line(label, process_line(pid));
    }
    screen
}

/// The pages of the file at `path` (mmap-demo's `lazy` file) that are in memory.
pub fn look_lazy(path: &Path) -> Screen {
    let mut screen = Screen::new(common::tr!(
        "pages in memory of {path}",
        path = path.display()
    ));
    let (fd, len) = match open_our_file(path) {
        Ok(Some(found)) => found,
        Ok(None) => {
            screen.push(Part::Missing(common::tr!(
                "no file at this path (yet): waiting for `mmap-demo lazy --step`"
            )));
            return screen;
        }
        Err(why) => {
            screen.push(Part::Missing(why));
            return screen;
        }
    };
    if len == 0 {
        screen.push(Part::Missing(common::tr!(
            "the file is empty (yet): waiting for its ftruncate"
        )));
        return screen;
    }
    // The view has ROW * 4 cells; each shows a group of pages. A file larger than
    // LAZY_PAGES pages is looked at only that far, and the view says so: each refresh is
    // one mincore per page looked at, which for a sparse file of terabytes would take
    // seconds.
    let pages = len.div_ceil(peek::page_size());
    let looked = pages.min(LAZY_PAGES);
    let per = looked.div_ceil(ROW * 4).max(1);
    let groups = Mapping::read_only(&fd, len).and_then(|map| map.resident_groups(looked, per));
    let groups = match groups {
        Ok(g) => g,
        Err(errno) => {
            screen.push(Part::Missing(format!(
                "mincore = -1 {}",
                common::error::errno_name(errno)
            )));
            return screen;
        }
    };
    let count: u64 = groups.iter().map(|g| g.0).sum();
    screen.gauge(
        common::tr!("pages in memory (mincore)"),
        count,
        looked as u64,
        Unit::Pages,
    );
    if looked < pages {
        screen.line(
            common::tr!("looked at"),
            common::tr!(
                "the first {looked} of {pages} pages: a larger file is not looked at page by page on every refresh",
                looked,
                pages
            ),
        );
    }
    let cells: Vec<Cell> = groups
        .iter()
        .map(|&(resident, of)| {
            if resident == 0 {
                Cell::Empty
            } else if resident == of {
                Cell::Full
            } else {
                Cell::Done
            }
        })
        .collect();
    for (row, chunk) in cells.chunks(ROW).enumerate() {
        screen.push(Part::Cells {
            label: if row == 0 {
                common::tr!("map ({per} pages a cell)", per)
            } else {
                String::new()
            },
            cells: chunk.to_vec(),
            marks: Vec::new(),
        });
    }
    if let Ok(st) = nix::sys::stat::fstat(&fd) {
        screen.line(
            common::tr!("on disk"),
            common::tr!(
                "{disk} bytes of {len} (st_blocks x 512: a sparse file)",
                disk = st.st_blocks * 512,
                len
            ),
        );
    }
    screen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        let mut h = vec![0u8; region::HEADER];
        let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
        put(region::MAGIC_OFFSET, &region::MAGIC);
        put(region::VERSION_OFFSET, &region::VERSION.to_ne_bytes());
        put(region::SLOT_SIZE_OFFSET, &88u32.to_ne_bytes());
        put(region::SLOTS_OFFSET, &4u32.to_ne_bytes());
        put(region::PRODUCER_OFFSET, &4242i32.to_ne_bytes());
        put(region::COUNT_OFFSET, &10u64.to_ne_bytes());
        put(region::HEAD_OFFSET, &5u64.to_ne_bytes());
        put(region::TAIL_OFFSET, &2u64.to_ne_bytes());
        h
    }

    #[test]
    fn a_ring_header_is_read_and_every_number_checked() {
        let len = region::HEADER + 4 * 88;
        let ring = parse_ring(&header(), len).unwrap();
        assert_eq!(
            (ring.slots, ring.head, ring.tail, ring.count),
            (4, 5, 2, 10)
        );
        let mut s = Screen::new("t");
        show_ring(&mut s, &ring);
        assert!(
            s.plain().contains("slots: [#.##] head=1 tail=2"),
            "{}",
            s.plain()
        );
        // Too small an object for the shape it claims.
        assert!(parse_ring(&header(), len - 1).is_err());
        // A head more than a ring ahead of the tail.
        let mut h = header();
        h[region::HEAD_OFFSET..region::HEAD_OFFSET + 8].copy_from_slice(&7u64.to_ne_bytes());
        assert!(parse_ring(&h, len).unwrap_err().contains("inconsistent"));
        // Not ready, and not ours.
        assert!(parse_ring(&vec![0; region::HEADER], len).is_err());
        let mut h = header();
        h[0] = b'X';
        assert!(
            parse_ring(&h, len)
                .unwrap_err()
                .contains("not a shm-demo ring")
        );
    }

    #[test]
    fn a_message_file_header_must_fill_the_file_exactly() {
        let mut h = vec![0u8; layout::HEADER];
        let mut put = |at: usize, value: u64| h[at..at + 8].copy_from_slice(&value.to_ne_bytes());
        put(layout::COUNT_AT, 3);
        put(layout::SLOTS_AT, 3);
        put(layout::FRAME_LEN_AT, 80);
        put(layout::WRITTEN_AT, 2);
        put(layout::TAKEN_AT, 1);
        h[..8].copy_from_slice(&layout::MAGIC);
        h[layout::PRODUCER_AT..layout::PRODUCER_AT + 4].copy_from_slice(&4242i32.to_ne_bytes());
        let f = parse_message_file(&h, layout::HEADER + 240).unwrap();
        assert_eq!((f.written, f.taken), (2, 1));
        assert!(parse_message_file(&h, layout::HEADER + 241).is_err());
        h[layout::TAKEN_AT..layout::TAKEN_AT + 8].copy_from_slice(&3u64.to_ne_bytes());
        assert!(parse_message_file(&h, layout::HEADER + 240).is_err());
        h[0] = b'X';
        assert!(
            parse_message_file(&h, layout::HEADER + 240)
                .unwrap_err()
                .contains("not an mmap-demo message file")
        );
    }
}
