//! Indirect naming: a mailbox that several senders and several receivers share.
//!
//! Note 001, IPC models, section 3 ("indirect communication"): a sender leaves its message
//! in a mailbox, and a receiver takes it from there; neither names the other. On Linux a
//! mailbox is any kernel object with a name that processes agree on:
//!
//! - [`queue`]: a System V message queue, named by a key (`--via queue`);
//! - [`fifo`]: a FIFO, named by a path (`--via fifo`);
//! - [`socket`]: a datagram socket bound at a path, held by the receivers (`--via socket`).
//!
//! The observer (the parent) creates the mailbox, forks the receivers and the senders,
//! and reads the [`crate::timeline`], where each sender records what it sent and each
//! receiver what it took. One link joins them all: every message goes to exactly one
//! receiver, whichever asked first, and the observer checks that none was lost or taken
//! twice. When every sender is done, the observer tells the receivers that no more will
//! come (an empty message, or end of file), and at the end shows who owns the mailbox
//! and when it goes away, which is where the three kinds differ most.
//!
//! Usage: `passing-demo mailbox [--via queue|fifo|socket] [--senders 3] [--receivers 2]
//! [--count 10]`. See also: svipc(7), fifo(7), unix(7), [`crate::datagram`] for direct
//! naming.

pub mod fifo;
pub mod queue;
pub mod socket;

use common::message;
use common::narrate::print_summary;
use common::{Error, Narrator, Result, cleanup, say, tr};

use crate::crew::Crew;
use crate::timeline::{Event, Recorder, Timeline, What};
use crate::{Names, RECEIVERS, SENDERS};

/// Which kind of mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Via {
    /// A System V message queue, named by a key.
    Queue,
    /// A FIFO, named by a path.
    Fifo,
    /// A datagram socket bound at a path.
    Socket,
}

impl Via {
    fn word(self) -> &'static str {
        match self {
            Via::Queue => "queue",
            Via::Fifo => "fifo",
            Via::Socket => "socket",
        }
    }
}

/// How many senders, receivers and messages.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Senders to start (1 to [`crate::MAX_CREW`]).
    pub senders: usize,
    /// Receivers to start (1 to [`crate::MAX_CREW`]).
    pub receivers: usize,
    /// Messages each sender sends.
    pub count: u64,
    /// Payload bytes per message.
    pub size: usize,
}

impl Plan {
    /// Refuses a plan that cannot run (exit code 2). A message must fit in one atomic
    /// FIFO write (PIPE_BUF) and in one System V message.
    pub fn check(&self) -> Result<()> {
        let max_size = libc::PIPE_BUF - message::OVERHEAD;
        if !(1..=crate::MAX_CREW).contains(&self.senders)
            || !(1..=crate::MAX_CREW).contains(&self.receivers)
            || !(1..=100_000).contains(&self.count)
            || !(1..=max_size).contains(&self.size)
        {
            return Err(Error::usage(tr!(
                "mailbox takes --senders and --receivers 1 to {crew}, --count 1 to 100000, --size 1 to {max_size}",
                crew = crate::MAX_CREW,
                max_size
            )));
        }
        Ok(())
    }

    /// Bytes in one message.
    pub fn frame_len(&self) -> usize {
        message::OVERHEAD + self.size
    }
}

/// One kind of mailbox, as each of its users sees it.
pub trait Mailbox: Sized {
    /// A sender's handle.
    type Sender;
    /// A receiver's handle.
    type Receiver;

    /// In the observer: creates the mailbox and says who owns it.
    fn create(n: &Narrator, names: &Names, plan: &Plan) -> Result<Self>;
    /// In a sender: opens the mailbox by its name.
    fn open_sender(&self, me: &Narrator) -> Result<Self::Sender>;
    /// In a receiver: opens the mailbox by its name (or keeps what it inherited).
    fn open_receiver(&self, me: &Narrator) -> Result<Self::Receiver>;
    /// Leaves one message.
    fn put(me: &Narrator, sender: &mut Self::Sender, frame: &[u8]) -> Result<()>;
    /// Takes one message into `buf`: its length, or `None` when no more will come.
    fn take(me: &Narrator, receiver: &mut Self::Receiver, buf: &mut [u8]) -> Result<Option<usize>>;
    /// In the observer, once every receiver and sender is forked.
    fn all_forked(&mut self, n: &Narrator) -> Result<()>;
    /// In the observer, once every sender is done: no more messages will come.
    fn no_more(&mut self, n: &Narrator, receivers: usize) -> Result<()>;
    /// In the observer, once everyone has exited: what is left, and its removal.
    fn finish(self, n: &Narrator) -> Result<()>;
}

