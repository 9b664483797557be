//! The command line of mmap-demo: parses the options and runs one lesson of `lib.rs`.
//!
//! ```text
//! cargo run -p mmap-demo -- producer      # terminal 1: creates and maps the file
//! cargo run -p mmap-demo -- consumer      # terminal 2: maps it, reads without read()
//! cargo run -p mmap-demo                  # both, in one terminal
//! cargo run -p mmap-demo -- private       # copy-on-write
//! cargo run -p mmap-demo -- lazy          # only touched pages are loaded
//! cargo run -p mmap-demo -- resize        # SIGBUS past the end of a shrunk file
//! cargo run -p mmap-demo -- file-poll     # a polled file next to a pipe
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use common::{NarrationArgs, Narrator, Result};

/// File-backed mmap: two processes that map one file MAP_SHARED share its pages, and
/// read each other's stores without read() or write().
#[derive(Parser, Debug)]
#[command(
    name = "mmap-demo",
    version,
    after_help = "Example:\n  cargo run -p mmap-demo -- producer     (in one terminal)\n  \
                  cargo run -p mmap-demo -- consumer     (in another)\n  \
                  cargo run -p mmap-demo -- lazy --size 1G --touch 10"
)]
struct Cli {
    #[command(subcommand)]
    lesson: Option<Lesson>,
    #[command(flatten)]
    messages: Messages,
    /// The file's path (default: a file in the per-user private folder).
    #[arg(long, global = true)]
    path: Option<PathBuf>,
    #[command(flatten)]
    narration: NarrationArgs,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

/// How many messages go through the file, how large.
#[derive(Args, Debug, Clone, Copy)]
struct Messages {
    /// Messages to write into the file.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=10_000_000))]
    count: u64,
    /// Payload bytes per message.
    #[arg(long, default_value = "64", value_parser = size)]
    size: usize,
}

fn size(text: &str) -> Result<usize, String> {
    common::units::size_in(text, 1, 64 << 20)
}

/// `read-or-map --size`: one page to 1 GiB.
fn file_size(text: &str) -> Result<usize, String> {
    common::units::size_in(text, 4096, 1 << 30)
}

#[derive(Subcommand, Debug)]
enum Lesson {
    /// Create the file, map it MAP_SHARED, and write COUNT messages into the mapping.
    ///
    /// Example: cargo run -p mmap-demo -- producer --count 1000
    Producer {
        #[command(flatten)]
        messages: Messages,
    },
    /// Map the producer's file and read the messages straight from memory.
    ///
    /// Example: cargo run -p mmap-demo -- consumer
    Consumer,
    /// MAP_PRIVATE: the writer's changes stay in its own copy of the page.
    ///
    /// Example: cargo run -p mmap-demo -- private
    Private,
    /// Map a large sparse file and touch a few pages: only those are loaded.
    ///
    /// Example: cargo run -p mmap-demo -- lazy --size 1G --touch 10
    Lazy {
        /// The file's size.
        #[arg(long, default_value = "1G", value_parser = common::units::parse_size)]
        size: usize,
        /// Pages to write one byte into, spread over the file.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
        touch: u64,
    },
    /// Shrink a file while it is mapped: a touch past the new end is SIGBUS.
    ///
    /// Example: cargo run -p mmap-demo -- resize
    Resize,
    /// Read one file with pread and by mapping it, timed: when each way wins.
    ///
    /// Example: cargo run -p mmap-demo -- read-or-map --size 256M
    ReadOrMap {
        /// The file's size, a whole number of pages.
        #[arg(long, default_value = "64M", value_parser = file_size)]
        size: usize,
        /// How many times the small case reads the file's first page each way.
        #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        reps: u64,
    },
    /// Plain-file IPC, polled every POLL-MS, next to a pipe: how late each side notices.
    ///
    /// Example: cargo run -p mmap-demo -- file-poll --count 10 --poll-ms 100
    FilePoll {
        /// Lines to send each way.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
        count: u64,
        /// How often the reader looks at the file, in milliseconds.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
        poll_ms: u64,
    },
    /// Remove a file a killed run left behind.
    ///
    /// Example: cargo run -p mmap-demo -- clean
    Clean,
}

fn main() -> ExitCode {
    common::exit::main_with("mmap-demo", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    let file = match cli.lesson {
        Some(Lesson::Private) => mmap_demo::PRIVATE_FILE,
        Some(Lesson::Lazy { .. }) => mmap_demo::SPARSE_FILE,
        Some(Lesson::Resize) => mmap_demo::RESIZE_FILE,
        Some(Lesson::FilePoll { .. }) => mmap_demo::POLL_FILE,
        Some(Lesson::ReadOrMap { .. }) => mmap_demo::READ_FILE,
        _ => mmap_demo::MESSAGE_FILE,
    };
    let path = mmap_demo::path_or_default(cli.path, file)?;
    let narrator = |role| Narrator::new(role, cli.narration);
    match cli.lesson {
        None => {
            let m = cli.messages;
            mmap_demo::check_messages(m.count, m.size)?;
            mmap_demo::exchange(&narrator("producer"), &path, m.count, m.size)
        }
        Some(Lesson::Producer { messages: m }) => {
            mmap_demo::check_messages(m.count, m.size)?;
            mmap_demo::producer_role(&narrator("producer"), &path, m.count, m.size)
        }
        Some(Lesson::Consumer) => mmap_demo::consumer_role(&narrator("consumer"), &path),
        Some(Lesson::Private) => mmap_demo::private(&narrator("writer"), &path),
        Some(Lesson::Lazy { size, touch }) => {
            mmap_demo::lazy(&narrator("lazy"), &path, size as u64, touch).map(drop)
        }
        Some(Lesson::Resize) => mmap_demo::resize(&narrator("parent"), &path),
        Some(Lesson::FilePoll { count, poll_ms }) => {
            let poll = Duration::from_millis(poll_ms);
            mmap_demo::file_poll(&narrator("writer"), &path, count, poll).map(drop)
        }
        Some(Lesson::ReadOrMap { size, reps }) => {
            mmap_demo::read_or_map(&narrator("reader"), &path, size, reps).map(drop)
        }
        Some(Lesson::Clean) => mmap_demo::clean(&narrator("clean"), &path),
    }
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
