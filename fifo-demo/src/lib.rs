//! fifo-demo: a FIFO, or named pipe: a pipe with a name in the file system.
//!
//! Follows `000_5e93fa56600d397d.txt`, "2. Named PIPE(FIFO)"; `001_ffa78007200462ad.txt`,
//! "(2) FIFO(named pipe)"; and `003_5ebb38e0b36eb300.txt`, "3.7.4.2 지명 파이프".
//! `mkfifo(3)` puts a special file (type `p` in `ls -l`) in a folder; any process that may
//! open that path can then use the pipe behind it, so the two sides need no common
//! parent. The data still goes through a buffer in the kernel, never through the disk.
//!
//! - [`make_or_find`] and [`open_end`]: how the two sides meet (`mkfifo`, then `open`,
//!   which waits for the other side);
//! - [`exchange`]: both roles in one terminal; `producer` and `consumer` run them in two;
//! - [`consume_raw`] and [`produce_lines`]: plain bytes, to pair with `echo` and `cat`;
//! - [`server`] and [`client`]: full duplex with a well-known request FIFO and one reply
//!   FIFO per client (TLPI's sequence-number server);
//! - [`writers`]: several writers on one FIFO; writes of at most PIPE_BUF bytes never
//!   interleave;
//! - [`clean`]: removes FIFOs that killed runs left behind.
//!
//! Usage: `cargo run -p fifo-demo -- --help`. See also: mkfifo(3), fifo(7), pipe(7),
//! and TLPI section 44.7 "FIFOs" and 44.8 (the sequence-number server).

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use common::cleanup::{self, Guard};
use common::message;
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::stream::{self, FdStream, NARRATED_MESSAGES};
use common::{Context, Error, Narrator, Result};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl, open};
use nix::sys::stat::{Mode, SFlag, stat};
use nix::unistd::{self, PathconfVar, Pid};

/// Where the FIFO goes unless `--path` says otherwise: the per-user private folder.
pub fn default_path(name: &str) -> Result<PathBuf> {
    Ok(common::paths::private_dir()?.join(name))
}

// ANCHOR: make_or_find
/// Creates the FIFO at `path` with mode 0600, or uses the one already there (made by the
/// other role, or left by a run that was killed). Returns a guard that removes it if
/// this process made it; `None` if it was there already.
pub fn make_or_find(n: &Narrator, path: &Path) -> Result<Option<Guard>> {
    let shown = path.display();
    match n.call(format_args!("mkfifo({shown:?}, 0600)"), || {
        unistd::mkfifo(path, Mode::S_IRUSR | Mode::S_IWUSR)
    }) {
        Ok(()) => {
            n.say(format_args!(
                "I made the FIFO, and I remove it when I end; look: ls -l {shown}"
            ));
            Ok(Some(cleanup::unlink_on_drop(n, path)))
        }
        Err(e) if e.errno() == Some(Errno::EEXIST) => {
            check_is_fifo(path)?;
            n.say(format_args!(
                "{shown} exists already: the other side made it, or a killed run left it \
                 (`fifo-demo clean` removes it); I use it"
            ));
            Ok(None)
        }
        Err(e) => Err(e.hint("does the folder exist, and may you write in it?")),
    }
}
// ANCHOR_END: make_or_find

/// Refuses anything at `path` that is not a FIFO of ours: a regular file there is some
/// other program's, and a FIFO of another user's could be a trap.
fn check_is_fifo(path: &Path) -> Result<()> {
    let st = stat(path).context(format!("stat({:?})", path.display()))?;
    let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
    if kind != SFlag::S_IFIFO {
        return Err(Error::bad_data(
            format!("stat({:?})", path.display()),
            format!("it exists but is not a FIFO (it is {})", kind_name(kind)),
        )
        .hint("it is not ours to remove: choose another --path"));
    }
    if st.st_uid != unistd::Uid::current().as_raw() {
        return Err(Error::bad_data(
            format!("stat({:?})", path.display()),
            format!("the FIFO belongs to user {}, not to you", st.st_uid),
        )
        .hint("choose another --path"));
    }
    Ok(())
}

fn kind_name(kind: SFlag) -> &'static str {
    match kind {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a folder",
        SFlag::S_IFSOCK => "a socket",
        SFlag::S_IFLNK => "a symbolic link",
        _ => "some other kind of file",
    }
}

