//! pipe-demo: the anonymous pipe between a parent and its child.
//!
//! Follows the notes `000_5e93fa56600d397d.txt` "1. (익명) PIPE",
//! `001_ffa78007200462ad.txt` "(1) PIPE", `002_c8d20cee4fe5d0b4.txt` "4. Pipe" and
//! `003_5ebb38e0b36eb300.txt` "3.7.4.1 일반 파이프". A pipe is a one-way byte stream
//! kept in the kernel; `pipe(2)` returns its two ends as file descriptors, and `fork(2)`
//! gives the child copies of both, which is why only related processes can share one.
//!
//! Each function here is one lesson, and the command line (`main.rs`) runs one of them:
//!
//! - [`exchange`]: the parent produces, the child consumes and verifies (no subcommand);
//! - [`duplex`]: two pipes, requests one way and replies the other;
//! - [`shell`]: `ls | grep hello` rebuilt from pipe, fork, dup2 and exec;
//! - [`capacity`]: how much a pipe holds before a writer would block;
//! - [`broken`]: what the reader sees when the writers are gone (EOF), and the writer
//!   when the readers are gone (EPIPE).
//!
//! Usage: `cargo run -p pipe-demo -- --help`. See also: pipe(2), pipe(7), fork(2),
//! dup2(2), and TLPI chapter 44 "Pipes and FIFOs".

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

use common::message::{self, Frame};
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::stream::{self, FdStream};
use common::tally::Tally;
use common::{Context, Error, HintOn, Narrator, Result, cleanup, say, sys, tr};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag};
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd;

// ANCHOR: exchange
/// The message exchange: `pipe()`, `fork()`, the parent produces `count` messages of
/// `size` bytes, the child consumes and verifies them and prints the summary line.
/// Returns an error if the child found anything wrong (it exits 1).
pub fn exchange(n: &Narrator, count: u64, size: usize) -> Result<()> {
    let (read_end, write_end) = sys::pipe(n)?;
    say!(
        n,
        "the kernel made a pipe: fd {read} reads, fd {write} writes (see /proc/{pid}/fd)",
        read = read_end.as_raw_fd(),
        write = write_end.as_raw_fd(),
        pid = unistd::getpid()
    );
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            say!(
                me,
                "I only read, so I close my copy of the write end: while any write end is \
                 open, read() waits for data instead of returning 0"
            );
            let result = sys::close(&me, write_end)
                .and_then(|()| stream::consume(&me, read_end, count, stream::MAX_SIZE));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            say!(
                n,
                "I only write, so I close my copy of the read end: if the consumer dies, \
                 write() then fails with EPIPE instead of filling a pipe nobody reads"
            );
            sys::close(n, read_end)?;
            stream::produce(n, write_end, count, size)?;
            process::wait_for(n, child, "consumer")
        }
    }
}
// ANCHOR_END: exchange

// ANCHOR: duplex
/// Two pipes, one for each direction: the parent (client) sends `count` requests, the
/// child (server) answers each with the payload in capital letters, and the client
/// checks every reply. Prints the summary of the replies.
pub fn duplex(n: &Narrator, count: u64, size: usize) -> Result<()> {
    say!(
        n,
        "a pipe carries bytes one way only, so a conversation needs two:"
    );
    let (request_read, request_write) = sys::pipe(n)?;
    say!(n, "that one carries the requests: client -> server");
    let (reply_read, reply_write) = sys::pipe(n)?;
    say!(n, "that one carries the replies: server -> client");
    match process::fork(n, "server")? {
        Fork::Child(me) => {
            let result = sys::close(&me, request_write)
                .and_then(|()| sys::close(&me, reply_read))
                .and_then(|()| serve(&me, request_read, reply_write));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            sys::close(n, request_read)?;
            sys::close(n, reply_write)?;
            let mut requests = FdStream::new(request_write, n);
            let mut replies = FdStream::new(reply_read, n);
            let mut tally = Tally::new(count);
            let (mut frame, mut buf) = (Vec::new(), Vec::new());
            for seq in n.first_few(0..count, tr!("the remaining round trips without narration")) {
                message::encode_into(seq, size, &mut frame);
                requests.write_all(&frame)?;
                let Some(reply) = replies.read_frame(&mut buf, stream::MAX_SIZE)? else {
                    return Err(Error::bad_data(
                        tr!("read a reply"),
                        tr!("the server closed its pipe early"),
                    )
                    .hint(tr!("the server's own error message above says why")));
                };
                // A reply is right if its checksum matches and it is our request, shouted.
                let mut expected = vec![0; size];
                message::fill_payload(seq, &mut expected);
                expected.make_ascii_uppercase();
                let intact = reply.intact && reply.payload == expected.as_slice();
                tally.record(&Frame { intact, ..reply });
            }
            sys::close(n, requests.into_inner())?;
            say!(
                n,
                "the server sees end-of-file on the request pipe and exits"
            );
            process::wait_for(n, child, "server")?;
            print_summary(tally.summary())?;
            tally.verdict()
        }
    }
}

