//! The command line of socket-demo: parses the options and runs one lesson of the library.
//!
//! ```text
//! cargo run -p socket-demo -- server                # terminal 1 (Unix socket)
//! cargo run -p socket-demo -- client                # terminal 2
//! cargo run -p socket-demo -- server --tcp          # TCP on 127.0.0.1, a free port
//! cargo run -p socket-demo -- client --tcp 127.0.0.1:PORT
//! cargo run -p socket-demo                          # server and client, one terminal
//! ```

use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use common::tally::MAX_COUNT;
use common::{NarrationArgs, Narrator, Result, stream, tr};
use socket_demo::{DEFAULT_MAX_CLIENTS, Endpoint};

/// Sockets: a server binds a name (a path, or an address and a port) and listens; clients
/// connect; each connection is a two-way byte stream, on one machine or across a network.
#[derive(Parser, Debug)]
#[command(
    name = "socket-demo",
    version,
    after_help = "Example:\n  cargo run -p socket-demo -- server            (in one terminal)\n  \
                  cargo run -p socket-demo -- client            (in another)\n  \
                  cargo run -p socket-demo -- --tcp --clients 3 (all in one terminal)"
)]
struct Cli {
    #[command(subcommand)]
    lesson: Option<Lesson>,
    #[command(flatten)]
    place: Place,
    #[command(flatten)]
    messages: Messages,
    /// Clients to run at once (no subcommand), or to serve before stopping (server).
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=1000))]
    clients: Option<u64>,
    #[command(flatten)]
    narration: NarrationArgs,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

/// Where the server listens.
#[derive(Args, Debug, Clone)]
struct Place {
    /// A Unix domain socket at this path (the default, in a private per-user folder).
    #[arg(long, global = true, conflicts_with = "tcp")]
    unix: Option<PathBuf>,
    /// TCP at ADDRESS:PORT (default 127.0.0.1:0: any free port, printed by the server).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "127.0.0.1:0")]
    tcp: Option<SocketAddrV4>,
}

/// How many messages, how large.
#[derive(Args, Debug, Clone, Copy)]
struct Messages {
    /// Messages each client sends.
    #[arg(long, global = true, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=MAX_COUNT))]
    count: u64,
    /// Payload bytes per message.
    #[arg(long, global = true, default_value = "64", value_parser = stream::size)]
    size: usize,
}

#[derive(Subcommand, Debug)]
enum Lesson {
    /// Listen, and answer each message of each client in capital letters.
    ///
    /// Example: cargo run -p socket-demo -- server --tcp
    Server {
        /// The largest frame payload a client may send; a longer one disconnects it.
        #[arg(long, default_value = "16M", value_parser = stream::size)]
        max: usize,
        /// Clients served at once; a connection beyond that is closed at once.
        #[arg(long, default_value_t = DEFAULT_MAX_CLIENTS, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
        max_clients: usize,
        /// Echo raw bytes in capital letters, for socat or Python clients.
        #[arg(long)]
        raw: bool,
    },
    /// Connect, send COUNT messages of SIZE bytes, and check every answer.
    ///
    /// Example: cargo run -p socket-demo -- client --count 1000
    Client {
        /// Send the lines of standard input as they are, and print the answers.
        #[arg(long)]
        raw: bool,
        /// Seconds to wait for each answer before giving up (0: wait forever).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3600))]
        timeout: u64,
    },
    /// What a byte stream does to messages sent without a length in front.
    ///
    /// Example: cargo run -p socket-demo -- no-framing --count 100 --size 100
    NoFraming,
    /// Unix datagram sockets: boundaries kept, and a size limit.
    ///
    /// Example: cargo run -p socket-demo -- dgram --size 300K    (over the limit)
    Dgram,
    /// Send an open file descriptor to another process (SCM_RIGHTS); SO_PEERCRED.
    ///
    /// Example: cargo run -p socket-demo -- pass-fd
    PassFd,
    /// Pass a pipe's read end to a process that was not forked from the pipe's maker
    /// (SCM_RIGHTS): an anonymous pipe between unrelated processes.
    ///
    /// Example: cargo run -p socket-demo -- pass-pipe     (or: pass-pipe sender, pass-pipe receiver)
    PassPipe {
        /// One side only, for two terminals; without it, the sender starts the receiver.
        #[arg(value_enum)]
        role: Option<socket_demo::pass_pipe::Role>,
    },
    /// Remove a socket file that a killed server left behind.
    ///
    /// Example: cargo run -p socket-demo -- clean
    Clean,
}

