//! `dgram`: Unix datagram sockets keep message boundaries, and have a size limit.

use std::os::fd::OwnedFd;
use std::time::Duration;

use common::message;
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::sys::{self, Opt};
use common::tally::Tally;
use common::{Error, HintOn, Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::sys::socket::SockType;
use nix::unistd::Pid;

/// How long the receiver waits in one `recv` before it looks whether the sender lives.
const TICK: Duration = Duration::from_millis(200);

// ANCHOR: dgram
/// Unix datagram sockets: each `send` is one datagram and each `recv` takes exactly one,
/// so no framing is needed; a datagram larger than the socket's send buffer is refused
/// with EMSGSIZE.
pub fn dgram(n: &Narrator, count: u64, size: usize) -> Result<()> {
    let (receiver, sender) = sys::socketpair(n, SockType::Datagram)?;
    let sndbuf = sys::getsockopt_sndbuf(n, &sender)?;
    say!(
        n,
        "no datagram may be larger than the send buffer, {sndbuf} bytes",
        sndbuf
    );
    match process::fork(n, "sender")? {
        Fork::Child(me) => {
            let result =
                sys::close(&me, receiver).and_then(|()| send_datagrams(&me, &sender, count, size));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            sys::close(n, sender)?;
            // A datagram socket has no end-of-file: if the sender dies, recv would wait
            // forever. So wait at most TICK at a time, and check on the sender between.
            sys::setsockopt(n, &receiver, Opt::RcvTimeo(TICK))?;
            let mut tally = Tally::new(count);
            let mut buf = vec![0; size + message::OVERHEAD + 1];
            for seq in n.first_few(0..count, tr!("receiving the rest without narration")) {
                let got = recv_from_living(n, &receiver, &mut buf, child, seq, count)?;
                match message::decode(&buf[..got], size) {
                    Ok(frame) => tally.record(&frame),
                    Err(_) => tally.record_undecodable(got),
                }
            }
            say!(
                n,
                "every recv returned exactly one whole datagram: the boundaries are kept"
            );
            process::wait_for(n, child, "sender")?;
            print_summary(tally.summary())?;
            tally.verdict()
        }
    }
}

/// One `recv`, repeated after each time-out while the sender lives; an error once it
/// has ended (after `seq` of `count` datagrams).
fn recv_from_living(
    n: &Narrator,
    receiver: &OwnedFd,
    buf: &mut [u8],
    sender: Pid,
    seq: u64,
    count: u64,
) -> Result<usize> {
    loop {
        match sys::recv(n, receiver, buf) {
            Err(e) if e.errno() == Some(Errno::EAGAIN) && process::is_alive(sender.as_raw()) => {}
            Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                process::wait_for(n, sender, "sender")?;
                return Err(Error::bad_data(
                    "recv",
                    tr!(
                        "the sender ended after {seq} of {count} datagrams",
                        seq,
                        count
                    ),
                ));
            }
            other => return other,
        }
    }
}

/// The sender: one `send` per message, each message one datagram.
fn send_datagrams(me: &Narrator, sender: &OwnedFd, count: u64, size: usize) -> Result<()> {
    let mut frame = Vec::new();
    for seq in me.first_few(0..count, tr!("sending the rest without narration")) {
        message::encode_into(seq, size, &mut frame);
        sys::send(me, sender, &frame).hint_on(
            Errno::EMSGSIZE,
            tr!("a datagram must fit in the socket's send buffer (SO_SNDBUF, from /proc/sys/net/core/wmem_default); use a smaller --size, or a stream socket"),
        )?;
    }
    Ok(())
}
// ANCHOR_END: dgram