/// The server of [`duplex`]: answers each request with its payload in capital letters.
fn serve(n: &Narrator, request_read: OwnedFd, reply_write: OwnedFd) -> Result<()> {
    let mut requests = FdStream::new(request_read, n);
    let mut replies = FdStream::new(reply_write, n);
    let (mut buf, mut reply) = (Vec::new(), Vec::new());
    let mut served = 0u64;
    for _ in n.first_few(0.., tr!("serving the rest without narration")) {
        let Some(request) = requests.read_frame(&mut buf, stream::MAX_SIZE)? else {
            break;
        };
        let shouted = request.payload.to_ascii_uppercase();
        message::encode_payload(request.seq, &shouted, &mut reply);
        replies.write_all(&reply)?;
        served += 1;
    }
    say!(
        n,
        "served {served} requests; the request pipe is at end-of-file",
        served
    );
    Ok(())
}
// ANCHOR_END: duplex

// ANCHOR: shell
/// `ls DIR | grep hello`, as a shell runs it: one pipe, two children, `dup2` to put the
/// pipe's ends where `ls` writes (fd 1) and `grep` reads (fd 0), and `exec`.
pub fn shell(n: &Narrator, dir: &std::path::Path) -> Result<()> {
    // Build the argument lists before forking: the children should only rearrange
    // descriptors and exec.
    let dir_arg = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::usage(tr!("the folder's path contains a NUL byte")))?;
    let ls = [c"ls".to_owned(), dir_arg];
    let grep = [c"grep".to_owned(), c"hello".to_owned()];

    let (read_end, write_end) = sys::pipe(n)?;
    let ls_pid = match process::fork(n, "ls")? {
        Fork::Child(me) => {
            let result = run_program(&me, &ls, || {
                sys::dup2(&me, &write_end, 1)?;
                say!(me, "standard output (fd 1) is now the pipe's write end");
                sys::close(&me, read_end)?;
                sys::close(&me, write_end)
            });
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => child,
    };
    let grep_pid = match process::fork(n, "grep")? {
        Fork::Child(me) => {
            let result = run_program(&me, &grep, || {
                sys::dup2(&me, &read_end, 0)?;
                say!(me, "standard input (fd 0) is now the pipe's read end");
                sys::close(&me, read_end)?;
                sys::close(&me, write_end)
            });
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => child,
    };
    // Both children exist; from here on, Ctrl-C removes the folder before exiting.
    cleanup::exit_on_interrupt(n)?;
    // The parent must close both ends too: grep sees end-of-file only when every write
    // end is closed, and the parent's copy is one of them.
    sys::close(n, read_end)?;
    sys::close(n, write_end)?;
    process::wait_for(n, ls_pid, "ls")?;
    process::wait_for(n, grep_pid, "grep")?;
    print_summary("summary: ls=exited(0) grep=exited(0)")
}

/// In a child: rearrange descriptors with `setup`, then `execvp(argv[0], argv)`.
/// Returns only if something failed.
fn run_program(me: &Narrator, argv: &[CString], setup: impl FnOnce() -> Result<()>) -> Result<()> {
    setup()?;
    // Rust starts every program with SIGPIPE ignored, and an ignored signal stays ignored
    // across exec (signal(7)). Programs like ls expect the default, so put it back, as
    // std::process::Command does.
    // SAFETY: setting a signal to SIG_DFL installs no handler code; nothing can run in a
    // signal context because of it.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.context("signal(SIGPIPE, SIG_DFL)")?;
    let program = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    say!(
        me,
        "execvp: this process becomes {program}; on success the call never returns",
        program
    );
    sys::execvp(me, argv).hint_on(Errno::ENOENT, tr!("is the program installed and on PATH?"))
}
// ANCHOR_END: shell

/// What [`capacity`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// What `fcntl(F_GETPIPE_SZ)` reported.
    pub reported: usize,
    /// Bytes written before `write()` said EAGAIN.
    pub filled: usize,
    /// Bytes read back before `read()` said EAGAIN.
    pub drained: usize,
}

