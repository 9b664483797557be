//! A stand-in for a demo role, for testing `common::cleanup`, `common::exit` and
//! `common::process` with real signals and real processes. Usage:
//!
//! - `cleanup-probe FILE`: creates FILE, guards it, installs the SIGINT/SIGTERM handler,
//!   prints `ready`, and waits until its standard input ends;
//! - `cleanup-probe --owns-nothing`: prints `ready` and waits until its standard input
//!   ends, with no handler of its own (a role that owns nothing);
//! - `cleanup-probe --child-fails`: forks a child that ends with an error, and prints
//!   `summary: child_exit=N` with the child's exit status;
//! - `cleanup-probe --orphan`: forks a child that waits on its standard input, and
//!   prints both pids; the test kills the parent and watches the child.

use std::io::Read;
use std::process::ExitCode;

use common::process::{self, Fork};
use common::{Context, Error, NarrationArgs, Narrator, Result, cleanup};
use nix::sys::wait::{WaitStatus, waitpid};

fn main() -> ExitCode {
    common::exit::main_with("cleanup-probe", run)
}

fn run() -> Result<()> {
    let arg = std::env::args().nth(1).ok_or_else(|| {
        Error::usage("usage: cleanup-probe FILE|--owns-nothing|--child-fails|--orphan")
    })?;
    let n = Narrator::new("probe", NarrationArgs::default());
    match arg.as_str() {
        "--owns-nothing" => {
            common::narrate::print_summary("ready")?;
            wait_for_end_of_input()
        }
        "--child-fails" => match process::fork(&n, "child")? {
            Fork::Child(me) => process::exit_child(
                &me,
                Err(Error::bad_data("the child's work", "it failed on purpose")),
            ),
            Fork::Parent { child } => match waitpid(child, None).context("waitpid")? {
                WaitStatus::Exited(_, code) => {
                    common::narrate::print_summary(format_args!("summary: child_exit={code}"))
                }
                other => {
                    common::narrate::print_summary(format_args!("summary: child_ended={other:?}"))
                }
            },
        },
        "--orphan" => match process::fork(&n, "child")? {
            Fork::Child(me) => process::exit_child(&me, wait_for_end_of_input()),
            Fork::Parent { .. } => wait_for_end_of_input(),
        },
        path => {
            std::fs::write(path, b"").context(format!("creat({path})"))?;
            let owned = path.to_string();
            let _remove = cleanup::Guard::new(move || {
                let _ = std::fs::remove_file(&owned);
            });
            cleanup::exit_on_interrupt(&n)?;
            common::narrate::print_summary("ready")?;
            wait_for_end_of_input()
        }
    }
}

fn wait_for_end_of_input() -> Result<()> {
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).context("read(0)")?;
    Ok(())
}
