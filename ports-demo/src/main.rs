//! The command line of ports-demo: parses the options and runs one lesson of the library.
//!
//! ```text
//! cargo run -p ports-demo                                  # Mach, in one terminal
//! cargo run -p ports-demo -- bootstrap                     # terminal 1: the name server
//! cargo run -p ports-demo -- server --name echo            # terminal 2
//! cargo run -p ports-demo -- client --name echo            # terminal 3
//! cargo run -p ports-demo -- alpc-server                   # ALPC: terminal 1
//! cargo run -p ports-demo -- alpc-client                   # terminal 2
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use common::narrate::print_summary;
use common::{NarrationArgs, Narrator, Result, cleanup};
use ports_demo::alpc_client::{self, BadAlpc};
use ports_demo::mach_client::{self, Bad, MAX_BODY};
use ports_demo::port::{self, SendOption};
use ports_demo::{alpc_server, bootstrap, mach_server, place, queue, tour};

/// Mach ports and Windows ALPC, rebuilt from Linux parts: port rights are descriptors
/// passed over Unix sockets, a section is a sealed memfd, and the server reads the
/// client's memory with process_vm_readv.
#[derive(Parser, Debug)]
#[command(
    name = "ports-demo",
    version,
    after_help = "Example:\n  cargo run -p ports-demo -- bootstrap              (terminal 1)\n  \
                  cargo run -p ports-demo -- server --name echo     (terminal 2)\n  \
                  cargo run -p ports-demo -- client --name echo     (terminal 3)\n  \
                  cargo run -p ports-demo                           (all of it, in one terminal)"
)]
struct Cli {
    #[command(subcommand)]
    lesson: Option<Lesson>,
    /// The bootstrap server's socket (default: ports-bootstrap in a private per-user folder).
    #[arg(long, global = true, value_name = "PATH")]
    bootstrap: Option<PathBuf>,
    /// The ALPC connection port's socket (default: ports-alpc in a private per-user folder).
    #[arg(long, global = true, value_name = "PATH")]
    port: Option<PathBuf>,
    /// Requests the client sends (with no subcommand).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    count: u64,
    /// Bytes in each request's body (with no subcommand; at most 996).
    #[arg(long, default_value = "32", value_parser = body_size)]
    size: usize,
    /// Bytes of the ALPC section each side sets up once.
    #[arg(long, global = true, default_value = "64K", value_parser = section_size)]
    section: usize,
    /// Seconds a client waits for a server's answer before giving up (0: wait forever).
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3600))]
    timeout: u64,
    #[command(flatten)]
    narration: NarrationArgs,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

fn body_size(text: &str) -> std::result::Result<usize, String> {
    common::units::size_in(text, 1, MAX_BODY)
}

fn section_size(text: &str) -> std::result::Result<usize, String> {
    common::units::size_in(text, 4096, ports_demo::alpc::SECTION_MAX)
}

fn data_sizes(text: &str) -> std::result::Result<usize, String> {
    common::units::size_in(text, 1, ports_demo::alpc::DIRECT_MAX)
}

fn name(text: &str) -> std::result::Result<String, String> {
    bootstrap::check_name(text.as_bytes())
}

/// The four options of note 003 for a send to a full queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Full {
    /// Wait until there is room.
    Wait,
    /// Wait at most --timeout-ms milliseconds.
    Timeout,
    /// Return at once.
    Now,
    /// Keep the message and be told when there is room (MACH_SEND_NOTIFY).
    Notify,
}

