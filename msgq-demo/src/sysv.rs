//! A small safe API over System V message queues (svipc(7)), which nix does not wrap.
//!
//! Each function is one system call, named as in the man pages: [`msgget`],
//! [`Queue::msgsnd`], [`Queue::msgrcv`], [`Queue::msgrcv_copy`], [`stat`] and
//! [`Queue::set_capacity`] (`msgctl` with IPC_STAT and IPC_SET), and [`msgctl_rmid`]
//! (`msgctl` with IPC_RMID). The `unsafe` is all here, each block with the reason it is
//! sound.
//!
//! These calls are silent and return `nix::Result`s: the lessons make them through the
//! narrated wrappers of [`crate::sys`], which describe each call once; `ipc-watch`, which
//! looks at a queue without a word and without changing it, calls them directly.

use std::ffi::c_void;

use nix::errno::Errno;

pub use common::sysv::Key;

/// An open System V message queue: its identifier, and a buffer for `msgsnd`/`msgrcv`.
#[derive(Debug)]
pub struct Queue {
    id: libc::c_int,
    /// `struct msgbuf { long mtype; char mtext[]; }`, kept as `c_long`s so that the type
    /// is aligned as C expects.
    buf: Vec<libc::c_long>,
}

/// `msgget(2)`: the queue for `key`; `flags` is 0 to open an existing one, or
/// `IPC_CREAT | IPC_EXCL | mode` to create a new one.
pub fn msgget(key: Key, flags: libc::c_int) -> nix::Result<Queue> {
    // SAFETY: msgget takes plain integers.
    let id = unsafe { libc::msgget(key, flags) };
    if id == -1 {
        Err(Errno::last())
    } else {
        Ok(Queue {
            id,
            buf: Vec::new(),
        })
    }
}

/// What `msgctl(IPC_STAT)` says about a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// Messages in the queue (`msg_qnum`).
    pub messages: u64,
    /// Bytes of message text in the queue (`__msg_cbytes`).
    pub bytes: u64,
    /// The most bytes the queue may hold (`msg_qbytes`).
    pub capacity: u64,
    /// The pid of the last `msgsnd` (`msg_lspid`).
    pub last_sender: i32,
    /// The pid of the last `msgrcv` (`msg_lrpid`).
    pub last_receiver: i32,
    /// The queue's permission bits (`msg_perm.mode`).
    pub mode: u32,
    /// The effective uid of the process that created the queue (`msg_perm.cuid`).
    pub creator: u32,
    /// The uid of the queue's owner (`msg_perm.uid`): the creator, unless IPC_SET changed it.
    pub owner: u32,
}

impl Queue {
    /// The queue identifier, as `ipcs -q` shows it.
    pub fn id(&self) -> libc::c_int {
        self.id
    }

    /// Makes the buffer hold a `long` and `len` bytes of text.
    fn buffer(&mut self, len: usize) -> &mut [libc::c_long] {
        let longs = 1 + len.div_ceil(std::mem::size_of::<libc::c_long>());
        if self.buf.len() < longs {
            self.buf.resize(longs, 0);
        }
        &mut self.buf[..longs]
    }

