//! `writers`: several processes write into one FIFO at once; writes of at most PIPE_BUF
//! bytes arrive whole (pipe(7)), larger ones may be split and mixed.

use std::os::fd::OwnedFd;
use std::path::Path;

use common::message;
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::stream::FdStream;
use common::{Narrator, Result, cleanup, say, sys, tr};

use crate::server::open_both_ends;
use crate::{make_or_find, open_end, sys as my};

// ANCHOR: writers
/// `writers` children write `count` frames each of `size` payload bytes into one FIFO at
/// once, and the parent reads them. Writes of at most PIPE_BUF bytes are atomic: they
/// never mix with other writers' bytes. Larger writes may be split and interleaved, and
/// the first frame that does not check out shows where.
pub fn writers(n: &Narrator, path: &Path, writers: u32, count: u64, size: usize) -> Result<()> {
    let _fifo = make_or_find(n, path)?;
    // The reader opens first, with a write end of its own that every writer inherits:
    // the FIFO then has a writer until the last writer exits, so that read() = 0 means
    // every writer is done, and not only the ones that happened to open it so far.
    say!(
        n,
        "I open the FIFO first, for reading and for writing: every writer inherits my write end, so read() = 0 comes only when the last writer has exited"
    );
    let (fd, inherited) = open_both_ends(n, path)?;
    let mut children = Vec::new();
    for w in 0..writers {
        match process::fork(n, "writer")? {
            Fork::Child(me) => {
                let first = u64::from(w) * count;
                let result = sys::close(&me, fd)
                    .and_then(|()| open_end(&me, path, true))
                    .and_then(|own| write_frames(&me, own, first..first + count, size));
                process::exit_child(&me, result)
            }
            Fork::Parent { child } => children.push(child),
        }
    }
    cleanup::exit_on_interrupt(n)?;
    sys::close(n, inherited)?;
    let pipe_buf = my::fpathconf_pipe_buf(n, &fd)?.unwrap_or(0);
    let frame_len = size + message::OVERHEAD;
    if i64::try_from(frame_len).is_ok_and(|f| f <= pipe_buf) {
        say!(
            n,
            "each frame is {frame_len} bytes, at most PIPE_BUF = {pipe_buf}: every write is atomic",
            frame_len,
            pipe_buf
        );
    } else {
        say!(
            n,
            "each frame is {frame_len} bytes, more than PIPE_BUF = {pipe_buf}: writes are NOT guaranteed to be atomic",
            frame_len,
            pipe_buf
        );
    }
    let mut fifo = FdStream::new(fd, n);
    let (mut frames, mut intact, mut lost_at) = (0u64, 0u64, None);
    let mut buf = Vec::new();
    for _ in n.first_few(0.., tr!("reading without narration")) {
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
                break;
            }
        }
    }
    if lost_at.is_some() {
        // Read on to end-of-file, so that no writer blocks on a full FIFO.
        let mut rest = vec![0; 64 << 10];
        for _ in n.first_few(0.., tr!("reading to end of file without narration")) {
            if fifo.read(&mut rest)? == 0 {
                break;
            }
        }
    }
    for child in children {
        process::wait_for(n, child, "writer")?;
    }
    match lost_at {
        None => say!(
            n,
            "every frame arrived whole: no write was mixed with another"
        ),
        Some(at) => say!(
            n,
            "frame {at} did not check out: two writers' bytes were mixed",
            at
        ),
    }
    print_summary(format_args!(
        "summary: writers={writers} frame_bytes={frame_len} pipe_buf={pipe_buf} intact={intact} framing={}",
        if lost_at.is_none() { "kept" } else { "lost" }
    ))
}

/// One writer: the frames numbered `seqs`, one `write` each.
fn write_frames(me: &Narrator, fd: OwnedFd, seqs: std::ops::Range<u64>, size: usize) -> Result<()> {
    let mut fifo = FdStream::new(fd, me);
    let mut frame = Vec::new();
    for seq in me.first_few(seqs, tr!("writing the rest without narration")) {
        message::encode_into(seq, size, &mut frame);
        fifo.write_all(&frame)?;
    }
    Ok(())
}
// ANCHOR_END: writers
