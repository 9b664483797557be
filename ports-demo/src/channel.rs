//! The client's end of an ALPC channel (note 003, 3.7.3): connect to the server's
//! connection port, offer a section for large requests and ask for one for large replies,
//! then call procedures, choosing the path by size, and answer callbacks while waiting.
//!
//! See also: [`crate::alpc`] for the message format, [`crate::alpc_server`] for the other
//! end, and [`crate::rpc`] for the stubs built on [`Channel::call`].

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use common::{Error, Narrator, Result, say, sys, tr};
use nix::unistd::Pid;

use crate::alpc::{self, Header, INLINE_MAX, MsgKind, Path as DataPath};
use crate::place;
use crate::sys::{self as my, Mapping};
use crate::wire::{self, printable};

/// How many messages went each way, for the summary line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Paths {
    /// Requests whose data was copied inside the message.
    pub inline: u64,
    /// Requests whose data was in the client's section.
    pub section: u64,
    /// Requests the server read from the client's memory.
    pub direct: u64,
    /// Replies inline, in the server's section, or written into the client's memory.
    pub reply_inline: u64,
    /// See `reply_inline`.
    pub reply_section: u64,
    /// See `reply_inline`.
    pub reply_direct: u64,
    /// Callbacks answered.
    pub callbacks: u64,
}

/// A callback handler: given the callback's number and data, the answer.
pub type OnCallback<'a> = dyn FnMut(&Narrator, u32, &[u8]) -> Result<Vec<u8>> + 'a;

/// The client's end of a channel.
#[derive(Debug)]
pub struct Channel {
    /// The connected socket: this client's private pair of communication ports.
    pub sock: OwnedFd,
    /// The number the server gave the channel.
    pub number: u32,
    /// The server's pid (from SO_PEERCRED), allowed to read and write this process.
    pub server: Pid,
    section: Mapping,
    replies: Mapping,
    seq: u32,
    /// How long a receive waits for the server (`SO_RCVTIMEO`), for the hint of a time-out.
    patience: Option<Duration>,
    /// What went which way.
    pub paths: Paths,
}

// ANCHOR: connect
/// Connects to the connection port at `path`, lets the server read this process's memory,
/// offers a section of `section` bytes for requests and asks for one of `reply_section`
/// bytes for replies; the server answers with the channel's number and its section. Every
/// receive on the channel waits at most `patience` for the server (`None`: as long as the
/// server lives).
pub fn connect(
    n: &Narrator,
    path: &Path,
    section: usize,
    reply_section: usize,
    patience: Option<Duration>,
) -> Result<Channel> {
    let sock = place::connect(n, path, place::Server::Alpc, patience)?;
    let server = sys::getsockopt_peercred(n, &sock)?;
    // The kernel says who the server is. A server of another user gets nothing of ours:
    // not the right to read this process's memory, not the section below.
    let me = nix::unistd::Uid::effective().as_raw();
    if server.uid() != me {
        return Err(Error::bad_data(
            tr!("getsockopt(SO_PEERCRED) of the ALPC server"),
            tr!(
                "the server runs as uid {uid}, not as you (uid {me})",
                uid = server.uid(),
                me
            ),
        )
        .hint(tr!(
            "a server of another user would get your section and could read your memory: connect only to your own server (another --port)"
        )));
    }
    let server = Pid::from_raw(server.pid());
    allow_reads_by(n, server)?;
    let (section_fd, section) = alpc::create_section(n, c"alpc-request-section", section)?;
    let mut hello = Header::new(MsgKind::Connect, 0, 0);
    hello.len = section.len() as u64;
    hello.reply_cap = reply_section as u64;
    sys::sendmsg_fds(
        n,
        &sock,
        &alpc::encode(&hello, &[]),
        &[section_fd.as_raw_fd()],
    )?;
    // The descriptor went to the server; this side keeps only its mapping.
    sys::close(n, section_fd)?;
    let mut buf = alpc::buffer();
    let got = wire::receive(n, &sock, &mut buf)
        .map_err(|e| place::no_answer(e, place::Server::Alpc, patience))?
        .ok_or_else(|| {
            Error::bad_data(
                tr!("connect to the ALPC server"),
                tr!("it closed the connection"),
            )
        })?;
    let (h, data) = alpc::decode(&buf[..got.len])?;
    if h.kind == MsgKind::Failure {
        return Err(Error::bad_data(
            tr!("connect to the ALPC server"),
            tr!("it refused: {why}", why = printable(data)),
        ));
    }
    let [reply_fd] = <[OwnedFd; 1]>::try_from(got.fds).map_err(|fds| {
        Error::bad_data(
            tr!("connect to the ALPC server"),
            tr!(
                "its answer carries {count} descriptors, not the one section",
                count = fds.len()
            ),
        )
    })?;
    if h.kind != MsgKind::Accept {
        return Err(Error::bad_data(
            tr!("connect to the ALPC server"),
            tr!("its answer is not an accept"),
        ));
    }
    let replies = alpc::map_peer_section(n, &reply_fd, h.len, false)?;
    sys::close(n, reply_fd)?;
    say!(
        n,
        "channel {number}: my section {mine} bytes (requests), the server's {theirs} bytes (replies)",
        number = h.id,
        mine = section.len(),
        theirs = replies.len()
    );
    Ok(Channel {
        sock,
        number: h.id,
        server,
        section,
        replies,
        seq: 0,
        patience,
        paths: Paths::default(),
    })
}
// ANCHOR_END: connect