// ANCHOR: open_end
/// Opens one end of the FIFO. A blocking `open` of a FIFO waits until some process has
/// opened the other end (fifo(7)): that is how the two sides meet.
pub fn open_end(n: &Narrator, path: &Path, write: bool) -> Result<OwnedFd> {
    let (flags, name, other) = if write {
        (OFlag::O_WRONLY, "O_WRONLY", "reader")
    } else {
        (OFlag::O_RDONLY, "O_RDONLY", "writer")
    };
    let shown = path.display();
    n.announce(format_args!(
        "open({shown:?}, {name}) waits until a {other} opens the other end ..."
    ));
    n.call(format_args!("open({shown:?}, {name})"), || {
        open(path, flags | OFlag::O_CLOEXEC, Mode::empty())
    })
    .map_err(|e| match e.errno() {
        Some(Errno::ENOENT) => e.hint("there is no FIFO at this path: start the other side first, or give both the same --path"),
        Some(Errno::EACCES) => e.hint("the FIFO's permissions do not let you open it"),
        _ => e,
    })
}
// ANCHOR_END: open_end

// ANCHOR: exchange
/// Both roles in one terminal: the parent makes the FIFO and forks; the child opens it
/// for reading and consumes, the parent opens it for writing and produces. Unlike a pipe,
/// nothing passes through `fork` but the path: each opens the FIFO by its name.
pub fn exchange(n: &Narrator, path: &Path, count: u64, size: usize) -> Result<()> {
    let _fifo = make_or_find(n, path)?;
    match process::fork(n, "consumer")? {
        Fork::Child(me) => {
            let result = open_end(&me, path, false)
                .and_then(|fd| stream::consume(&me, fd, count, stream::MAX_SIZE));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            cleanup::exit_on_interrupt(n)?;
            let fd = open_end(n, path, true)?;
            stream::produce(n, fd, count, size)?;
            process::wait_for(n, child, "consumer")
        }
    }
}
// ANCHOR_END: exchange

/// The consumer's `--raw` mode: copies whatever arrives to standard output, so that
/// `echo hello > PATH` from a shell is a producer. Ends at end-of-file.
pub fn consume_raw(n: &Narrator, fd: OwnedFd) -> Result<()> {
    let mut fifo = FdStream::new(fd, n);
    let mut buf = vec![0; 64 << 10];
    let (mut bytes, mut reads) = (0u64, 0u64);
    let mut out = std::io::stdout().lock();
    loop {
        let got = fifo.read(&mut buf)?;
        if got == 0 {
            break;
        }
        out.write_all(&buf[..got])
            .and_then(|()| out.flush())
            .context("write(1)")?;
        bytes += got as u64;
        reads += 1;
    }
    drop(out);
    n.say("read() = 0: end of file, every writer has closed the FIFO");
    print_summary(format_args!("summary: bytes={bytes} reads={reads}"))
}

/// The producer's `--stdin` mode: sends each line of standard input with one `write`, so
/// that `cat PATH` or `consumer --raw` shows them.
pub fn produce_lines(n: &Narrator, fd: OwnedFd) -> Result<()> {
    let mut fifo = FdStream::new(fd, n);
    let mut lines = 0u64;
    let mut line = String::new();
    let stdin = std::io::stdin();
    loop {
        line.clear();
        if std::io::BufRead::read_line(&mut stdin.lock(), &mut line).context("read(0)")? == 0 {
            break;
        }
        fifo.write_all(line.as_bytes())?;
        lines += 1;
    }
    n.say(format_args!(
        "sent {lines} lines; closing the FIFO gives the reader end-of-file"
    ));
    stream::close(n, fifo.into_inner())
}

// ANCHOR: server
/// A request: the client's pid, then how many sequence numbers it wants (u32 each,
/// little-endian). 8 bytes, well under PIPE_BUF, so requests from many clients written
/// to one FIFO never mix.
pub const REQUEST_LEN: usize = 8;
/// The largest count one request may ask for.
pub const MAX_REQUEST: u32 = 1_000_000;

/// The reply FIFO of the client with `pid`: the server's path with `-PID` appended.
pub fn client_fifo(server_path: &Path, pid: Pid) -> PathBuf {
    let mut name = server_path.as_os_str().to_owned();
    name.push(format!("-{pid}"));
    PathBuf::from(name)
}

