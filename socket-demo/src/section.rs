//! `section`: Windows ALPC's three ways (note 003, 3.7.3) rebuilt from Linux parts: small
//! messages copied through a socket, large ones through a shared section (a sealed memfd)
//! whose descriptor was passed once.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use common::message;
use common::narrate::{Shown, print_summary};
use common::process::{self, Fork};
use common::stream::{self, FdStream};
use common::tally::Tally;
use common::{Error, Narrator, Result, say, sys, tr};
use nix::fcntl::{FcntlArg, SealFlag};
use nix::sys::memfd::MFdFlags;
use nix::sys::socket::SockType;

/// Messages of at most this many bytes go through the socket in `section`; larger ones
/// through the shared section, as in ALPC (note 003, 3.7.3).
pub const INLINE_LIMIT: usize = 256;

/// The sizes the client sends, in turn: two small enough for the socket, two not.
const SIZES: [usize; 4] = [64, 200, 1000, 64 << 10];

/// The seals a section must carry before the server maps it: its size is fixed.
const SIZE_SEALS: SealFlag = SealFlag::F_SEAL_SHRINK.union(SealFlag::F_SEAL_GROW);

/// The messages `0..count` in rounds of one message of each size, so that a loop that
/// narrates its first few rounds shows every size, the section's included.
fn rounds(count: u64) -> impl Iterator<Item = std::ops::Range<u64>> {
    let step = SIZES.len() as u64;
    (0..count)
        .step_by(SIZES.len())
        .map(move |first| first..count.min(first + step))
}

// ANCHOR: section
/// ALPC's three ways on Linux (note 003, 3.7.3): the client makes a shared section
/// (memfd), maps it, and passes its descriptor to the server once. Then each message of
/// at most [`INLINE_LIMIT`] bytes is copied through the socket; a larger one is written
/// into the section, and only its offset and length go through the socket.
pub fn section(n: &Narrator, count: u64) -> Result<()> {
    let count = count.max(1);
    let largest = SIZES.iter().copied().max().unwrap_or(0) + message::OVERHEAD;
    let (client_end, server_end) = sys::socketpair(n, SockType::Stream)?;
    match process::fork(n, "server")? {
        Fork::Child(me) => {
            let result = sys::close(&me, client_end)
                .and_then(|()| section_server(&me, server_end, count, largest));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            sys::close(n, server_end)?;
            let memfd =
                sys::memfd_create_flags(n, c"ipc-demos-section", MFdFlags::MFD_ALLOW_SEALING)?;
            sys::ftruncate(n, &memfd, largest as u64)?;
            // Seal the size (memfd_create(2), "File sealing"): from now on nobody, the
            // client included, can shrink the section under the server's mapping, where
            // the server's next read would die of SIGBUS. The server checks the seals.
            sys::fcntl(
                n,
                &memfd,
                FcntlArg::F_ADD_SEALS(SIZE_SEALS | SealFlag::F_SEAL_SEAL),
            )?;
            let mut section = Section::map(n, &memfd, largest)?;
            sys::sendmsg_fds(n, &client_end, b"f", &[memfd.as_raw_fd()])?;
            say!(n, "the section's descriptor went to the server, once");
            let mut socket = FdStream::new(client_end, n);
            let mut frame = Vec::new();
            let (mut inline, mut shared) = (0u64, 0u64);
            for round in n.first_few(rounds(count), tr!("the other rounds without narration")) {
                for seq in round {
                    let size = SIZES[seq as usize % SIZES.len()];
                    message::encode_into(seq, size, &mut frame);
                    let len = frame.len();
                    if len <= INLINE_LIMIT {
                        // Tag 0, then the frame itself: copied through the socket.
                        say!(
                            n,
                            "message {seq} ({len} bytes): through the socket",
                            seq,
                            len
                        );
                        socket.write_all(&[0])?;
                        socket.write_all(&frame)?;
                        inline += 1;
                    } else {
                        // Tag 1, then offset and length: the frame is in the section.
                        say!(
                            n,
                            "message {seq} ({len} bytes): into the section; through the socket only offset 0, length {len}",
                            seq,
                            len
                        );
                        section.write(0, &frame);
                        let mut note = [1u8; 17];
                        note[1..9].copy_from_slice(&0u64.to_le_bytes());
                        note[9..].copy_from_slice(&(len as u64).to_le_bytes());
                        socket.write_all(&note)?;
                        shared += 1;
                    }
                    // Wait for the server's acknowledgement before the section is reused.
                    if !socket.read_full(&mut [0u8; 1])? {
                        return Err(Error::bad_data(
                            tr!("wait for the server"),
                            tr!("it closed the connection"),
                        ));
                    }
                }
            }
            drop(socket);
            process::wait_for(n, child, "server")?;
            say!(
                n,
                "{inline} messages went through the socket, {shared} through the section",
                inline,
                shared
            );
            Ok(())
        }
    }
}
// ANCHOR_END: section

