//! ALPC client lessons (note 003, 3.7.3):
//!
//! - [`client`]: one channel, and one call down each path: a small message copied, a
//!   large one through the section, one larger than the section read from this process's
//!   memory, and a call during which the server calls back;
//! - [`rpc`]: the same channel used through RPC stubs;
//! - [`bad`]: a request that lies, or a client that vanishes while the server calls back;
//! - [`peek`]: another process trying to get at a client's channel.
//!
//! ```text
//! cargo run -p ports-demo -- alpc-server                      # terminal 1
//! cargo run -p ports-demo -- alpc-client                      # terminal 2
//! cargo run -p ports-demo -- alpc-client --hold               # terminal 2: wait ...
//! cargo run -p ports-demo -- alpc-peek --pid PID --fd FD      # terminal 3: ... and peek
//! ```
//!
//! See also: proc(5) (/proc/PID/fd), pidfd_getfd(2), ptrace(2) (access mode checking).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::narrate::print_summary;
use common::{Error, Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::Pid;

use crate::alpc::{self, Header, MsgKind, Path as DataPath};
use crate::channel::{self, Channel};
use crate::mach_client::wait_for_enter;
use crate::rpc;

/// `size` bytes of lowercase text, different for each call.
fn data(call: u64, size: usize) -> Vec<u8> {
    (b'a'..=b'z')
        .cycle()
        .skip(call as usize % 26)
        .take(size)
        .collect()
}

fn paths_summary(ch: &Channel) -> String {
    let p = ch.paths;
    format!(
        "inline={} section={} direct={} reply_inline={} reply_section={} reply_direct={} callbacks={}",
        p.inline, p.section, p.direct, p.reply_inline, p.reply_section, p.reply_direct, p.callbacks
    )
}

// ANCHOR: client
/// Connects with a section of `section` bytes (and asks for as large a one for replies),
/// echoes data of each of `sizes`, then calls `greet`, which calls back; checks every
/// result. With `hold`, it waits for Enter after connecting, so that another process can
/// try to reach its channel. It waits at most `patience` for each answer of the server.
pub fn client(
    n: &Narrator,
    port: &Path,
    section: usize,
    sizes: &[usize],
    hold: bool,
    patience: Option<Duration>,
) -> Result<()> {
    let mut ch = channel::connect(n, port, section, section, patience)?;
    if hold {
        n.essential(tr!(
            "holding: channel on fd {fd} in pid {pid}; try alpc-peek --pid {pid} --fd {fd}, then press Enter",
            fd = std::os::fd::AsRawFd::as_raw_fd(&ch.sock),
            pid = std::process::id()
        ));
        wait_for_enter(n)?;
    }
    let (mut ok, mut wrong) = (0u64, 0u64);
    for (i, &size) in sizes.iter().enumerate() {
        let sent = data(i as u64, size);
        let back = rpc::echo(n, &mut ch, &sent)?;
        if back == sent.to_ascii_uppercase() {
            ok += 1
        } else {
            wrong += 1
        }
    }
    let greeting = rpc::greet_stub(n, &mut ch, "alpc-client")?;
    if greeting == rpc::greet("alpc-client") {
        ok += 1
    } else {
        wrong += 1
    }
    say!(
        n,
        "greet() = {greeting}",
        greeting = format!("{greeting:?}")
    );
    print_summary(format_args!(
        "summary: calls={} ok={ok} wrong={wrong} {}",
        sizes.len() + 1,
        paths_summary(&ch)
    ))
}
// ANCHOR_END: client

// ANCHOR: rpc
/// Local RPC: three procedures called through their stubs, as an application would
/// (waiting at most `patience` for each answer).
pub fn rpc(
    n: &Narrator,
    port: &Path,
    section: usize,
    large: usize,
    patience: Option<Duration>,
) -> Result<()> {
    let mut ch = channel::connect(n, port, section, section, patience)?;
    let (mut ok, mut wrong) = (0u64, 0u64);
    let mut check = |good: bool| if good { ok += 1 } else { wrong += 1 };
    let sum = rpc::add_stub(n, &mut ch, 2, 40)?;
    say!(n, "add(2, 40) = {sum}", sum);
    check(sum == 42);
    let small = rpc::upper_stub(n, &mut ch, "hello from rpc")?;
    say!(
        n,
        "upper(\"hello from rpc\") = {small}",
        small = format!("{small:?}")
    );
    check(small == "HELLO FROM RPC");
    let text: String = (b'a'..=b'z').cycle().take(large).map(char::from).collect();
    let big = rpc::upper_stub(n, &mut ch, &text)?;
    say!(
        n,
        "upper(a string of {large} bytes) = a string of {len} bytes",
        large,
        len = big.len()
    );
    check(big == rpc::upper(&text));
    let hello = rpc::greet_stub(n, &mut ch, "rpc-client")?;
    say!(n, "greet() = {hello}", hello = format!("{hello:?}"));
    check(hello == "hello, rpc-client");
    print_summary(format_args!(
        "summary: calls=4 ok={ok} wrong={wrong} {}",
        paths_summary(&ch)
    ))
}
// ANCHOR_END: rpc

/// The ways [`bad`] breaks the rules of a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BadAlpc {
    /// The header says 200 bytes of inline data; 10 come.
    LyingLength,
    /// The data is said to be in the section, past its end.
    SectionBounds,
    /// The data is said to be at an address where nothing is mapped.
    BadAddress,
    /// The client ends while the server is calling back into it.
    Vanish,
}

