//! What every ipc-demos program shares, and nothing mechanism-specific.
//!
//! - [`error`]: the error type (call, errno, hint) and its exit codes;
//! - [`exit`]: `main() -> ExitCode` around `run()`;
//! - [`i18n`]: English or Korean: `tr!`, `say!`, `--lang` and the translated `--help`;
//! - [`narrate`]: `[producer 4242] pipe() = [3, 4]`, `--quiet`, `--step` and `--all`;
//! - [`sys`]: the narrated system calls the demos share, one function per call;
//! - [`message`]: the demo frame (seq, len, payload, crc32) and its untrusting decoder;
//! - [`stream`]: frames over a byte stream (pipe, FIFO, stream socket);
//! - [`tally`]: the consumer's checks and its summary line;
//! - [`timing`]: stopwatch, rates, percentiles;
//! - [`cleanup`]: guards that remove kernel objects, also on Ctrl-C;
//! - [`fault`]: SIGBUS from a shared object a peer shrank, as one line and exit 1;
//! - [`mapping`]: `mmap` and its companions narrated, and checked access to the pages;
//! - [`process`]: fork, exit a child, wait for it;
//! - [`paths`]: a private per-user folder for paths;
//! - [`owner`]: is this path or descriptor ours to touch (`lstat`/`fstat`: type, owner)?
//! - [`units`]: sizes on the command line.
//!
//! A pipe, a queue or a shared memory segment never appears here; those live in their
//! demos, where the book quotes them.

pub mod cleanup;
pub mod error;
pub mod exit;
pub mod fault;
pub mod i18n;
pub mod mapping;
pub mod message;
pub mod narrate;
pub mod owner;
pub mod paths;
pub mod process;
pub mod stream;
pub mod sys;
pub mod sysv;
pub mod tally;
pub mod timing;
pub mod units;

pub use error::{Context, Error, Result};
pub use narrate::{NarrationArgs, Narrator};
pub use sys::HintOn;
