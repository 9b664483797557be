//! `pass-pipe`: the read end of a pipe handed to a process that was never forked from the
//! pipe's maker, over a Unix socket (SCM_RIGHTS).
//!
//! Notes 001 and 002 say an anonymous pipe can only join related processes, a parent and
//! the child that inherited its ends. That is how the ends usually travel, not the only
//! way: a descriptor of any kind, a pipe's end included, can be sent over a Unix domain
//! socket (unix(7), SCM_RIGHTS), and the receiver gets a new descriptor to the same pipe.
//! The other way is to open `/proc/PID/fd/N` of the pipe's holder (proc(5)).
//!
//! The sender listens on a Unix socket; the receiver, a program started on its own (in
//! another terminal, or, in one terminal, exec'd by a helper that exits at once, so that
//! the receiver is not the sender's child), connects. Only then does the sender make the
//! pipe: the receiver cannot have inherited it. The sender sends the read end, closes its
//! own copy, and writes its messages into the write end; the receiver reads them.
//!
//! See also: unix(7) ("Ancillary messages"), cmsg(3), pipe(7), TLPI 61.13.3.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use common::process::{self, Fork};
use common::{Error, Narrator, Result, cleanup, say, stream, sys, tr};
use nix::errno::Errno;
use nix::poll::PollFlags;

use crate::{Endpoint, connect, listen};

/// How long a sender waits for the receiver it started itself to connect.
const LAUNCHED_CONNECTS_WITHIN: Duration = Duration::from_secs(10);

/// How the sender and its receiver meet: the Unix socket's path, and the messages.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The Unix socket's path.
    pub path: std::path::PathBuf,
    /// Messages the sender writes into the pipe.
    pub count: u64,
    /// Payload bytes per message.
    pub size: usize,
}

// ANCHOR: pass_pipe
/// The sender: listens, lets a process it did not fork connect, makes a pipe, sends the
/// pipe's read end over the connection, and writes `count` messages into the write end.
/// `launch` starts the receiver from this terminal through a helper (see [`launch`]).
pub fn send_pipe(n: &Narrator, plan: &Plan, launch: Option<common::NarrationArgs>) -> Result<()> {
    let (listener, _, guard) = listen(n, &Endpoint::Unix(plan.path.clone()))?;
    if let Some(narration) = launch {
        self::launch(n, plan, narration)?;
        // The receiver is not my child: no waitpid tells me if it failed before it
        // connected. Its own error says why; I wait a while, not for ever.
        let ready = sys::poll(
            n,
            &[(listener.as_fd(), PollFlags::POLLIN)],
            Some(LAUNCHED_CONNECTS_WITHIN),
        )?;
        if ready.timed_out() {
            return Err(Error::bad_data(
                tr!("wait for the receiver"),
                tr!(
                    "the receiver I started did not connect within {limit}; its own error above says why",
                    limit = format!("{LAUNCHED_CONNECTS_WITHIN:?}")
                ),
            ));
        }
    } else {
        n.announce(tr!(
            "ready: in another terminal, run `socket-demo pass-pipe receiver --unix {path}`",
            path = plan.path.display()
        ));
    }
    // After the last fork: Ctrl-C now runs the guards (the socket's path) and exits 130.
    cleanup::exit_on_interrupt(n)?;
    let conn = sys::accept(n, &listener)?;
    sys::close(n, listener)?;
    drop(guard);
    let peer = sys::getsockopt_peercred(n, &conn)?;
    say!(
        n,
        "pid {pid} connected; I never forked it, and it has no pipe of mine",
        pid = peer.pid()
    );
    // The pipe is made now, after the receiver started: it cannot have inherited it.
    let (read_end, write_end) = sys::pipe(n)?;
    crate::sys::readlink(n, &read_end)?;
    sys::sendmsg_fds(n, &conn, b"p", &[read_end.as_raw_fd()])?;
    say!(
        n,
        "sent my read end {fd} (SCM_RIGHTS) and closed it: the receiver holds the only one",
        fd = read_end.as_raw_fd()
    );
    sys::close(n, read_end)?;
    stream::produce(n, write_end, plan.count, plan.size)?;
    // Wait for the receiver to finish: it closes the connection when it has read all.
    let closed = sys::recv(n, &conn, &mut [0u8; 1])?;
    if closed != 0 {
        return Err(Error::bad_data(
            tr!("wait for the receiver"),
            tr!("the receiver sent data instead of closing the connection"),
        ));
    }
    say!(
        n,
        "the receiver has read everything and closed the connection"
    );
    Ok(())
}
// ANCHOR_END: pass_pipe

