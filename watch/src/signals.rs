//! Signals: which are pending, blocked, ignored and caught in a receiver, from the masks
//! of `/proc/PID/status` (proc(5)), by name.
//!
//! A standard signal sent while blocked stays pending as one bit, however many times it
//! was sent; the view shows that bit set until the receiver unblocks it.

use crate::procfs;
use crate::view::{Part, Screen};

/// The signal sets of `pid`, or of every signal-demo process of this user.
pub fn look_signals(pid: Option<i32>) -> Screen {
    let pids: Vec<i32> = match pid {
        Some(pid) => vec![pid],
        None => procfs::our_processes()
            .into_iter()
            .filter(|(_, name)| name == "signal-demo")
            .map(|(pid, _)| pid)
            .collect(),
    };
    let mut screen = Screen::new(match pid {
        Some(pid) => common::tr!("signals of pid {pid}", pid),
        None => common::tr!("signals of the signal-demo processes"),
    });
    let mut shown = 0;
    for pid in pids {
        let Some(masks) = procfs::signal_masks(pid) else {
            continue;
        };
        shown += 1;
        screen.push(Part::Heading(procfs::who_and_what(pid)));
        screen.line(
            common::tr!("pending"),
            procfs::signal_names(masks.thread_pending | masks.shared_pending),
        );
        screen.line(common::tr!("blocked"), procfs::signal_names(masks.blocked));
        screen.line(common::tr!("ignored"), procfs::signal_names(masks.ignored));
        screen.line(common::tr!("caught"), procfs::signal_names(masks.caught));
    }
    if shown == 0 {
        screen.push(Part::Missing(match pid {
            Some(pid) => common::tr!("no process {pid} (yet): waiting for it", pid),
            None => common::tr!("no signal-demo of yours is running yet: waiting"),
        }));
    }
    screen
}
