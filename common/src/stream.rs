//! Frames over a byte stream: `read(2)` and `write(2)` on a file descriptor, narrated.
//!
//! A pipe, a FIFO and a stream socket all carry bytes, not messages: one `write` of 80
//! bytes may arrive as two `read`s of 40, and two writes may arrive as one read. So a
//! receiver reads the 12-byte header first, learns the length, and then reads exactly
//! that many bytes more (see [`crate::message`] for the layout). Each real system call
//! is narrated, so a student sees a 1 MiB message arrive in 64 KiB pieces.
//!
//! The stream demos also share their `--count`/`--size` options ([`Messages`]) and the
//! size limit ([`MAX_SIZE`]) that goes with them.
//!
//! This is mechanism-free: any descriptor works. What an error *means* (EPIPE on a pipe
//! is "the consumer has exited") is said by the demo, which adds its own hint.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::FcntlArg;

use crate::error::{Error, Result};
use crate::message::{self, Frame, HEADER_LEN, OVERHEAD, TRAILER_LEN};
use crate::narrate::{FIRST_FEW, Narrator, print_summary};
use crate::tally::Tally;
use crate::timing::{self, Stopwatch};
use crate::{say, sys, tr};

/// How many messages a loop narrates call by call before it goes quiet: the number
/// [`Narrator::first_few`] uses. Loops go through `first_few` now; this stays for the
/// demos that have not moved to it yet.
pub const NARRATED_MESSAGES: u64 = FIRST_FEW;

/// The largest `--size` a stream demo accepts. A byte stream has no message size of its
/// own (it is not a message queue); the limit only keeps one message's buffer reasonable.
pub const MAX_SIZE: usize = 64 << 20;

/// `--count` and `--size` of a stream demo (pipe, FIFO): how many messages, how large.
/// `#[command(flatten)]` it into a CLI or a subcommand.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Messages {
    /// Messages to send (0 sends nothing; the summary then says received=0).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=crate::tally::MAX_COUNT))]
    pub count: u64,
    /// Payload bytes per message: 1 to 64M (suffixes K, M: powers of 1024).
    #[arg(long, default_value = "64", value_parser = size)]
    pub size: usize,
}

/// Parses a `--size` for a stream demo: 1 byte to [`MAX_SIZE`].
pub fn size(text: &str) -> std::result::Result<usize, String> {
    crate::units::size_in(text, 1, MAX_SIZE)
}

/// A file descriptor that carries frames, with the narrator that reports its calls.
#[derive(Debug)]
pub struct FdStream<F> {
    fd: F,
    n: Narrator,
}

impl<F: AsFd> FdStream<F> {
    /// Wraps `fd`; calls on it are narrated by `n`.
    pub fn new(fd: F, n: &Narrator) -> FdStream<F> {
        FdStream { fd, n: n.clone() }
    }

    /// The descriptor, e.g. to close it explicitly.
    pub fn into_inner(self) -> F {
        self.fd
    }

