//! The command line of shm-demo: parses the options and runs one lesson of `lib.rs`.
//!
//! ```text
//! cargo run -p shm-demo -- producer          # terminal 1: shm_open, ftruncate, mmap
//! cargo run -p shm-demo -- consumer          # terminal 2: shm_open, mmap
//! cargo run -p shm-demo                      # both, in one terminal
//! cargo run -p shm-demo -- race              # lost updates, and how to stop losing them
//! cargo run -p shm-demo -- --ring fast        # the ring built for speed
//! cargo run -p shm-demo -- false-sharing      # two counters in one cache line, measured
//! ```

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, Parser, Subcommand};
use common::tally::MAX_COUNT;
use common::{Error, NarrationArgs, Narrator, Result, tr};
use shm_demo::region::{self, Ring, Wait};

/// POSIX shared memory: two processes map the same pages, and data moves with plain loads
/// and stores. They must take turns themselves: semaphores (--wait block) or spinning.
#[derive(Parser, Debug)]
#[command(
    name = "shm-demo",
    version,
    after_help = "Example:\n  cargo run -p shm-demo -- producer     (in one terminal)\n  \
                  cargo run -p shm-demo -- consumer     (in another)\n  \
                  cargo run -p shm-demo -- --wait spin --count 1000000 --quiet"
)]
struct Cli {
    #[command(subcommand)]
    role: Option<Role>,
    #[command(flatten)]
    ring: RingArgs,
    /// The shared memory object's name (default: /ipc-demo-shm-UID). Not for `race`,
    /// whose memory has no name.
    #[arg(long, global = true)]
    name: Option<String>,
    #[command(flatten)]
    narration: NarrationArgs,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

/// What the producer sends, and the ring it sends it through.
#[derive(Args, Debug, Clone, Copy)]
struct RingArgs {
    /// Messages to send.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=MAX_COUNT))]
    count: u64,
    /// Payload bytes per message (a slot holds one message: up to 64M).
    #[arg(long, default_value = "64", value_parser = size)]
    size: usize,
    /// Slots in the ring.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=i64::from(region::MAX_SLOTS)))]
    slots: u32,
    /// How the two sides wait for each other.
    #[arg(long, value_enum, default_value_t = Wait::Block)]
    wait: Wait,
    /// Which ring: the textbook's (head, tail and semaphores), or the fast one (a stamp
    /// in each slot, slots padded to cache lines, and a wait that spins briefly, then
    /// sleeps on a futex).
    #[arg(long, value_enum, default_value_t = Ring::Textbook)]
    ring: Ring,
    /// Permission bits of the new object, in octal. 0666, as note 003 writes it, lets
    /// every user of the machine read the messages and write into the ring (and damage
    /// it): unsafe on a shared machine. The default lets only you in.
    #[arg(long, default_value = "0600", value_parser = common::units::parse_mode)]
    mode: u32,
}

/// The ring's options, as they are named on the command line.
const RING_OPTIONS: [&str; 6] = ["count", "size", "slots", "wait", "ring", "mode"];

fn size(text: &str) -> Result<usize, String> {
    common::units::size_in(text, 1, region::MAX_PAYLOAD)
}

#[derive(Subcommand, Debug)]
enum Role {
    /// Create the object, size and map it, and send COUNT messages through its ring.
    ///
    /// Example: cargo run -p shm-demo -- producer --count 100 --slots 4
    Producer {
        #[command(flatten)]
        ring: RingArgs,
    },
    /// Open and map the object, and take and check every message.
    ///
    /// Example: cargo run -p shm-demo -- consumer
    Consumer {
        /// Fail at once if the object does not exist yet, instead of waiting for it.
        #[arg(long)]
        no_wait: bool,
    },
    /// Two processes add 1 to one counter COUNT times each: without synchronisation,
    /// with an atomic instruction, and with a semaphore.
    ///
    /// Example: cargo run -p shm-demo -- race --count 1000000
    Race {
        /// Increments per process.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
        count: u64,
    },
    /// Two processes add 1 to their own counters COUNT times each: with both counters in
    /// one cache line, then two lines apart. Measures what false sharing costs.
    ///
    /// Example: cargo run --release -p shm-demo -- false-sharing
    FalseSharing {
        /// Increments per process and layout.
        #[arg(long, default_value_t = 20_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
        count: u64,
    },
    /// Remove the object (shm_unlink) if a killed run left it.
    ///
    /// Example: cargo run -p shm-demo -- clean
    Clean,
}

fn main() -> ExitCode {
    common::exit::main_with("shm-demo", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    // Whether an option was typed or only defaulted is in clap's matches, which
    // i18n::parse does not return; a second look at the same command line (which
    // parsed already, so this cannot fail for a new reason) gives them.
    if let Ok(matches) = Cli::command().try_get_matches_from(std::env::args_os()) {
        unused_options(&matches, cli.role.as_ref())?;
    }
    let name = shm_demo::object_name(cli.name)?;
    let shape = |ring: RingArgs| shm_demo::ring_shape(ring.ring, ring.slots, ring.size);
    match cli.role {
        None => {
            let (n, ring) = (Narrator::new("producer", cli.narration), cli.ring);
            let shape = shape(ring)?;
            shm_demo::exchange(
                &n, &name, ring.mode, shape, ring.wait, ring.count, ring.size,
            )
        }
        Some(Role::Producer { ring }) => {
            let n = Narrator::new("producer", cli.narration);
            let shape = shape(ring)?;
            shm_demo::producer_role(
                &n, &name, ring.mode, shape, ring.wait, ring.count, ring.size,
            )
        }
        Some(Role::Consumer { no_wait }) => {
            shm_demo::consumer_role(&Narrator::new("consumer", cli.narration), &name, no_wait)
        }
        Some(Role::Race { count }) => {
            let r = shm_demo::race(&Narrator::new("race", cli.narration), count)?;
            common::narrate::print_summary(format_args!(
                "summary: expected={} unsynchronised={} atomic={} semaphore={}",
                r.expected, r.unsynchronised, r.atomic, r.semaphore
            ))
        }
        Some(Role::FalseSharing { count }) => {
            let r = shm_demo::false_sharing(&Narrator::new("false-sharing", cli.narration), count)?;
            common::narrate::print_summary(format_args!(
                "summary: increments={} same_line_ns={:.2} padded_ns={:.2} cpus={}",
                r.increments,
                r.same_line_ns,
                r.padded_ns,
                if r.two_cpus { 2 } else { 1 }
            ))
        }
        Some(Role::Clean) => shm_demo::clean(&Narrator::new("clean", cli.narration), &name),
    }
}

/// Refuses an option the chosen subcommand would ignore: the ring's options before a
/// subcommand (`shm-demo --count 5 consumer`: the consumer reads the count from the
/// producer), and `--name` with `race`, which shares anonymous memory that has no name.
fn unused_options(matches: &clap::ArgMatches, role: Option<&Role>) -> Result<()> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let Some(role) = role else {
        return Ok(());
    };
    let (sub, _) = matches.subcommand().unwrap_or(("", matches));
    if let Some(option) = RING_OPTIONS.into_iter().find(|id| given(id)) {
        return Err(Error::usage(tr!(
            "--{option} before `{sub}` would be ignored: it sets up the ring of the one-terminal \
             run, or of `producer` when it comes after that word",
            option,
            sub
        )));
    }
    if matches!(role, Role::Race { .. } | Role::FalseSharing { .. }) && given("name") {
        return Err(Error::usage(tr!(
            "`{sub}` shares anonymous memory (MAP_SHARED|MAP_ANONYMOUS), which has no name: \
             leave out --name",
            sub
        )));
    }
    Ok(())
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
