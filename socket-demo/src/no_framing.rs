//! `no-framing`: a byte stream keeps bytes, not messages.

use common::message;
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::stream::FdStream;
use common::{Narrator, Result, say, sys, tr};
use nix::sys::socket::SockType;

// ANCHOR: no_framing
/// A byte stream keeps bytes, not messages. A child writes `count` messages of `size`
/// bytes, each with its own `write` and no length in front; the parent reads with a large
/// buffer and shows how the writes arrived: merged, and sometimes cut.
pub fn no_framing(n: &Narrator, count: u64, size: usize) -> Result<()> {
    let (reader, writer) = sys::socketpair(n, SockType::Stream)?;
    match process::fork(n, "writer")? {
        Fork::Child(me) => {
            let result =
                sys::close(&me, reader).and_then(|()| write_all_unframed(&me, writer, count, size));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            sys::close(n, writer)?;
            let mut input = FdStream::new(reader, n);
            let mut buf = vec![0; 64 << 10];
            let (mut reads, mut bytes, mut cut) = (0u64, 0u64, 0u64);
            for _ in n.first_few(0.., tr!("reading the rest without narration")) {
                let got = input.read(&mut buf)? as u64;
                if got == 0 {
                    break;
                }
                // A read that does not end on a message boundary has cut a message in two.
                cut += u64::from((bytes + got) % size as u64 != 0);
                reads += 1;
                bytes += got;
            }
            process::wait_for(n, child, "writer")?;
            say!(
                n,
                "{count} writes of {size} bytes arrived as {reads} reads; {cut} reads ended in the middle of a message",
                count,
                size,
                reads,
                cut
            );
            print_summary(format_args!(
                "summary: writes={count} reads={reads} cut={cut} bytes={bytes}"
            ))
        }
    }
}

/// The writer: `count` writes of `size` bytes each, with no length in front.
fn write_all_unframed(
    me: &Narrator,
    writer: std::os::fd::OwnedFd,
    count: u64,
    size: usize,
) -> Result<()> {
    // Not narrated at all, on purpose: printing between two writes would give the reader
    // time to take each write alone, and hide what the lesson shows.
    me.mute(tr!(
        "writing {count} messages of {size} bytes, one write each, without narration (printing between the writes would change how they arrive)",
        count,
        size
    ));
    let mut out = FdStream::new(writer, me);
    let mut payload = vec![0; size];
    for seq in 0..count {
        message::fill_payload(seq, &mut payload);
        out.write_all(&payload)?;
    }
    Ok(())
}
// ANCHOR_END: no_framing
