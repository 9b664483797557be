//! The command line of signal-demo: parses the options and starts one role of
//! `roles.rs`.
//!
//! In one terminal (the demo forks a receiver and signals it):
//!
//! ```text
//! cargo run -p signal-demo                     # SIGUSR1 ping-pong, each acknowledged
//! cargo run -p signal-demo -- coalesce         # 1000 sent while blocked, 1 arrives
//! cargo run -p signal-demo -- queue            # real-time signals with data, all arrive
//! cargo run -p signal-demo -- graceful         # Ctrl-C ends a worker cleanly
//! ```
//!
//! In two terminals: `cargo run -p signal-demo -- receiver` prints its pid; then
//! `cargo run -p signal-demo -- sender --pid PID` in the other. The receiver answers only
//! its sender (`--sender PID`, or the first process that sends SIGUSR1 while blocking it).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use common::{NarrationArgs, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use signal_demo::roles;

/// Signals, the smallest IPC: a signal carries its number, the sender's pid, and (sent
/// with sigqueue) one word. Standard signals can merge; real-time signals queue.
#[derive(Parser, Debug)]
#[command(
    name = "signal-demo",
    version,
    after_help = "Example:\n  cargo run -p signal-demo -- --count 5\n  \
                  cargo run -p signal-demo -- receiver      (then, in another terminal)\n  \
                  cargo run -p signal-demo -- sender --pid PID"
)]
struct Cli {
    #[command(subcommand)]
    lesson: Option<Lesson>,
    /// SIGUSR1 signals to send, each acknowledged by the receiver.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    count: u64,
    #[command(flatten)]
    narration: NarrationArgs,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

#[derive(Subcommand, Debug)]
enum Lesson {
    /// Print my pid and acknowledge each SIGUSR1 from my sender until a SIGUSR2 says it
    /// was the last; signals from anyone else are reported, not answered.
    ///
    /// Example: cargo run -p signal-demo -- receiver
    Receiver {
        /// The only process I answer (default: the first that sends me SIGUSR1 while it
        /// blocks or catches SIGUSR1, as a sender does, so that my answer cannot kill it).
        #[arg(long, value_parser = pid)]
        sender: Option<Pid>,
    },
    /// Send SIGUSR1 to a receiver COUNT times, waiting for each acknowledgement.
    ///
    /// Example: cargo run -p signal-demo -- sender --pid 4242 --count 10
    Sender {
        /// The receiver's pid (it prints it when it starts).
        #[arg(long, value_parser = pid)]
        pid: Pid,
        /// SIGUSR1 signals to send.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
        count: u64,
        /// How long to wait for each acknowledgement, in milliseconds.
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
        timeout_ms: u64,
    },
    /// Send one signal by name to any process, as kill(1) does.
    ///
    /// Example: cargo run -p signal-demo -- kill --pid 4242 --signal SIGTERM
    Kill {
        /// The process to signal.
        #[arg(long, value_parser = pid)]
        pid: Pid,
        /// The signal's name: SIGTERM, TERM, SIGUSR1, ... (see `kill -l`).
        #[arg(long, value_parser = signal_name)]
        signal: Signal,
    },
    /// Send SIGUSR1 many times while the receiver blocks it: only one is delivered.
    ///
    /// Example: cargo run -p signal-demo -- coalesce --count 1000
    Coalesce {
        /// Signals to send while they are blocked.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        count: u64,
    },
    /// Queue real-time signals carrying numbers with sigqueue: all arrive, in order.
    ///
    /// Example: cargo run -p signal-demo -- queue --count 100
    Queue {
        /// Real-time signals to queue.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        count: u64,
    },
    /// A worker that Ctrl-C or SIGTERM stops cleanly; SIGKILL cannot be caught.
    ///
    /// Example: cargo run -p signal-demo -- graceful
    Graceful {
        /// Stop by itself after this many steps of 100 ms (default: run until signalled).
        #[arg(long)]
        steps: Option<u64>,
    },
}

fn pid(text: &str) -> Result<Pid, String> {
    match text.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(Pid::from_raw(pid)),
        _ => Err(common::tr!(
            "`{text}` is not a process id (a whole number above 0)",
            text
        )),
    }
}

fn signal_name(text: &str) -> Result<Signal, String> {
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| {
        common::tr!(
            "`{text}` is not a signal name (see `kill -l`: TERM, USR1, HUP, ...)",
            text
        )
    })
}

fn main() -> ExitCode {
    common::exit::main_with("signal-demo", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    let narration = cli.narration;
    match cli.lesson {
        None => roles::both(narration, cli.count),
        Some(Lesson::Receiver { sender }) => roles::receiver(narration, sender),
        Some(Lesson::Sender {
            pid,
            count,
            timeout_ms,
        }) => roles::sender(narration, pid, count, Duration::from_millis(timeout_ms)),
        Some(Lesson::Kill { pid, signal }) => roles::kill(narration, pid, signal),
        Some(Lesson::Coalesce { count }) => roles::coalesce(narration, count),
        Some(Lesson::Queue { count }) => roles::queue(narration, count),
        Some(Lesson::Graceful { steps }) => roles::graceful(narration, steps),
    }
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
