//! The command line of ipc-watch: which object to watch, and how.
//!
//! ```text
//! cargo run -p msgq-demo -- producer --types 1,2,3 --count 5   # terminal 1
//! cargo run -p ipc-watch -- msgq                              # terminal 3 (the projector)
//! cargo run -p msgq-demo -- consumer --types 1,2,3 --count 5   # terminal 2
//! cargo run -p ipc-watch -- --once shm                        # one frame, as text
//! ```

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use common::Result;
use ipc_watch::Watched;

/// The kernel objects of the ipc-demos, live: how full a pipe is, what waits in a queue,
/// where a ring's head and tail are, which signals are pending. Watching changes nothing.
#[derive(Parser, Debug)]
#[command(
    name = "ipc-watch",
    version,
    after_help = "Example (three terminals):\n  cargo run -p shm-demo -- producer --count 100 --rate 2\n  \
                  cargo run -p shm-demo -- consumer --step\n  \
                  cargo run -p ipc-watch -- shm\n\n\
                  q, Esc or Ctrl-C quits the live view."
)]
struct Cli {
    #[command(subcommand)]
    what: What,
    /// Print one frame as plain text and exit (for scripts and tests).
    #[arg(long, global = true)]
    once: bool,
    /// Milliseconds between two looks in the live view.
    #[arg(long, global = true, default_value_t = 200, value_parser = clap::value_parser!(u64).range(20..=10_000))]
    interval_ms: u64,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

#[derive(Subcommand, Debug)]
enum What {
    /// Pipes: bytes waiting, capacity, and who holds each end.
    ///
    /// Example: cargo run -p ipc-watch -- pipe   (every pipe-demo process of yours)
    Pipe {
        /// Watch the pipes of this process instead of every pipe-demo.
        #[arg(long, value_parser = pid)]
        pid: Option<i32>,
    },
    /// A FIFO: bytes waiting, capacity, and who holds each end.
    ///
    /// Example: cargo run -p ipc-watch -- fifo --path /tmp/ipc-demos-1000/fifo
    Fifo {
        /// The FIFO's path (default: fifo-demo's, in the per-user private folder).
        #[arg(long)]
        path: Option<PathBuf>,
    },
    /// A System V message queue: messages, bytes, last sender and receiver, by type.
    ///
    /// Example: cargo run -p ipc-watch -- msgq --key 0x71000001
    Msgq {
        /// The queue's key (default: msgq-demo's, ftok of --path and 'q').
        #[arg(long, value_parser = key)]
        key: Option<msgq_demo::sysv::Key>,
        /// The file whose identity makes the key (default: the per-user private folder).
        #[arg(long, conflicts_with = "key")]
        path: Option<PathBuf>,
    },
    /// A POSIX message queue: its attributes and the bytes in it.
    ///
    /// Example: cargo run -p ipc-watch -- mq
    Mq {
        /// The queue's name (default: msgq-demo's, /ipc-demos-mq-UID).
        #[arg(long)]
        name: Option<String>,
    },
    /// shm-demo's ring: each slot full or empty, head and tail, who waits.
    ///
    /// Example: cargo run -p ipc-watch -- shm
    Shm {
        /// The shared memory object's name (default: shm-demo's, /ipc-demo-shm-UID).
        #[arg(long)]
        name: Option<String>,
    },
    /// mmap-demo's message file: written, taken, who waits.
    ///
    /// Example: cargo run -p ipc-watch -- mmap
    Mmap {
        /// The file's path (default: mmap-demo's, in the per-user private folder).
        #[arg(long)]
        path: Option<PathBuf>,
    },
    /// mmap-demo lazy's sparse file: which pages are in memory (mincore).
    ///
    /// Example: cargo run -p ipc-watch -- lazy   (with mmap-demo lazy --step)
    Lazy {
        /// The file's path (default: mmap-demo lazy's, in the per-user private folder).
        #[arg(long)]
        path: Option<PathBuf>,
    },
    /// Sockets: each connection's receive and send queues.
    ///
    /// Example: cargo run -p ipc-watch -- socket   (or: socket --tcp 8080)
    Socket {
        /// The Unix socket's path (default: socket-demo's, in the private folder).
        #[arg(long, conflicts_with = "tcp")]
        path: Option<PathBuf>,
        /// Watch TCP connections on this port instead.
        #[arg(long)]
        tcp: Option<u16>,
    },
    /// Signals: the pending, blocked, ignored and caught sets of a receiver.
    ///
    /// Example: cargo run -p ipc-watch -- signal --pid 4242
    Signal {
        /// Watch this process instead of every signal-demo.
        #[arg(long, value_parser = pid)]
        pid: Option<i32>,
    },
}

fn pid(text: &str) -> std::result::Result<i32, String> {
    match text.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(format!("`{text}` is not a process id (a number above 0)")),
    }
}

fn key(text: &str) -> std::result::Result<msgq_demo::sysv::Key, String> {
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).map(|k| k as msgq_demo::sysv::Key),
        None => text.parse::<msgq_demo::sysv::Key>(),
    };
    match parsed {
        Ok(0) => Err("key 0 is IPC_PRIVATE, which no other process can find".into()),
        Ok(key) => Ok(key),
        Err(_) => Err(format!(
            "`{text}` is not a key (a number such as 0x71000001)"
        )),
    }
}

fn main() -> std::process::ExitCode {
    common::exit::main_with("ipc-watch", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    let watched = resolve(cli.what)?;
    if cli.once {
        common::narrate::print_summary(watched.look().plain().trim_end())
    } else {
        ipc_watch::live::run(&watched, Duration::from_millis(cli.interval_ms))
    }
}

/// The object each subcommand means, with the demos' defaults filled in.
fn resolve(what: What) -> Result<Watched> {
    let private = |name: &str| -> Result<PathBuf> { Ok(common::paths::private_dir()?.join(name)) };
    Ok(match what {
        What::Pipe { pid } => Watched::Pipe(pid),
        What::Fifo { path } => Watched::Fifo(match path {
            Some(path) => path,
            None => fifo_demo::default_path("fifo")?,
        }),
        What::Msgq { key, path } => Watched::Msgq(match key {
            Some(key) => key,
            // msgq-demo's default key: ftok(--path or the private folder, 'q').
            None => {
                msgq_demo::default_key(&common::Narrator::silent("ipc-watch"), path.as_deref())?
            }
        }),
        What::Mq { name } => Watched::Mq(name.unwrap_or_else(msgq_demo::default_name)),
        What::Shm { name } => Watched::Shm(name.unwrap_or_else(shm_demo::default_name)),
        // mmap-demo's default file names (its main.rs).
        What::Mmap { path } => Watched::Mmap(match path {
            Some(path) => path,
            None => private(mmap_demo::MESSAGE_FILE)?,
        }),
        What::Lazy { path } => Watched::Lazy(match path {
            Some(path) => path,
            None => private(mmap_demo::SPARSE_FILE)?,
        }),
        What::Socket { path, tcp } => match tcp {
            Some(port) => Watched::Tcp(port),
            // socket-demo's default socket (its main.rs).
            None => Watched::Unix(match path {
                Some(path) => path,
                None => private("socket")?,
            }),
        },
        What::Signal { pid } => Watched::Signals(pid),
    })
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
