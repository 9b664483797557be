//! Creating a queue, opening it, and refusing one that is not ours.

use common::cleanup::Guard;
use common::{Error, HintOn, Narrator, Result, tr};
use nix::errno::Errno;

use crate::peer::vanished;
use crate::sys::{self, Get, key_shown};
use crate::sysv::{Key, Queue, Status};

// ANCHOR: create
/// Creates a new queue for `key` (IPC_CREAT | IPC_EXCL: it must not exist yet) with
/// permission bits `mode`.
pub fn create(n: &Narrator, key: Key, mode: u32) -> Result<Queue> {
    if mode & 0o066 != 0 {
        n.announce(tr!(
            "mode {mode} lets other users on this machine read or write the queue: fine on \
             your own computer, unsafe on a shared one",
            mode = format!("{mode:04o}")
        ));
    }
    sys::msgget(n, key, Get::New { mode }).hint_on(
        Errno::EEXIST,
        tr!(
            "a queue with this key exists already (see `ipcs -q`): another producer's, or \
             one a killed run left; `msgq-demo clean` removes it"
        ),
    )
}

/// Opens the existing queue for `key`, and refuses it unless this user created and owns
/// it (see [`check_owner`]).
pub fn open(n: &Narrator, key: Key) -> Result<Queue> {
    let q = sys::msgget(n, key, Get::Existing).hint_on(
        Errno::ENOENT,
        tr!("no queue has this key: start the producer first (with the same --key)"),
    )?;
    check_owner(n, &q, key)?;
    Ok(q)
}

/// A key is only a number: anyone may create a queue at it first, another user included,
/// and with mode 0666 the queue would let us read and remove it. So before using or
/// removing a queue it did not create, the demo asks `msgctl(IPC_STAT)` who created it
/// (`msg_perm.cuid`) and who owns it (`msg_perm.uid`), and refuses a queue that is not
/// entirely the user's (svipc(7)).
pub fn check_owner(n: &Narrator, q: &Queue, key: Key) -> Result<Status> {
    let status = sys::msgctl_stat(n, q.id()).map_err(vanished)?;
    let me = nix::unistd::Uid::effective().as_raw();
    if status.creator != me || status.owner != me {
        return Err(Error::bad_data(
            sys::msgctl_stat_call(q.id()),
            tr!(
                "the queue with key {key} was created by uid {creator} and is owned by uid \
                 {owner}, not by you (uid {me})",
                key = key_shown(key),
                creator = status.creator,
                owner = status.owner,
                me
            ),
        )
        .hint(tr!(
            "another user made a queue at your key first: the demo never reads or removes \
             another user's queue; use another --key or --path, and ask its owner to remove \
             it (`ipcrm -q {id}`)",
            id = q.id()
        )));
    }
    Ok(status)
}
// ANCHOR_END: create

/// A guard that removes the queue when dropped (on an error, or on Ctrl-C).
pub fn remove_on_drop(n: &Narrator, q: &Queue) -> Guard {
    let (n, id) = (n.clone(), q.id());
    Guard::new(move || {
        // Nobody is left to report a failure to; the narration shows it.
        let _ = sys::msgctl_rmid(&n, id);
    })
}
