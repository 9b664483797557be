//! passing-demo: message passing as a design space, every choice run with real processes.
//!
//! Follows `001_ffa78007200462ad.txt`, "3. IPC 모델 - Message Passing" (note 001, IPC
//! models, section 3). That section names the choices behind every message-passing
//! system, and each module here makes one of them runnable on Linux:
//!
//! - naming, direct: [`direct`] (the sender names the receiving process with `kill(2)`;
//!   the receiver learns who sent from `si_pid`) and [`datagram`] (each process has its
//!   own socket address; `recvfrom` names the sender; `connect` on both sides makes the
//!   naming symmetric, and the kernel then refuses an outsider with EPERM);
//! - naming, indirect: [`mailbox`], one mailbox (a System V queue key, a FIFO path or a
//!   socket path) with several senders and several receivers, who owns it and when it
//!   goes away;
//! - synchronisation: [`sync`], blocking, non-blocking and time-out sends and receives
//!   in every combination, and bounded links whose sender waits when they are full;
//! - buffering: [`zero`] (what the kernel offers for a link of zero capacity, and the
//!   rendezvous built from a send and an acknowledgement) and [`unbounded`] (asking for
//!   a link without a bound, and the limit every real system has);
//! - [`clean`]: removes what a killed run left behind.
//!
//! The lessons that compare two processes' events (who took a message, when a send
//! returned) write them into one [`timeline`] that a third process, the observer, reads
//! and checks; the order of the events there is kept by the kernel, not by a clock.
//!
//! Usage: `cargo run -p passing-demo -- --help`. See also: the chapter "Designing message
//! passing" of the book, msgsnd(2), unix(7), pipe(7), signal(7), poll(2), and TLPI
//! chapters 43 ("Interprocess Communication Overview") and 57 ("Sockets: Unix Domain").

pub mod clean;
pub mod crew;
pub mod datagram;
pub mod direct;
pub mod link;
pub mod mailbox;
pub mod sync;
pub mod sys;
pub mod timeline;
pub mod unbounded;
pub mod zero;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};

use common::{Error, Result, paths};
use msgq_demo::sysv::Key;

/// The most senders or receivers a lesson starts.
pub const MAX_CREW: usize = 8;

/// The roles of up to [`MAX_CREW`] senders, as narration tags them.
pub const SENDERS: [&str; MAX_CREW] = [
    "sender-1", "sender-2", "sender-3", "sender-4", "sender-5", "sender-6", "sender-7", "sender-8",
];

/// The roles of up to [`MAX_CREW`] receivers.
pub const RECEIVERS: [&str; MAX_CREW] = [
    "receiver-1",
    "receiver-2",
    "receiver-3",
    "receiver-4",
    "receiver-5",
    "receiver-6",
    "receiver-7",
    "receiver-8",
];

/// What a lesson uses a System V queue for; each gets its own key, so that one `--name`
/// can run every lesson at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The mailbox of [`mailbox`].
    Mailbox,
    /// The link of [`sync`] and `bounded`.
    Link,
    /// The rendezvous of [`zero`].
    Zero,
    /// The attempts of [`unbounded`].
    Unbounded,
}

impl Purpose {
    /// Every purpose, for `clean`.
    pub const ALL: [Purpose; 4] = [
        Purpose::Mailbox,
        Purpose::Link,
        Purpose::Zero,
        Purpose::Unbounded,
    ];

    fn word(self) -> &'static str {
        match self {
            Purpose::Mailbox => "mailbox",
            Purpose::Link => "link",
            Purpose::Zero => "zero",
            Purpose::Unbounded => "unbounded",
        }
    }
}

/// The names of every kernel object a lesson makes, all derived from `--name`, so that
/// two classes (or two tests) on one machine never share one.
#[derive(Debug, Clone)]
pub struct Names {
    name: String,
    /// The private folder, found (and made) the first time a path is asked for: a
    /// lesson without paths leaves no folder behind.
    dir: OnceCell<PathBuf>,
}

impl Names {
    /// Checks `--name`: letters, digits, `.`, `_`, `-`; at most 40.
    pub fn new(name: &str) -> Result<Names> {
        check_name(name)?;
        Ok(Names {
            name: name.to_string(),
            dir: OnceCell::new(),
        })
    }

    /// The `--name` itself.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The folder where the paths live ([`common::paths::private_dir`]).
    pub fn dir(&self) -> Result<&Path> {
        if let Some(dir) = self.dir.get() {
            return Ok(dir);
        }
        let dir = paths::private_dir()?;
        Ok(self.dir.get_or_init(|| dir))
    }

