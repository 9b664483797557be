//! `main() -> ExitCode` around `run()`, as ripgrep's `main.rs` does it.
//!
//! Every demo's `main` is one line, `common::exit::main_with("pipe-demo", run)`. The error
//! is printed once, on standard error, and decides the exit code: 0 done, 1 a failed
//! operation, 2 bad usage (clap exits with 2 by itself), 130 interrupted.
//!
//! Two things a program can meet before or after `run()` are handled here for all:
//! SIGINT or SIGTERM in a role that has nothing to remove ends it with 130, as one that
//! cleans up does ([`cleanup::exit_130_on_interrupt`]); and a standard error that is a
//! closed pipe does not turn a failed run into a panic (exit code 101).

use std::io::Write;
use std::process::ExitCode;

use crate::cleanup;
use crate::error::Result;

/// Runs `run`, prints its error (if any) as `program: error`, and returns the exit code.
pub fn main_with(program: &str, run: impl FnOnce() -> Result<()>) -> ExitCode {
    cleanup::exit_130_on_interrupt(program);
    let result = run();
    let _ = std::io::stdout().flush();
    if cleanup::interrupted() {
        // Ctrl-C arrived and the handler thread is removing what we created; it ends the
        // process with 130 when done. Returning now would exit early, with the wrong
        // code and the cleanup half done, so wait for it (park may wake spuriously).
        loop {
            std::thread::park();
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not eprintln!, which panics (exit code 101) when standard error is a pipe
            // nobody reads any more, `demo 2>&1 | head -1` for example. The message is
            // lost then, but the exit code still says what went wrong.
            let _ = writeln!(std::io::stderr(), "{program}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
