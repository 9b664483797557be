//! `main() -> ExitCode` around `run()`, as ripgrep's `main.rs` does it.
//!
//! Every demo's `main` is one line, `common::exit::main_with("pipe-demo", run)`. The error
//! is printed once, on standard error, and decides the exit code: 0 done, 1 a failed
//! operation, 2 bad usage (clap exits with 2 by itself), 130 interrupted.

use std::io::Write;
use std::process::ExitCode;

use crate::cleanup;
use crate::error::Result;

/// Runs `run`, prints its error (if any) as `program: error`, and returns the exit code.
pub fn main_with(program: &str, run: impl FnOnce() -> Result<()>) -> ExitCode {
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
            eprintln!("{program}: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