// ANCHOR: bad
/// Sends one request that breaks the rules as `how` says (or vanishes mid-call), then,
/// unless it vanished, one good call on the same channel (waiting at most `patience` for
/// each answer).
pub fn bad(
    n: &Narrator,
    port: &Path,
    section: usize,
    how: BadAlpc,
    patience: Option<Duration>,
) -> Result<()> {
    let mut ch = channel::connect(n, port, section, section, patience)?;
    let label = match how {
        BadAlpc::LyingLength => "lying-length",
        BadAlpc::SectionBounds => "section-bounds",
        BadAlpc::BadAddress => "bad-address",
        BadAlpc::Vanish => {
            let mut leave = |_: &Narrator, _: u32, _: &[u8]| -> Result<Vec<u8>> {
                Err(Error::sys(tr!("answer the callback"), Errno::ECONNABORTED)
                    .hint(tr!("this client vanishes on purpose")))
            };
            return match ch.call(n, rpc::GREET, &[], 0, &mut leave) {
                Err(e) if e.errno() == Some(Errno::ECONNABORTED) => {
                    n.announce(tr!("the server called back; I end now without answering"));
                    print_summary("summary: bad=vanish calls=1 ok=0 refused=0")
                }
                Err(e) => Err(e),
                Ok(_) => Err(Error::bad_data(
                    tr!("vanish mid-call"),
                    tr!("the server never called back"),
                )),
            };
        }
    };
    let section_end = ch.section_len() as u64;
    let answer = ch.call_raw(n, |seq| {
        let mut h = Header::new(MsgKind::Request, rpc::ECHO, seq);
        match how {
            BadAlpc::LyingLength => {
                h.len = 200;
                return alpc::encode(&h, &[b'x'; 10]);
            }
            BadAlpc::SectionBounds => {
                h.path = DataPath::Section;
                (h.at, h.len) = (section_end - 10, 100);
            }
            _ => {
                h.path = DataPath::Direct;
                (h.at, h.len) = (0x1000, 1 << 20);
            }
        }
        alpc::encode(&h, &[])
    });
    let refused = match answer {
        Err(e) => {
            n.essential(tr!("the bad request was refused: {e}", e));
            1
        }
        Ok(_) => {
            return Err(Error::bad_data(
                tr!("send a bad request"),
                tr!("the server answered it as if it were good"),
            ));
        }
    };
    // The channel still serves: one good call on it.
    let ok = u64::from(rpc::echo(n, &mut ch, b"still there?")? == b"STILL THERE?");
    print_summary(format_args!(
        "summary: bad={label} calls=2 ok={ok} refused={refused}"
    ))
}
// ANCHOR_END: bad

/// What one of [`peek`]'s attempts gave: `OK` or the errno's name.
fn outcome<T>(result: &Result<T>) -> String {
    match result {
        Ok(_) => "OK".into(),
        Err(e) => e
            .errno()
            .map_or_else(|| "error".into(), |errno| format!("{errno:?}")),
    }
}

// ANCHOR: peek
/// Another process tries to reach client `pid`'s channel, descriptor `fd`: by its name
/// (`readlink` shows a socket has none), by opening it through /proc (sockets cannot be
/// opened that way), and by copying the descriptor with `pidfd_getfd`, which only a
/// process with ptrace access to the client may do.
///
/// The open is the lesson's, so it must open nothing else: a FIFO opened for writing
/// wakes its reader, and a device acts on an open. So `/proc/PID/fd/N` is first opened
/// with `O_PATH`, which reads, writes and waits for nothing and runs no driver's open;
/// `fstat` on that descriptor says what it is; anything but a socket is refused. The
/// lesson's open then goes through this process's own `O_PATH` descriptor
/// (`/proc/self/fd/K`), so it meets the very socket `fstat` saw, even if the client has
/// put something else at descriptor N meanwhile.
pub fn peek(n: &Narrator, pid: i32, fd: i32) -> Result<()> {
    let link = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
    let named = crate::sys::readlink(n, &link);
    let opened = match sys::open(n, &link, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()) {
        Err(e) => Err(e),
        Ok(handle) => {
            let st = crate::sys::fstat(n, &handle)?;
            if st.0.st_mode & libc::S_IFMT != libc::S_IFSOCK {
                return Err(Error::bad_data(
                    format!("fstat({})", handle.as_raw_fd()),
                    tr!(
                        "descriptor {fd} of process {pid} is {found}, not a socket: alpc-peek opens nothing but a channel",
                        fd,
                        pid,
                        found = common::owner::said(st.0.st_mode)
                    ),
                )
                .hint(tr!(
                    "give the --pid and --fd that alpc-client --hold prints"
                )));
            }
            if let Ok(target) = &named {
                say!(
                    n,
                    "{target}: a socket with no path; nothing in the file system names this channel",
                    target
                );
            }
            let mine = PathBuf::from(format!("/proc/self/fd/{}", handle.as_raw_fd()));
            sys::open(n, &mine, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        }
    };
    let stolen = crate::sys::pidfd_open(n, Pid::from_raw(pid))
        .and_then(|pidfd| crate::sys::pidfd_getfd(n, &pidfd, fd));
    match &stolen {
        Ok(_) => n.announce(tr!("pidfd_getfd worked: a process with ptrace access to the client (same user and no Yama restriction, or CAP_SYS_PTRACE) can copy its channel, as PROCESS_DUP_HANDLE allows on Windows; I close the copy unused")),
        Err(_) => n.announce(tr!("pidfd_getfd was refused: without ptrace access to the client, its channel cannot be reached")),
    }
    print_summary(format_args!(
        "summary: readlink={} open={} pidfd_getfd={}",
        outcome(&named),
        outcome(&opened),
        outcome(&stolen)
    ))
}
// ANCHOR_END: peek
