//! The command line of shm-demo: parses the options and runs one lesson of `lib.rs`.
//!
//! ```text
//! cargo run -p shm-demo -- producer          # terminal 1: shm_open, ftruncate, mmap
//! cargo run -p shm-demo -- consumer          # terminal 2: shm_open, mmap
//! cargo run -p shm-demo                      # both, in one terminal
//! cargo run -p shm-demo -- race              # lost updates, and how to stop losing them
//! cargo run -p shm-demo -- --api sysv         # the same ring in a System V segment (note 002)
//! cargo run -p shm-demo -- holder-dies --kind sysv   # a semaphore whose holder is killed
//! cargo run -p shm-demo -- --ring fast        # the ring built for speed
//! cargo run -p shm-demo -- false-sharing      # two counters in one cache line, measured
//! ```

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, Parser, Subcommand};
use common::tally::MAX_COUNT;
use common::{Error, NarrationArgs, Narrator, Result, tr};
use shm_demo::locked_race::RaceLock;
use shm_demo::region::{self, Ring, Wait};
use shm_demo::sem::{Kind, Place};

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
    /// Which shared memory: POSIX objects (shm_open, mmap), or System V segments found by
    /// a key (shmget, shmat), as note 002 writes it.
    #[arg(long, global = true, value_enum, default_value_t = Api::Posix)]
    api: Api,
    /// The System V key of the segment (--api sysv) or of the semaphore set (default:
    /// ftok of your private folder), in decimal or 0x hex as ipcs shows it.
    #[arg(long, global = true, value_parser = shm_demo::sem::parse_key)]
    key: Option<i32>,
    /// The name of the POSIX named semaphore (default: /ipc-demo-sem-UID).
    #[arg(long, global = true)]
    sem_name: Option<String>,
    #[command(flatten)]
    narration: NarrationArgs,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

/// Which shared memory the ring lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Api {
    /// shm_open, ftruncate, mmap: an object with a name in /dev/shm.
    Posix,
    /// shmget, shmat, shmdt, shmctl: a segment with a key, listed by ipcs -m.
    Sysv,
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
        /// Only this way of keeping the increments apart: none, an atomic instruction, or
        /// a lock of one kind of semaphore (unnamed, named, or System V).
        #[arg(long, value_enum)]
        lock: Option<RaceLock>,
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
    /// A process takes a semaphore and is killed with SIGKILL while it holds it; another
    /// then tries to take it, with a time-out. Only SEM_UNDO gives it back.
    ///
    /// Example: cargo run -p shm-demo -- holder-dies --kind named
    HolderDies {
        /// The kind of semaphore.
        #[arg(long, value_enum, default_value_t = Kind::Sysv)]
        kind: Kind,
        /// System V only: take the semaphore without SEM_UNDO.
        #[arg(long)]
        no_undo: bool,
        /// How long the waiter waits before it gives up, in milliseconds.
        #[arg(long, default_value = "2000", value_parser = shm_demo::sem::timeout_ms)]
        timeout_ms: std::time::Duration,
    },
    /// Make a named or System V semaphore, take it, and hold it until Enter: the first
    /// terminal of a semaphore between two unrelated processes.
    ///
    /// Example: cargo run -p shm-demo -- sem-hold --kind named
    SemHold {
        /// The kind of semaphore (named or sysv).
        #[arg(long, value_enum, default_value_t = Kind::Named)]
        kind: Kind,
    },
    /// Open the semaphore sem-hold made, by its name or key, and take it within a time-out.
    ///
    /// Example: cargo run -p shm-demo -- sem-wait --kind named
    SemWait {
        /// The kind of semaphore (named or sysv).
        #[arg(long, value_enum, default_value_t = Kind::Named)]
        kind: Kind,
        /// How long to wait before giving up, in milliseconds.
        #[arg(long, default_value = "60000", value_parser = shm_demo::sem::timeout_ms)]
        timeout_ms: std::time::Duration,
    },
    /// List what the demos left: named semaphores in /dev/shm, the segment and the
    /// semaphore set at the demo's keys (ipcs -m, ipcs -s).
    ///
    /// Example: cargo run -p shm-demo -- status
    Status,
    /// Remove what a killed run left: the object (shm_unlink) and the named semaphore
    /// (sem_unlink); with --api sysv, the segment and the semaphore set (IPC_RMID).
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
    let ring_role = matches!(
        cli.role,
        None | Some(Role::Producer { .. } | Role::Consumer { .. })
    );
    if ring_role && cli.api == Api::Posix && cli.key.is_some() {
        return Err(Error::usage(tr!(
            "--key names a System V segment: add --api sysv, or name a POSIX object with --name"
        )));
    }
    if ring_role && cli.api == Api::Sysv && cli.name.is_some() {
        return Err(Error::usage(tr!(
            "--name names a POSIX object: a System V segment is found by --key"
        )));
    }
    if cli.api == Api::Sysv {
        return sysv(cli);
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
        Some(Role::Race { count, lock: None }) => {
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
        Some(Role::Race {
            count,
            lock: Some(lock),
        }) => {
            let n = Narrator::new("race", cli.narration);
            let kind = lock.semaphore();
            let place = Place::resolve(&n, kind, cli.sem_name, cli.key)?;
            shm_demo::locked_race::run(&n, lock, &place, count)
        }
        Some(Role::HolderDies {
            kind,
            no_undo,
            timeout_ms,
        }) => {
            let n = Narrator::new("waiter", cli.narration);
            let place = Place::resolve(&n, Some(kind), cli.sem_name, cli.key)?;
            shm_demo::holder::run(&n, kind, &place, !no_undo, timeout_ms)
        }
        Some(Role::SemHold { kind }) => {
            let n = Narrator::new("holder", cli.narration);
            let place = Place::resolve(&n, Some(kind), cli.sem_name, cli.key)?;
            shm_demo::sem_roles::hold(&n, kind, &place)
        }
        Some(Role::SemWait { kind, timeout_ms }) => {
            let n = Narrator::new("waiter", cli.narration);
            let place = Place::resolve(&n, Some(kind), cli.sem_name, cli.key)?;
            shm_demo::sem_roles::wait(&n, kind, &place, timeout_ms)
        }
        Some(Role::Status) => {
            let n = Narrator::new("status", cli.narration);
            shm_demo::leftovers::status_role(&n, cli.key)
        }
        Some(Role::Clean) => {
            let n = Narrator::new("clean", cli.narration);
            let place = Place::resolve(&n, Some(Kind::Named), cli.sem_name, None)?;
            let removed =
                shm_demo::clean(&n, &name)? + shm_demo::leftovers::clean_named(&n, &place.name)?;
            common::narrate::print_summary(format_args!("summary: removed={removed}"))
        }
    }
}

