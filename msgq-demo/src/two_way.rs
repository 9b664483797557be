//! One queue used both ways: requests to a server, replies typed by each client's pid.
//!
//! Follows TLPI 46.7, "Client-Server Programming with Message Queues": a System V queue
//! is not one-way or two-way by itself; it carries whatever its users send. Here one
//! queue carries both directions. A client sends its requests with type
//! [`REQUEST_TYPE`] (1, which no client can have as its pid: pid 1 is `init`) and puts
//! its pid in the request; the server answers each request with a message whose type
//! *is* that pid, and each client receives with `msgtyp` = its own pid, so it takes only
//! the replies meant for it, even when several clients wait on the same queue.
//!
//! The messages, written down for a peer in another language (all integers
//! little-endian, as on x86 and ARM Linux):
//!
//! - request: `mtype = 1`, text = the client's pid (i32) and one frame of
//!   `common::message` (seq u64, len u32, payload, crc32);
//! - goodbye: `mtype = 1`, text = the client's pid alone (4 bytes): it sends no more;
//! - reply: `mtype = the client's pid`, text = the server's pid (i32), the client's pid
//!   (i32) again, and the request's frame sent back as it came.
//!
//! Run `msgq-demo server --clients 2` in one terminal and `msgq-demo client` in two
//! others, or `msgq-demo two-way --clients 2` in one.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use common::message;
use common::narrate::print_summary;
use common::process::{self, Fork, Patience};
use common::tally::Tally;
use common::{Error, Narrator, Result, cleanup, say, tr};

use crate::open::{create, open, remove_on_drop};
use crate::peer::{PEER_CHECK, start_ticker, vanished};
use crate::sys;
use crate::sysv::{Key, Queue};

/// The type of every message to the server: 1, the pid of `init`, which is never a
/// client, so a request can never be taken for a reply.
pub const REQUEST_TYPE: i64 = 1;

/// The bytes of a pid in a message.
const PID_LEN: usize = 4;

/// The largest payload of a request: its frame, the pids and the reply's pids must fit
/// in the smallest msgmax Linux allows by default (8192 bytes).
pub const MAX_SIZE: usize = 4096;

/// Splits a pid from the front of `text`, or `None` if `text` is too short.
fn split_pid(text: &[u8]) -> Option<(i32, &[u8])> {
    let (head, rest) = text.split_at_checked(PID_LEN)?;
    let bytes: [u8; PID_LEN] = head.try_into().ok()?;
    Some((i32::from_le_bytes(bytes), rest))
}

/// What the server did, for its summary line.
#[derive(Debug, Default, Clone, Copy)]
struct Served {
    clients: u64,
    requests: u64,
    refused: u64,
}

// ANCHOR: serve
/// The server: takes every request (type 1) from the queue, and answers it on a message
/// typed by the pid the request carries, until `clients` clients have said goodbye.
/// While it waits, it checks that every client it is talking to still lives: a client
/// killed before its goodbye would keep the server waiting for ever.
pub fn serve(n: &Narrator, q: &mut Queue, clients: u64) -> Result<()> {
    let me = nix::unistd::getpid().as_raw();
    let max = crate::msgmax();
    let talking: Rc<RefCell<BTreeSet<i32>>> = Rc::default();
    let mut patience = {
        let talking = Rc::clone(&talking);
        Patience::new(
            n,
            tr!(
                "no request yet: I wait for a client (msgrcv of type {request} blocks; every \
                 {every} the timer interrupts it, and I check that my clients live)",
                request = REQUEST_TYPE,
                every = format!("{PEER_CHECK:?}")
            ),
            move || match talking
                .borrow()
                .iter()
                .find(|&&pid| !process::is_alive(pid))
            {
                Some(&pid) => Err(process::gone("client", pid).hint(tr!(
                    "client {pid} died before its goodbye; the replies it did not take would \
                     stay in the queue, typed by a pid nobody waits for",
                    pid
                ))),
                None => Ok(()),
            },
        )
    };
    let _ticker = start_ticker(n, "msgrcv", "client")?;
    let mut served = Served::default();
    let mut reply = Vec::new();
    for _ in n.first_few(0.., tr!("serving the rest without narration")) {
        if served.clients == clients {
            break;
        }
        let got = sys::msgrcv(n, q, REQUEST_TYPE, max, &mut patience).map_err(vanished)?;
        // The request is untrusted: a pid of 1 or less would type the reply as a request
        // (or be refused by msgsnd, whose mtype must be positive).
        let Some((client, frame)) = split_pid(q.text(got.len)).filter(|&(pid, _)| pid > 1) else {
            served.refused += 1;
            say!(
                n,
                "a request without a client's pid: no reply can reach its sender"
            );
            continue;
        };
        if frame.is_empty() {
            talking.borrow_mut().remove(&client);
            served.clients += 1;
            say!(n, "client {client} said goodbye", client);
            continue;
        }
        talking.borrow_mut().insert(client);
        reply.clear();
        reply.extend_from_slice(&me.to_le_bytes());
        reply.extend_from_slice(&client.to_le_bytes());
        reply.extend_from_slice(frame);
        sys::msgsnd(n, q, i64::from(client), &reply, false, &mut patience).map_err(vanished)?;
        served.requests += 1;
    }
    print_summary(format_args!(
        "summary: clients={} requests={} replies={} refused={}",
        served.clients, served.requests, served.requests, served.refused
    ))
}
// ANCHOR_END: serve

