//! Typed messages: the producer sends each type in turn, a consumer takes them by type.

use std::collections::BTreeMap;

use common::message;
use common::narrate::print_summary;
use common::process::{self, Fork, Patience};
use common::tally::Tally;
use common::{Error, HintOn, Narrator, Result, cleanup, say, tr};
use nix::errno::Errno;

use crate::open::{create, open, remove_on_drop};
use crate::peer::{self, PEER_CHECK, Peer, vanished};
use crate::sys;
use crate::sysv::{Key, Queue};

/// What the producer sends: `count` messages of each type, `size` bytes each.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Message types, each at least 1.
    pub types: Vec<i64>,
    /// Messages of each type.
    pub count: u64,
    /// Payload bytes per message.
    pub size: usize,
    /// Fail with EAGAIN instead of waiting when the queue is full.
    pub nowait: bool,
}

// ANCHOR: produce
/// Sends `count` messages of each type in `types`, in turn, each a frame with a
/// `size`-byte payload numbered per type. A full queue makes `msgsnd` wait for a
/// consumer (while `peer` lives), or with `nowait` fail with EAGAIN.
pub fn produce(n: &Narrator, q: &mut Queue, peer: Peer, plan: &Plan) -> Result<()> {
    let capacity = sys::msgctl_stat(n, q.id()).map_err(vanished)?.capacity;
    let mut patience = peer::patience(
        n,
        peer,
        Some(q.id()),
        tr!(
            "the queue is full ({capacity} bytes): I wait for a consumer to make room \
             (msgsnd blocks; every {every} the timer interrupts it, and I check that the \
             consumer lives)",
            capacity,
            every = format!("{PEER_CHECK:?}")
        ),
    );
    // With IPC_NOWAIT, msgsnd never waits: nothing to interrupt.
    let _ticker = if plan.nowait {
        None
    } else {
        Some(peer::start_ticker(n, "msgsnd", "consumer")?)
    };
    let mut frame = Vec::with_capacity(plan.size + message::OVERHEAD);
    for seq in n.first_few(0..plan.count, tr!("sending the rest without narration")) {
        for &mtype in &plan.types {
            message::encode_into(seq, plan.size, &mut frame);
            sys::msgsnd(n, q, mtype, &frame, plan.nowait, &mut patience)
                .hint_on(
                    Errno::EAGAIN,
                    tr!("the queue is full; without --nowait, the producer would wait for a consumer"),
                )
                .map_err(vanished)?;
        }
    }
    Ok(())
}
// ANCHOR_END: produce

/// The types a receive with `msgtyp` can take, of those the producer sends (msgrcv(2)):
/// 0 takes any type, N > 0 type N only, N < 0 any type up to |N|, lowest first.
pub fn matching_types(msgtyp: i64, types: &[i64]) -> Vec<i64> {
    types
        .iter()
        .copied()
        .filter(|&t| msgtyp == 0 || t == msgtyp || (msgtyp < 0 && t <= -msgtyp))
        .collect()
}

/// A `--type` that can take none of the producer's types would wait forever: refuse it.
pub fn check_type(msgtyp: i64, types: &[i64]) -> Result<()> {
    if matching_types(msgtyp, types).is_empty() {
        return Err(Error::usage(tr!(
            "--type {msgtyp} matches none of the types {types}",
            msgtyp,
            types = format!("{types:?}")
        )));
    }
    Ok(())
}

/// The patience of a consumer: what it says when it first has to wait for `producer`.
pub(crate) fn waiting_for_producer(n: &Narrator, producer: Peer, q: &Queue) -> Patience<'static> {
    peer::patience(
        n,
        producer,
        Some(q.id()),
        tr!(
            "no message for me yet: I wait for the producer (msgrcv blocks; every {every} \
             the timer interrupts it, and I check that the producer lives)",
            every = format!("{PEER_CHECK:?}")
        ),
    )
}

// ANCHOR: consume
/// Receives with `msgtyp` until it has `count` messages of each type it can take, checks
/// each type's messages as one stream, and prints one summary for all of them.
pub fn consume(
    n: &Narrator,
    q: &mut Queue,
    producer: Peer,
    msgtyp: i64,
    types: &[i64],
    count: u64,
) -> Result<()> {
    check_type(msgtyp, types)?;
    let wanted = matching_types(msgtyp, types);
    let max = crate::msgmax();
    let mut tallies: BTreeMap<i64, Tally> =
        wanted.iter().map(|&t| (t, Tally::new(count))).collect();
    let total = count * wanted.len() as u64;
    let mut patience = waiting_for_producer(n, producer, q);
    let ticker = peer::start_ticker(n, "msgrcv", "producer")?;
    for _ in n.first_few(0..total, tr!("receiving the rest without narration")) {
        let got = sys::msgrcv(n, q, msgtyp, max, &mut patience).map_err(vanished)?;
        let text = q.text(got.len);
        match (tallies.get_mut(&got.mtype), message::decode(text, max)) {
            (Some(tally), Ok(frame)) => tally.record(&frame),
            (Some(tally), Err(_)) => tally.record_undecodable(text.len()),
            (None, _) => {
                return Err(Error::bad_data(
                    tr!("check a message's type"),
                    tr!(
                        "a message of type {mtype}, which is not one of {wanted}",
                        mtype = got.mtype,
                        wanted = format!("{wanted:?}")
                    ),
                ));
            }
        }
    }
    drop(ticker);
    let mut all = Tally::new(0);
    for (mtype, tally) in &tallies {
        let counts = tally.summary();
        say!(
            n,
            "type {mtype}: {counts}",
            mtype,
            counts = counts.trim_start_matches("summary: ")
        );
        all.absorb(tally);
    }
    print_summary(all.summary())?;
    all.verdict()
}
// ANCHOR_END: consume

// ANCHOR: exchange
/// Both roles in one terminal: the parent creates the queue and forks; the child opens
/// it by the same key and consumes while the parent produces. Each watches the other.
pub fn exchange(n: &Narrator, key: Key, mode: u32, plan: &Plan) -> Result<()> {
    let mut q = create(n, key, mode)?;
    let remove = remove_on_drop(n, &q);
    let parent = nix::unistd::getpid().as_raw();
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            let producer = Peer::Known {
                role: "producer",
                pid: parent,
            };
            let result = open(&me, key)
                .and_then(|mut q| consume(&me, &mut q, producer, 0, &plan.types, plan.count));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            cleanup::exit_on_interrupt(n)?;
            let consumer = Peer::Known {
                role: "consumer",
                pid: child.as_raw(),
            };
            produce(n, &mut q, consumer, plan)?;
            process::wait_for(n, child, "consumer")?;
            drop(remove);
            Ok(())
        }
    }
}
// ANCHOR_END: exchange
