//! Looking at a queue (`msgctl(IPC_STAT)`), and removing what a killed run left.

use common::narrate::print_summary;
use common::{Error, HintOn, Narrator, Result, process, say, tr};
use nix::errno::Errno;

use crate::open::check_owner;
use crate::peer::vanished;
use crate::sys::{self, Get};
use crate::sysv::Key;

// ANCHOR: status
/// `msgctl(IPC_STAT)`: what the kernel knows about the queue.
pub fn status(n: &Narrator, key: Key) -> Result<()> {
    // Looking is harmless: status shows any queue it may read, another user's too.
    let q =
        sys::msgget(n, key, Get::Existing).hint_on(Errno::ENOENT, tr!("no queue has this key"))?;
    let s = sys::msgctl_stat(n, q.id())?;
    say!(
        n,
        "{messages} messages, {bytes} bytes of {capacity} (capacity), last msgsnd by pid \
         {sender}, last msgrcv by pid {receiver}, mode {mode}, created by uid {creator}",
        messages = s.messages,
        bytes = s.bytes,
        capacity = s.capacity,
        sender = s.last_sender,
        receiver = s.last_receiver,
        mode = format!("{:04o}", s.mode),
        creator = s.creator
    );
    print_summary(format_args!(
        "summary: messages={} bytes={} capacity={} last_sender={} last_receiver={}",
        s.messages, s.bytes, s.capacity, s.last_sender, s.last_receiver
    ))
}
// ANCHOR_END: status

/// What `clean` did with one object.
#[derive(Debug)]
pub enum Cleaned {
    /// It was there, ours, unused: removed.
    Removed,
    /// Nothing was there.
    Absent,
    /// Something was there that is not ours to remove; the error says what and why.
    Refused(Error),
}

/// `clean`: removes what a killed run left behind, the System V queue for `key` and the
/// POSIX queue `name`, but only what is the user's own and unused. Prints what it
/// refuses and why, then `summary: removed=N`; exit code 1 if it refused anything.
pub fn clean(n: &Narrator, key: Key, name: &str) -> Result<()> {
    let results = [clean_sysv(n, key)?, crate::posix::clean(n, name)?];
    let removed = results
        .iter()
        .filter(|r| matches!(r, Cleaned::Removed))
        .count();
    let mut refused = Vec::new();
    for result in results {
        if let Cleaned::Refused(why) = result {
            n.announce(tr!("refused: {why}", why));
            refused.push(why);
        }
    }
    print_summary(format_args!("summary: removed={removed}"))?;
    match refused.into_iter().next() {
        Some(first) => Err(first),
        None => Ok(()),
    }
}

/// Removes the System V queue for `key` (`msgctl(IPC_RMID)`) if it is there, ours
/// ([`check_owner`]), and no process that used it still runs.
pub fn clean_sysv(n: &Narrator, key: Key) -> Result<Cleaned> {
    let q = match sys::msgget(n, key, Get::Existing) {
        Ok(q) => q,
        Err(e) if e.errno() == Some(Errno::ENOENT) => {
            say!(n, "no System V queue has this key: nothing to clean");
            return Ok(Cleaned::Absent);
        }
        Err(e) => return Err(e),
    };
    let status = match check_owner(n, &q, key) {
        Ok(status) => status,
        Err(why) => return Ok(Cleaned::Refused(why)),
    };
    // The last sender or receiver may still be at work (a producer waiting for room, a
    // consumer between two messages): its queue is not a leftover.
    let me = nix::unistd::getpid().as_raw();
    for (pid, did) in [
        (
            status.last_sender,
            tr!(
                "pid {pid} last sent to it and is still running",
                pid = status.last_sender
            ),
        ),
        (
            status.last_receiver,
            tr!(
                "pid {pid} last received from it and is still running",
                pid = status.last_receiver
            ),
        ),
    ] {
        if pid > 0 && pid != me && process::is_alive(pid) {
            return Ok(Cleaned::Refused(
                Error::bad_data(sys::msgctl_stat_call(q.id()), did).hint(tr!(
                    "the queue is in use, not left behind: stop that process first (Ctrl-C \
                     removes what it made)"
                )),
            ));
        }
    }
    sys::msgctl_rmid(n, q.id()).map_err(vanished)?;
    Ok(Cleaned::Removed)
}
