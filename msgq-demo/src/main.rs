//! The command line of msgq-demo: parses the options and starts one role of `roles.rs`.
//!
//! The queue outlives the producer, so the two roles need not even overlap:
//!
//! ```text
//! cargo run -p msgq-demo -- producer --types 1,2,3     # sends, exits; see `ipcs -q`
//! cargo run -p msgq-demo -- status                     # msgctl(IPC_STAT)
//! cargo run -p msgq-demo -- consumer --type 2          # only type 2 ...
//! cargo run -p msgq-demo -- consumer --type -3         # ... then the rest, lowest first
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use common::tally::MAX_COUNT;
use common::{NarrationArgs, Result};
use msgq_demo::posix::{self, Full};
use msgq_demo::roles::{self, KeyArgs};
use msgq_demo::sysv::Key;

/// Message queues: the kernel keeps whole messages, each with a type (System V) or a
/// priority (POSIX), and the queue stays until someone removes it.
#[derive(Parser, Debug)]
#[command(
    name = "msgq-demo",
    version,
    after_help = "Example:\n  cargo run -p msgq-demo                                (both roles, one terminal)\n  \
                  cargo run -p msgq-demo -- producer --types 1,2,3      (then: ipcs -q)\n  \
                  cargo run -p msgq-demo -- consumer --types 1,2,3 --type 2"
)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    plan: PlanArgs,
    /// The queue's key, as a number (0x71000001 or 1895825409); default: ftok of --path.
    #[arg(long, global = true, value_parser = key)]
    key: Option<Key>,
    /// The file whose identity makes the key, with ftok(PATH, 'q') (default: the
    /// per-user private folder).
    #[arg(long, global = true)]
    path: Option<PathBuf>,
    /// The name of the POSIX queue (for `posix` and `clean`).
    #[arg(long, global = true)]
    name: Option<String>,
    #[command(flatten)]
    narration: NarrationArgs,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

/// What the producer sends and the consumer expects.
#[derive(Args, Debug, Clone)]
struct PlanArgs {
    /// Message types, comma-separated, each at least 1; the producer sends them in turn.
    #[arg(long, value_delimiter = ',', default_value = "1", value_parser = clap::value_parser!(i64).range(1..=i64::from(i32::MAX)))]
    types: Vec<i64>,
    /// Messages of each type.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=MAX_COUNT))]
    count: u64,
    /// Payload bytes per message (a message adds 16 and must fit in msgmax, 8192 here).
    #[arg(long, default_value = "64", value_parser = size)]
    size: usize,
    /// Permission bits for a new queue, in octal. 0666 lets every user read and write it.
    #[arg(long, default_value = "0600", value_parser = common::units::parse_mode)]
    mode: u32,
}

/// What each client of `client` and `two-way` asks.
#[derive(Args, Debug, Clone)]
struct Requests {
    /// Requests each client sends (and replies it expects).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=MAX_COUNT))]
    count: u64,
    /// Payload bytes per request (at most 4096).
    #[arg(long, default_value = "64", value_parser = request_size)]
    size: usize,
}

fn request_size(text: &str) -> Result<usize, String> {
    common::units::size_in(text, 1, msgq_demo::two_way::MAX_SIZE)
}

fn size(text: &str) -> Result<usize, String> {
    common::units::size_in(text, 1, 1 << 20)
}