// ANCHOR: request
/// A client: sends `count` requests of `size` bytes, each followed by a `msgrcv` of
/// type = its own pid, which takes only the reply meant for it; checks that each reply
/// names this client and carries the frame it sent, then says goodbye.
pub fn request(n: &Narrator, q: &mut Queue, count: u64, size: usize) -> Result<()> {
    let me = nix::unistd::getpid().as_raw();
    let max = crate::msgmax();
    // The server's pid arrives with its first reply. Before that, a server that ends
    // removes the queue (also on Ctrl-C), and msgrcv fails with EIDRM.
    let server = Rc::new(Cell::new(0));
    let mut patience = {
        let server = Rc::clone(&server);
        Patience::new(
            n,
            tr!(
                "no reply for me yet: I wait for the server (msgrcv of type {me}, my pid, \
                 blocks; every {every} the timer interrupts it, and I check the server)",
                me,
                every = format!("{PEER_CHECK:?}")
            ),
            move || match server.get() {
                pid if pid > 0 && !process::is_alive(pid) => Err(process::gone("server", pid)),
                _ => Ok(()),
            },
        )
    };
    let _ticker = start_ticker(n, "msgrcv", "server")?;
    let mut tally = Tally::new(count);
    let mut others = 0u64;
    let (mut request, mut frame) = (Vec::new(), Vec::new());
    for seq in n.first_few(0..count, tr!("the rest without narration")) {
        message::encode_into(seq, size, &mut frame);
        request.clear();
        request.extend_from_slice(&me.to_le_bytes());
        request.extend_from_slice(&frame);
        sys::msgsnd(n, q, REQUEST_TYPE, &request, false, &mut patience).map_err(vanished)?;
        let got = sys::msgrcv(n, q, i64::from(me), max, &mut patience).map_err(vanished)?;
        let text = q.text(got.len);
        match split_pid(text).and_then(|(from, rest)| Some((from, split_pid(rest)?))) {
            Some((from, (to, echoed))) => {
                server.set(from);
                if to != me || got.mtype != i64::from(me) {
                    others += 1;
                }
                match message::decode(echoed, max) {
                    Ok(frame) => tally.record(&frame),
                    Err(_) => tally.record_undecodable(echoed.len()),
                }
            }
            None => tally.record_undecodable(text.len()),
        }
    }
    request.clear();
    request.extend_from_slice(&me.to_le_bytes());
    sys::msgsnd(n, q, REQUEST_TYPE, &request, false, &mut patience).map_err(vanished)?;
    say!(
        n,
        "{mine} replies were addressed to me (pid {me}), {others} to another client",
        mine = tally.received() - others,
        me,
        others
    );
    print_summary(tally.summary())?;
    if others > 0 {
        return Err(Error::bad_data(
            tr!("check a reply's addressee"),
            tr!("{others} replies were meant for another client", others),
        ));
    }
    tally.verdict()
}
// ANCHOR_END: request

/// `server`: creates the queue, serves `clients` clients, and removes the queue.
pub fn server(n: &Narrator, key: Key, mode: u32, clients: u64) -> Result<()> {
    let mut q = create(n, key, mode)?;
    let _remove = remove_on_drop(n, &q);
    cleanup::exit_on_interrupt(n)?;
    n.announce(tr!(
        "ready: start {clients} clients (`msgq-demo client`) in other terminals",
        clients
    ));
    serve(n, &mut q, clients)
}

/// `client`: opens the server's queue and makes `count` requests.
pub fn client(n: &Narrator, key: Key, count: u64, size: usize) -> Result<()> {
    let mut q = open(n, key)?;
    cleanup::exit_on_interrupt(n)?;
    request(n, &mut q, count, size)
}

// ANCHOR: two_way
/// One terminal: the server creates the queue and forks `clients` clients, which open it
/// by the same key and make their requests at the same time; the server answers them all.
pub fn two_way(
    n: &Narrator,
    key: Key,
    mode: u32,
    clients: u64,
    count: u64,
    size: usize,
) -> Result<()> {
    let mut q = create(n, key, mode)?;
    let remove = remove_on_drop(n, &q);
    let mut children = Vec::new();
    for _ in 0..clients {
        match process::fork(n, "client")? {
            Fork::Child(me) => {
                let result = open(&me, key).and_then(|mut q| request(&me, &mut q, count, size));
                process::exit_child(&me, result)
            }
            Fork::Parent { child } => children.push(child),
        }
    }
    cleanup::exit_on_interrupt(n)?;
    let served = serve(n, &mut q, clients);
    for child in children {
        process::wait_for(n, child, "client")?;
    }
    drop(remove);
    served
}
// ANCHOR_END: two_way

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_is_split_from_the_front_and_a_short_text_has_none() {
        let mut text = 4242i32.to_le_bytes().to_vec();
        text.push(7);
        assert_eq!(split_pid(&text), Some((4242, &[7u8][..])));
        assert_eq!(split_pid(&[1, 2, 3]), None);
    }
}
