//! Note 002's plain-file IPC, "1. file 사용": one process appends to a file, another
//! looks at it now and then. The trouble is time: the reader does not know when to
//! look. Next to it, the same lines through a pipe, where the kernel wakes the reader.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use common::cleanup::{self, Guard};
use common::narrate::print_summary;
use common::owner::{self, Kind};
use common::process::{self, Fork};
use common::stream::FdStream;
use common::{Error, HintOn, Narrator, Result, say, sys, tr};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use crate::shared::create_file;

/// The delays [`file_poll`] measured, in microseconds.
#[derive(Debug, Clone)]
pub struct Delays {
    /// Through the file, noticed by polling.
    pub file: Vec<u64>,
    /// Through a pipe, the reader blocked in read().
    pub pipe: Vec<u64>,
}

fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

// ANCHOR: file_poll
/// The writer appends a timestamped line to a file now and then; the reader looks at
/// the file every `poll` and measures how late it noticed each line. Then the same
/// through a pipe, where the reader sleeps in `read` and the kernel wakes it. Says how
/// late each was, prints the summary line, and returns both sets of delays.
pub fn file_poll(n: &Narrator, path: &Path, count: u64, poll: Duration) -> Result<Delays> {
    let mut delays = Delays {
        file: Vec::new(),
        pipe: Vec::new(),
    };
    for through_pipe in [false, true] {
        let (read_end, write_end) = sys::pipe(n)?;
        say!(n, "that pipe brings the reader's results back");
        let (data_read, data_write) = sys::pipe(n)?;
        say!(n, "that pipe carries the lines of the pipe run");
        // The file run's file is the writer's own: created now, removed at the end.
        let log = if through_pipe {
            None
        } else {
            Some(create_log(n, path)?)
        };
        match process::fork(n, "reader")? {
            Fork::Child(me) => {
                let result = sys::close(&me, read_end)
                    .and_then(|()| sys::close(&me, data_write))
                    .and_then(|()| match &log {
                        // The reader opens the file by its name, as another program would.
                        Some(log) => open_log(&me, path, log.made).map(Some),
                        None => Ok(None),
                    })
                    .and_then(|file| read_lines(&me, file, data_read, count, poll, write_end));
                process::exit_child(&me, result)
            }
            Fork::Parent { child } => {
                if !through_pipe {
                    // Once, in the run with the file: Ctrl-C removes it. (The pipe run's
                    // reader, forked later, goes with this process: PR_SET_PDEATHSIG.)
                    cleanup::exit_on_interrupt(n)?;
                }
                sys::close(n, write_end)?;
                sys::close(n, data_read)?;
                let to = log.as_ref().map_or(&data_write, |log| &log.fd);
                for seq in n.first_few(0..count, tr!("the remaining lines without narration")) {
                    // Uneven gaps, so that lines land at every phase of the reader's polling.
                    std::thread::sleep(poll / 3 + poll * ((seq * 7 % 10) as u32) / 10);
                    let line = format!("{seq} {}\n", now_us());
                    FdStream::new(to, n).write_all(line.as_bytes())?;
                }
                sys::close(n, data_write)?;
                let mut results = Vec::new();
                FdStream::new(read_end, n).read_to_end(&mut results)?;
                process::wait_for(n, child, "reader")?;
                let got = results
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect();
                if through_pipe {
                    delays.pipe = got
                } else {
                    delays.file = got
                }
            }
        }
    }
    report(n, &delays, poll)?;
    Ok(delays)
}
// ANCHOR_END: file_poll

