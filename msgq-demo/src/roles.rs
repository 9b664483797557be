//! The roles as the command line starts them, and the names the two sides agree on.
//!
//! Each role names itself (the `[producer 4242]` of its narration), makes its narrator
//! and runs its lesson; `main.rs` only parses the command line and calls one of these.
//! The queues' default names are here too, for the demo and for `ipc-watch`, which looks
//! at the same queues.

use std::path::Path;

use common::narrate::print_summary;
use common::{Error, HintOn, NarrationArgs, Narrator, Result, cleanup, tr};
use nix::errno::Errno;

use crate::exchange::{self, Plan, consume, produce};
use crate::open::{create, open, remove_on_drop};
use crate::peer::{Peer, vanished};
use crate::sys;
use crate::sysv::{Key, Queue};

/// The default POSIX queue's name: `/ipc-demos-mq-UID`, one per user.
pub fn default_name() -> String {
    format!("/ipc-demos-mq-{}", nix::unistd::Uid::current())
}

/// The project number of the default key: `ftok(path, 'q')`.
pub const PROJECT: u8 = b'q';

/// The default System V key, made by `ftok` from `path` (by default the per-user
/// private folder, which both sides know) and [`PROJECT`].
pub fn default_key(n: &Narrator, path: Option<&Path>) -> Result<Key> {
    let private;
    let path = match path {
        Some(path) => path,
        None => {
            private = common::paths::private_dir()?;
            &private
        }
    };
    sys::ftok(n, path, PROJECT)
}

/// Parses a key given on the command line: `0x71000001` or `1895825409`, never 0
/// (IPC_PRIVATE, which no other process can find).
pub fn parse_key(text: &str) -> std::result::Result<Key, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).map(|k| k as Key),
        None => text.parse::<Key>(),
    };
    match parsed {
        Ok(0) => Err(tr!("key 0 is IPC_PRIVATE, which no other process can find")),
        Ok(k) => Ok(k),
        Err(_) => Err(tr!(
            "`{text}` is not a key (a number such as 0x71000001)",
            text
        )),
    }
}

/// Where the System V key comes from: given, or made by `ftok` from a path.
#[derive(Debug, Clone, Default)]
pub struct KeyArgs {
    /// `--key`.
    pub key: Option<Key>,
    /// `--path`, for `ftok`.
    pub path: Option<std::path::PathBuf>,
}

impl KeyArgs {
    /// The key: `--key`, or `ftok(--path or the private folder, 'q')`.
    pub fn key(&self, n: &Narrator) -> Result<Key> {
        match self.key {
            Some(key) => Ok(key),
            None => default_key(n, self.path.as_deref()),
        }
    }
}

/// No subcommand: both roles in one terminal, the parent producing, the child consuming.
pub fn both(narration: NarrationArgs, key: &KeyArgs, mode: u32, plan: &Plan) -> Result<()> {
    let n = Narrator::new("producer", narration);
    exchange::exchange(&n, key.key(&n)?, mode, plan)
}

/// `producer`: makes the queue, optionally shrinks it, sends, and leaves the queue (with
/// its messages) for the consumer.
pub fn producer(
    narration: NarrationArgs,
    key: &KeyArgs,
    mode: u32,
    capacity: Option<u64>,
    plan: &Plan,
) -> Result<()> {
    if let Some(bytes) = capacity {
        check_capacity(bytes, plan.size)?;
    }
    let n = Narrator::new("producer", narration);
    let key = key.key(&n)?;
    let mut q = create(&n, key, mode)?;
    let remove = remove_on_drop(&n, &q);
    cleanup::exit_on_interrupt(&n)?;
    if let Some(bytes) = capacity {
        set_capacity(&n, &q, bytes)?;
    }
    produce(&n, &mut q, Peer::LastReceiver, plan)?;
    // The queue is the consumer's now: it outlives this process.
    remove.disarm();
    n.announce(tr!(
        "done: the queue (key {key}, id {id}) stays after I exit; see `ipcs -q`",
        key = sys::key_shown(key),
        id = q.id()
    ));
    Ok(())
}

/// The largest `--capacity`: the kernel takes `msg_qbytes` as a 32-bit `int` (on this
/// machine, 4294967296 was stored as 0 and 4294967301 as 5, and 2147483648 refused), so
/// a larger number cannot mean what it says.
pub const MAX_CAPACITY: u64 = i32::MAX as u64;

/// Refuses a capacity that could never hold one message: `msgsnd` would wait for room
/// for ever, since no consumer can take a message that never got in.
pub fn check_capacity(bytes: u64, size: usize) -> Result<()> {
    let one = (size + common::message::OVERHEAD) as u64;
    if bytes < one {
        return Err(Error::usage(tr!(
            "--capacity {bytes}: the queue could not hold even one message of {one} bytes \
             (--size {size} and the 16-byte frame), so the producer would wait for ever; \
             use --capacity {one} or more",
            bytes,
            one,
            size
        )));
    }
    if bytes > MAX_CAPACITY {
        return Err(Error::usage(tr!(
            "--capacity {bytes}: over {most}, the largest msg_qbytes the kernel takes",
            bytes,
            most = MAX_CAPACITY
        )));
    }
    Ok(())
}

