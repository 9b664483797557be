//! The client of the sequence-number server: its own reply FIFO, its requests into the
//! server's FIFO, and a wait for each reply that notices a server that died.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use common::cleanup;
use common::narrate::print_summary;
use common::stream::FdStream;
use common::{Error, HintOn, Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::poll::PollFlags;
use nix::sys::stat::Mode;
use nix::unistd;

use crate::meet::open_fifo;
use crate::server::open_both_ends;
use crate::{REQUEST_LEN, client_fifo, make_or_find};

/// The client's end of the server's FIFO. O_NONBLOCK: with no server reading, `open`
/// fails at once with ENXIO (fifo(7)) instead of waiting for one forever; then the
/// descriptor is made blocking again for the writes.
fn open_server(n: &Narrator, path: &Path) -> Result<OwnedFd> {
    let fd = open_fifo(n, path, OFlag::O_WRONLY | OFlag::O_NONBLOCK).hint_on(
        Errno::ENXIO,
        tr!("nobody reads this FIFO: the server is not running (a killed server's FIFO? `fifo-demo clean` removes it)"),
    )?;
    sys::fcntl(n, &fd, FcntlArg::F_SETFL(OFlag::empty()))?;
    say!(n, "writes wait again");
    Ok(fd)
}

/// How long a client waits in one `poll` before it looks whether the server still lives.
const TICK: Duration = Duration::from_secs(1);

/// Waits until the client's reply FIFO has a reply to read. The client holds a writer of
/// its own reply FIFO (so that `read` never sees end-of-file), which also means that
/// nothing would ever tell it the server died: so it waits in `poll` a second at a time,
/// checks between two waits that some process still reads the server's FIFO, and gives
/// up after `patience`.
fn await_reply(
    n: &Narrator,
    replies: &OwnedFd,
    server_path: &Path,
    patience: Option<Duration>,
) -> Result<()> {
    let start = Instant::now();
    loop {
        let tick = patience.map_or(TICK, |p| TICK.min(p.saturating_sub(start.elapsed())));
        let polled = sys::poll(n, &[(replies.as_fd(), PollFlags::POLLIN)], Some(tick))?;
        if !polled.timed_out() {
            return Ok(());
        }
        check_server(n, server_path)?;
        if let Some(patience) = patience.filter(|p| start.elapsed() >= *p) {
            return Err(Error::bad_data(
                tr!("wait for a reply"),
                tr!("no reply within {seconds} s", seconds = patience.as_secs_f64()),
            )
            .hint(tr!("the server reads its FIFO but did not answer: it is busy, paused (Ctrl-Z, --step), or lost my request (its output says so); `client --timeout 0` waits forever")));
        }
    }
}

/// Whether some process still has the server's FIFO open for reading: an `open` for
/// writing with O_NONBLOCK fails with ENXIO when none has (fifo(7)), and never waits.
fn check_server(n: &Narrator, path: &Path) -> Result<()> {
    say!(n, "no reply yet: does the server still read its FIFO?");
    let gone = || tr!("the server has gone (killed, or it ended) while I waited for its reply");
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let probe = sys::open(n, path, flags, Mode::empty())
        .hint_on(Errno::ENXIO, gone())
        .hint_on(Errno::ENOENT, gone())?;
    sys::close(n, probe)
}

// ANCHOR: client
/// A client: makes its reply FIFO, sends `count` requests for one number each to the
/// server's FIFO, and checks that the numbers it gets only go up. It waits at most
/// `patience` for each reply, and notices within a second or two if the server dies.
pub fn client(
    n: &Narrator,
    server_path: &Path,
    count: u64,
    patience: Option<Duration>,
) -> Result<()> {
    let me = unistd::getpid();
    let reply_path = client_fifo(server_path, me);
    let _fifo = make_or_find(n, &reply_path)?;
    cleanup::exit_on_interrupt(n)?;
    say!(
        n,
        "I open my reply FIFO for reading and for writing: with a writer of my own, read never sees end-of-file between two replies"
    );
    let (replies, _keep_open) = open_both_ends(n, &reply_path)?;
    let mut requests = FdStream::new(open_server(n, server_path)?, n);
    let mut request = [0u8; REQUEST_LEN];
    request[..4].copy_from_slice(&(me.as_raw() as u32).to_le_bytes());
    request[4..].copy_from_slice(&1u32.to_le_bytes());
    let (mut last, mut increasing) = (None, 0u64);
    for _ in n.first_few(0..count, tr!("the remaining requests without narration")) {
        requests
            .write_all(&request)
            .map_err(|e| e.hint(tr!("the server has exited")))?;
        await_reply(n, &replies, server_path, patience)?;
        let mut number = [0u8; 8];
        if !FdStream::new(&replies, n).read_full(&mut number)? {
            return Err(Error::bad_data(tr!("read a reply"), tr!("end of file")));
        }
        let number = u64::from_le_bytes(number);
        if last.is_none_or(|last| number > last) {
            increasing += 1;
        }
        last = Some(number);
    }
    print_summary(format_args!(
        "summary: requests={count} replies={count} increasing={increasing}"
    ))?;
    if increasing != count {
        return Err(Error::bad_data(
            tr!("check the replies"),
            tr!("a number did not go up"),
        ));
    }
    Ok(())
}
// ANCHOR_END: client
