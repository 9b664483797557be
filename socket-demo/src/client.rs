//! The client: connects, sends its messages one at a time, and checks every answer; it
//! gives up on a server that stops answering (`SO_RCVTIMEO`, `SO_SNDTIMEO`).

use std::io::BufRead;
use std::os::fd::OwnedFd;
use std::time::Duration;

use common::message::{self, Frame};
use common::narrate::print_summary;
use common::stream::FdStream;
use common::sys::{self, Opt};
use common::tally::Tally;
use common::timing::{self, Stopwatch};
use common::{Context, Error, Narrator, Result, say, tr};
use nix::errno::Errno;

use crate::{Endpoint, connect};

/// Makes reads and writes on a client's socket give up after `patience` (SO_RCVTIMEO,
/// SO_SNDTIMEO, socket(7)) with EAGAIN, instead of waiting forever for a server that
/// accepted the connection but never answers. A server that dies is noticed at once
/// anyway: the kernel closes its end, and a read returns 0 or ECONNRESET.
fn set_patience(n: &Narrator, fd: &OwnedFd, patience: Option<Duration>) -> Result<()> {
    let Some(patience) = patience else {
        return Ok(());
    };
    sys::setsockopt(n, fd, Opt::RcvTimeo(patience))?;
    sys::setsockopt(n, fd, Opt::SndTimeo(patience))
}

/// The hint for an exchange with the server that failed: EAGAIN is the time-out of
/// [`set_patience`]; anything else means the connection is gone.
fn server_trouble(e: Error, patience: Option<Duration>) -> Error {
    match (e.errno(), patience) {
        (Some(Errno::EAGAIN), Some(patience)) => e.hint(tr!(
            "no answer from the server within {seconds} s (SO_RCVTIMEO): it is stuck, paused (Ctrl-Z, --step), or not a socket-demo server; `client --timeout 0` waits forever",
            seconds = patience.as_secs_f64()
        )),
        _ => e.hint(tr!(
            "the server has gone (killed), or it closed my connection (a frame over its --max, or more clients than its --max-clients); its output says which"
        )),
    }
}

// ANCHOR: client
/// A client: sends `count` messages of `size` bytes, one at a time, and checks that each
/// reply is its message in capital letters. It waits at most `patience` for each reply.
pub fn client(
    n: &Narrator,
    endpoint: &Endpoint,
    count: u64,
    size: usize,
    patience: Option<Duration>,
) -> Result<()> {
    let fd = connect(n, endpoint)?;
    set_patience(n, &fd, patience)?;
    let mut stream = FdStream::new(fd, n);
    let mut tally = Tally::new(count);
    let (mut frame, mut buf, mut expected) = (Vec::new(), Vec::new(), vec![0; size]);
    let clock = Stopwatch::start();
    for seq in n.first_few(0..count, tr!("the rest without narration")) {
        message::encode_into(seq, size, &mut frame);
        let trouble = |e| server_trouble(e, patience);
        stream.write_all(&frame).map_err(trouble)?;
        let reply = stream
            .read_frame(&mut buf, size)
            .map_err(trouble)?
            .ok_or_else(|| trouble(Error::bad_data(tr!("read a reply"), tr!("end of stream"))))?;
        message::fill_payload(seq, &mut expected);
        expected.make_ascii_uppercase();
        let intact = reply.intact && reply.payload == expected.as_slice();
        tally.record(&Frame { intact, ..reply });
    }
    let elapsed = clock.elapsed();
    say!(
        n,
        "{count} round trips in {seconds} s: {rate}",
        count,
        seconds = format!("{:.3}", elapsed.as_secs_f64()),
        rate = timing::rate(count, tally.bytes(), elapsed)
    );
    print_summary(tally.summary())?;
    tally.verdict()
}
// ANCHOR_END: client

/// `--raw` client: sends each line of standard input and prints what comes back.
pub fn client_raw(n: &Narrator, endpoint: &Endpoint, patience: Option<Duration>) -> Result<()> {
    let fd = connect(n, endpoint)?;
    set_patience(n, &fd, patience)?;
    let mut stream = FdStream::new(fd, n);
    let trouble = |e| server_trouble(e, patience);
    let mut lines = 0;
    for line in std::io::stdin().lock().lines() {
        let line = line.context("read(0)")? + "\n";
        stream.write_all(line.as_bytes()).map_err(trouble)?;
        let mut back = vec![0u8; line.len()];
        if !stream.read_full(&mut back).map_err(trouble)? {
            return Err(trouble(Error::bad_data(
                tr!("read the answer"),
                tr!("the server closed the connection"),
            )));
        }
        print_summary(String::from_utf8_lossy(&back).trim_end())?;
        lines += 1;
    }
    print_summary(format_args!("summary: lines={lines}"))
}