/// Runs the lesson over the chosen kind of mailbox.
pub fn mailbox(n: &Narrator, names: &Names, via: Via, plan: Plan) -> Result<()> {
    plan.check()?;
    match via {
        Via::Queue => run::<queue::Queue>(n, names, via, plan),
        Via::Fifo => run::<fifo::Fifo>(n, names, via, plan),
        Via::Socket => run::<socket::Socket>(n, names, via, plan),
    }
}

// ANCHOR: mailbox
fn run<M: Mailbox>(n: &Narrator, names: &Names, via: Via, plan: Plan) -> Result<()> {
    let mut mailbox = M::create(n, names, &plan)?;
    let timeline = Timeline::new(n)?;
    let mut crew = Crew::new();
    for (r, role) in RECEIVERS.iter().enumerate().take(plan.receivers) {
        crew.spawn(n, role, |me| {
            receive(me, &mailbox, &timeline.recorder(r as u8), &plan)
        })?;
    }
    for (s, role) in SENDERS.iter().enumerate().take(plan.senders) {
        crew.spawn(n, role, |me| {
            send(me, &mailbox, &timeline.recorder(s as u8), s, &plan)
        })?;
    }
    mailbox.all_forked(n)?;
    cleanup::exit_on_interrupt(n)?;
    let mut tally = Tally::new(&plan);
    let (mut done, mut ready) = (0, 0);
    timeline.follow(n, &crew, |_, event| {
        match tally.record(event)? {
            What::Done => done += 1,
            What::Receiving => ready += 1,
            _ => return Ok(false),
        }
        // "No more" waits for every receiver to have opened the mailbox too: a FIFO
        // opened for reading after its last writer is gone would wait for a writer
        // forever (fifo(7)).
        if done == plan.senders && ready == plan.receivers {
            n.announce(tr!(
                "every sender is done and every receiver has the mailbox open: I tell the receivers that no more will come"
            ));
            mailbox.no_more(n, plan.receivers)?;
        }
        Ok(true)
    })?;
    crew.wait_all(n)?;
    mailbox.finish(n)?;
    tally.report(n, &crew);
    print_summary(format_args!(
        "summary: via={} senders={} receivers={} {}",
        via.word(),
        plan.senders,
        plan.receivers,
        tally.counts()
    ))?;
    tally.verdict()
}

/// A sender: opens the mailbox by its name and leaves its messages, numbered so that
/// sender `index` sends `index * count` to `index * count + count - 1`.
fn send<M: Mailbox>(
    me: &Narrator,
    m: &M,
    rec: &Recorder<'_>,
    index: usize,
    plan: &Plan,
) -> Result<()> {
    let mut sender = m.open_sender(me)?;
    let mut frame = Vec::with_capacity(plan.frame_len());
    for k in me.first_few(
        0..plan.count,
        tr!("the remaining messages without narration"),
    ) {
        let seq = index as u64 * plan.count + k;
        message::encode_into(seq, plan.size, &mut frame);
        M::put(me, &mut sender, &frame)?;
        rec.record(What::Sent, seq, 0)?;
    }
    rec.record(What::Done, 0, plan.count)
}

/// A receiver: takes messages until no more will come, checking each (a message from
/// another process is untrusted) and recording which it took.
fn receive<M: Mailbox>(me: &Narrator, m: &M, rec: &Recorder<'_>, plan: &Plan) -> Result<()> {
    let mut receiver = m.open_receiver(me)?;
    rec.record(What::Receiving, 0, 0)?;
    let mut buf = vec![0u8; plan.frame_len()];
    let mut took = 0u64;
    for _ in me.first_few(0.., tr!("the remaining messages without narration")) {
        let Some(len) = M::take(me, &mut receiver, &mut buf)? else {
            break;
        };
        match message::decode(&buf[..len], plan.size) {
            Ok(frame) if frame.intact => rec.record(What::Took, frame.seq, 0)?,
            _ => rec.record(What::Took, u64::MAX, CORRUPT)?,
        }
        took += 1;
    }
    me.announce(tr!("no more messages will come; I took {took}", took));
    Ok(())
}
// ANCHOR_END: mailbox