/// The sequence-number server: reads requests from its well-known FIFO and answers each
/// on the client's own FIFO with the first number of the range it grants (u64,
/// little-endian). Stops after `requests` requests, or on Ctrl-C.
pub fn server(n: &Narrator, path: &Path, requests: Option<u64>) -> Result<()> {
    let _fifo = make_or_find(n, path)?;
    cleanup::exit_on_interrupt(n)?;
    let (inbox, _keep_open) = open_both_ends(n, path)?;
    let mut inbox = FdStream::new(inbox, n);
    n.announce("ready for requests");
    let (mut next, mut served) = (0u64, 0u64);
    while requests != Some(served) {
        let mut request = [0u8; REQUEST_LEN];
        if !inbox.read_full(&mut request)? {
            break;
        }
        let pid = u32::from_le_bytes([request[0], request[1], request[2], request[3]]);
        let len = u32::from_le_bytes([request[4], request[5], request[6], request[7]]);
        // The request comes from another process: check it before using it.
        let pid = match i32::try_from(pid) {
            Ok(pid) if pid > 0 && (1..=MAX_REQUEST).contains(&len) => Pid::from_raw(pid),
            _ => {
                n.announce(format_args!(
                    "ignoring a bad request: pid {pid}, count {len}"
                ));
                continue;
            }
        };
        if reply(n, &client_fifo(path, pid), next)? {
            next += u64::from(len);
        }
        served += 1;
        if served == NARRATED_MESSAGES {
            n.mute("... serving the rest without narration");
        }
    }
    n.unmute();
    print_summary(format_args!("summary: requests={served} next={next}"))
}