fn main() -> ExitCode {
    common::exit::main_with("socket-demo", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    refuse_unused(&cli)?;
    let endpoint = Endpoint::choose(cli.place.tcp, cli.place.unix.clone())?;
    let Messages { count, size } = cli.messages;
    let narrator = |role| Narrator::new(role, cli.narration);
    match cli.lesson {
        None => socket_demo::together(
            &narrator("server"),
            &endpoint,
            cli.clients.unwrap_or(1),
            count,
            size,
            cli.narration.step,
        ),
        Some(Lesson::Server {
            max,
            max_clients,
            raw,
        }) => socket_demo::server(
            &narrator("server"),
            &endpoint,
            cli.clients,
            max,
            max_clients,
            raw,
        ),
        Some(Lesson::Client { raw, timeout }) => {
            let n = narrator("client");
            let patience = (timeout > 0).then(|| Duration::from_secs(timeout));
            if raw {
                socket_demo::client_raw(&n, &endpoint, patience)
            } else {
                socket_demo::client(&n, &endpoint, count, size, patience)
            }
        }
        Some(Lesson::NoFraming) => socket_demo::no_framing(&narrator("reader"), count, size),
        Some(Lesson::Dgram) => socket_demo::dgram(&narrator("receiver"), count, size),
        Some(Lesson::PassFd) => {
            socket_demo::pass_fd(&narrator("sender"), &common::paths::private_dir()?)
        }
        Some(Lesson::PassPipe { role }) => {
            let path = match cli.place.unix {
                Some(path) => path,
                None => socket_demo::pass_pipe::default_path(&common::paths::private_dir()?),
            };
            let plan = socket_demo::pass_pipe::Plan { path, count, size };
            socket_demo::pass_pipe::pass_pipe(cli.narration, role, &plan)
        }
        Some(Lesson::Clean) => match endpoint {
            Endpoint::Unix(path) => socket_demo::clean(&narrator("clean"), &path),
            Endpoint::Tcp(_) => Err(common::Error::usage(tr!(
                "a TCP port leaves nothing behind to clean"
            ))),
        },
    }
}

/// `--tcp`, `--unix` and `--clients` are global options (they may come before or after
/// the lesson), but not every lesson has a server to place or clients to count. One
/// that would ignore them refuses them instead (exit 2), so that `dgram --tcp` does not
/// look as if it had crossed a network.
fn refuse_unused(cli: &Cli) -> Result<()> {
    // Which lesson this is, and whether it uses a place (--tcp/--unix) and --clients.
    let (lesson, place, clients) = match &cli.lesson {
        None | Some(Lesson::Server { .. }) => return Ok(()),
        Some(Lesson::Client { .. }) => ("client", true, false),
        Some(Lesson::Clean) => ("clean", true, false),
        Some(Lesson::NoFraming) => ("no-framing", false, false),
        Some(Lesson::Dgram) => ("dgram", false, false),
        Some(Lesson::PassFd) => ("pass-fd", false, false),
        Some(Lesson::PassPipe { .. }) if cli.place.tcp.is_some() => {
            return Err(common::Error::usage(tr!(
                "pass-pipe takes no --tcp: descriptors travel only over Unix sockets (unix(7))"
            )));
        }
        Some(Lesson::PassPipe { .. }) => ("pass-pipe", true, false),
    };
    let no_address = || tr!("it runs both ends over a socketpair(2), which has no address");
    let unused = if !place && cli.place.tcp.is_some() {
        Some(("--tcp", no_address()))
    } else if !place && cli.place.unix.is_some() {
        Some(("--unix", no_address()))
    } else if !clients && cli.clients.is_some() {
        Some((
            "--clients",
            tr!("only the server and the one-terminal mode count clients"),
        ))
    } else {
        None
    };
    match unused {
        Some((option, why)) => Err(common::Error::usage(tr!(
            "{lesson} takes no {option}: {why}",
            lesson,
            option,
            why
        ))),
        None => Ok(()),
    }
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
