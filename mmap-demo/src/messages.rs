//! Messages through a mapped file: the producer's and the consumer's loops, their roles
//! in two terminals, and [`exchange`], both in one.
//!
//! There is no semaphore here: the consumer looks at `written` again and again,
//! spinning briefly and then sleeping a millisecond between looks (see
//! [`common::mapping::spin_until`]), and checks every 200 ms that the producer lives.

use std::path::Path;

use common::cleanup;
use common::fault::{self, Remove};
use common::message;
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::tally::Tally;
use common::{Narrator, Result, say, tr};
use nix::errno::Errno;
use nix::unistd;

use crate::PROGRAM;
use crate::clean::remove_after_dead_producer;
use crate::shared::{Shared, create, open, put, take, wait_until_taken};

// ANCHOR: produce
/// The producer's loop: writes each frame into the mapping with a plain memory copy and
/// then raises `written`. No system call per message. At the end, `msync` writes the
/// pages to the disk, and the producer waits until the consumer has taken everything.
pub fn produce(n: &Narrator, shared: &Shared, count: u64, size: usize) -> Result<()> {
    let mut frame = Vec::with_capacity(size + message::OVERHEAD);
    for seq in n.first_few(0..count, tr!("the rest without narration")) {
        message::encode_into(seq, size, &mut frame);
        put(n, shared, seq, &frame)?;
    }
    say!(
        n,
        "msync makes the pages durable, not visible: the consumer has seen every store already"
    );
    shared.mapping().msync(n)?;
    wait_until_taken(n, shared, count)
}
// ANCHOR_END: produce

// ANCHOR: consume
/// The consumer's loop: takes each message out of the mapping (no `read()`) and checks
/// it. The count and the frame length are the copies `open` checked, never read from
/// the file again.
pub fn consume(n: &Narrator, shared: &Shared) -> Result<()> {
    shared.set_consumer_pid(unistd::getpid().as_raw());
    let (count, frame_len) = (shared.count(), shared.frame_len());
    let mut tally = Tally::new(count);
    let mut frame = Vec::new();
    for seq in n.first_few(0..count, tr!("the rest without narration")) {
        take(n, shared, seq, &mut frame)?;
        match message::decode(&frame, frame_len) {
            Ok(f) => tally.record(&f),
            Err(_) => tally.record_undecodable(frame.len()),
        }
    }
    print_summary(tally.summary())?;
    tally.verdict()
}
// ANCHOR_END: consume

/// The producer's whole role: one frame per message, the file removed at the end, on
/// Ctrl-C, and on the SIGBUS of a consumer that shrank it.
pub fn producer_role(n: &Narrator, path: &Path, count: u64, size: usize) -> Result<()> {
    let (shared, _remove) = create(n, path, count, count, size + message::OVERHEAD)?;
    let shown = path.display().to_string();
    fault::exit_on_sigbus(PROGRAM, &shown, Remove::File(path.to_path_buf()))?;
    cleanup::exit_on_interrupt(n)?;
    n.announce(tr!(
        "ready: run `mmap-demo consumer --path {path}` in another terminal",
        path = shown
    ));
    produce(n, &shared, count, size)?;
    shared.munmap(n)
}

/// The consumer's whole role. It creates nothing, so a SIGBUS leaves nothing behind. If
/// the producer died, its file is left; the consumer removes it, if the path still holds
/// that file, and otherwise says how to remove what is there.
pub fn consumer_role(n: &Narrator, path: &Path) -> Result<()> {
    fault::exit_on_sigbus(PROGRAM, &path.display().to_string(), Remove::Nothing)?;
    let shared = open(n, path)?;
    match consume(n, &shared) {
        Ok(()) => shared.munmap(n),
        Err(e) if e.errno() == Some(Errno::ESRCH) => {
            let fd = shared.mapping().descriptor();
            let used = fd.and_then(|fd| nix::sys::stat::fstat(fd).ok());
            drop(shared);
            remove_after_dead_producer(n, path, used.map(|st| (st.st_dev, st.st_ino)));
            Err(e)
        }
        Err(e) => Err(e),
    }
}

// ANCHOR: exchange
/// Both roles in one terminal: the parent creates and maps the file and forks; the
/// child maps it again by name, as an unrelated process would.
pub fn exchange(n: &Narrator, path: &Path, count: u64, size: usize) -> Result<()> {
    let (shared, _remove) = create(n, path, count, count, size + message::OVERHEAD)?;
    let shown = path.display().to_string();
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            // The file is the parent's: on SIGBUS the child removes nothing.
            drop(shared);
            let result = fault::exit_on_sigbus(PROGRAM, &shown, Remove::Nothing)
                .and_then(|()| open(&me, path))
                .and_then(|shared| consume(&me, &shared).and_then(|()| shared.munmap(&me)));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            fault::exit_on_sigbus(PROGRAM, &shown, Remove::File(path.to_path_buf()))?;
            cleanup::exit_on_interrupt(n)?;
            produce(n, &shared, count, size)?;
            process::wait_for(n, child, "consumer")?;
            shared.munmap(n)
        }
    }
}
// ANCHOR_END: exchange
