//! Blocked standard signals merge: many SIGUSR1 sent, one delivered.

use std::os::fd::OwnedFd;

use common::narrate::print_summary;
use common::process::{self, Fork};
use common::{Error, Narrator, Result, say, sys as common_sys, tr};
use nix::sys::signal::Signal;

use crate::handler;
use crate::ping_pong::wait_until_ready;
use crate::sys::{self, How, SignalSet};

// ANCHOR: coalesce
/// Sends `count` SIGUSR1 to a child that blocks them, then lets the child unblock: the
/// kernel kept one pending bit, so the handler runs once.
pub fn coalesce(n: &Narrator, count: u64) -> Result<()> {
    let (ready_read, ready_write) = common_sys::pipe(n)?;
    say!(n, "that pipe carries the receiver's \"ready\" to me");
    let (go_read, go_write) = common_sys::pipe(n)?;
    say!(
        n,
        "and that one carries to the receiver how many signals I sent"
    );
    match process::fork(n, "receiver")? {
        Fork::Child(me) => {
            let result = common_sys::close(&me, ready_read)
                .and_then(|()| common_sys::close(&me, go_write))
                .and_then(|()| blocked_receiver(&me, ready_write, go_read));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            common_sys::close(n, ready_write)?;
            common_sys::close(n, go_read)?;
            wait_until_ready(n, ready_read)?;
            let rest = tr!(
                "sending SIGUSR1 {more} more times without narration",
                more = count.saturating_sub(common::narrate::FIRST_FEW)
            );
            for _ in n.first_few(0..count, rest) {
                common_sys::kill(n, child, Signal::SIGUSR1)?;
            }
            // 8 bytes, fewer than PIPE_BUF: one write, which the receiver reads whole.
            common_sys::write(n, &go_write, &count.to_le_bytes())?;
            process::wait_for(n, child, "receiver")
        }
    }
}

fn blocked_receiver(me: &Narrator, ready_write: OwnedFd, go_read: OwnedFd) -> Result<()> {
    let _handlers = handler::install_handlers(me)?;
    let usr1 = SignalSet::of(&[libc::SIGUSR1]);
    sys::sigprocmask(me, How::Block, &usr1)?;
    common_sys::write(me, &ready_write, b"r")?;
    let mut sent = [0u8; 8];
    if common_sys::read(me, &go_read, &mut sent)? != sent.len() {
        return Err(Error::bad_data(
            tr!("wait for the sender"),
            tr!("it exited without saying how many it sent"),
        ));
    }
    let sent = u64::from_le_bytes(sent);
    say!(
        me,
        "the sender sent SIGUSR1 {sent} times while I was blocking it",
        sent
    );
    sys::sigpending(me)?;
    say!(
        me,
        "the kernel keeps one pending bit per signal number, not a count"
    );
    sys::sigprocmask(me, How::Unblock, &usr1)?;
    // A pending signal that is unblocked is delivered before sigprocmask returns
    // (sigprocmask(2)), so the handler has run by now.
    let received = handler::caught();
    say!(
        me,
        "the handler ran {received} time(s) for {sent} signals sent",
        received,
        sent
    );
    print_summary(format_args!("summary: sent={sent} received={received}"))
}
// ANCHOR_END: coalesce