/// The server of [`section`]: receives the section's descriptor, maps it, and takes each
/// message from the socket or from the section, checking every offset and length.
///
/// The section is memory the client can change at any moment, so the server never
/// trusts it: it maps the section only if its size is sealed (a client that could
/// shrink it would kill the server with SIGBUS), checks the note's offset and length
/// against the size it mapped, copies the frame out of the section once, and decodes,
/// checks and counts only that private copy. A field read twice from shared memory
/// could change between the check and the use.
fn section_server(me: &Narrator, conn: OwnedFd, count: u64, largest: usize) -> Result<()> {
    let received = sys::recvmsg_fds(me, &conn, &mut [0u8; 1])?;
    let Some(fd) = received.fds.into_iter().next() else {
        return Err(Error::bad_data(
            "recvmsg",
            tr!("no descriptor came with the message"),
        ));
    };
    let seals = sys::fcntl(me, &fd, FcntlArg::F_GET_SEALS)?;
    if !SealFlag::from_bits_truncate(seals).contains(SIZE_SEALS) {
        return Err(Error::bad_data(
            tr!("check the section's seals"),
            tr!("its size is not sealed (F_SEAL_SHRINK, F_SEAL_GROW): the client could shrink it under my mapping, and my next read would die of SIGBUS"),
        )
        .hint(tr!("a section must be made with MFD_ALLOW_SEALING and sealed with F_ADD_SEALS before it is passed (memfd_create(2), \"File sealing\")")));
    }
    // The size cannot change any more: read it once, and map exactly that.
    let len = stream::fd_len(&fd)?;
    say!(
        me,
        "the section is {len} bytes, its size sealed; I map it",
        len
    );
    let section = Section::map(me, &fd, len)?;
    let mut socket = FdStream::new(conn, me);
    let mut tally = Tally::new(count);
    let mut buf = Vec::new();
    let early = || {
        Error::bad_data(
            tr!("read a message"),
            tr!("the client closed the connection early"),
        )
    };
    for round in me.first_few(rounds(count), tr!("the other rounds without narration")) {
        for _ in round {
            let mut tag = [0u8; 1];
            if !socket.read_full(&mut tag)? {
                return Err(early());
            }
            match tag[0] {
                0 => match socket.read_frame(&mut buf, INLINE_LIMIT)? {
                    Some(frame) => tally.record(&frame),
                    None => return Err(early()),
                },
                1 => {
                    let mut note = [0u8; 16];
                    if !socket.read_full(&mut note)? {
                        return Err(early());
                    }
                    let offset = u64::from_le_bytes(note[..8].try_into().unwrap_or_default());
                    let length = u64::from_le_bytes(note[8..].try_into().unwrap_or_default());
                    // Both numbers come from the other process: check them against the section.
                    let end = offset
                        .checked_add(length)
                        .filter(|&end| end <= section.len as u64 && length <= largest as u64);
                    let Some(end) = end else {
                        return Err(Error::bad_data(
                            tr!("a section note"),
                            tr!(
                                "offset {offset} and length {length} do not fit the {size}-byte section",
                                offset,
                                length,
                                size = section.len
                            ),
                        ));
                    };
                    // One copy out of the shared section; from here on only the copy is read.
                    section.read(offset as usize, (end - offset) as usize, &mut buf);
                    match message::decode(&buf, largest) {
                        Ok(frame) => tally.record(&frame),
                        Err(_) => tally.record_undecodable(buf.len()),
                    }
                }
                other => {
                    return Err(Error::bad_data(
                        tr!("read a message"),
                        tr!("unknown tag {other}", other),
                    ));
                }
            }
            socket.write_all(&[1])?;
        }
    }
    print_summary(tally.summary())?;
    tally.verdict()
}