fn key(text: &str) -> Result<Key, String> {
    roles::parse_key(text)
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Create the queue, send COUNT messages of each type, and leave them in the queue.
    ///
    /// Example: cargo run -p msgq-demo -- producer --types 1,2,3 --count 10
    Producer {
        #[command(flatten)]
        plan: PlanArgs,
        /// Shrink the queue to this many bytes (msg_qbytes), so that it fills up; at least
        /// one message (--size + 16).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=roles::MAX_CAPACITY))]
        capacity: Option<u64>,
        /// On a full queue, fail with EAGAIN (IPC_NOWAIT) instead of waiting.
        #[arg(long)]
        nowait: bool,
    },
    /// Receive with a msgtyp: 0 any type, N type N only, -N the lowest type up to N.
    ///
    /// Example: cargo run -p msgq-demo -- consumer --types 1,2,3 --type -2
    Consumer {
        #[command(flatten)]
        plan: PlanArgs,
        /// The msgtyp argument of msgrcv.
        #[arg(long = "type", default_value_t = 0, allow_hyphen_values = true)]
        msgtyp: i64,
        /// Print each message's type and bytes as they are (COUNT messages in all).
        #[arg(long)]
        raw: bool,
    },
    /// One queue both ways (TLPI 46.7): serve requests of type 1, and answer each client
    /// with a message whose type is the client's pid.
    ///
    /// Example: cargo run -p msgq-demo -- server --clients 2   (then two clients)
    Server {
        /// How many clients to serve: the server ends after this many goodbyes.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
        clients: u64,
        /// Permission bits for the new queue, in octal. 0666 lets every user read and write it.
        #[arg(long, default_value = "0600", value_parser = common::units::parse_mode)]
        mode: u32,
    },
    /// Send requests to the server and take only the replies typed by my own pid.
    ///
    /// Example: cargo run -p msgq-demo -- client --count 5
    Client {
        #[command(flatten)]
        requests: Requests,
    },
    /// The server and its clients in one terminal: the server forks the clients, which
    /// all use the one queue at the same time.
    ///
    /// Example: cargo run -p msgq-demo -- two-way --clients 2
    TwoWay {
        /// How many clients the server forks.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=100))]
        clients: u64,
        #[command(flatten)]
        requests: Requests,
        /// Permission bits for the new queue, in octal. 0666 lets every user read and write it.
        #[arg(long, default_value = "0600", value_parser = common::units::parse_mode)]
        mode: u32,
    },
    /// What the kernel knows about the queue (msgctl IPC_STAT).
    ///
    /// Example: cargo run -p msgq-demo -- status
    Status,
    /// Remove the queue (msgctl IPC_RMID) and the POSIX queue, if a killed run left them
    /// (only your own, and not while a process that used the queue still runs).
    ///
    /// Example: cargo run -p msgq-demo -- clean
    Clean,
    /// The same over a POSIX queue, with priorities and the three ways to send to a full
    /// queue (wait, wait at most N ms, return at once).
    ///
    /// Example: cargo run -p msgq-demo -- posix --full timeout --timeout-ms 200
    Posix {
        /// Messages to send (after three notes with priorities).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=MAX_COUNT))]
        count: u64,
        /// Payload bytes per message.
        #[arg(long, default_value = "64", value_parser = size)]
        size: usize,
        /// How many messages the queue holds (mq_maxmsg; at most 10 here for a user).
        #[arg(long, default_value_t = 8)]
        capacity: i64,
        /// What the sender does when the queue is full.
        #[arg(long, value_enum, default_value_t = Full::Wait)]
        full: Full,
        /// For --full timeout: how long mq_timedsend waits.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=60_000))]
        timeout_ms: u64,
    },
}

fn main() -> ExitCode {
    common::exit::main_with("msgq-demo", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    let narration = cli.narration;
    let key = KeyArgs {
        key: cli.key,
        path: cli.path.clone(),
    };
    let name = cli.name.as_deref();
    match cli.role {
        None => {
            let plan = plan(&cli.plan, false)?;
            roles::both(narration, &key, cli.plan.mode, &plan)
        }
        Some(Role::Producer {
            plan: ref args,
            capacity,
            nowait,
        }) => roles::producer(narration, &key, args.mode, capacity, &plan(args, nowait)?),
        Some(Role::Consumer {
            plan: ref args,
            msgtyp,
            raw: true,
        }) => roles::consumer_raw(narration, &key, msgtyp, args.count),
        Some(Role::Consumer {
            plan: ref args,
            msgtyp,
            raw: false,
        }) => roles::consumer(narration, &key, msgtyp, &plan(args, false)?),
        Some(Role::Server { clients, mode }) => roles::server(narration, &key, mode, clients),
        Some(Role::Client { requests }) => {
            roles::client(narration, &key, requests.count, requests.size)
        }
        Some(Role::TwoWay {
            clients,
            requests,
            mode,
        }) => roles::two_way(
            narration,
            &key,
            mode,
            clients,
            requests.count,
            requests.size,
        ),
        Some(Role::Status) => roles::status(narration, &key),
        Some(Role::Clean) => roles::clean(narration, &key, name),
        Some(Role::Posix {
            count,
            size,
            capacity,
            full,
            timeout_ms,
        }) => roles::posix(
            narration,
            name,
            &posix::Args {
                count,
                size,
                capacity,
                full,
                timeout: Duration::from_millis(timeout_ms),
            },
        ),
    }
}

fn plan(args: &PlanArgs, nowait: bool) -> Result<msgq_demo::Plan> {
    roles::plan(&args.types, args.count, args.size, nowait)
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
