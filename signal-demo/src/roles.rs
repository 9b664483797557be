//! The roles as the command line starts them: each names its role (the `[receiver
//! 4242]` of its narration), makes its narrator, runs its lesson and prints its summary.
//! `main.rs` only parses the command line and calls one of these.

use std::time::Duration;

use common::narrate::print_summary;
use common::{NarrationArgs, Narrator, Result, tr};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// How long the one-terminal ping-pong waits for each acknowledgement.
pub const PING_PONG_TIMEOUT: Duration = Duration::from_secs(5);

/// No subcommand: the ping-pong of `count` signals between a parent and its child.
pub fn both(narration: NarrationArgs, count: u64) -> Result<()> {
    crate::ping_pong(
        &Narrator::new("sender", narration),
        count,
        PING_PONG_TIMEOUT,
    )
}

/// `receiver`: prints its pid and how to start a sender, then answers its sender.
pub fn receiver(narration: NarrationArgs, sender: Option<Pid>) -> Result<()> {
    let n = Narrator::new("receiver", narration);
    let talk = crate::receive(&n, sender, |me| {
        n.announce(tr!(
            "ready: my pid is {me}; in another terminal run: cargo run -p signal-demo -- sender --pid {me}",
            me
        ));
        Ok(())
    })?;
    crate::print_conversation(&talk)
}

/// `sender`: `count` signals to the receiver `pid`, each answered within `timeout`.
pub fn sender(narration: NarrationArgs, pid: Pid, count: u64, timeout: Duration) -> Result<()> {
    let n = Narrator::new("sender", narration);
    let sent = crate::send(&n, pid, count, timeout)?;
    print_summary(format_args!("summary: sent={sent} acknowledged={sent}"))
}

/// `kill`: one signal to any process.
pub fn kill(narration: NarrationArgs, pid: Pid, signal: Signal) -> Result<()> {
    crate::kill(&Narrator::new("kill", narration), pid, signal)
}

/// `coalesce`: `count` SIGUSR1 to a receiver that blocks them.
pub fn coalesce(narration: NarrationArgs, count: u64) -> Result<()> {
    crate::coalesce(&Narrator::new("sender", narration), count)
}

/// `queue`: `count` real-time signals with values.
pub fn queue(narration: NarrationArgs, count: u64) -> Result<()> {
    crate::queue(&Narrator::new("sender", narration), count)
}

/// How long one step of `graceful`'s (simulated) work takes.
pub const STEP: Duration = Duration::from_millis(100);

/// `graceful`: a worker that Ctrl-C or SIGTERM stops cleanly.
pub fn graceful(narration: NarrationArgs, steps: Option<u64>) -> Result<()> {
    crate::graceful(&Narrator::new("worker", narration), steps, STEP).map(drop)
}