/// How late each side was, in milliseconds: two lines and the summary.
fn report(n: &Narrator, d: &Delays, poll: Duration) -> Result<()> {
    let stats = |v: &[u64]| {
        let mean = v.iter().sum::<u64>() as f64 / v.len().max(1) as f64 / 1000.0;
        let max = v.iter().copied().max().unwrap_or(0) as f64 / 1000.0;
        (mean, max)
    };
    let ((file_mean, file_max), (pipe_mean, pipe_max)) = (stats(&d.file), stats(&d.pipe));
    n.announce(tr!(
        "file, polled every {poll} ms: noticed {mean} ms late on average, {max} ms at most",
        poll = poll.as_millis(),
        mean = format!("{file_mean:.1}"),
        max = format!("{file_max:.1}")
    ));
    n.announce(tr!(
        "pipe, reader asleep in read(): {mean} ms on average, {max} ms at most",
        mean = format!("{pipe_mean:.3}"),
        max = format!("{pipe_max:.3}")
    ));
    print_summary(format_args!(
        "summary: lines={} file_mean_ms={file_mean:.1} file_max_ms={file_max:.1} pipe_mean_ms={pipe_mean:.3} pipe_max_ms={pipe_max:.3}",
        d.file.len().min(d.pipe.len())
    ))
}

/// The writer's file in [`file_poll`], and the guard that removes it.
struct Log {
    fd: OwnedFd,
    /// Its device and inode, for the reader to check it opened the same file.
    made: (u64, u64),
    _remove: Guard,
}

/// `open(path, O_WRONLY|O_APPEND|O_CREAT|O_EXCL|O_NOFOLLOW, 0600)`: a new file of the
/// writer's own. Whatever is at the path already (someone's file, a symbolic link) is
/// neither written nor removed: the run stops with EEXIST (or ELOOP).
fn create_log(n: &Narrator, path: &Path) -> Result<Log> {
    let hint = tr!(
        "something is at that path already: file-poll writes only into a file it creates, \
         and removes only that one; use another --path"
    );
    let (fd, remove) = create_file(
        n,
        path,
        OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NOFOLLOW,
    )
    .hint_on(Errno::EEXIST, hint.clone())
    .hint_on(Errno::ELOOP, hint)?;
    let st = owner::fstat_ours(&fd, Kind::File)?;
    Ok(Log {
        fd,
        made: (st.st_dev, st.st_ino),
        _remove: remove,
    })
}

/// The reader's `open(path, O_RDONLY|O_NOFOLLOW)` and `fstat`: a regular file of this
/// user, and the very file the writer created (`made`: its device and inode).
fn open_log(n: &Narrator, path: &Path, made: (u64, u64)) -> Result<OwnedFd> {
    let fd = sys::open(n, path, OFlag::O_RDONLY | OFlag::O_NOFOLLOW, Mode::empty())?;
    let st = owner::fstat_ours(&fd, Kind::File)?;
    if (st.st_dev, st.st_ino) != made {
        return Err(Error::bad_data(
            tr!("the file {path}", path = path.display()),
            tr!("it is not the file the writer created: another took its path"),
        ));
    }
    Ok(fd)
}

/// The reader: polls `file` (or, without one, reads the pipe `data`) until `count` lines
/// came, and sends each line's delay in microseconds back through `results`.
fn read_lines(
    n: &Narrator,
    file: Option<OwnedFd>,
    data: OwnedFd,
    count: u64,
    poll: Duration,
    results: OwnedFd,
) -> Result<()> {
    let (mut text, mut seen, mut lines) = (String::new(), 0u64, 0u64);
    let mut out = FdStream::new(results, n);
    let mut chunk = vec![0u8; 4096];
    for _ in n.first_few(0.., tr!("looking on without narration")) {
        if lines >= count {
            break;
        }
        let got = match &file {
            None => sys::read(n, &data, &mut chunk)?,
            // Look at the file; if nothing is new, sleep until the next look.
            Some(file) => match sys::pread(n, file, &mut chunk, seen)? {
                0 => {
                    std::thread::sleep(poll);
                    continue;
                }
                got => got,
            },
        };
        if got == 0 {
            return Err(Error::bad_data(
                tr!("read the lines"),
                tr!("the writer stopped early"),
            ));
        }
        let now = now_us();
        seen += got as u64;
        text.push_str(&String::from_utf8_lossy(&chunk[..got]));
        while let Some(end) = text.find('\n') {
            let line: String = text.drain(..=end).collect();
            let sent = line
                .split_whitespace()
                .nth(1)
                .and_then(|t| t.parse::<u64>().ok())
                .unwrap_or(now);
            out.write_all(&now.saturating_sub(sent).to_le_bytes())?;
            lines += 1;
        }
    }
    Ok(())
}
