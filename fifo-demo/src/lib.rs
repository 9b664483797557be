//! fifo-demo: a FIFO, or named pipe: a pipe with a name in the file system.
//!
//! Follows `000_5e93fa56600d397d.txt`, "2. Named PIPE(FIFO)"; `001_ffa78007200462ad.txt`,
//! "(2) FIFO(named pipe)"; and `003_5ebb38e0b36eb300.txt`, "3.7.4.2 지명 파이프".
//! `mkfifo(3)` puts a special file (type `p` in `ls -l`) in a folder; any process that may
//! open that path can then use the pipe behind it, so the two sides need no common
//! parent. The data still goes through a buffer in the kernel, never through the disk.
//!
//! One lesson per module, each a function the command line (`main.rs`) runs:
//!
//! - [`meet`]: how the two sides meet: [`make_or_find`] (`mkfifo`), [`open_end`] (an
//!   `open` that waits for the other side), [`claim`] (one producer or server per FIFO);
//! - [`exchange`](mod@exchange): both roles in one terminal ([`exchange()`]), each role
//!   in a terminal of its own ([`producer`], [`consumer`]), and their raw modes, to pair
//!   with `echo` and `cat`;
//! - [`server`](mod@server) and [`client`](mod@client): full duplex with a well-known
//!   request FIFO and one reply FIFO per client (TLPI's sequence-number server);
//! - [`half_duplex`](mod@half_duplex): one FIFO opened O_RDWR by both sides carries data
//!   either way, one direction at a time, if they take turns;
//! - [`writers`](mod@writers): several writers on one FIFO; writes of at most PIPE_BUF
//!   bytes never interleave;
//! - [`clean`](mod@clean): removes FIFOs that killed runs left behind.
//!
//! The system calls are narrated one statement each, through `common::sys` and, for the
//! one only this demo makes, [`sys`].
//!
//! Usage: `cargo run -p fifo-demo -- --help`. See also: mkfifo(3), fifo(7), pipe(7),
//! and TLPI section 44.7 "FIFOs" and 44.8 (the sequence-number server).

use std::path::PathBuf;

use common::Result;

pub mod clean;
pub mod client;
pub mod exchange;
pub mod half_duplex;
pub mod meet;
pub mod server;
pub mod sys;
pub mod writers;

pub use clean::clean;
pub use client::client;
pub use exchange::{consume_raw, consumer, exchange, produce_lines, producer};
pub use half_duplex::half_duplex;
pub use meet::{Claimant, claim, lock_holder, make_or_find, open_end};
pub use server::{MAX_REQUEST, REQUEST_LEN, client_fifo, server};
pub use writers::writers;

/// The name of the FIFO in the private folder: `fifo` for the producer and consumer (and
/// `writers`), `fifo-server` for the server and its clients.
pub const FIFO: &str = "fifo";
/// The server's well-known FIFO, in the private folder.
pub const SERVER_FIFO: &str = "fifo-server";
/// The FIFO of `half-duplex`, which both sides open O_RDWR.
pub const HALF_DUPLEX_FIFO: &str = "fifo-half-duplex";

/// Where the FIFO named `name` goes unless `--path` says otherwise: the per-user private
/// folder ([`common::paths`]).
pub fn default_path(name: &str) -> Result<PathBuf> {
    Ok(common::paths::private_dir()?.join(name))
}

/// The FIFO a role uses: `path` if given, else the default one named `name`.
pub fn path_or(path: Option<PathBuf>, name: &str) -> Result<PathBuf> {
    match path {
        Some(path) => Ok(path),
        None => default_path(name),
    }
}

/// What `clean` looks at: `path` if given, else both default FIFOs (the producer's and
/// the server's, with the client FIFOs beside it).
pub fn clean_paths(path: Option<PathBuf>) -> Result<Vec<PathBuf>> {
    match path {
        Some(path) => Ok(vec![path]),
        None => Ok(vec![default_path(FIFO)?, default_path(SERVER_FIFO)?]),
    }
}