// ANCHOR: capacity
/// Asks the kernel how much the pipe holds, optionally changes it (`F_SETPIPE_SZ`),
/// fills it with non-blocking writes until EAGAIN, and drains it.
pub fn capacity(n: &Narrator, set_size: Option<usize>) -> Result<Capacity> {
    let (read_end, write_end) = sys::pipe(n)?;
    if let Some(size) = set_size {
        let wanted = i32::try_from(size).map_err(|_| Error::usage(tr!("--set is too large")))?;
        sys::fcntl(n, &write_end, FcntlArg::F_SETPIPE_SZ(wanted))
            .hint_on(
                Errno::EPERM,
                tr!("over /proc/sys/fs/pipe-max-size, which only root may exceed"),
            )
            .hint_on(
                Errno::EBUSY,
                tr!("the pipe holds more data than the new size"),
            )?;
    }
    let reported = sys::fcntl(n, &write_end, FcntlArg::F_GETPIPE_SZ)?;
    let reported = usize::try_from(reported).unwrap_or(0);
    say!(
        n,
        "the pipe holds {size}",
        size = common::units::bytes(reported)
    );

    // A blocking write to a full pipe would sleep until a reader makes room; with
    // O_NONBLOCK it fails with EAGAIN instead, so one process can find the limit.
    sys::fcntl(n, &write_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    sys::fcntl(n, &read_end, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
    say!(
        n,
        "both ends are non-blocking now: a call that would wait fails with EAGAIN"
    );
    let chunk = [b'x'; 4096];
    let mut filled = 0;
    for _ in n.first_few(
        0..,
        tr!("writing 4096-byte chunks without narration until the pipe is full"),
    ) {
        match sys::write(n, &write_end, &chunk) {
            Ok(wrote) => filled += wrote,
            Err(e) if e.errno() == Some(Errno::EAGAIN) => break,
            Err(e) => return Err(e),
        }
    }
    say!(
        n,
        "write() = -1 EAGAIN after {filled} bytes: the pipe is full. Without O_NONBLOCK the \
         writer would sleep here until the reader makes room.",
        filled
    );
    let mut buf = vec![0; 64 << 10];
    let mut drained = 0;
    loop {
        match sys::read(n, &read_end, &mut buf) {
            Ok(0) => break,
            Ok(got) => drained += got,
            Err(e) if e.errno() == Some(Errno::EAGAIN) => break,
            Err(e) => return Err(e),
        }
    }
    say!(
        n,
        "read() = -1 EAGAIN: empty again (the write end is still open, so this is not EOF)"
    );
    Ok(Capacity {
        reported,
        filled,
        drained,
    })
}
// ANCHOR_END: capacity

// ANCHOR: broken
/// The two ways a pipe ends, each shown by a child that exits early: first the writer
/// goes away and the parent's `read()` returns 0 (end-of-file); then the reader goes
/// away and the parent's `write()` fails with EPIPE.
pub fn broken(n: &Narrator) -> Result<()> {
    let mut frame = Vec::new();
    message::encode_into(0, 16, &mut frame);
    say!(n, "part 1: the writer goes away");
    writer_goes_away(n, &frame)?;
    say!(n, "part 2: the reader goes away");
    reader_goes_away(n, &frame)?;
    print_summary("summary: read_without_writers=EOF write_without_readers=EPIPE")
}

fn writer_goes_away(n: &Narrator, frame: &[u8]) -> Result<()> {
    let (read_end, write_end) = sys::pipe(n)?;
    match process::fork(n, "writer")? {
        Fork::Child(me) => {
            let result = sys::close(&me, read_end)
                .and_then(|()| FdStream::new(write_end, &me).write_all(frame));
            say!(me, "exiting: the kernel closes my write end");
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            sys::close(n, write_end)?;
            let mut pipe = FdStream::new(read_end, n);
            pipe.read_frame(&mut Vec::new(), stream::MAX_SIZE)?;
            process::wait_for(n, child, "writer")?;
            match pipe.read(&mut [0; 16])? {
                0 => {
                    say!(
                        n,
                        "read() = 0: end of file. No writer is left, so no data can ever come."
                    );
                    Ok(())
                }
                got => Err(Error::bad_data(
                    tr!("read() after the writer exited"),
                    tr!("it returned {got}, not 0", got),
                )),
            }
        }
    }
}

fn reader_goes_away(n: &Narrator, frame: &[u8]) -> Result<()> {
    let (read_end, write_end) = sys::pipe(n)?;
    match process::fork(n, "reader")? {
        Fork::Child(me) => {
            let result = sys::close(&me, write_end).and_then(|()| {
                FdStream::new(read_end, &me)
                    .read_frame(&mut Vec::new(), stream::MAX_SIZE)
                    .map(drop)
            });
            say!(me, "exiting: the kernel closes my read end");
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            sys::close(n, read_end)?;
            let mut pipe = FdStream::new(write_end, n);
            pipe.write_all(frame)?;
            process::wait_for(n, child, "reader")?;
            match pipe.write_all(frame) {
                Err(e) if e.errno() == Some(Errno::EPIPE) => {
                    say!(
                        n,
                        "EPIPE: no reader is left. A C program would have been killed by SIGPIPE \
                         here; Rust ignores SIGPIPE before main(), so write() returns the error \
                         instead, and a Rust program must check it."
                    );
                    Ok(())
                }
                Err(e) => Err(e),
                Ok(()) => Err(Error::bad_data(
                    tr!("write() after the reader exited"),
                    tr!("it succeeded, not EPIPE"),
                )),
            }
        }
    }
}
// ANCHOR_END: broken