/// Starts the receiver from this terminal so that it is not this process's child: a
/// helper forked now (before the pipe exists) execs a fresh `socket-demo pass-pipe
/// receiver` and exits at once, and the receiver is handed to init (or the nearest
/// subreaper, PR_SET_CHILD_SUBREAPER in prctl(2)), as every orphan is.
fn launch(n: &Narrator, plan: &Plan, narration: common::NarrationArgs) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| {
        Error::sys(
            "readlink(\"/proc/self/exe\")",
            Errno::from_raw(e.raw_os_error().unwrap_or(0)),
        )
    })?;
    let lang = match common::i18n::lang() {
        common::i18n::Lang::En => "en",
        common::i18n::Lang::Ko => "ko",
    };
    let mut command = std::process::Command::new(&exe);
    command
        .args(["pass-pipe", "receiver", "--lang", lang, "--unix"])
        .arg(&plan.path)
        .args(["--count", &plan.count.to_string()])
        .args(["--size", &plan.size.to_string()])
        .stdin(std::process::Stdio::null());
    if narration.quiet {
        command.arg("--quiet");
    }
    if narration.all {
        command.arg("--all");
    }
    match process::fork(n, "launcher")? {
        Fork::Child(me) => {
            let started = command.spawn().map(|child| child.id()).map_err(|e| {
                Error::sys(
                    format!("execve({:?})", exe.display()),
                    Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                )
            });
            let result = started.map(|pid| {
                say!(
                    me,
                    "started the receiver, pid {pid}, a fresh program (fork and execve); I exit \
                     now, so it becomes an orphan, not the sender's child",
                    pid
                );
            });
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => process::wait_for(n, child, "launcher"),
    }
}

// ANCHOR: receive_pipe
/// The receiver: connects, receives a pipe's read end it never had, and reads the
/// sender's messages from it until end-of-file.
pub fn receive_pipe(n: &Narrator, plan: &Plan) -> Result<()> {
    let conn = connect(n, &Endpoint::Unix(plan.path.clone())).map_err(|e| {
        e.hint(tr!(
            "start `socket-demo pass-pipe sender` first, with the same --unix"
        ))
    })?;
    let received = sys::recvmsg_fds(n, &conn, &mut [0u8; 1])?;
    let Some(read_end) = received.fds.into_iter().next() else {
        return Err(Error::bad_data(
            "recvmsg",
            tr!("no descriptor came with the message"),
        ));
    };
    check_is_pipe(n, &read_end)?;
    // Asked only now: the sender sends the pipe after its helper has exited, so a
    // receiver it launched has been handed to its new parent by then.
    let parent = crate::sys::getppid(n);
    say!(
        n,
        "my parent is pid {parent}, not the sender: I inherited no pipe from it, I was sent one",
        parent
    );
    stream::consume(n, read_end, plan.count, plan.size)?;
    sys::close(n, conn)
}
// ANCHOR_END: receive_pipe

/// What came is untrusted: it must be a pipe (`/proc/self/fd/N` says `pipe:[INODE]`, the
/// inode the sender's line showed), not some other file the sender chose.
fn check_is_pipe(n: &Narrator, fd: &OwnedFd) -> Result<()> {
    let target = crate::sys::readlink(n, fd)?;
    if !target.to_string_lossy().starts_with("pipe:[") {
        return Err(Error::bad_data(
            tr!("check the descriptor received"),
            tr!("it is {target}, not a pipe", target = target.display()),
        ));
    }
    say!(
        n,
        "a new descriptor {fd} in my table, to the very pipe the sender made",
        fd = fd.as_raw_fd()
    );
    Ok(())
}

/// The default socket of `pass-pipe`: `pass-pipe` in the private per-user folder.
pub fn default_path(dir: &Path) -> std::path::PathBuf {
    dir.join("pass-pipe")
}

/// `pass-pipe` as the command line starts it: `role` None for both in one terminal.
pub fn pass_pipe(narration: common::NarrationArgs, role: Option<Role>, plan: &Plan) -> Result<()> {
    match role {
        None => send_pipe(&Narrator::new("sender", narration), plan, Some(narration)),
        Some(Role::Sender) => send_pipe(&Narrator::new("sender", narration), plan, None),
        Some(Role::Receiver) => receive_pipe(&Narrator::new("receiver", narration), plan),
    }
}

/// The two sides of `pass-pipe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Makes the pipe and sends its read end.
    Sender,
    /// Receives the read end and reads.
    Receiver,
}