#[derive(Subcommand, Debug)]
enum Lesson {
    /// Mach's name server: tasks register ports under names and look them up.
    ///
    /// Example: cargo run -p ports-demo -- bootstrap
    Bootstrap {
        /// Stop after this many requests (default: run until Ctrl-C).
        #[arg(long)]
        requests: Option<u64>,
        /// Seconds a connection may send nothing before it is closed.
        #[arg(long, value_name = "SECONDS", default_value_t = ports_demo::DEFAULT_IDLE_SECONDS, value_parser = clap::value_parser!(u64).range(1..=3600))]
        idle_timeout: u64,
    },
    /// A Mach server: a port registered as NAME; answers each request on its reply port.
    ///
    /// Example: cargo run -p ports-demo -- server --name echo
    Server {
        /// The name to register.
        #[arg(long, default_value = "echo", value_parser = name)]
        name: String,
        /// Stop after this many messages (default: run until Ctrl-C).
        #[arg(long)]
        requests: Option<u64>,
    },
    /// A Mach client: look NAME up, send requests that carry a reply port.
    ///
    /// Example: cargo run -p ports-demo -- client --name echo --count 5
    Client {
        /// The name to look up.
        #[arg(long, default_value = "echo", value_parser = name)]
        name: String,
        /// Requests to send.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        count: u64,
        /// Bytes in each request's body (a Mach message is small: at most 996 bytes of body).
        #[arg(long, default_value = "32", value_parser = body_size)]
        size: usize,
        /// Fill my own reply port first and read no reply until Enter (the server must
        /// keep a reply: MACH_SEND_NOTIFY).
        #[arg(long, conflicts_with = "bad")]
        hold_replies: bool,
        /// Break a rule instead, to see the server refuse and go on.
        #[arg(long, value_enum)]
        bad: Option<Bad>,
    },
    /// Ask the bootstrap server for NAME and show the send right that comes back.
    ///
    /// Example: cargo run -p ports-demo -- look-up echo
    LookUp {
        /// The name to look up.
        #[arg(value_parser = name)]
        name: String,
    },
    /// Register a port as NAME and take messages from any number of senders.
    ///
    /// Example: cargo run -p ports-demo -- receive --name queue --hold
    Receive {
        /// The name to register.
        #[arg(long, default_value = "queue", value_parser = name)]
        name: String,
        /// Take nothing until Enter, so that the queue fills.
        #[arg(long)]
        hold: bool,
        /// End after this many senders have sent their end mark.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
        senders: u64,
        /// The queue's limit in bytes (SO_SNDBUF; the kernel doubles it, minimum 4608).
        #[arg(long, default_value_t = port::DEFAULT_QUEUE_BYTES)]
        queue_bytes: usize,
    },
    /// Send messages to NAME; when its queue is full, do what --full says.
    ///
    /// Example: cargo run -p ports-demo -- send --name queue --count 10 --full timeout
    Send {
        /// The name to look up.
        #[arg(long, default_value = "queue", value_parser = name)]
        name: String,
        /// Messages to send (more than the queue holds, to fill it).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        count: u64,
        /// What to do when the queue is full.
        #[arg(long, value_enum, default_value = "wait")]
        full: Full,
        /// The time-out of --full timeout, in milliseconds.
        #[arg(long, default_value_t = 500)]
        timeout_ms: u64,
    },
    /// A dead name: the receive right goes, and the next send fails (one terminal).
    ///
    /// Example: cargo run -p ports-demo -- dead
    Dead,
    /// ALPC's server: a connection port; a private channel for each client.
    ///
    /// Example: cargo run -p ports-demo -- alpc-server
    AlpcServer {
        /// Stop after this many channels have ended (default: run until Ctrl-C).
        #[arg(long)]
        clients: Option<u64>,
        /// Seconds a client may send nothing while the server waits for it (its connect, an
        /// answer to a callback) before its channel is closed.
        #[arg(long, value_name = "SECONDS", default_value_t = ports_demo::DEFAULT_IDLE_SECONDS, value_parser = clap::value_parser!(u64).range(1..=3600))]
        idle_timeout: u64,
    },
    /// An ALPC client: a call down each path (inline, section, direct) and a callback.
    ///
    /// Example: cargo run -p ports-demo -- alpc-client --sizes 100,10K,1M
    AlpcClient {
        /// The sizes of data to echo, one call each.
        #[arg(long, value_delimiter = ',', default_value = "100,10K,1M", value_parser = data_sizes)]
        sizes: Vec<usize>,
        /// Wait for Enter after connecting (to try alpc-peek on the channel meanwhile).
        #[arg(long, conflicts_with = "bad")]
        hold: bool,
        /// Break a rule instead, to see the server refuse and go on.
        #[arg(long, value_enum)]
        bad: Option<BadAlpc>,
    },
    /// Local RPC on ALPC: add, upper and greet called through their stubs.
    ///
    /// Example: cargo run -p ports-demo -- rpc
    Rpc {
        /// The length of the large string given to upper.
        #[arg(long, default_value = "100K", value_parser = data_sizes)]
        large: usize,
    },
    /// Try to reach another client's channel: by name, through /proc, with pidfd_getfd.
    ///
    /// Example: cargo run -p ports-demo -- alpc-peek --pid 4242 --fd 3
    AlpcPeek {
        /// The client's pid (alpc-client --hold prints it).
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
        pid: i32,
        /// The client's channel descriptor (alpc-client --hold prints it).
        #[arg(long, value_parser = clap::value_parser!(i32).range(0..))]
        fd: i32,
    },
    /// ALPC in one terminal: the server forked, this process its client.
    ///
    /// Example: cargo run -p ports-demo -- alpc
    Alpc {
        /// The sizes of data to echo, one call each.
        #[arg(long, value_delimiter = ',', default_value = "100,10K,1M", value_parser = data_sizes)]
        sizes: Vec<usize>,
    },
    /// Remove the sockets a killed bootstrap or ALPC server left behind.
    ///
    /// It looks at --bootstrap PATH and --port PATH, removes a socket of yours that no
    /// server answers on, and names anything else it finds there and leaves alone.
    ///
    /// Example: cargo run -p ports-demo -- clean
    Clean,
}

