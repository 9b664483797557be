//! Message queues: System V (`msgctl(IPC_STAT)` and the messages by type, copied with
//! `MSG_COPY` and left in place) and POSIX (`mq_getattr` and the `QSIZE` line of the
//! queue's file in the mqueue file system).

use std::collections::BTreeMap;
use std::os::fd::AsFd;

use msgq_demo::sysv::{self, Key};
use nix::errno::Errno;
use nix::mqueue::{MQ_OFlag, mq_close, mq_getattr, mq_open};
use nix::sys::stat::Mode;

use crate::procfs;
use crate::view::{Part, Screen, Unit};

/// The most messages one look copies (each `MSG_COPY` walks the queue from its start).
const MAX_COPIED: i64 = 4096;

/// What one message in the queue is, as far as the view cares.
#[derive(Debug, Clone, Copy)]
struct Seen {
    mtype: i64,
    len: usize,
    /// The sequence number of the demo frame it carries, if it is one.
    seq: Option<u64>,
}

/// The System V queue with key `key`.
pub fn look_sysv(key: Key) -> Screen {
    let mut screen = Screen::new(common::tr!(
        "System V message queue, key {key}",
        key = format!("{:#010x}", key as u32)
    ));
    let mut queue = match sysv::msgget(key, 0) {
        Ok(q) => q,
        Err(Errno::ENOENT) => {
            screen.push(Part::Missing(common::tr!(
                "no queue has this key (yet): waiting for a producer (see `ipcs -q`)"
            )));
            return screen;
        }
        Err(errno) => {
            screen.push(Part::Missing(format!(
                "msgget(key, 0) = -1 {}",
                common::error::errno_name(errno)
            )));
            return screen;
        }
    };
    let status = match queue.stat() {
        Ok(s) => s,
        Err(errno) => {
            screen.push(Part::Missing(format!(
                "msgctl({}, IPC_STAT) = -1 {}",
                queue.id(),
                common::error::errno_name(errno)
            )));
            return screen;
        }
    };
    screen.title = common::tr!(
        "System V message queue, key {key} (id {id})",
        key = format!("{:#010x}", key as u32),
        id = queue.id()
    );
    screen.gauge(
        common::tr!("messages (msg_qnum)"),
        status.messages,
        0,
        Unit::Messages,
    );
    screen.gauge(
        common::tr!("bytes (msg_cbytes of msg_qbytes)"),
        status.bytes,
        status.capacity,
        Unit::Bytes,
    );
    for (label, pid) in [
        (common::tr!("last msgsnd"), status.last_sender),
        (common::tr!("last msgrcv"), status.last_receiver),
    ] {
        let text = if pid == 0 {
            common::tr!("nobody yet")
        } else {
            procfs::who_and_what(pid)
        };
        screen.line(label, text);
    }
    match copy_all(&mut queue, status.messages) {
        Ok(messages) => by_type(&mut screen, &messages, status.messages),
        Err(errno) => screen.line(
            common::tr!("by type"),
            match errno {
                Errno::ENOSYS => common::tr!(
                    "not visible: msgrcv(MSG_COPY) needs a kernel built with CONFIG_CHECKPOINT_RESTORE"
                ),
                other => format!(
                    "msgrcv(MSG_COPY) = -1 {}",
                    common::error::errno_name(other)
                ),
            },
        ),
    }
    screen
}

/// One line per message type: how many, how many bytes, which sequence numbers.
fn by_type(screen: &mut Screen, messages: &[Seen], total: u64) {
    let mut types: BTreeMap<i64, Vec<Seen>> = BTreeMap::new();
    for m in messages {
        types.entry(m.mtype).or_default().push(*m);
    }
    for (mtype, seen) in &types {
        let bytes: usize = seen.iter().map(|m| m.len).sum();
        let seqs: Vec<u64> = seen.iter().filter_map(|m| m.seq).collect();
        let seq = match (seqs.first(), seqs.last()) {
            (Some(first), Some(last)) if first == last => common::tr!(", seq {first}", first),
            (Some(first), Some(last)) => common::tr!(", seq {first}..{last}", first, last),
            _ => String::new(),
        };
        screen.gauge(
            common::tr!("type {mtype}: {bytes} bytes{seq}", mtype, bytes, seq),
            seen.len() as u64,
            total,
            Unit::Messages,
        );
    }
    if (messages.len() as u64) < total {
        screen.line(
            common::tr!("by type"),
            common::tr!(
                "the first {shown} of {total} messages",
                shown = messages.len(),
                total
            ),
        );
    }
}

// ANCHOR: copy_all
/// Copies the messages of `queue` one by one, from the front, without taking them:
/// `msgrcv(id, buf, size, index, IPC_NOWAIT | MSG_COPY | MSG_NOERROR)` (msgrcv(2),
/// msgq-demo's [`sysv::Queue::msgrcv_copy`]). The kernel then leaves the queue, its
/// counters and its last-receiver pid as they were.
fn copy_all(queue: &mut sysv::Queue, count: u64) -> nix::Result<Vec<Seen>> {
    let max = msgq_demo::msgmax();
    let mut seen = Vec::new();
    let last = i64::try_from(count).unwrap_or(i64::MAX).min(MAX_COPIED);
    for index in 0..last {
        let (mtype, len) = match queue.msgrcv_copy(index, max) {
            Ok(copied) => copied,
            // The queue became shorter since IPC_STAT: a consumer took some.
            Err(Errno::ENOMSG) => break,
            Err(errno) => return Err(errno),
        };
        let seq = common::message::decode(queue.text(len), max)
            .ok()
            .map(|f| f.seq);
        seen.push(Seen { mtype, len, seq });
    }
    Ok(seen)
}
// ANCHOR_END: copy_all