    /// One `read(2)` ([`sys::read`]): returns how many bytes arrived, 0 at end of stream.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            // EINTR: a signal arrived before any data did; the read simply starts again
            // (signal(7), "Interruption of system calls").
            match sys::read(&self.n, &self.fd, buf) {
                Err(e) if e.errno() == Some(Errno::EINTR) => continue,
                other => return other,
            }
        }
    }

    /// Reads until end-of-file, appending everything to `out`.
    pub fn read_to_end(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.read(&mut chunk)? {
                0 => return Ok(()),
                got => out.extend_from_slice(&chunk[..got]),
            }
        }
    }

    /// Reads until `buf` is full. Returns `false` if the stream ended before the first
    /// byte; ending part of the way through is an error, since a frame was cut.
    pub fn read_full(&mut self, buf: &mut [u8]) -> Result<bool> {
        let mut have = 0;
        while have < buf.len() {
            let got = self.read(&mut buf[have..])?;
            if got == 0 {
                return if have == 0 {
                    Ok(false)
                } else {
                    Err(Error::bad_data(
                        format!("read({})", self.fd.as_fd().as_raw_fd()),
                        tr!(
                            "end of stream after {have} of {total} bytes of a frame",
                            have,
                            total = buf.len()
                        ),
                    )
                    .hint(cut_short()))
                };
            }
            have += got;
        }
        Ok(true)
    }

    /// Writes all of `buf`, one `write(2)` ([`sys::write`]) at a time: a write may take
    /// fewer bytes than offered (write(2)).
    pub fn write_all(&mut self, buf: &[u8]) -> Result<()> {
        let mut done = 0;
        while done < buf.len() {
            match sys::write(&self.n, &self.fd, &buf[done..]) {
                Ok(wrote) => done += wrote,
                Err(e) if e.errno() == Some(Errno::EINTR) => continue,
                Err(e) if e.errno() == Some(Errno::EPIPE) => {
                    return Err(e.hint(tr!(
                        "no process has the reading end open any more: the receiver exited. \
                         (Rust ignores SIGPIPE, so write() returns EPIPE instead of killing us.)"
                    )));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    // ANCHOR: read_frame
    /// Reads one frame into `buf`. `Ok(None)` means the stream ended cleanly between
    /// frames. A length over `max_len` is refused before anything is allocated for it.
    ///
    /// `buf` keeps its length from one frame to the next (the bytes past a frame are
    /// left-overs of an earlier one, never read as part of this one): making it shorter
    /// and longer again would fill it with zeros every time, a pass over 64 KiB of memory
    /// for every 64 KiB message, which costs a fair part of what the pipe itself does.
    pub fn read_frame<'b>(
        &mut self,
        buf: &'b mut Vec<u8>,
        max_len: usize,
    ) -> Result<Option<Frame<'b>>> {
        if buf.len() < HEADER_LEN {
            buf.resize(HEADER_LEN, 0);
        }
        if !self.read_full(&mut buf[..HEADER_LEN])? {
            return Ok(None);
        }
        let fd = self.fd.as_fd().as_raw_fd();
        let call = || tr!("frame from fd {fd}", fd);
        let header = message::parse_header(buf, max_len).map_err(|e| {
            Error::bad_data(call(), e.to_string()).hint(tr!(
                "the bytes on the stream are not a demo frame (a foreign writer, or lost framing)"
            ))
        })?;
        // The header is only the peer's word. Memory is given to the frame as its bytes
        // arrive, never all at once on the header's say-so: a peer that announces 16 MiB
        // and sends nothing costs a few KiB, not 16 MiB (and a hundred such peers do not
        // add up to gigabytes).
        let total = HEADER_LEN + header.len + TRAILER_LEN;
        let mut have = HEADER_LEN;
        while have < total {
            if have == buf.len() {
                grow(buf, total, fd)?;
            }
            // Never past this frame: what follows it on the stream is the next frame's.
            let end = buf.len().min(total);
            match self.read(&mut buf[have..end])? {
                0 => {
                    return Err(Error::bad_data(
                        call(),
                        tr!(
                            "end of stream after {have} of the frame's {total} bytes",
                            have,
                            total
                        ),
                    )
                    .hint(cut_short()));
                }
                got => have += got,
            }
        }
        let buf: &'b [u8] = &buf[..total];
        let frame = message::check_frame(header, buf)
            .map_err(|e| Error::bad_data(call(), e.to_string()))?;
        Ok(Some(frame))
    }
    // ANCHOR_END: read_frame
}

/// The hint for a stream that ended inside a frame.
fn cut_short() -> String {
    tr!("the sender stopped in the middle of a message (was it killed?)")
}

/// The smallest step by which [`FdStream::read_frame`] grows a frame's buffer.
const GROWTH_STEP: usize = 64 << 10;

/// Makes `buf` longer, towards `total` bytes: by what it holds already (so a large frame
/// costs a few doublings, not one step per read), at least [`GROWTH_STEP`]. An allocation
/// the system refuses (a small `ulimit -v`, or memory exhausted) is an error that says
/// so, not an abort: `try_reserve_exact` reports the failure instead of ending the
/// process (see `Vec::try_reserve_exact`).
fn grow(buf: &mut Vec<u8>, total: usize, fd: i32) -> Result<()> {
    let have = buf.len();
    let step = have.max(GROWTH_STEP).min(total - have);
    buf.try_reserve_exact(step).map_err(|_| {
        Error::sys(
            format!(
                "malloc({}) for a frame of {total} bytes from fd {fd}",
                have + step
            ),
            Errno::ENOMEM,
        )
        .hint(tr!(
            "this process may not have that much memory (see `ulimit -v`): use a smaller --size"
        ))
    })?;
    buf.resize(have + step, 0);
    Ok(())
}

/// The most a pipe may hold for a process without privileges, unless the system says
/// otherwise in `/proc/sys/fs/pipe-max-size` (pipe(7)): 1 MiB.
const PIPE_MAX_SIZE: usize = 1 << 20;

// ANCHOR: widen
/// Gives a pipe or FIFO room for a few whole frames of `frame_len` bytes, if it has not
/// room for one. A pipe holds 64 KiB unless asked (pipe(7)); a frame that does not fit
/// makes the writer sleep part-way through every message and the reader wake for every
/// piece, and two wake-ups cost more than copying 64 KiB. `fcntl(F_SETPIPE_SZ)` asks for
/// more, up to `/proc/sys/fs/pipe-max-size`; if the kernel refuses (a user over their
/// share of pipe memory, EPERM), the pipe keeps what it has and still works.
pub fn widen(n: &Narrator, fd: &impl AsFd, frame_len: usize) -> Result<()> {
    // Every pipe holds a page at least (PIPE_BUF, 4096 bytes on Linux): no need to ask.
    if frame_len <= 4096 {
        return Ok(());
    }
    let room = match sys::fcntl(n, fd, FcntlArg::F_GETPIPE_SZ) {
        Ok(room) => usize::try_from(room).unwrap_or(0),
        // Not a pipe (a socket has buffers of its own, see socket(7)): nothing to widen.
        Err(e) if e.errno() == Some(Errno::EBADF) => return Ok(()),
        Err(e) => return Err(e),
    };
    if frame_len <= room {
        return Ok(());
    }
    let most = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(PIPE_MAX_SIZE);
    let want = (4 * frame_len).next_power_of_two().min(most).max(room);
    let want = i32::try_from(want).unwrap_or(i32::MAX);
    match sys::fcntl(n, fd, FcntlArg::F_SETPIPE_SZ(want)) {
        Ok(now) => {
            say!(
                n,
                "a frame of {frame} bytes does not fit in a pipe of {room}: it now holds {now}",
                frame = frame_len,
                room,
                now
            );
            Ok(())
        }
        Err(e) if matches!(e.errno(), Some(Errno::EPERM | Errno::EBUSY)) => {
            say!(
                n,
                "the kernel keeps the pipe at {room} bytes: each frame will cross it in pieces",
                room
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}
// ANCHOR_END: widen

// ANCHOR: produce
/// The producer's loop over any byte stream (a pipe, a FIFO, a stream socket): one
/// `write()` per message, then `close()`, which the reader sees as end-of-file once it
/// has read everything. A pipe too small for one frame gets more room first ([`widen`]).
pub fn produce(n: &Narrator, fd: OwnedFd, count: u64, size: usize) -> Result<()> {
    widen(n, &fd, size + OVERHEAD)?;
    let mut stream = FdStream::new(fd, n);
    let mut frame = Vec::with_capacity(size + OVERHEAD);
    let rest = tr!(
        "writing messages {first}..{count} without narration",
        first = FIRST_FEW,
        count
    );
    for seq in n.first_few(0..count, rest) {
        message::encode_into(seq, size, &mut frame);
        stream.write_all(&frame)?;
    }
    sys::close(n, stream.into_inner())
}
// ANCHOR_END: produce

// ANCHOR: consume
/// The consumer's loop over any byte stream: reads frames (each at most `max_len` payload
/// bytes) until end-of-file, tallies them, prints the summary line, and returns an error
/// if anything of the `count` expected messages was wrong.
pub fn consume(n: &Narrator, fd: OwnedFd, count: u64, max_len: usize) -> Result<()> {
    let mut stream = FdStream::new(fd, n);
    let mut tally = Tally::new(count);
    let mut buf = Vec::new();
    let clock = Stopwatch::start();
    let mut open = true;
    for _ in n.first_few(0..count, tr!("reading the rest without narration")) {
        let Some(frame) = stream.read_frame(&mut buf, max_len)? else {
            open = false;
            break;
        };
        tally.record(&frame);
    }
    // Narrated again: the read that returns 0 (and any message beyond `count`, which the
    // tally counts as unexpected).
    while open {
        match stream.read_frame(&mut buf, max_len)? {
            Some(frame) => tally.record(&frame),
            None => open = false,
        }
    }
    say!(
        n,
        "read() = 0: end of file, because every writer has closed its end"
    );
    let (elapsed, received, bytes) = (clock.elapsed(), tally.received(), tally.bytes());
    say!(
        n,
        "{rate} in {seconds} s",
        rate = timing::rate(received, bytes, elapsed),
        seconds = format!("{:.3}", elapsed.as_secs_f64())
    );
    print_summary(tally.summary())?;
    tally.verdict()
}
// ANCHOR_END: consume

/// The size of the file behind a descriptor, from `fstat(2)` (a shared memory object, a
/// memfd, a regular file).
pub fn fd_len(fd: &OwnedFd) -> Result<usize> {
    let st = nix::sys::stat::fstat(fd)
        .map_err(|e| Error::sys(format!("fstat({})", fd.as_raw_fd()), e))?;
    usize::try_from(st.st_size)
        .map_err(|_| Error::bad_data(format!("fstat({})", fd.as_raw_fd()), tr!("a negative size")))
}

/// `close(2)`, narrated: [`sys::close`], under the name the stream demos have used.
pub use crate::sys::close;

#[cfg(test)]
mod tests {
    use super::*;
    use nix::unistd;

    fn quiet() -> Narrator {
        Narrator::silent("test")
    }

    #[test]
    fn frames_cross_a_real_pipe_and_the_end_is_clean() {
        let (r, w) = unistd::pipe().unwrap();
        let n = quiet();
        let mut out = Vec::new();
        message::encode_into(5, 100, &mut out);
        let mut writer = FdStream::new(w, &n);
        writer.write_all(&out).unwrap();
        drop(writer);
        let mut reader = FdStream::new(r, &n);
        let mut buf = Vec::new();
        let f = reader.read_frame(&mut buf, 1000).unwrap().unwrap();
        assert_eq!((f.seq, f.payload.len(), f.intact), (5, 100, true));
        assert_eq!(reader.read_frame(&mut buf, 1000).unwrap(), None);
    }

    #[test]
    fn a_frame_cut_short_is_an_error() {
        let (r, w) = unistd::pipe().unwrap();
        let n = quiet();
        let mut out = Vec::new();
        message::encode_into(0, 100, &mut out);
        FdStream::new(w, &n).write_all(&out[..50]).unwrap();
        let err = FdStream::new(r, &n)
            .read_frame(&mut Vec::new(), 1000)
            .unwrap_err();
        assert!(err.to_string().contains("end of stream"), "{err}");
    }

    #[test]
    fn an_oversized_header_is_refused() {
        let (r, w) = unistd::pipe().unwrap();
        let n = quiet();
        let mut out = Vec::new();
        message::encode_into(0, 100, &mut out);
        FdStream::new(w, &n).write_all(&out).unwrap();
        let err = FdStream::new(r, &n)
            .read_frame(&mut Vec::new(), 99)
            .unwrap_err();
        assert!(err.to_string().contains("over the limit of 99"), "{err}");
    }

    #[test]
    fn a_header_that_announces_much_but_sends_little_costs_little_memory() {
        // A hostile writer: a valid header announcing 60 MiB, then 100 bytes, then the
        // end. The reader must not have set aside 60 MiB for it.
        let (r, w) = unistd::pipe().unwrap();
        let n = quiet();
        let mut out = 0u64.to_le_bytes().to_vec();
        out.extend_from_slice(&(60u32 << 20).to_le_bytes());
        out.extend_from_slice(&[b'a'; 100]);
        FdStream::new(w, &n).write_all(&out).unwrap();
        let mut buf = Vec::new();
        let err = FdStream::new(r, &n)
            .read_frame(&mut buf, 64 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("end of stream after 112 of the frame's 62914576 bytes"),
            "{err}"
        );
        assert!(buf.capacity() <= 2 * GROWTH_STEP, "{}", buf.capacity());
    }

    #[test]
    fn one_buffer_reads_frames_of_any_size_in_turn_and_never_takes_the_next_one() {
        // A large frame leaves the buffer long; the small frame after it must not read
        // into the large one that follows it on the stream.
        let (r, w) = unistd::pipe().unwrap();
        let n = quiet();
        let mut bytes = Vec::new();
        for (seq, size) in [(0, 1000), (1, 10), (2, 1000), (3, 0)] {
            let mut out = Vec::new();
            message::encode_into(seq, size, &mut out);
            bytes.extend_from_slice(&out);
        }
        FdStream::new(w, &n).write_all(&bytes).unwrap();
        let mut reader = FdStream::new(r, &n);
        let mut buf = Vec::new();
        for (seq, size) in [(0, 1000), (1, 10), (2, 1000), (3, 0)] {
            let f = reader.read_frame(&mut buf, 1000).unwrap().unwrap();
            assert_eq!((f.seq, f.payload.len(), f.intact), (seq, size, true));
        }
        assert_eq!(reader.read_frame(&mut buf, 1000).unwrap(), None);
    }

    #[test]
    fn a_large_frame_arrives_whole_through_a_growing_buffer() {
        // 1 MiB through a 64 KiB pipe: many reads, and the buffer grows as they come.
        let (r, w) = unistd::pipe().unwrap();
        let writer = std::thread::spawn(move || {
            let mut out = Vec::new();
            message::encode_into(9, 1 << 20, &mut out);
            FdStream::new(w, &quiet()).write_all(&out).unwrap();
        });
        let mut buf = Vec::new();
        let mut reader = FdStream::new(r, &quiet());
        let f = reader.read_frame(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!((f.seq, f.payload.len(), f.intact), (9, 1 << 20, true));
        writer.join().unwrap();
    }

    #[test]
    fn writing_to_a_pipe_without_readers_is_epipe_with_a_hint() {
        let (r, w) = unistd::pipe().unwrap();
        drop(r);
        let err = FdStream::new(w, &quiet()).write_all(b"x").unwrap_err();
        assert_eq!(err.errno(), Some(Errno::EPIPE));
        assert!(
            err.to_string()
                .contains("hint: no process has the reading end open")
        );
    }
}