/// Under Yama's `ptrace_scope` 1, only an ancestor may read a process's memory unless the
/// process names its reader: `prctl(PR_SET_PTRACER, server)`. Without Yama (or with 0),
/// the same user is enough and nothing needs doing.
fn allow_reads_by(n: &Narrator, server: Pid) -> Result<()> {
    match std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope") {
        Ok(scope) if scope.trim() == "1" => my::prctl_set_ptracer(n, server),
        Ok(scope) => {
            say!(
                n,
                "Yama ptrace_scope is {scope}: nothing to allow (0: same user is enough; 2, 3: only CAP_SYS_PTRACE, or nobody)",
                scope = scope.trim()
            );
            Ok(())
        }
        Err(_) => {
            say!(
                n,
                "no Yama on this kernel: the server may read my memory because it runs as the same user"
            );
            Ok(())
        }
    }
}

impl Channel {
    /// The bytes of this channel's request section, for tests of its bounds.
    pub fn section_len(&self) -> usize {
        self.section.len()
    }

    /// Sends a request built by hand, `build(seq)`, and waits for the answer to it: for
    /// the lessons that break the rules.
    pub fn call_raw(
        &mut self,
        n: &Narrator,
        build: impl FnOnce(u32) -> Vec<u8>,
    ) -> Result<Vec<u8>> {
        self.seq = self.seq.wrapping_add(1);
        sys::sendmsg_fds(n, &self.sock, &build(self.seq), &[])?;
        let mut unexpected = |_: &Narrator, id: u32, _: &[u8]| -> Result<Vec<u8>> {
            Err(Error::bad_data(
                tr!("answer a callback"),
                tr!("callback {id} was not expected", id),
            ))
        };
        self.wait_reply(n, None, &mut unexpected)
    }

    // ANCHOR: call
    /// Calls procedure `id` with `data` and returns its result. The path follows the size:
    /// inline up to 256 bytes, the section up to its size, else the server reads this
    /// process's memory. A result larger than the server's section is written into a
    /// buffer of `reply_cap` bytes here. Callbacks that come while waiting are answered
    /// by `on_callback`.
    pub fn call(
        &mut self,
        n: &Narrator,
        id: u32,
        data: &[u8],
        reply_cap: usize,
        on_callback: &mut OnCallback<'_>,
    ) -> Result<Vec<u8>> {
        self.seq = self.seq.wrapping_add(1);
        let mut h = Header::new(MsgKind::Request, id, self.seq);
        h.len = data.len() as u64;
        let mut inline: &[u8] = &[];
        // Kept alive until the reply: the server reads `request` and writes `reply_buf`.
        let (mut request, mut reply_buf) = (None, None);
        if data.len() <= INLINE_MAX {
            inline = data;
            self.paths.inline += 1;
            say!(
                n,
                "{len} bytes: inline, copied through the channel",
                len = data.len()
            );
        } else if data.len() <= self.section.len() {
            self.section.write(0, data)?;
            h.path = DataPath::Section;
            self.paths.section += 1;
            say!(
                n,
                "{len} bytes: into my section; only offset 0 and the length travel",
                len = data.len()
            );
        } else {
            let mut mine = my::mmap_anonymous(n, data.len())?;
            mine.write(0, data)?;
            h.path = DataPath::Direct;
            h.at = mine.addr();
            request = Some(mine);
            self.paths.direct += 1;
            say!(
                n,
                "{len} bytes: more than my section; the server will read them from my memory at {at}",
                len = data.len(),
                at = format!("{:#x}", h.at)
            );
        }
        if reply_cap > self.replies.len() {
            let buf = my::mmap_anonymous(n, reply_cap)?;
            h.reply_at = buf.addr();
            h.reply_cap = reply_cap as u64;
            reply_buf = Some(buf);
        }
        sys::sendmsg_fds(n, &self.sock, &alpc::encode(&h, inline), &[])?;
        let result = self.wait_reply(n, reply_buf.as_ref(), on_callback);
        drop(request);
        result
    }
    // ANCHOR_END: call