/// The roles over a System V segment (`--api sysv`): the same ring, found by a key.
fn sysv(cli: Cli) -> Result<()> {
    use shm_demo::segment;
    let shape = |ring: RingArgs| shm_demo::ring_shape(ring.ring, ring.slots, ring.size);
    match cli.role {
        None => {
            let (n, ring) = (Narrator::new("producer", cli.narration), cli.ring);
            let (shape, key) = (shape(ring)?, segment::segment_key(&n, cli.key)?);
            segment::exchange(&n, key, ring.mode, shape, ring.wait, ring.count, ring.size)
        }
        Some(Role::Producer { ring }) => {
            let n = Narrator::new("producer", cli.narration);
            let (shape, key) = (shape(ring)?, segment::segment_key(&n, cli.key)?);
            segment::producer_role(&n, key, ring.mode, shape, ring.wait, ring.count, ring.size)
        }
        Some(Role::Consumer { no_wait }) => {
            let n = Narrator::new("consumer", cli.narration);
            let key = segment::segment_key(&n, cli.key)?;
            segment::consumer_role(&n, key, no_wait)
        }
        Some(Role::Clean) => {
            let n = Narrator::new("clean", cli.narration);
            let key = segment::segment_key(&n, cli.key)?;
            let set_key = match cli.key {
                Some(key) => key,
                None => shm_demo::sem::default_key(&n, shm_demo::sem::SET_PROJECT)?,
            };
            let removed = segment::clean(&n, key)? + shm_demo::leftovers::clean_set(&n, set_key)?;
            common::narrate::print_summary(format_args!("summary: removed={removed}"))
        }
        Some(_) => Err(Error::usage(tr!(
            "--api sysv is for the ring's roles (no subcommand, producer, consumer) and clean; \
             race, holder-dies and status choose their semaphores with --lock or --kind"
        ))),
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
    if matches!(
        role,
        Role::Race { .. } | Role::FalseSharing { .. } | Role::HolderDies { .. } | Role::Status
    ) && given("name")
    {
        return Err(Error::usage(tr!(
            "`race`, `false-sharing`, `holder-dies` and `status` name no shared memory object: leave out --name \
             (--sem-name names a named semaphore)"
        )));
    }
    Ok(())
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
