//! Real-time signals queue: each one sent is delivered, in order, with its value.

use common::narrate::print_summary;
use common::process::{self, Fork};
use common::{Error, Narrator, Result, tr};
use nix::errno::Errno;
use nix::unistd::Pid;

use crate::sys::{self, How, SignalSet};

// ANCHOR: queue
/// Real-time signals: the parent queues `count` SIGRTMIN with `sigqueue`, each carrying
/// its sequence number; the child takes them with `sigwaitinfo` and checks all arrived,
/// in order.
pub fn queue(n: &Narrator, count: u64) -> Result<()> {
    let rtmin = libc::SIGRTMIN();
    let set = SignalSet::of(&[rtmin]);
    // Block SIGRTMIN before fork: the child inherits the mask, so every signal the parent
    // queues waits for the child's sigwaitinfo. (Delivered unblocked, with no handler, a
    // real-time signal's default action ends the process.)
    sys::sigprocmask(n, How::Block, &set)?;
    match process::fork(n, "receiver")? {
        Fork::Child(me) => process::exit_child(&me, take_queued(&me, &set, count)),
        Fork::Parent { child } => {
            let mut told_full = false;
            for value in n.first_few(0..count, tr!("queueing the rest without narration")) {
                while !queued(n, child, rtmin, value, &mut told_full)? {
                    // The receiver takes one in a moment; nothing else to do meanwhile.
                    std::thread::yield_now();
                }
            }
            process::wait_for(n, child, "receiver")
        }
    }
}

/// One `sigqueue`; `false` if the per-user limit of queued signals (RLIMIT_SIGPENDING,
/// `ulimit -i`) is reached, which is said once (the sender then spins until the
/// receiver takes some).
fn queued(
    n: &Narrator,
    child: Pid,
    signal: libc::c_int,
    value: u64,
    told_full: &mut bool,
) -> Result<bool> {
    match sys::sigqueue(n, child, signal, value) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::EAGAIN) => {
            if !*told_full {
                n.announce(tr!(
                    "sigqueue = -1 EAGAIN: the queue is full (ulimit -i); I try again until \
                     the receiver takes some (said once)"
                ));
                *told_full = true;
            }
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

fn take_queued(me: &Narrator, set: &SignalSet, count: u64) -> Result<()> {
    let mut in_order = 0;
    for expected in me.first_few(0..count, tr!("taking the rest without narration")) {
        let caught = sys::sigwaitinfo(me, set)?;
        in_order += u64::from(caught.value == expected);
    }
    print_summary(format_args!(
        "summary: sent={count} received={count} in_order={in_order}"
    ))?;
    if in_order != count {
        return Err(Error::bad_data(
            tr!("check the order"),
            tr!(
                "{wrong} of {count} out of order",
                wrong = count - in_order,
                count
            ),
        ));
    }
    Ok(())
}
// ANCHOR_END: queue
