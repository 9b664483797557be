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
//! One lesson a module, each a listing of the calls it teaches:
//!
//! - `shared` and `messages`: messages through a mapped file ([`exchange`],
//!   [`producer_role`], [`consumer_role`]), and `msync`, what it does and does not
//!   guarantee; [`layout`] is the file's header, which `ipc-watch` reads too;
//! - `private`: [`private`], MAP_PRIVATE, copy-on-write: the writer's changes stay its own;
//! - `lazy`: [`lazy`], a large sparse file mapped, a few pages touched: only those load;
//! - `resize`: [`resize`], the file shrunk under the mapping: a touch past the end is SIGBUS;
//! - `read_or_map`: [`read_or_map`], one file read with `pread` and by mapping it, timed
//!   both ways, large and small: when each wins (note 000's "mmap is cheaper");
//! - `file_poll`: [`file_poll`], plain-file IPC, polled, next to a pipe, to see why it is
//!   not real-time;
//! - `clean`: [`clean`], which removes the message file a killed producer left, and
//!   nothing else.
//!
//! The mapping calls are `common::mapping`'s (`mmap(2)` itself, through nix), so the
//! narration shows the real call. The file and its contents are not trusted: a consumer
//! opens it with `O_NOFOLLOW` and refuses another user's file, copies the header out
//! once and checks it, asks the file's size with `fstat` before each access window, and
//! turns the SIGBUS of a file shrunk in between into a clear error ([`common::fault`]).
//! Every lesson creates its files with `O_EXCL` and removes only the file it created.
//!
//! Usage: `cargo run -p mmap-demo -- --help`. See also: mmap(2), msync(2), mincore(2),
//! getrusage(2), and TLPI chapter 49.

mod clean;
mod file_poll;
pub mod layout;
mod lazy;
mod messages;
mod private;
mod read_or_map;
mod resize;
pub mod shared;
pub mod sys;

pub use clean::clean;
pub use file_poll::{Delays, file_poll};
pub use layout::MAX_FILE;
pub use lazy::{Lazy, lazy};
pub use messages::{consume, consumer_role, exchange, produce, producer_role};
pub use private::private;
pub use read_or_map::{ReadOrMap, read_or_map};
pub use resize::resize;

use std::path::PathBuf;

use common::{Error, Result, tr};

/// The program's name, which starts its error lines.
const PROGRAM: &str = "mmap-demo";
/// Each side asks the file's size with `fstat` before every this many messages (and
/// while it waits for the other side): an access window. A system call per message would
/// undo what mapping the file is for; a shrinking inside a window is caught as SIGBUS.
pub const SIZE_WINDOW: u64 = 1024;

/// The message file's name in the per-user private folder, unless `--path` says otherwise.
pub const MESSAGE_FILE: &str = "mmap-file";
/// `private`'s file.
pub const PRIVATE_FILE: &str = "mmap-private";
/// `lazy`'s sparse file.
pub const SPARSE_FILE: &str = "mmap-sparse";
/// `resize`'s file.
pub const RESIZE_FILE: &str = "mmap-resize";
/// The file `read-or-map` reads both ways, in the private folder.
pub const READ_FILE: &str = "mmap-read";
/// `file-poll`'s file.
pub const POLL_FILE: &str = "file-poll";

/// The path a lesson uses: `path` if given (`--path`), else `file` in the per-user
/// private folder (common::paths).
pub fn path_or_default(path: Option<PathBuf>, file: &str) -> Result<PathBuf> {
    match path {
        Some(path) => Ok(path),
        None => Ok(common::paths::private_dir()?.join(file)),
    }
}

/// Refuses `count` messages of `size` payload bytes that would make a file over
/// [`MAX_FILE`] (a usage error).
pub fn check_messages(count: u64, size: usize) -> Result<()> {
    let bytes = (size + common::message::OVERHEAD) as u64 * count;
    if bytes > MAX_FILE {
        return Err(Error::usage(tr!(
            "{count} messages of {size} bytes make a file over 1 GiB",
            count,
            size
        )));
    }
    Ok(())
}