    /// Takes messages until the reply to the current request, answering callbacks.
    fn wait_reply(
        &mut self,
        n: &Narrator,
        reply_buf: Option<&Mapping>,
        on_callback: &mut OnCallback<'_>,
    ) -> Result<Vec<u8>> {
        let mut buf = alpc::buffer();
        loop {
            let got = wire::receive(n, &self.sock, &mut buf)
                .map_err(|e| place::no_answer(e, place::Server::Alpc, self.patience))?
                .ok_or_else(|| {
                    Error::bad_data(
                        tr!("wait for a reply"),
                        tr!("the server closed the channel"),
                    )
                })?;
            if !got.fds.is_empty() {
                return Err(Error::bad_data(
                    tr!("wait for a reply"),
                    tr!("the server sent descriptors with it"),
                ));
            }
            let (h, data) = alpc::decode(&buf[..got.len])?;
            if h.seq != self.seq {
                return Err(Error::bad_data(
                    tr!("wait for a reply"),
                    tr!(
                        "it answers request {got}, not {want}",
                        got = h.seq,
                        want = self.seq
                    ),
                ));
            }
            match h.kind {
                MsgKind::Callback => {
                    say!(
                        n,
                        "a callback ({id}) while I wait: I answer it first",
                        id = h.id
                    );
                    let answer = on_callback(n, h.id, data)?;
                    if answer.len() > INLINE_MAX {
                        return Err(Error::usage(tr!(
                            "a callback's answer is at most {max} bytes",
                            max = INLINE_MAX
                        )));
                    }
                    let mut back = Header::new(MsgKind::CallbackReply, h.id, h.seq);
                    back.len = answer.len() as u64;
                    sys::sendmsg_fds(n, &self.sock, &alpc::encode(&back, &answer), &[])?;
                    self.paths.callbacks += 1;
                }
                MsgKind::Failure => {
                    return Err(Error::bad_data(
                        tr!("call procedure"),
                        tr!("the server refused it: {why}", why = printable(data)),
                    ));
                }
                MsgKind::Reply => return self.reply_data(n, &h, data, reply_buf),
                other => {
                    return Err(Error::bad_data(
                        tr!("wait for a reply"),
                        tr!("an unexpected message of kind {kind}", kind = other as u16),
                    ));
                }
            }
        }
    }

    /// The reply's data, wherever the server put it; every length and offset checked.
    fn reply_data(
        &mut self,
        n: &Narrator,
        h: &Header,
        data: &[u8],
        reply_buf: Option<&Mapping>,
    ) -> Result<Vec<u8>> {
        let len = usize::try_from(h.len).unwrap_or(usize::MAX);
        match h.path {
            DataPath::Inline => {
                self.paths.reply_inline += 1;
                Ok(data.to_vec())
            }
            DataPath::Section => {
                self.paths.reply_section += 1;
                let at = usize::try_from(h.at).unwrap_or(usize::MAX);
                say!(
                    n,
                    "the reply is in the server's section: offset {at}, {len} bytes",
                    at,
                    len
                );
                self.replies.read(at, len)
            }
            DataPath::Direct => {
                self.paths.reply_direct += 1;
                let buf = reply_buf.ok_or_else(|| {
                    Error::bad_data(
                        tr!("read a reply"),
                        tr!("the server wrote into my memory, but I gave it no buffer"),
                    )
                })?;
                say!(
                    n,
                    "the server wrote the reply into my memory at {at}: {len} bytes",
                    at = format!("{:#x}", buf.addr()),
                    len
                );
                buf.read(0, len)
            }
        }
    }
}
