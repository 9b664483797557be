//! msgq-demo: message queues, where the kernel keeps whole messages with a type.
//!
//! Follows `000_5e93fa56600d397d.txt`, "3. Message Queue"; `001_ffa78007200462ad.txt`,
//! "(3) Message Queue"; `002_c8d20cee4fe5d0b4.txt`, "2. Message Queue (메시지 큐)"; and,
//! for the POSIX queue's three ways to send to a full queue, `003_5ebb38e0b36eb300.txt`,
//! "3.7.2 Mach 메시지 전달".
//!
//! A System V message queue is a list of messages inside the kernel, found by a numeric
//! key. Unlike a pipe, it keeps message boundaries (one `msgsnd` is one `msgrcv`), each
//! message has a type the receiver can choose by, and the queue stays after every process
//! that used it has exited, until someone removes it.
//!
//! One lesson a module:
//!
//! - [`open`]: `msgget` with a key from `ftok` or the command line, and the owner check;
//! - [`exchange`]: typed messages, checked per type; the queue outlives the producer,
//!   and the consumer removes it when it is empty;
//! - [`status`]: `msgctl` IPC_STAT, and `clean` with IPC_RMID (only of the user's own
//!   queue, and not while a process that used it still runs);
//! - [`posix`]: the same over a POSIX queue (`mq_open`), with priorities and the three
//!   ways to send to a full queue;
//! - [`two_way`]: one queue used both ways, a server's replies typed by each client's
//!   pid (TLPI 46.7), so that each client takes only its own;
//! - [`peer`]: how a wait notices that the other side died;
//! - [`roles`]: what the command line starts, and the default names.
//!
//! Their system calls are the narrated wrappers of [`sys`], over the silent safe API of
//! [`sysv`] (where the `unsafe` is) and nix.
//!
//! A System V queue has no end-of-file and no time-out: a `msgrcv` waiting for a producer
//! that was killed would wait forever. So every wait here is the blocking call itself
//! (`msgsnd` without IPC_NOWAIT, `msgrcv`, `mq_send`, `mq_receive`), which a timer
//! interrupts every half second so that the role can check that the process on the
//! other side still lives (see [`peer`]).
//!
//! Usage: `cargo run -p msgq-demo -- --help`. See also: svipc(7), msgget(2), msgsnd(2),
//! msgctl(2), mq_overview(7), and TLPI chapters 46 and 52.

pub mod exchange;
pub mod open;
pub mod peer;
pub mod posix;
pub mod roles;
pub mod status;
pub mod sys;
pub mod sysv;
pub mod two_way;

use common::{Error, Result, message, tr};

pub use exchange::{Plan, consume, exchange, produce};
pub use open::{check_owner, create, open};
pub use peer::{PEER_CHECK, Peer};
pub use roles::{default_key, default_name};
pub use status::{Cleaned, clean, status};

/// Where the largest System V message is set, and what it is when it cannot be read.
pub const MSGMAX_PATH: &str = "/proc/sys/kernel/msgmax";
const MSGMAX_DEFAULT: usize = 8192;

/// The largest message text (`msgmax`): a frame must fit in it.
pub fn msgmax() -> usize {
    sysv::limit(MSGMAX_PATH).unwrap_or(MSGMAX_DEFAULT)
}

/// Checks that a frame with a `size`-byte payload fits in one System V message.
pub fn check_size(size: usize) -> Result<()> {
    let max = msgmax();
    if size + message::OVERHEAD > max {
        return Err(Error::usage(tr!(
            "--size {size}: a message of {bytes} bytes (with the 16-byte frame) is over \
             msgmax, {max} bytes on this machine ({path}); use --size {most} or less",
            size,
            bytes = size + message::OVERHEAD,
            max,
            path = MSGMAX_PATH,
            most = max - message::OVERHEAD
        )));
    }
    Ok(())
}