/// Writes `first` to the client's FIFO. `O_NONBLOCK` makes `open` fail with ENXIO at once
/// if the client is gone, instead of waiting forever for a reader. Returns whether the
/// client got its reply.
fn reply(n: &Narrator, fifo: &Path, first: u64) -> Result<bool> {
    let shown = fifo.display();
    let fd = match n.call(format_args!("open({shown:?}, O_WRONLY|O_NONBLOCK)"), || {
        open(
            fifo,
            OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    }) {
        Ok(fd) => fd,
        Err(e) if matches!(e.errno(), Some(Errno::ENXIO | Errno::ENOENT)) => {
            n.announce(format_args!("the client of {shown} is gone; no reply"));
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    let mut out = FdStream::new(fd, n);
    match out.write_all(&first.to_le_bytes()) {
        Ok(()) => Ok(true),
        Err(e) if e.errno() == Some(Errno::EPIPE) => Ok(false),
        Err(e) => Err(e),
    }
}
// ANCHOR_END: server

/// Opens a FIFO for reading without waiting for a writer, and then for writing too.
/// Holding a write end of our own means `read` never returns end-of-file just because
/// the other side closed its end between two messages: it waits for the next one.
/// Returns the read end (blocking again) and our write end.
fn open_both_ends(n: &Narrator, path: &Path) -> Result<(OwnedFd, OwnedFd)> {
    let shown = path.display();
    // O_NONBLOCK: a read-only open of a FIFO then returns at once, writer or not (fifo(7)).
    let read_end = n.call(format_args!("open({shown:?}, O_RDONLY|O_NONBLOCK)"), || {
        open(
            path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
    })?;
    // A write-only open does not wait either: there is a reader now, ourselves.
    let write_end = n.call(
        format_args!("open({shown:?}, O_WRONLY)   (our own writer: read never sees EOF)"),
        || open(path, OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()),
    )?;
    n.call(
        format_args!(
            "fcntl({}, F_SETFL, 0)   (reads wait again)",
            read_end.as_raw_fd()
        ),
        || fcntl(&read_end, FcntlArg::F_SETFL(OFlag::empty())),
    )?;
    Ok((read_end, write_end))
}

// ANCHOR: client
/// A client: makes its reply FIFO, sends `count` requests for one number each to the
/// server's FIFO, and checks that the numbers it gets only go up.
pub fn client(n: &Narrator, server_path: &Path, count: u64) -> Result<()> {
    let me = unistd::getpid();
    let reply_path = client_fifo(server_path, me);
    let _fifo = make_or_find(n, &reply_path)?;
    cleanup::exit_on_interrupt(n)?;
    let (replies, _keep_open) = open_both_ends(n, &reply_path)?;
    let mut replies = FdStream::new(replies, n);
    let mut requests = FdStream::new(open_end(n, server_path, true)?, n);
    let mut request = [0u8; REQUEST_LEN];
    request[..4].copy_from_slice(&(me.as_raw() as u32).to_le_bytes());
    request[4..].copy_from_slice(&1u32.to_le_bytes());
    let (mut last, mut increasing) = (None, 0u64);
    for seq in 0..count {
        if seq == NARRATED_MESSAGES {
            n.mute("... the remaining requests without narration");
        }
        requests
            .write_all(&request)
            .map_err(|e| e.hint("the server has exited"))?;
        let mut number = [0u8; 8];
        if !replies.read_full(&mut number)? {
            return Err(Error::bad_data("read a reply", "end of file"));
        }
        let number = u64::from_le_bytes(number);
        if last.is_none_or(|last| number > last) {
            increasing += 1;
        }
        last = Some(number);
    }
    n.unmute();
    print_summary(format_args!(
        "summary: requests={count} replies={count} increasing={increasing}"
    ))?;
    if increasing != count {
        return Err(Error::bad_data(
            "check the replies",
            "a number did not go up",
        ));
    }
    Ok(())
}
// ANCHOR_END: client

// ANCHOR: writers
/// `writers` children write `count` frames each of `size` payload bytes into one FIFO at
/// once, and the parent reads them. Writes of at most PIPE_BUF bytes are atomic: they
/// never mix with other writers' bytes. Larger writes may be split and interleaved, and
/// the first frame that does not check out shows where.
pub fn writers(n: &Narrator, path: &Path, writers: u32, count: u64, size: usize) -> Result<()> {
    let _fifo = make_or_find(n, path)?;
    let mut children = Vec::new();
    for w in 0..writers {
        match process::fork(n, "writer")? {
            Fork::Child(me) => {
                let result = open_end(&me, path, true).and_then(|fd| {
                    me.mute("writing without narration");
                    let mut fifo = FdStream::new(fd, &me);
                    let mut frame = Vec::new();
                    (0..count).try_for_each(|i| {
                        message::encode_into(u64::from(w) * count + i, size, &mut frame);
                        fifo.write_all(&frame)
                    })
                });
                process::exit_child(&me, result)
            }
            Fork::Parent { child } => children.push(child),
        }
    }
    cleanup::exit_on_interrupt(n)?;
    let fd = open_end(n, path, false)?;
    let pipe_buf = unistd::fpathconf(&fd, PathconfVar::PIPE_BUF)
        .ok()
        .flatten()
        .unwrap_or(0);
    let frame_len = size + message::OVERHEAD;
    n.say(format_args!(
        "PIPE_BUF = {pipe_buf}: each frame is {frame_len} bytes, so writes are {}",
        if i64::try_from(frame_len).is_ok_and(|f| f <= pipe_buf) {
            "atomic"
        } else {
            "NOT guaranteed to be atomic"
        }
    ));
    let mut fifo = FdStream::new(fd, n);
    n.mute("reading without narration");
    let (mut frames, mut intact, mut lost_at) = (0u64, 0u64, None);
    let mut buf = Vec::new();
    while lost_at.is_none() {
        match fifo.read_frame(&mut buf, size) {
            Ok(None) => break,
            Ok(Some(frame)) if frame.intact && frame.payload.len() == size => {
                frames += 1;
                intact += 1;
            }
            // A bad checksum or a bad header: bytes of two writers mixed. The stream has
            // lost its framing; nothing after this point can be trusted.
            Ok(Some(_)) | Err(_) => {
                frames += 1;
                lost_at = Some(frames);
            }
        }
    }
    // Read on to end-of-file, so that no writer blocks on a full FIFO.
    while fifo.read(&mut vec![0; 64 << 10])? > 0 {}
    n.unmute();
    for child in children {
        process::wait_for(n, child, "writer")?;
    }
    match lost_at {
        None => n.say("every frame arrived whole: no write was mixed with another"),
        Some(at) => n.say(format_args!(
            "frame {at} did not check out: two writers' bytes were mixed"
        )),
    }
    print_summary(format_args!(
        "summary: writers={writers} frame_bytes={frame_len} pipe_buf={pipe_buf} intact={intact} framing={}",
        if lost_at.is_none() { "kept" } else { "lost" }
    ))
}
// ANCHOR_END: writers

/// Removes the FIFO at `path` and any client FIFOs beside it (`PATH-PID`), but only
/// FIFOs: anything else at those paths is not ours.
pub fn clean(n: &Narrator, path: &Path) -> Result<()> {
    let mut removed = 0;
    let prefix = format!(
        "{}-",
        path.file_name()
            .map(|f| f.to_string_lossy())
            .unwrap_or_default()
    );
    let mut candidates = vec![path.to_path_buf()];
    let siblings = path.parent().and_then(|dir| std::fs::read_dir(dir).ok());
    candidates.extend(
        siblings
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
            .map(|e| e.path()),
    );
    for candidate in candidates {
        match stat(&candidate) {
            Err(Errno::ENOENT) => continue,
            _ => check_is_fifo(&candidate)?,
        }
        n.call(format_args!("unlink({:?})", candidate.display()), || {
            unistd::unlink(&candidate)
        })?;
        removed += 1;
    }
    if removed == 0 {
        n.say(format_args!("nothing to clean at {}", path.display()));
    }
    print_summary(format_args!("summary: removed={removed}"))
}