/// A MAP_SHARED mapping of a memfd section.
struct Section {
    base: std::ptr::NonNull<u8>,
    len: usize,
}

/// An address `mmap` returned, shown as strace shows it.
struct Address(std::ptr::NonNull<std::ffi::c_void>);

impl Shown for Address {
    fn shown(&self) -> String {
        format!("{:p}", self.0)
    }
}

impl Section {
    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`, narrated.
    fn map(n: &Narrator, fd: &OwnedFd, len: usize) -> Result<Section> {
        let size = std::num::NonZeroUsize::new(len)
            .ok_or_else(|| Error::bad_data(tr!("map the section"), tr!("it is empty")))?;
        let raw = fd.as_raw_fd();
        let mapped = n.call(
            format_args!("mmap(NULL, {len}, PROT_READ|PROT_WRITE, MAP_SHARED, {raw}, 0)"),
            || {
                // SAFETY: a new mapping at an address the kernel chooses aliases no Rust
                // object; Section unmaps it in Drop and hands out only copies of its bytes.
                unsafe {
                    nix::sys::mman::mmap(
                        None,
                        size,
                        nix::sys::mman::ProtFlags::PROT_READ
                            | nix::sys::mman::ProtFlags::PROT_WRITE,
                        nix::sys::mman::MapFlags::MAP_SHARED,
                        fd.as_fd(),
                        0,
                    )
                }
                .map(Address)
            },
        )?;
        Ok(Section {
            base: mapped.0.cast(),
            len,
        })
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        assert!(
            offset + bytes.len() <= self.len,
            "the section was sized for the largest message"
        );
        // SAFETY: the range was checked to be inside the mapping just above; the server
        // reads it only after the note that names it, and acknowledges before reuse.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                self.base.as_ptr().add(offset),
                bytes.len(),
            )
        };
    }

    fn read(&self, offset: usize, len: usize, out: &mut Vec<u8>) {
        out.resize(len, 0);
        // SAFETY: the caller checked offset + len <= self.len; the bytes are copied once
        // into private memory before they are interpreted.
        unsafe {
            std::ptr::copy_nonoverlapping(self.base.as_ptr().add(offset), out.as_mut_ptr(), len)
        };
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        // SAFETY: base and len describe the mapping this Section owns.
        let _ = unsafe { nix::sys::mman::munmap(self.base.cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test says it failed by panicking
    use super::*;

    #[test]
    fn the_section_server_refuses_a_section_whose_size_is_not_sealed() {
        // A client that passes a memfd without seals could shrink it under the server's
        // mapping. Real kernel objects: a socketpair and a memfd, in one process (the
        // descriptor waits in the socket until the server takes it).
        let n = Narrator::silent("test");
        let (client, server) = sys::socketpair(&n, SockType::Stream).unwrap();
        let memfd = sys::memfd_create(&n, c"unsealed").unwrap();
        sys::ftruncate(&n, &memfd, 4096).unwrap();
        sys::sendmsg_fds(&n, &client, b"f", &[memfd.as_raw_fd()]).unwrap();
        drop(client);
        let err = section_server(&n, server, 1, 4096).unwrap_err().to_string();
        assert!(
            err.contains("its size is not sealed (F_SEAL_SHRINK"),
            "{err}"
        );
    }
}
