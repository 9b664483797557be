//! The command line of socket-demo: parses the options and runs one lesson of `lib.rs`.
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

use clap::{Args, Parser, Subcommand};
use common::process::{self, Fork};
use common::tally::MAX_COUNT;
use common::{NarrationArgs, Narrator, Result, cleanup, stream};
use socket_demo::{DEFAULT_MAX, Endpoint};

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
    /// Windows ALPC on Linux: small messages through the socket, large ones through a
    /// shared section (memfd) passed once.
    ///
    /// Example: cargo run -p socket-demo -- section --count 8
    Section,
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
    let endpoint = match (&cli.place.tcp, &cli.place.unix) {
        (Some(addr), _) => Endpoint::Tcp(*addr),
        (None, Some(path)) => Endpoint::Unix(path.clone()),
        (None, None) => Endpoint::Unix(common::paths::private_dir()?.join("socket")),
    };
    let Messages { count, size } = cli.messages;
    match cli.lesson {
        None => {
            let n = Narrator::new("server", cli.narration);
            let (listener, endpoint, _path) = socket_demo::listen(&n, &endpoint)?;
            let clients = cli.clients.unwrap_or(1);
            let mut children = Vec::new();
            for _ in 0..clients {
                match process::fork(&n, "client")? {
                    Fork::Child(me) => {
                        drop(listener);
                        process::exit_child(&me, socket_demo::client(&me, &endpoint, count, size))
                    }
                    Fork::Parent { child } => children.push(child),
                }
            }
            // Every fork is done: threads (the interrupt handler, the server's) may start.
            cleanup::exit_on_interrupt(&n)?;
            let served = socket_demo::serve(&n, &listener, Some(clients), DEFAULT_MAX)?;
            for child in children {
                process::wait_for(&n, child, "client")?;
            }
            n.say(format_args!(
                "served {} clients, {} messages",
                served.clients.load(std::sync::atomic::Ordering::SeqCst),
                served.messages.load(std::sync::atomic::Ordering::SeqCst)
            ));
            Ok(())
        }
        Some(Lesson::Server { max, raw }) => {
            let n = Narrator::new("server", cli.narration);
            let (listener, endpoint, _path) = socket_demo::listen(&n, &endpoint)?;
            cleanup::exit_on_interrupt(&n)?;
            n.essential(format_args!(
                "listening on {endpoint}; run `socket-demo client` with the same address"
            ));
            if raw {
                return socket_demo::serve_raw(&n, &listener, cli.clients);
            }
            let served = socket_demo::serve(&n, &listener, cli.clients, max)?;
            let load =
                |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::SeqCst);
            common::narrate::print_summary(format_args!(
                "summary: clients={} messages={} errors={}",
                load(&served.clients),
                load(&served.messages),
                load(&served.errors)
            ))
        }
        Some(Lesson::Client { raw: true }) => {
            socket_demo::client_raw(&Narrator::new("client", cli.narration), &endpoint)
        }
        Some(Lesson::Client { raw: false }) => socket_demo::client(
            &Narrator::new("client", cli.narration),
            &endpoint,
            count,
            size,
        ),
        Some(Lesson::NoFraming) => {
            socket_demo::no_framing(&Narrator::new("reader", cli.narration), count, size)
        }
        Some(Lesson::Dgram) => {
            socket_demo::dgram(&Narrator::new("receiver", cli.narration), count, size)
        }
        Some(Lesson::PassFd) => socket_demo::pass_fd(
            &Narrator::new("sender", cli.narration),
            &common::paths::private_dir()?,
        ),
        Some(Lesson::Section) => {
            let sizes = [64, 200, 1000, 64 << 10];
            socket_demo::section(
                &Narrator::new("client", cli.narration),
                &sizes,
                count.max(1),
            )
        }
        Some(Lesson::Clean) => match endpoint {
            Endpoint::Unix(path) => {
                socket_demo::clean(&Narrator::new("clean", cli.narration), &path)
            }
            Endpoint::Tcp(_) => Err(common::Error::usage(
                "a TCP port leaves nothing behind to clean",
            )),
        },
    }
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