/// `msgctl(IPC_SET)` of the capacity, then `msgctl(IPC_STAT)` to check what the kernel
/// kept: a value it stored differently would make the lesson (and the wait) wrong.
fn set_capacity(n: &Narrator, q: &Queue, bytes: u64) -> Result<()> {
    sys::msgctl_set_qbytes(n, q, bytes)
        .hint_on(
            Errno::EPERM,
            tr!("only root may raise the capacity above /proc/sys/kernel/msgmnb"),
        )
        .map_err(vanished)?;
    let kept = sys::msgctl_stat(n, q.id()).map_err(vanished)?.capacity;
    if kept != bytes {
        return Err(Error::bad_data(
            sys::msgctl_stat_call(q.id()),
            tr!(
                "the kernel kept msg_qbytes={kept}, not the {bytes} asked for",
                kept,
                bytes
            ),
        ));
    }
    Ok(())
}

/// `consumer`: opens the queue, receives, and removes the queue if it is empty (if not,
/// the messages left are for other consumers, and the last one removes it).
pub fn consumer(narration: NarrationArgs, key: &KeyArgs, msgtyp: i64, plan: &Plan) -> Result<()> {
    exchange::check_type(msgtyp, &plan.types)?;
    let n = Narrator::new("consumer", narration);
    let mut q = open(&n, key.key(&n)?)?;
    let remove = remove_on_drop(&n, &q);
    cleanup::exit_on_interrupt(&n)?;
    consume(
        &n,
        &mut q,
        Peer::LastSender,
        msgtyp,
        &plan.types,
        plan.count,
    )?;
    finish(&n, &q, remove)
}

/// Removes the queue if it is empty (the guard does it as it drops), or leaves it for
/// the other consumers.
fn finish(n: &Narrator, q: &Queue, remove: cleanup::Guard) -> Result<()> {
    match sys::msgctl_stat(n, q.id()) {
        Ok(status) if status.messages > 0 => {
            remove.disarm();
            n.say(tr!(
                "{left} messages are left for other consumers; the last one removes the queue",
                left = status.messages
            ));
        }
        // Empty, or already removed by another consumer: nothing to keep.
        _ => drop(remove),
    }
    Ok(())
}

/// `consumer --raw`: prints each message's type and text as it arrives, `count` messages
/// in all, so that a producer in another language can be checked by eye.
pub fn consumer_raw(
    narration: NarrationArgs,
    key: &KeyArgs,
    msgtyp: i64,
    count: u64,
) -> Result<()> {
    let n = Narrator::new("consumer", narration);
    let mut q = open(&n, key.key(&n)?)?;
    let remove = remove_on_drop(&n, &q);
    cleanup::exit_on_interrupt(&n)?;
    let max = crate::msgmax();
    let mut bytes = 0;
    let mut patience = exchange::waiting_for_producer(&n, Peer::LastSender, &q);
    let ticker = crate::peer::start_ticker(&n, "msgrcv", "producer")?;
    for _ in n.first_few(0..count, tr!("receiving the rest without narration")) {
        let got = sys::msgrcv(&n, &mut q, msgtyp, max, &mut patience).map_err(vanished)?;
        let text = q.text(got.len);
        bytes += text.len();
        // The raw output itself, not narration: one line per message, always.
        print_summary(format_args!(
            "type={} bytes={}: {}",
            got.mtype,
            text.len(),
            String::from_utf8_lossy(text).escape_debug()
        ))?;
    }
    drop(ticker);
    print_summary(format_args!("summary: messages={count} bytes={bytes}"))?;
    finish(&n, &q, remove)
}

/// `status`: what the kernel knows about the queue.
pub fn status(narration: NarrationArgs, key: &KeyArgs) -> Result<()> {
    let n = Narrator::new("status", narration);
    crate::status(&n, key.key(&n)?)
}

/// `clean`: removes what a killed run left, the System V queue and the POSIX queue.
pub fn clean(narration: NarrationArgs, key: &KeyArgs, name: Option<&str>) -> Result<()> {
    let n = Narrator::new("clean", narration);
    let name = name.map_or_else(default_name, str::to_string);
    crate::clean(&n, key.key(&n)?, &name)
}

/// `posix`: the POSIX queue lesson, on `name` (default [`default_name`]).
pub fn posix(
    narration: NarrationArgs,
    name: Option<&str>,
    args: &crate::posix::Args,
) -> Result<()> {
    let name = name.map_or_else(default_name, str::to_string);
    crate::posix::check(&name, args.size, args.capacity)?;
    crate::posix::posix(&Narrator::new("producer", narration), &name, args)
}

/// `server`: one queue both ways; answers `clients` clients, each on its pid's type.
pub fn server(narration: NarrationArgs, key: &KeyArgs, mode: u32, clients: u64) -> Result<()> {
    let n = Narrator::new("server", narration);
    crate::two_way::server(&n, key.key(&n)?, mode, clients)
}

/// `client`: `count` requests to the server, and only its own replies.
pub fn client(narration: NarrationArgs, key: &KeyArgs, count: u64, size: usize) -> Result<()> {
    let n = Narrator::new("client", narration);
    crate::two_way::client(&n, key.key(&n)?, count, size)
}

/// `two-way`: the server and `clients` forked clients in one terminal.
pub fn two_way(
    narration: NarrationArgs,
    key: &KeyArgs,
    mode: u32,
    clients: u64,
    count: u64,
    size: usize,
) -> Result<()> {
    let n = Narrator::new("server", narration);
    crate::two_way::two_way(&n, key.key(&n)?, mode, clients, count, size)
}

/// Checks the producer's and consumer's plan: the size against msgmax, the types.
pub fn plan(types: &[i64], count: u64, size: usize, nowait: bool) -> Result<Plan> {
    crate::check_size(size)?;
    let mut sorted = types.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != types.len() {
        return Err(Error::usage(tr!(
            "--types {types} names a type twice",
            types = format!("{types:?}")
        )));
    }
    Ok(Plan {
        types: types.to_vec(),
        count,
        size,
        nowait,
    })
}
