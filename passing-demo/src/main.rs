//! The command line of passing-demo: parses the options and runs one lesson of the
//! library. Every lesson runs in one terminal; the processes it forks tag their lines
//! with their role and pid.
//!
//! ```text
//! cargo run -p passing-demo                          # the design space, and a command for each choice
//! cargo run -p passing-demo -- direct                # kill(pid): the sender names the receiving process
//! cargo run -p passing-demo -- datagram --symmetric  # addresses; connect both ways; an outsider gets EPERM
//! cargo run -p passing-demo -- mailbox --via fifo    # 3 senders, 2 receivers, one FIFO
//! cargo run -p passing-demo -- sync --send nonblock --receive timeout
//! cargo run -p passing-demo -- bounded --via pipe    # the sender waits when the pipe is full
//! cargo run -p passing-demo -- zero                  # the rendezvous
//! cargo run -p passing-demo -- unbounded             # ask for no bound, meet the limits
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use common::{NarrationArgs, Narrator, Result, stream, tr};
use passing_demo::link::{Mode, Via as LinkVia};
use passing_demo::mailbox::Via as MailboxVia;
use passing_demo::{Names, clean, datagram, direct, mailbox, sync, unbounded, zero};

/// Message passing as a design space: who names whom (direct, indirect), who waits
/// (blocking, non-blocking, time-outs), and how much a link holds (zero, bounded,
/// "unbounded"), each choice run with real processes. Without a command, prints the map.
#[derive(Parser, Debug)]
#[command(
    name = "passing-demo",
    version,
    after_help = "Example:\n  cargo run -p passing-demo -- mailbox --via queue --senders 3 --receivers 2\n  \
                  cargo run -p passing-demo -- zero --step     (Enter before each system call)"
)]
struct Cli {
    #[command(subcommand)]
    lesson: Option<Lesson>,
    /// The name every kernel object of a run is made from (queue keys, paths), so that
    /// two classes on one machine do not collide.
    #[arg(long, global = true, default_value = "demo")]
    name: String,
    #[command(flatten)]
    narration: NarrationArgs,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

#[derive(Subcommand, Debug)]
enum Lesson {
    /// Direct naming: senders name the receiving process by its pid (kill, SIGRTMIN);
    /// the receiver learns who sent each signal from si_pid.
    ///
    /// Example: cargo run -p passing-demo -- direct --senders 3
    Direct {
        /// Sending processes.
        #[arg(long, default_value_t = 2)]
        senders: usize,
        /// Signals each sends.
        #[arg(long, default_value_t = 3)]
        count: u64,
    },
    /// Direct naming by address: each process binds its own datagram socket; recvfrom
    /// names the sender. --symmetric: connect both ways, and an outsider gets EPERM.
    ///
    /// Example: cargo run -p passing-demo -- datagram --symmetric
    Datagram {
        /// Sending processes.
        #[arg(long, default_value_t = 2)]
        senders: usize,
        /// Datagrams each sends.
        #[arg(long, default_value_t = 3)]
        count: u64,
        /// Payload bytes per datagram.
        #[arg(long, default_value = "16", value_parser = stream::size)]
        size: usize,
        /// Then the receiver and the first sender name each other (connect).
        #[arg(long)]
        symmetric: bool,
    },
    /// Indirect naming: senders and receivers share one mailbox (a queue key, a FIFO
    /// path, a socket path); who takes what, who owns it, when it goes away.
    ///
    /// Example: cargo run -p passing-demo -- mailbox --via socket --receivers 3
    Mailbox {
        /// The kind of mailbox.
        #[arg(long, value_enum, default_value_t = MailboxVia::Queue)]
        via: MailboxVia,
        /// Sending processes.
        #[arg(long, default_value_t = 3)]
        senders: usize,
        /// Receiving processes.
        #[arg(long, default_value_t = 2)]
        receivers: usize,
        /// Messages each sender sends.
        #[arg(long, default_value_t = 10)]
        count: u64,
        /// Payload bytes per message.
        #[arg(long, default_value = "32", value_parser = stream::size)]
        size: usize,
    },
    /// Blocking, non-blocking and time-out sends and receives: the receiver meets an
    /// empty link, the sender a full one, each in its mode.
    ///
    /// Example: cargo run -p passing-demo -- sync --send nonblock --receive timeout
    Sync {
        /// How the sender sends.
        #[arg(long, value_enum, default_value_t = Mode::Block)]
        send: Mode,
        /// How the receiver receives.
        #[arg(long, value_enum, default_value_t = Mode::Block)]
        receive: Mode,
        #[command(flatten)]
        link: LinkArgs,
    },
    /// A bounded link: both sides block; the sender fills the link and then waits for
    /// the receiver. The number of messages it holds is computed from the kernel's sizes.
    ///
    /// Example: cargo run -p passing-demo -- bounded --via queue --capacity 2K
    Bounded {
        #[command(flatten)]
        link: LinkArgs,
    },
    /// Zero capacity: what the kernel offers when asked for it, and the rendezvous built
    /// from a send and an acknowledgement.
    ///
    /// Example: cargo run -p passing-demo -- zero --count 5
    #[command(visible_alias = "rendezvous")]
    Zero {
        /// Rendezvous to make.
        #[arg(long, default_value_t = 5)]
        count: u64,
    },
    /// "Unbounded" capacity: ask each link for --ask bytes, fill it, and show the limit
    /// it has anyway (msgmnb, pipe-max-size, SO_SNDBUF, RLIMIT_MSGQUEUE).
    ///
    /// Example: cargo run -p passing-demo -- unbounded --ask 8M
    Unbounded {
        /// Bytes to ask each link for (4K to 64M).
        #[arg(long, default_value = "4M", value_parser = ask_size)]
        ask: usize,
    },
    /// Remove what a killed run of this --name left behind (only what is yours).
    Clean,
}

/// The link options of `sync` and `bounded`.
#[derive(Args, Debug, Clone, Copy)]
struct LinkArgs {
    /// The link: a socket pair (sync's default), a pipe (bounded's default), a queue.
    #[arg(long, value_enum)]
    via: Option<LinkVia>,
    /// Bytes the link holds (pipe: F_SETPIPE_SZ, rounded up to pages; queue:
    /// msg_qbytes). bounded's default: 4K for a pipe, 1K for a queue.
    #[arg(long, value_parser = stream::size)]
    capacity: Option<usize>,
    /// Messages sent after the one that met the full link.
    #[arg(long, default_value_t = 3)]
    extra: u64,
    /// Payload bytes per message (a message is at most one atomic pipe write).
    #[arg(long, default_value = "48", value_parser = stream::size)]
    size: usize,
    /// The time-out of a `timeout` side, in milliseconds.
    #[arg(long, default_value_t = 200)]
    timeout_ms: u64,
}

impl LinkArgs {
    /// The plan of `sync` (a socket pair by default, capacity as it is) or of `bounded`
    /// (a pipe by default; a capacity small enough to watch it fill).
    fn plan(self, bounded: bool, send: Mode, receive: Mode) -> sync::Plan {
        let via = self.via.unwrap_or(if bounded {
            LinkVia::Pipe
        } else {
            LinkVia::Socket
        });
        let capacity = self.capacity.or(match (bounded, via) {
            (true, LinkVia::Pipe) => Some(4096),
            (true, LinkVia::Queue) => Some(1024),
            _ => None,
        });
        sync::Plan {
            via,
            send,
            receive,
            capacity,
            extra: self.extra,
            size: self.size,
            timeout: Duration::from_millis(self.timeout_ms),
        }
    }
}

/// Parses `--ask`: 4 KiB to [`unbounded::MAX_ASK`].
fn ask_size(text: &str) -> std::result::Result<usize, String> {
    common::units::size_in(text, 4096, unbounded::MAX_ASK)
}

fn main() -> ExitCode {
    common::exit::main_with("passing-demo", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    let Some(lesson) = cli.lesson else {
        return passing_demo::map();
    };
    let names = Names::new(&cli.name)?;
    let args = cli.narration;
    match lesson {
        Lesson::Direct { senders, count } => {
            direct::check(senders, count)?;
            direct::direct(&Narrator::new("receiver", args), senders, count)
        }
        Lesson::Datagram {
            senders,
            count,
            size,
            symmetric,
        } => {
            let plan = datagram::Plan {
                senders,
                count,
                size,
                symmetric,
            };
            plan.check()?;
            datagram::datagram(&Narrator::new("receiver", args), &names, plan)
        }
        Lesson::Mailbox {
            via,
            senders,
            receivers,
            count,
            size,
        } => {
            let plan = mailbox::Plan {
                senders,
                receivers,
                count,
                size,
            };
            mailbox::mailbox(&Narrator::new("observer", args), &names, via, plan)
        }
        Lesson::Sync {
            send,
            receive,
            link,
        } => {
            let plan = link.plan(false, send, receive);
            sync::sync(&Narrator::new("observer", args), &names, plan)
        }
        Lesson::Bounded { link } => {
            let plan = link.plan(true, Mode::Block, Mode::Block);
            if plan.via == LinkVia::Socket {
                return Err(common::Error::usage(tr!(
                    "bounded is for --via pipe or queue, whose capacity can be set; for the socket pair, use sync"
                )));
            }
            sync::sync(&Narrator::new("observer", args), &names, plan)
        }
        Lesson::Zero { count } => zero::zero(&Narrator::new("observer", args), &names, count),
        Lesson::Unbounded { ask } => {
            unbounded::unbounded(&Narrator::new("unbounded", args), &names, ask)
        }
        Lesson::Clean => clean::clean(&Narrator::new("clean", args), &names),
    }
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