/// The POSIX queue `name` (`/ipc-demos-mq-0`).
pub fn look_posix(name: &str) -> Screen {
    let mut screen = Screen::new(common::tr!("POSIX message queue {name}", name));
    // O_RDONLY: the attributes need a descriptor; a POSIX queue counts no readers or
    // writers, so opening it changes nothing the demo sees. O_NONBLOCK: never wait.
    let mq = match mq_open(
        name,
        MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK,
        Mode::empty(),
        None,
    ) {
        Ok(mq) => mq,
        Err(Errno::ENOENT) => {
            screen.push(Part::Missing(common::tr!(
                "no queue with this name (yet): waiting for `msgq-demo posix`"
            )));
            return screen;
        }
        Err(errno) => {
            screen.push(Part::Missing(format!(
                "mq_open({name:?}, O_RDONLY) = -1 {}",
                common::error::errno_name(errno)
            )));
            return screen;
        }
    };
    let owner = nix::sys::stat::fstat(mq.as_fd()).map(|st| st.st_uid);
    let attr = mq_getattr(&mq);
    let _ = mq_close(mq);
    let attr = match attr {
        Ok(attr) => attr,
        Err(errno) => {
            screen.push(Part::Missing(format!(
                "mq_getattr = -1 {}",
                common::error::errno_name(errno)
            )));
            return screen;
        }
    };
    let (current, most, size) = (
        u64::try_from(attr.curmsgs()).unwrap_or(0),
        u64::try_from(attr.maxmsg()).unwrap_or(0),
        u64::try_from(attr.msgsize()).unwrap_or(0),
    );
    screen.gauge(
        common::tr!("messages (mq_curmsgs of mq_maxmsg)"),
        current,
        most,
        Unit::Messages,
    );
    match qsize(name) {
        Some(Ok(bytes)) => screen.gauge(
            common::tr!("bytes (QSIZE of mq_maxmsg x mq_msgsize)"),
            bytes,
            most * size,
            Unit::Bytes,
        ),
        Some(Err(why)) => screen.line(common::tr!("bytes"), why),
        None => screen.line(
            common::tr!("bytes"),
            common::tr!(
                "not visible: the mqueue file system is not mounted (as root: mkdir -p /dev/mqueue; mount -t mqueue none /dev/mqueue)"
            ),
        ),
    }
    screen.line(
        common::tr!("largest message (mq_msgsize)"),
        common::tr!("{size} bytes", size),
    );
    if let Ok(uid) = owner {
        if uid != nix::unistd::Uid::current().as_raw() {
            screen.line(
                common::tr!("owner"),
                common::tr!("user {uid}, not you", uid),
            );
        }
    }
    screen
}

/// The `QSIZE:` of the queue's file where the mqueue file system is mounted (found in
/// /proc/self/mountinfo, usually /dev/mqueue); `None` if it is mounted nowhere.
fn qsize(name: &str) -> Option<Result<u64, String>> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let dir = mounts.lines().find_map(|line| {
        // "36 35 0:29 / /dev/mqueue rw,... - mqueue mqueue rw": the mount point is the
        // fifth field, the file system type the first after " - ".
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "mqueue")
            .then(|| left.split_whitespace().nth(4).map(str::to_string))
            .flatten()
    })?;
    let path = format!("{dir}/{}", name.trim_start_matches('/'));
    Some(match std::fs::read_to_string(&path) {
        Ok(text) => parse_qsize(&text).ok_or_else(|| common::tr!("no QSIZE in {path}", path)),
        Err(e) => Err(format!("{path}: {e}")),
    })
}

/// The number after `QSIZE:` in `QSIZE:240 NOTIFY:0 SIGNO:0 NOTIFY_PID:0`.
fn parse_qsize(text: &str) -> Option<u64> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("QSIZE:"))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qsize_is_read_from_the_queue_file() {
        assert_eq!(
            parse_qsize("QSIZE:240        NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n"),
            Some(240)
        );
        assert_eq!(parse_qsize("NOTIFY:0"), None);
    }

    #[test]
    fn msg_copy_leaves_the_messages_and_the_last_receiver_as_they_were() {
        let mut q = sysv::msgget(libc::IPC_PRIVATE, libc::IPC_CREAT | 0o600).unwrap();
        let mut frame = Vec::new();
        common::message::encode_into(7, 10, &mut frame);
        q.msgsnd(2, &frame, true).unwrap();
        q.msgsnd(1, b"not a frame", true).unwrap();
        let before = q.stat().unwrap();
        let copied = copy_all(&mut q, before.messages);
        let after = q.stat().unwrap();
        q.remove().unwrap();
        let copied = copied.unwrap();
        assert_eq!(copied.len(), 2);
        assert_eq!((copied[0].mtype, copied[0].seq), (2, Some(7)));
        assert_eq!(
            (copied[1].mtype, copied[1].len, copied[1].seq),
            (1, 11, None)
        );
        assert_eq!(before, after);
    }
}