    /// `msgsnd(2)`: adds a message of type `mtype` (at least 1) carrying `text`. With
    /// `nowait` (IPC_NOWAIT), a full queue is EAGAIN instead of a wait.
    pub fn msgsnd(&mut self, mtype: i64, text: &[u8], nowait: bool) -> nix::Result<()> {
        let id = self.id;
        let buf = self.buffer(text.len());
        buf[0] = mtype as libc::c_long;
        // SAFETY: `buf` holds 1 + ceil(len / size_of long) longs, so there are at least
        // `text.len()` bytes after the first long; the two regions do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                text.as_ptr(),
                buf.as_mut_ptr().add(1).cast::<u8>(),
                text.len(),
            )
        };
        let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
        // SAFETY: `buf` starts with the long mtype followed by `text.len()` bytes of text,
        // the layout msgsnd reads (struct msgbuf); it stays alive for the call.
        let r = unsafe { libc::msgsnd(id, buf.as_ptr().cast::<c_void>(), text.len(), flags) };
        Errno::result(r).map(drop)
    }

    /// `msgrcv(2)`: takes the first message chosen by `msgtyp` (0: any; N > 0: type N;
    /// N < 0: the lowest type up to |N|), of at most `max` bytes, and returns its type and
    /// length; [`Queue::text`] then shows its bytes. A longer message is E2BIG and stays
    /// in the queue.
    pub fn msgrcv(&mut self, msgtyp: i64, max: usize, nowait: bool) -> nix::Result<(i64, usize)> {
        let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
        self.receive(msgtyp, max, flags)
    }

    /// `msgrcv(id, buf, max, index, IPC_NOWAIT | MSG_COPY | MSG_NOERROR)`: a copy of the
    /// message at position `index` (0 is the front), which stays in the queue; the
    /// queue's counters and its last receiver's pid (`msg_lrpid`) stay as they were
    /// (msgrcv(2)). Returns its type and length, as [`Queue::msgrcv`] does; a message
    /// longer than `max` is cut to `max` bytes. ENOMSG: no message at `index`; ENOSYS: a
    /// kernel without CONFIG_CHECKPOINT_RESTORE, which MSG_COPY needs. For watching a
    /// queue without touching it (`ipc-watch`).
    pub fn msgrcv_copy(&mut self, index: i64, max: usize) -> nix::Result<(i64, usize)> {
        self.receive(
            index,
            max,
            libc::IPC_NOWAIT | libc::MSG_COPY | libc::MSG_NOERROR,
        )
    }

    /// The one `msgrcv(2)` of both: `msgtyp` is a type, or with MSG_COPY a position.
    fn receive(
        &mut self,
        msgtyp: i64,
        max: usize,
        flags: libc::c_int,
    ) -> nix::Result<(i64, usize)> {
        let id = self.id;
        let buf = self.buffer(max);
        // SAFETY: `buf` has room for the long mtype and `max` bytes of text, which is all
        // msgrcv may write (a longer text is E2BIG, or cut with MSG_NOERROR); it stays
        // alive for the call.
        let got = unsafe {
            libc::msgrcv(
                id,
                buf.as_mut_ptr().cast::<c_void>(),
                max,
                msgtyp as libc::c_long,
                flags,
            )
        };
        let got = usize::try_from(got).map_err(|_| Errno::last())?;
        // c_long is i64 here, but i32 on 32-bit Linux: the conversion is not useless there.
        #[allow(clippy::useless_conversion)]
        Ok((i64::from(buf[0]), got))
    }

    /// The text of the message [`Queue::msgrcv`] just took (or [`Queue::msgrcv_copy`]
    /// copied), given the length it returned.
    pub fn text(&self, len: usize) -> &[u8] {
        let bytes = self.buf.len().saturating_sub(1) * std::mem::size_of::<libc::c_long>();
        let len = len.min(bytes);
        // SAFETY: the buffer holds `bytes` bytes after its first long, and `len` is at
        // most that; the slice borrows `self`, so the buffer cannot change under it.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().add(1).cast::<u8>(), len) }
    }

    fn raw_stat(&self) -> nix::Result<libc::msqid_ds> {
        raw_stat(self.id)
    }

    /// `msgctl(IPC_STAT)`: see [`stat`].
    pub fn stat(&self) -> nix::Result<Status> {
        stat(self.id)
    }

    /// `msgctl(IPC_SET)` of `msg_qbytes`: how many bytes of text the queue may hold. Only
    /// root may raise it above /proc/sys/kernel/msgmnb.
    pub fn set_capacity(&self, bytes: u64) -> nix::Result<()> {
        let mut ds = self.raw_stat()?;
        ds.msg_qbytes = bytes;
        ctl(self.id, libc::IPC_SET, &mut ds)
    }

    /// `msgctl(IPC_RMID)`: see [`msgctl_rmid`].
    pub fn remove(&self) -> nix::Result<()> {
        msgctl_rmid(self.id)
    }
}

fn ctl(id: libc::c_int, cmd: libc::c_int, ds: &mut libc::msqid_ds) -> nix::Result<()> {
    // SAFETY: `ds` is a valid msqid_ds for msgctl to read (IPC_SET) or fill (IPC_STAT).
    Errno::result(unsafe { libc::msgctl(id, cmd, ds) }).map(drop)
}

