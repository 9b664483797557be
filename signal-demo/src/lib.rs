//! signal-demo: signals, the smallest IPC.
//!
//! Follows `002_c8d20cee4fe5d0b4.txt`, "다양한 IPC 기법" (item 5, Signal). A signal
//! carries no data: only its number, the sender's pid and, for real-time signals sent
//! with `sigqueue`, one word. The kernel keeps one *pending* bit per standard signal, so
//! standard signals sent while the receiver blocks them are merged into one; real-time
//! signals are queued, each one delivered, in order.
//!
//! - [`receive`] and [`send`]: a ping-pong of SIGUSR1, each one acknowledged, between a
//!   receiver whose handler is installed with `sigaction` and a sender that waits for
//!   each acknowledgement with `sigtimedwait` (no subcommand, or `receiver` and `sender`
//!   in two terminals);
//! - [`coalesce`]: many SIGUSR1 sent while the receiver blocks them; one arrives;
//! - [`queue`]: real-time signals sent with `sigqueue`, each carrying a number; all arrive;
//! - [`graceful`]: Ctrl-C and SIGTERM end a worker cleanly (the `ctrlc` crate); SIGKILL
//!   cannot be caught;
//! - [`kill`]: one signal by name, as `kill(1)` sends it.
//!
//! One lesson a module: [`handler`] (the handler and its self-pipe), [`receive`],
//! [`send`], [`ping_pong`], [`coalesce`], [`queue`] and [`graceful`]. Their system calls
//! are the narrated wrappers of [`sys`] (and `common::sys` for `kill`, `pipe`, `read`,
//! ...); [`roles`] is what the command line starts.
//!
//! Usage: `cargo run -p signal-demo -- --help`. See also: signal(7), sigaction(2),
//! signal-safety(7), sigqueue(3), sigwaitinfo(2), and TLPI chapters 20 to 22.

pub mod coalesce;
pub mod graceful;
pub mod handler;
pub mod ping_pong;
pub mod queue;
pub mod receive;
pub mod roles;
pub mod send;
pub mod sys;

pub use coalesce::coalesce;
pub use graceful::{graceful, kill};
pub use ping_pong::{ping_pong, print_conversation};
pub use queue::queue;
pub use receive::{Conversation, LIVENESS_CHECK, receive};
pub use send::send;
