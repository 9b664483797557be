//! A stand-in for a demo role, for testing `common::cleanup` with real signals: it
//! creates the file named by its argument, guards it, installs the SIGINT/SIGTERM
//! handler, prints `ready`, and waits until its standard input ends.

use std::io::Read;
use std::process::ExitCode;

use common::{Context, Error, NarrationArgs, Narrator, Result, cleanup};

fn main() -> ExitCode {
    common::exit::main_with("cleanup-probe", run)
}

fn run() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| Error::usage("usage: cleanup-probe FILE"))?;
    std::fs::write(&path, b"").context(format!("creat({path})"))?;
    let owned = path.clone();
    let _remove = cleanup::Guard::new(move || {
        let _ = std::fs::remove_file(&owned);
    });
    let n = Narrator::new("probe", NarrationArgs::default());
    cleanup::exit_on_interrupt(&n)?;
    common::narrate::print_summary("ready")?;
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).context("read(0)")?;
    Ok(())
}