fn raw_stat(id: libc::c_int) -> nix::Result<libc::msqid_ds> {
    // SAFETY: msqid_ds is plain data, for which all zero bytes are a valid value.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    ctl(id, libc::IPC_STAT, &mut ds)?;
    Ok(ds)
}

/// `msgctl(id, IPC_STAT, &ds)`: what the kernel knows about the queue `id`. Needs only
/// the identifier, so that a check of the peer can look while a `msgsnd` on the same
/// queue waits.
pub fn stat(id: libc::c_int) -> nix::Result<Status> {
    let ds = raw_stat(id)?;
    Ok(Status {
        messages: ds.msg_qnum,
        bytes: ds.__msg_cbytes,
        capacity: ds.msg_qbytes,
        last_sender: ds.msg_lspid,
        last_receiver: ds.msg_lrpid,
        mode: u32::from(ds.msg_perm.mode) & 0o777,
        creator: ds.msg_perm.cuid,
        owner: ds.msg_perm.uid,
    })
}

/// `msgctl(id, IPC_RMID, NULL)`: removes a queue at once, by identifier; processes
/// waiting in msgsnd or msgrcv on it wake up with EIDRM.
pub fn msgctl_rmid(id: libc::c_int) -> nix::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument, so null is allowed.
    Errno::result(unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// A kernel limit from /proc/sys, or `None` if it cannot be read.
pub fn limit(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_queue_round_trips_a_message_and_is_removed() {
        // IPC_PRIVATE: a new queue that no key names, so parallel tests cannot collide.
        let mut q = msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600).unwrap();
        q.msgsnd(7, b"hello", false).unwrap();
        assert_eq!(q.stat().unwrap().messages, 1);
        let (mtype, len) = q.msgrcv(0, 100, false).unwrap();
        assert_eq!((mtype, q.text(len)), (7, &b"hello"[..]));
        assert_eq!(q.msgrcv(0, 100, true).unwrap_err(), Errno::ENOMSG);
        q.remove().unwrap();
        assert_eq!(q.stat().unwrap_err(), Errno::EINVAL);
    }

    #[test]
    fn a_message_longer_than_the_buffer_is_e2big_and_stays() {
        let mut q = msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600).unwrap();
        q.msgsnd(1, b"0123456789", false).unwrap();
        assert_eq!(q.msgrcv(0, 4, true).unwrap_err(), Errno::E2BIG);
        assert_eq!(q.stat().unwrap().messages, 1);
        q.remove().unwrap();
    }

    #[test]
    fn msg_copy_leaves_the_message_and_the_counters_as_they_were() {
        let mut q = msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600).unwrap();
        q.msgsnd(4, b"first", false).unwrap();
        q.msgsnd(5, b"second", false).unwrap();
        let before = q.stat().unwrap();
        let copied = (q.msgrcv_copy(1, 100), q.text(6).to_vec());
        let past_the_end = q.msgrcv_copy(2, 100);
        let after = q.stat().unwrap();
        q.remove().unwrap();
        match copied.0 {
            // A kernel without CONFIG_CHECKPOINT_RESTORE has no MSG_COPY.
            Err(Errno::ENOSYS) => return,
            other => assert_eq!(other, Ok((5, 6))),
        }
        assert_eq!(copied.1, b"second");
        assert_eq!(past_the_end, Err(Errno::ENOMSG));
        assert_eq!(before, after);
    }

    #[test]
    fn types_select_messages() {
        let mut q = msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600).unwrap();
        for (t, text) in [(3, "c"), (1, "a"), (2, "b")] {
            q.msgsnd(t, text.as_bytes(), false).unwrap();
        }
        assert_eq!(q.msgrcv(2, 10, true).unwrap().0, 2, "type 2 exactly");
        assert_eq!(
            q.msgrcv(-3, 10, true).unwrap().0,
            1,
            "the lowest type up to 3"
        );
        assert_eq!(
            q.msgrcv(0, 10, true).unwrap().0,
            3,
            "the first left, of any type"
        );
        q.remove().unwrap();
    }
}
