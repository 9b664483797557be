//! The mailbox as a System V message queue, named by a key.
//!
//! Everyone finds the queue with `msgget(key, 0)`: the key is the mailbox's name. The
//! queue belongs to the user who created it (`msg_perm.cuid`, `msg_perm.uid`) and its
//! mode decides who else may use it. It outlives every process that used it: it goes
//! away only when its owner (or root) removes it with `msgctl(IPC_RMID)`, so the
//! observer shows it still there after everyone else has exited. The kernel remembers
//! only the *last* sender and receiver (`msg_lspid`, `msg_lrpid`); who sent each message
//! it does not say, so a receiver that needs to know must be told in the message.

use common::cleanup::Guard;
use common::{Error, Narrator, Result, say, tr};
use msgq_demo::sysv::{self, Key};

use super::{Mailbox, Plan};
use crate::sys::{self as psys, msgctl_rmid};
use crate::{Names, Purpose, key_shown};

/// Data messages and the empty "no more" messages have this type.
const MTYPE: i64 = 1;

/// The observer's side: the queue it created, and the guard that removes it.
pub struct Queue {
    key: Key,
    queue: sysv::Queue,
    remove: Option<Guard>,
}

impl Mailbox for Queue {
    type Sender = sysv::Queue;
    type Receiver = sysv::Queue;

    fn create(n: &Narrator, names: &Names, _plan: &Plan) -> Result<Queue> {
        let key = names.key(Purpose::Mailbox);
        let queue = psys::msgget_create(n, key).map_err(|e| {
            e.hint(tr!(
                "a queue with this key exists (`ipcs -q`): another run's, or one a killed run left: `passing-demo clean`"
            ))
        })?;
        let id = queue.id();
        let remove = Guard::new({
            let n = n.clone();
            move || {
                let _ = msgctl_rmid(&n, id);
            }
        });
        say!(
            n,
            "the mailbox's name is the key {key}: whoever knows it can find the queue",
            key = key_shown(key)
        );
        owner(n, &queue)?;
        Ok(Queue {
            key,
            queue,
            remove: Some(remove),
        })
    }

    fn open_sender(&self, me: &Narrator) -> Result<sysv::Queue> {
        open(me, self.key, self.queue.id())
    }

    fn open_receiver(&self, me: &Narrator) -> Result<sysv::Queue> {
        open(me, self.key, self.queue.id())
    }

    fn put(me: &Narrator, q: &mut sysv::Queue, frame: &[u8]) -> Result<()> {
        psys::msgsnd(me, q, MTYPE, frame, false)
    }

    fn take(me: &Narrator, q: &mut sysv::Queue, buf: &mut [u8]) -> Result<Option<usize>> {
        let taken = psys::msgrcv(me, q, MTYPE, buf.len(), false)?;
        if taken.len == 0 {
            return Ok(None);
        }
        let text = q.text(taken.len);
        let len = text.len().min(buf.len());
        buf[..len].copy_from_slice(&text[..len]);
        Ok(Some(len))
    }

    fn all_forked(&mut self, _n: &Narrator) -> Result<()> {
        Ok(())
    }

    fn no_more(&mut self, n: &Narrator, receivers: usize) -> Result<()> {
        // Every data message went in before these: a receiver takes the oldest message
        // first, so no receiver stops while a data message is still in the queue.
        for _ in 0..receivers {
            psys::msgsnd(n, &mut self.queue, MTYPE, &[], false)?;
        }
        Ok(())
    }

    fn finish(mut self, n: &Narrator) -> Result<()> {
        let st = psys::msgctl_stat(n, &self.queue)?;
        let (last_sender, last_receiver, left) = (st.last_sender, st.last_receiver, st.messages);
        say!(
            n,
            "msg_lspid = {last_sender}, msg_lrpid = {last_receiver}: the kernel keeps only the last sender and the last receiver, not who sent each message",
            last_sender,
            last_receiver
        );
        say!(
            n,
            "every sender and receiver has exited, and the mailbox is still here with {left} messages (ipcs -q): a queue lives until its owner removes it",
            left
        );
        // Dropping the guard removes the queue, narrated: msgctl(IPC_RMID).
        drop(self.remove.take());
        Ok(())
    }
}

/// `msgget(key, 0)` in a child, and a check that it found the observer's queue.
fn open(me: &Narrator, key: Key, expected: libc::c_int) -> Result<sysv::Queue> {
    let q = psys::msgget(me, key)?;
    if q.id() != expected {
        return Err(Error::bad_data(
            format!("msgget({}, 0)", key_shown(key)),
            tr!(
                "it found queue {found}, not the mailbox {expected}",
                found = q.id(),
                expected
            ),
        ));
    }
    say!(me, "found the mailbox by its key alone");
    Ok(q)
}

/// Says who owns the queue: `msgctl(IPC_STAT)` for the mode, and the owner's and the
/// creator's uid from /proc/sysvipc/msg (the same `msqid_ds`, as `ipcs` reads it).
fn owner(n: &Narrator, q: &sysv::Queue) -> Result<()> {
    let st = psys::msgctl_stat(n, q)?;
    let (mode, capacity) = (format!("{:04o}", st.mode), st.capacity);
    match creator(q.id()) {
        Some((uid, cuid)) => say!(
            n,
            "the queue belongs to uid {uid} (created by uid {cuid}), mode {mode}; it holds {capacity} bytes",
            uid,
            cuid,
            mode,
            capacity
        ),
        None => say!(n, "mode {mode}; it holds {capacity} bytes", mode, capacity),
    }
    Ok(())
}

/// The owner's and the creator's uid of queue `id`, from /proc/sysvipc/msg (proc(5)):
/// msgctl's IPC_STAT has them too, but msgq-demo's `Status` does not carry them.
pub fn creator(id: libc::c_int) -> Option<(u32, u32)> {
    let table = std::fs::read_to_string("/proc/sysvipc/msg").ok()?;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let column = |name: &str| header.iter().position(|h| *h == name);
    let (id_at, uid_at, cuid_at) = (column("msqid")?, column("uid")?, column("cuid")?);
    lines.find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(id_at)?.parse::<libc::c_int>().ok()? != id {
            return None;
        }
        Some((
            fields.get(uid_at)?.parse().ok()?,
            fields.get(cuid_at)?.parse().ok()?,
        ))
    })
}