/// The value of a Took record for a message that failed its checks.
const CORRUPT: u64 = 1;

/// The observer's count of the timeline: who sent what, who took what.
struct Tally {
    plan: Plan,
    /// How many times each message was taken.
    taken: Vec<u32>,
    /// What each receiver took, in the order it took it.
    by_receiver: Vec<Vec<u64>>,
    sent: u64,
    corrupt: u64,
    out_of_order: u64,
}

impl Tally {
    fn new(plan: &Plan) -> Tally {
        let total = plan.senders as u64 * plan.count;
        Tally {
            plan: *plan,
            taken: vec![0; usize::try_from(total).unwrap_or(0)],
            by_receiver: vec![Vec::new(); plan.receivers],
            sent: 0,
            corrupt: 0,
            out_of_order: 0,
        }
    }

    /// Counts one event; an event that cannot be (a number out of range, a receiver
    /// that does not exist) is an error: the timeline is checked like any other input.
    fn record(&mut self, e: &Event) -> Result<What> {
        let bad = || Error::bad_data("read(timeline)", tr!("an event that cannot be"));
        match e.what {
            What::Sent => self.sent += 1,
            What::Took if e.value == CORRUPT => self.corrupt += 1,
            What::Took => {
                let taken = usize::try_from(e.seq)
                    .ok()
                    .and_then(|i| self.taken.get_mut(i));
                let mine = self.by_receiver.get_mut(usize::from(e.actor));
                let (Some(count), Some(mine)) = (taken, mine) else {
                    return Err(bad());
                };
                *count += 1;
                // One sender's messages leave the mailbox in the order they went in, so
                // a receiver sees each sender's numbers rise.
                let sender = e.seq / self.plan.count;
                if mine.iter().rev().find(|s| *s / self.plan.count == sender) > Some(&e.seq) {
                    self.out_of_order += 1;
                }
                mine.push(e.seq);
            }
            What::Done | What::Receiving => {}
            What::Full | What::Probe => return Err(bad()),
        }
        Ok(e.what)
    }

    fn received(&self) -> u64 {
        self.taken.iter().map(|&t| u64::from(t)).sum()
    }

    fn counts(&self) -> String {
        let duplicated: u64 = self
            .taken
            .iter()
            .map(|&t| u64::from(t.saturating_sub(1)))
            .sum();
        let missing = self.taken.iter().filter(|&&t| t == 0).count();
        format!(
            "sent={} received={} duplicated={duplicated} missing={missing} corrupt={} out_of_order={}",
            self.sent,
            self.received(),
            self.corrupt,
            self.out_of_order
        )
    }

    /// Says which receiver took which messages, by sender.
    fn report(&self, n: &Narrator, crew: &Crew) {
        let pids = crew.pids();
        for (r, seqs) in self.by_receiver.iter().enumerate() {
            let role = RECEIVERS[r];
            let pid = pids.get(r).map_or(0, |p| p.as_raw());
            let took = seqs.len();
            say!(n, "{role} (pid {pid}) took {took}:", role, pid, took);
            for (s, sender) in SENDERS.iter().enumerate().take(self.plan.senders) {
                let from: Vec<String> = seqs
                    .iter()
                    .filter(|&&q| q / self.plan.count == s as u64)
                    .map(|q| (q % self.plan.count).to_string())
                    .collect();
                let list = shorten(&from);
                say!(n, "    from {sender}: {list}", sender, list);
            }
        }
    }

    fn verdict(&self) -> Result<()> {
        let total = self.plan.senders as u64 * self.plan.count;
        let perfect = self.sent == total
            && self.taken.iter().all(|&t| t == 1)
            && self.corrupt == 0
            && self.out_of_order == 0;
        if perfect {
            return Ok(());
        }
        Err(Error::bad_data(
            "check the mailbox",
            tr!("messages were lost, taken twice, damaged or out of order: see the summary"),
        ))
    }
}

/// `0 1 2 ... 9` (the first ten, then how many more).
fn shorten(items: &[String]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    let shown = items.iter().take(10).cloned().collect::<Vec<_>>().join(" ");
    match items.len().saturating_sub(10) {
        0 => shown,
        more => format!("{shown} (+{more})"),
    }
}