    /// The System V key for `purpose`: a CRC-32 of the user, the name and the purpose. A
    /// key is only a number that processes agree on (svipc(7)); this one is never
    /// IPC_PRIVATE (0) and never negative.
    pub fn key(&self, purpose: Purpose) -> Key {
        let uid = nix::unistd::Uid::effective();
        let text = format!("ipc-demos/passing/{uid}/{}/{}", self.name, purpose.word());
        let hash = crc32fast::hash(text.as_bytes()) & 0x7fff_ffff;
        // key_t is a 32-bit int on Linux; the mask keeps the value positive.
        Key::try_from(hash.max(1)).unwrap_or(1)
    }

    /// The FIFO of the FIFO mailbox.
    pub fn fifo(&self) -> Result<PathBuf> {
        Ok(self.dir()?.join(format!("passing-{}.fifo", self.name)))
    }

    /// The socket path of the socket mailbox.
    pub fn mailbox_socket(&self) -> Result<PathBuf> {
        Ok(self.dir()?.join(format!("passing-{}.sock", self.name)))
    }

    /// The address of process `pid` in the datagram lesson: its own name, with its pid.
    pub fn address_of(&self, pid: nix::unistd::Pid) -> Result<PathBuf> {
        Ok(self.dir()?.join(self.address_file(pid.as_raw())))
    }

    /// The file name of [`Names::address_of`], for `clean` to recognise.
    fn address_file(&self, pid: i32) -> String {
        // '@' cannot be part of a --name (check_name), so no other name's mailbox
        // (`passing-NAME-123.sock` of --name NAME-123) can look like an address file.
        format!("passing-{}@{pid}.sock", self.name)
    }

    /// The POSIX message queue of [`zero`] and [`unbounded`]: one slash, then a name
    /// (mq_overview(7)). POSIX queue names are one namespace for all users, so the name
    /// holds the uid too.
    pub fn mq(&self) -> String {
        let uid = nix::unistd::Uid::effective();
        format!("/ipc-demos-passing-{uid}-{}", self.name)
    }
}

/// The design space of note 001, section 3, with the command that shows each choice.
pub fn map() -> Result<()> {
    let rows = [
        (
            common::tr!("naming: direct, asymmetric (kill a pid; si_pid)"),
            "passing-demo direct",
        ),
        (
            common::tr!("naming: direct, asymmetric (an address; recvfrom)"),
            "passing-demo datagram",
        ),
        (
            common::tr!("naming: direct, symmetric (connect both ways)"),
            "passing-demo datagram --symmetric",
        ),
        (
            common::tr!("naming: indirect, a mailbox for many"),
            "passing-demo mailbox --via queue|fifo|socket",
        ),
        (
            common::tr!("synchronisation: blocking or not, on each side"),
            "passing-demo sync --send MODE --receive MODE",
        ),
        (
            common::tr!("synchronisation: rendezvous"),
            "passing-demo zero",
        ),
        (common::tr!("buffering: zero capacity"), "passing-demo zero"),
        (
            common::tr!("buffering: bounded capacity"),
            "passing-demo bounded --via pipe|queue",
        ),
        (
            common::tr!("buffering: unbounded capacity"),
            "passing-demo unbounded",
        ),
    ];
    common::narrate::print_summary(common::tr!(
        "Message passing, note 001, section 3: each choice and the command that shows it"
    ))?;
    for (choice, command) in rows {
        // Padded by columns, not by characters, so that the commands line up in Korean too.
        let pad = 52usize.saturating_sub(columns(&choice));
        common::narrate::print_summary(format_args!("  {choice}{:pad$} {command}", ""))?;
    }
    common::narrate::print_summary(common::tr!(
        "MODE is block, nonblock or timeout; --help on each command says more."
    ))
}

/// The columns a terminal gives `text`: two for a Hangul syllable, which is East Asian
/// Wide (Unicode Standard Annex #11), one for any other character the map holds.
fn columns(text: &str) -> usize {
    text.chars()
        .map(|c| {
            if ('\u{AC00}'..='\u{D7A3}').contains(&c) {
                2
            } else {
                1
            }
        })
        .sum()
}

/// Refuses a `--name` that could climb out of the folder or be read as an option.
fn check_name(name: &str) -> Result<()> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > 40 || !ok_chars || name.starts_with(['.', '-']) {
        return Err(Error::usage(common::tr!(
            "--name {name}: use 1 to 40 letters, digits, '.', '_' or '-', not starting with '.' or '-'",
            name = format!("{name:?}")
        )));
    }
    Ok(())
}

/// The key as `ipcs -q` prints it.
pub fn key_shown(key: Key) -> String {
    format!("{:#010x}", key as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_leave_the_folder_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "-x", &"n".repeat(41)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        for good in ["demo", "class-2.b_3"] {
            assert!(check_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn keys_differ_by_name_and_purpose_and_are_never_private() {
        let (a, b) = (Names::new("a").unwrap(), Names::new("b").unwrap());
        let keys: Vec<Key> = Purpose::ALL
            .iter()
            .flat_map(|&p| [a.key(p), b.key(p)])
            .collect();
        assert!(keys.iter().all(|&k| k > 0));
        let mut unique = keys.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
    }
}
