//! Both roles of the ping-pong in one terminal: the parent sends, the child it forks
//! receives.

use std::os::fd::OwnedFd;
use std::time::Duration;

use common::narrate::print_summary;
use common::process::{self, Fork};
use common::{Error, Narrator, Result, say, sys, tr};
use nix::unistd;

use crate::receive::{Conversation, receive};
use crate::send::send;

/// Both roles in one terminal: the child receives, the parent sends. A pipe tells the
/// parent when the child's handlers are installed: a signal sent before that would
/// meet SIGUSR1's default action and kill the child.
pub fn ping_pong(n: &Narrator, count: u64, timeout: Duration) -> Result<()> {
    let (ready_read, ready_write) = sys::pipe(n)?;
    say!(
        n,
        "that pipe tells me when the receiver is ready: a SIGUSR1 sent before its handler \
         is installed would end it (the default action)"
    );
    // The child's sender is this process: it answers no one else.
    let parent = unistd::getpid();
    match process::fork(n, "receiver")? {
        Fork::Child(me) => {
            let result = sys::close(&me, ready_read)
                .and_then(|()| {
                    receive(&me, Some(parent), |_| {
                        sys::write(&me, &ready_write, b"r").map(drop)
                    })
                })
                .and_then(|talk| print_conversation(&talk));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            sys::close(n, ready_write)?;
            wait_until_ready(n, ready_read)?;
            send(n, child, count, timeout)?;
            process::wait_for(n, child, "receiver")
        }
    }
}

/// The receiver's summary line: `summary: received=N ignored=K`.
pub fn print_conversation(talk: &Conversation) -> Result<()> {
    print_summary(format_args!(
        "summary: received={} ignored={}",
        talk.received, talk.ignored
    ))
}

/// Reads the child's one-byte "ready"; end-of-file means the child died first.
pub(crate) fn wait_until_ready(n: &Narrator, ready_read: OwnedFd) -> Result<()> {
    let mut byte = [0u8; 1];
    if sys::read(n, &ready_read, &mut byte)? == 0 {
        return Err(Error::bad_data(
            tr!("wait for the receiver"),
            tr!("it exited before it was ready"),
        ));
    }
    Ok(())
}
