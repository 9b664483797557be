//! The command line of pipe-demo: parses the options and runs one lesson of `lib.rs`.
//!
//! Run it in one terminal; everything happens between a parent and the child it forks:
//!
//! ```text
//! cargo run -p pipe-demo                      # produce and consume, narrated
//! cargo run -p pipe-demo -- --step            # the same, one system call per Enter
//! cargo run -p pipe-demo -- duplex            # two pipes, both directions
//! cargo run -p pipe-demo -- shell             # ls | grep hello, by hand
//! cargo run -p pipe-demo -- capacity          # how much a pipe holds
//! cargo run -p pipe-demo -- broken            # EOF and EPIPE
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use common::stream::{self, Messages};
use common::{NarrationArgs, Narrator, Result, cleanup, paths};

/// fork + pipe: a parent writes messages into a pipe and the child it forked reads them.
/// A pipe is a one-way byte stream in the kernel, shared by inheriting its descriptors.
#[derive(Parser, Debug)]
#[command(
    name = "pipe-demo",
    version,
    after_help = "Example:\n  cargo run -p pipe-demo -- --count 5 --size 32\n  \
                  cargo run -p pipe-demo -- --step        (Enter before each system call)"
)]
struct Cli {
    #[command(subcommand)]
    lesson: Option<Lesson>,
    #[command(flatten)]
    exchange: Messages,
    #[command(flatten)]
    narration: NarrationArgs,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

#[derive(Subcommand, Debug)]
enum Lesson {
    /// Two pipes, requests one way and replies the other: one pipe is one-way only.
    ///
    /// Example: cargo run -p pipe-demo -- duplex --count 3
    Duplex(Messages),
    /// `ls DIR | grep hello` rebuilt from pipe, fork, dup2 and exec, on a folder it makes.
    ///
    /// Example: cargo run -p pipe-demo -- shell
    Shell,
    /// How much a pipe holds (F_GETPIPE_SZ): fill it until write() would block, then drain.
    ///
    /// Example: cargo run -p pipe-demo -- capacity --set 1M
    Capacity {
        /// First ask the kernel for this capacity (F_SETPIPE_SZ; it rounds up to a power
        /// of two pages, and only root may exceed /proc/sys/fs/pipe-max-size).
        #[arg(long, value_parser = stream::size)]
        set: Option<usize>,
    },
    /// The ends of a pipe: read() returns 0 once the writers are gone, write() fails with
    /// EPIPE once the readers are gone.
    ///
    /// Example: cargo run -p pipe-demo -- broken
    Broken,
}

fn main() -> ExitCode {
    common::exit::main_with("pipe-demo", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    match cli.lesson {
        None => {
            let n = Narrator::new("producer", cli.narration);
            pipe_demo::exchange(&n, cli.exchange.count, cli.exchange.size)
        }
        Some(Lesson::Duplex(exchange)) => {
            let n = Narrator::new("client", cli.narration);
            pipe_demo::duplex(&n, exchange.count, exchange.size)
        }
        Some(Lesson::Shell) => {
            let n = Narrator::new("shell", cli.narration);
            let dir = paths::private_dir()?.join(format!("shell-{}", std::process::id()));
            let _remove = make_folder(&n, &dir)?;
            pipe_demo::shell(&n, &dir)
        }
        Some(Lesson::Capacity { set }) => {
            let n = Narrator::new("capacity", cli.narration);
            let c = pipe_demo::capacity(&n, set)?;
            common::narrate::print_summary(format_args!(
                "summary: capacity={} filled={} drained={}",
                c.reported, c.filled, c.drained
            ))
        }
        Some(Lesson::Broken) => pipe_demo::broken(&Narrator::new("parent", cli.narration)),
    }
}

/// The folder `shell` lists: four files, two of them with "hello" in their names. The
/// guard removes it when `shell` ends, and on Ctrl-C once the handler is installed.
fn make_folder(n: &Narrator, dir: &std::path::Path) -> Result<cleanup::Guard> {
    use common::Context;
    std::fs::create_dir(dir).context(format!("mkdir({})", dir.display()))?;
    let owned = dir.to_path_buf();
    let guard = cleanup::Guard::new(move || {
        let _ = std::fs::remove_dir_all(&owned);
    });
    for name in ["hello_world.c", "hello.txt", "notes.md", "main.rs"] {
        std::fs::write(dir.join(name), b"").context(format!("creat({name})"))?;
    }
    common::say!(
        n,
        "made {dir} with hello_world.c, hello.txt, notes.md, main.rs",
        dir = dir.display()
    );
    Ok(guard)
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
