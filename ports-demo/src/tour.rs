//! Everything in one terminal: the roles that would each have a terminal of their own are
//! forked children here, and the parent waits for each to say it is ready (one byte on a
//! pipe) before it starts the next, so nothing depends on timing.
//!
//! - [`mach`] (no subcommand): a bootstrap server, a server task that registers `echo`,
//!   and the parent as the client that looks it up and sends requests with a reply port;
//! - [`alpc`]: an ALPC server, and the parent as its client.
//!
//! Each child dies with its parent (`PR_SET_PDEATHSIG`) and removes what it made, also on
//! Ctrl-C (its own handler, installed after the fork).
//!
//! See also: fork(2), pipe(2), prctl(2).

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use common::process::{self, Fork};
use common::{Error, Narrator, Result, cleanup, sys, tr};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::sys as my;
use crate::{alpc_client, alpc_server, bootstrap, mach_client, mach_server};

/// Forks a child for `role` that runs `f` with the write end of a readiness pipe, and
/// returns once the child has written its byte (or fails if it ended first).
fn start(
    n: &Narrator,
    role: &'static str,
    f: impl FnOnce(&Narrator, OwnedFd) -> Result<()>,
) -> Result<Pid> {
    let (ready_r, ready_w) = sys::pipe2(n, OFlag::O_CLOEXEC)?;
    let parent = nix::unistd::getpid();
    match process::fork(n, role)? {
        Fork::Child(me) => {
            let result = sys::close(&me, ready_r)
                .and_then(|()| my::prctl_set_pdeathsig(&me, Signal::SIGTERM))
                .and_then(|()| {
                    // The parent may have ended before the call above: then no signal comes.
                    if nix::unistd::getppid() == parent {
                        Ok(())
                    } else {
                        Err(Error::bad_data(
                            tr!("start the {role}", role),
                            tr!("the parent has ended already"),
                        ))
                    }
                })
                .and_then(|()| cleanup::exit_on_interrupt(&me))
                .and_then(|()| f(&me, ready_w));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            sys::close(n, ready_w)?;
            let mut byte = [0u8; 1];
            if sys::read(n, &ready_r, &mut byte)? == 0 {
                process::wait_for(n, child, role)?;
                return Err(Error::bad_data(
                    tr!("start the {role}", role),
                    tr!("it ended before it was ready"),
                ));
            }
            Ok(child)
        }
    }
}

// ANCHOR: mach
/// The whole Mach exchange in one terminal: bootstrap, a server, and a client; the two
/// clients of the bootstrap server wait at most `patience` for an answer.
pub fn mach(
    n: &Narrator,
    bootstrap_path: &Path,
    count: u64,
    size: usize,
    patience: Option<Duration>,
) -> Result<()> {
    // The bootstrap server answers two requests: the server's register, the client's look-up.
    let boot = start(n, "bootstrap", |me, ready| {
        bootstrap::serve(
            me,
            bootstrap_path,
            Some(2),
            Some(ready),
            crate::default_idle(),
        )
        .map(drop)
    })?;
    let server = start(n, "server", |me, ready| {
        mach_server::server(
            me,
            bootstrap_path,
            "echo",
            Some(count),
            Some(ready),
            patience,
        )
        .map(drop)
    })?;
    cleanup::exit_on_interrupt(n)?;
    mach_client::client(n, bootstrap_path, "echo", count, size, false, patience)?;
    process::wait_for(n, server, "server")?;
    process::wait_for(n, boot, "bootstrap")
}
// ANCHOR_END: mach

/// ALPC in one terminal: the server (one channel) in a child, the client here, which waits
/// at most `patience` for each answer.
pub fn alpc(
    n: &Narrator,
    port: &Path,
    section: usize,
    sizes: &[usize],
    patience: Option<Duration>,
) -> Result<()> {
    let server = start(n, "alpc-server", |me, ready| {
        alpc_server::serve(me, port, Some(1), Some(ready), crate::default_idle()).map(drop)
    })?;
    cleanup::exit_on_interrupt(n)?;
    alpc_client::client(n, port, section, sizes, false, patience)?;
    process::wait_for(n, server, "alpc-server")
}