fn main() -> ExitCode {
    common::exit::main_with("ports-demo", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    // Paths are made only for the lessons that use them: alpc-peek, run as another user,
    // must not create a private folder for that user.
    let boot = || match &cli.bootstrap {
        Some(path) => Ok(path.clone()),
        None => ports_demo::default_bootstrap(),
    };
    let alpc_port = || match &cli.port {
        Some(path) => Ok(path.clone()),
        None => ports_demo::default_port(),
    };
    let section = cli.section;
    // A client gives up on a server that lives but does not answer (0: it never does).
    let patience = (cli.timeout > 0).then(|| Duration::from_secs(cli.timeout));
    let role = |role| Narrator::new(role, cli.narration);
    match cli.lesson {
        None => {
            let n = role("client");
            // A path of this run's own, so that a bootstrap server already running is untouched.
            let path = match &cli.bootstrap {
                Some(path) => path.clone(),
                None => ports_demo::default_bootstrap()?
                    .with_file_name(format!("ports-bootstrap-{}", std::process::id())),
            };
            tour::mach(&n, &path, cli.count, cli.size, patience)
        }
        Some(Lesson::Bootstrap {
            requests,
            idle_timeout,
        }) => {
            let n = role("bootstrap");
            cleanup::exit_on_interrupt(&n)?;
            let idle = Duration::from_secs(idle_timeout);
            print_summary(bootstrap::serve(&n, &boot()?, requests, None, idle)?)
        }
        Some(Lesson::Server { name, requests }) => {
            let n = role("server");
            cleanup::exit_on_interrupt(&n)?;
            print_summary(mach_server::server(
                &n,
                &boot()?,
                &name,
                requests,
                None,
                patience,
            )?)
        }
        Some(Lesson::Client {
            name,
            count,
            size,
            hold_replies,
            bad,
        }) => {
            let n = role("client");
            match bad {
                Some(how) => mach_client::bad(&n, &boot()?, &name, how, patience),
                None => {
                    mach_client::client(&n, &boot()?, &name, count, size, hold_replies, patience)
                }
            }
        }
        Some(Lesson::LookUp { name }) => {
            mach_client::look_up(&role("client"), &boot()?, &name, patience)
        }
        Some(Lesson::Receive {
            name,
            hold,
            senders,
            queue_bytes,
        }) => {
            let n = role("receiver");
            cleanup::exit_on_interrupt(&n)?;
            queue::receive(&n, &boot()?, &name, senders, hold, queue_bytes, patience)
        }
        Some(Lesson::Send {
            name,
            count,
            full,
            timeout_ms,
        }) => {
            let option = match full {
                Full::Wait => SendOption::Wait,
                Full::Timeout => SendOption::Timeout(Duration::from_millis(timeout_ms)),
                Full::Now => SendOption::Now,
                Full::Notify => SendOption::Notify,
            };
            queue::send(&role("sender"), &boot()?, &name, count, option, patience)
        }
        Some(Lesson::Dead) => mach_client::dead(&role("sender")),
        Some(Lesson::AlpcServer {
            clients,
            idle_timeout,
        }) => {
            let n = role("alpc-server");
            cleanup::exit_on_interrupt(&n)?;
            let idle = Duration::from_secs(idle_timeout);
            print_summary(alpc_server::serve(&n, &alpc_port()?, clients, None, idle)?)
        }
        Some(Lesson::AlpcClient { sizes, hold, bad }) => {
            let n = role("alpc-client");
            match bad {
                Some(how) => alpc_client::bad(&n, &alpc_port()?, section, how, patience),
                None => alpc_client::client(&n, &alpc_port()?, section, &sizes, hold, patience),
            }
        }
        Some(Lesson::Rpc { large }) => {
            alpc_client::rpc(&role("rpc-client"), &alpc_port()?, section, large, patience)
        }
        Some(Lesson::AlpcPeek { pid, fd }) => alpc_client::peek(&role("peek"), pid, fd),
        Some(Lesson::Alpc { sizes }) => tour::alpc(
            &role("alpc-client"),
            &alpc_port()?,
            section,
            &sizes,
            patience,
        ),
        Some(Lesson::Clean) => place::clean(
            &role("clean"),
            &[
                (boot()?, place::Server::Bootstrap),
                (alpc_port()?, place::Server::Alpc),
            ],
        ),
    }
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
