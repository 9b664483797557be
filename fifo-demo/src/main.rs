//! The command line of fifo-demo: parses the options and runs one lesson of the library.
//!
//! Run the two roles in two terminals (they meet at the FIFO's path):
//!
//! ```text
//! cargo run -p fifo-demo -- consumer          # terminal 1: waits in open()
//! cargo run -p fifo-demo -- producer          # terminal 2
//! ```
//!
//! or both in one: `cargo run -p fifo-demo`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use common::stream::Messages;
use common::tally::MAX_COUNT;
use common::{NarrationArgs, Narrator, Result, stream};

/// mkfifo: a pipe with a name in the file system, so that processes with no common parent
/// can use it. Either side may start first; open() waits for the other.
#[derive(Parser, Debug)]
#[command(
    name = "fifo-demo",
    version,
    after_help = "Example:\n  cargo run -p fifo-demo -- consumer     (in one terminal)\n  \
                  cargo run -p fifo-demo -- producer     (in another)\n  \
                  cargo run -p fifo-demo                 (both, in one terminal)"
)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    exchange: Messages,
    /// The FIFO's path (default: fifo in a private per-user folder).
    #[arg(long, global = true)]
    path: Option<PathBuf>,
    #[command(flatten)]
    narration: NarrationArgs,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Write messages into the FIFO (making it if it is not there yet).
    ///
    /// Example: cargo run -p fifo-demo -- producer --count 1000
    Producer {
        #[command(flatten)]
        exchange: Messages,
        /// Send the lines of standard input as they are, instead of messages.
        #[arg(long)]
        stdin: bool,
        /// Leave the FIFO in place at the end, to look at it (`fifo-demo clean` removes it).
        #[arg(long)]
        keep: bool,
    },
    /// Read and check messages from the FIFO (making it if it is not there yet).
    ///
    /// Example: cargo run -p fifo-demo -- consumer --raw    (then: echo hello > PATH)
    Consumer {
        #[command(flatten)]
        exchange: Messages,
        /// Print whatever arrives, as it is, instead of checking messages.
        #[arg(long)]
        raw: bool,
        /// Leave the FIFO in place at the end, to look at it (`fifo-demo clean` removes it).
        #[arg(long)]
        keep: bool,
    },
    /// Hand out sequence numbers to clients over a well-known FIFO (TLPI's server).
    ///
    /// Example: cargo run -p fifo-demo -- server    (then clients in other terminals)
    Server {
        /// Stop after this many requests (default: run until Ctrl-C).
        #[arg(long)]
        requests: Option<u64>,
    },
    /// Ask the server for COUNT numbers, each answered on this client's own FIFO.
    ///
    /// Example: cargo run -p fifo-demo -- client --count 5
    Client {
        /// Requests to send.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=MAX_COUNT))]
        count: u64,
        /// Seconds to wait for each reply before giving up (0: wait forever).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
        timeout: u64,
    },
    /// Several writers on one FIFO: writes up to PIPE_BUF bytes never interleave.
    ///
    /// Example: cargo run -p fifo-demo -- writers --size 4080    (then --size 1M)
    Writers {
        /// Writer processes.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
        writers: u32,
        /// Frames each writer sends.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        count: u64,
        /// Payload bytes per frame (a frame adds 16: 4080 makes 4096-byte writes).
        #[arg(long, default_value = "4080", value_parser = stream::size)]
        size: usize,
    },
    /// One FIFO both ways, one direction at a time: both sides open it O_RDWR and take
    /// turns (half duplex).
    ///
    /// Example: cargo run -p fifo-demo -- half-duplex    (then: half-duplex --no-turns)
    HalfDuplex {
        /// Turns: A writes and B reads, then B writes and A reads, this many times.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        rounds: u64,
        /// Payload bytes of A's messages (B answers with twice as many); at most 2040, so
        /// that every message is one atomic write (PIPE_BUF).
        #[arg(long, default_value = "64", value_parser = half_duplex_size)]
        size: usize,
        /// Both sides write before either reads: each reads its own message back.
        #[arg(long)]
        no_turns: bool,
    },
    /// Remove FIFOs (and client FIFOs beside them) that killed runs left behind.
    ///
    /// Without --path, both default FIFOs: the producer's and the server's.
    ///
    /// Example: cargo run -p fifo-demo -- clean
    Clean,
}

fn half_duplex_size(text: &str) -> std::result::Result<usize, String> {
    common::units::size_in(text, 1, 2040)
}

fn main() -> ExitCode {
    common::exit::main_with("fifo-demo", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    let narrator = |role| Narrator::new(role, cli.narration);
    let path = |name| fifo_demo::path_or(cli.path.clone(), name);
    match cli.role {
        None => fifo_demo::exchange(
            &narrator("producer"),
            &path(fifo_demo::FIFO)?,
            cli.exchange.count,
            cli.exchange.size,
        ),
        Some(Role::Producer {
            exchange,
            stdin,
            keep,
        }) => fifo_demo::producer(
            &narrator("producer"),
            &path(fifo_demo::FIFO)?,
            exchange.count,
            exchange.size,
            stdin,
            keep,
        ),
        Some(Role::Consumer {
            exchange,
            raw,
            keep,
        }) => fifo_demo::consumer(
            &narrator("consumer"),
            &path(fifo_demo::FIFO)?,
            exchange.count,
            raw,
            keep,
        ),
        Some(Role::Server { requests }) => fifo_demo::server(
            &narrator("server"),
            &path(fifo_demo::SERVER_FIFO)?,
            requests,
        ),
        Some(Role::Client { count, timeout }) => fifo_demo::client(
            &narrator("client"),
            &path(fifo_demo::SERVER_FIFO)?,
            count,
            (timeout > 0).then(|| Duration::from_secs(timeout)),
        ),
        Some(Role::Writers {
            writers,
            count,
            size,
        }) => fifo_demo::writers(
            &narrator("reader"),
            &path(fifo_demo::FIFO)?,
            writers,
            count,
            size,
        ),
        Some(Role::HalfDuplex {
            rounds,
            size,
            no_turns,
        }) => fifo_demo::half_duplex(
            &narrator("a"),
            &path(fifo_demo::HALF_DUPLEX_FIFO)?,
            if no_turns { 1 } else { rounds },
            size,
            !no_turns,
        ),
        Some(Role::Clean) => fifo_demo::clean(
            &narrator("clean"),
            &fifo_demo::clean_paths(cli.path.clone())?,
        ),
    }
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
