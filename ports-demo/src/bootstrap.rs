//! The bootstrap server: Mach's name service, rebuilt (note 003, 3.7.2).
//!
//! In Mach every task is born holding a send right to the bootstrap port. A server task
//! registers a name with a send right to a port it made; a client looks the name up and
//! receives a send right of its own. Names are the only thing the two share.
//!
//! Here the bootstrap port is a `SOCK_SEQPACKET` socket at a well-known path
//! ([`crate::place`]); every request is one Mach-format message ([`crate::port`]) on a
//! connection, and the reply comes back on the same connection (the connection stands in
//! for the reply port a Mach client would send). `register` carries the service's send
//! right as its rider; the reply to `look-up` carries a copy of it. The server holds its
//! copies in a table, name to right, and checks a right for a dead name (`poll`: POLLHUP)
//! before it hands it out, so a name whose server has ended is dropped, not served.
//!
//! ```text
//! cargo run -p ports-demo -- bootstrap                 # terminal 1
//! cargo run -p ports-demo -- server --name echo        # terminal 2: registers "echo"
//! cargo run -p ports-demo -- look-up echo              # terminal 3
//! ```
//!
//! See also: unix(7), poll(2), and `bootstrap_register`/`bootstrap_look_up` in
//! `<servers/bootstrap.h>` on macOS.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Error, Narrator, Result, say, sys, tr};
use nix::poll::PollFlags;

use crate::place;
use crate::port::{self, COPY_SEND, Outgoing, Received, SendOption, SendRight, Sent};
use crate::wire::{Reader, Writer, printable};

/// `bootstrap_register`: a name and, riding along, a send right.
pub const REGISTER: u32 = 403;
/// `bootstrap_look_up`: a name; the reply carries a send right.
pub const LOOK_UP: u32 = 404;
/// A reply's id is the request's plus 100, as MIG numbers them.
pub const REPLY: u32 = 100;
/// `BOOTSTRAP_SUCCESS`.
pub const SUCCESS: i32 = 0;
/// `BOOTSTRAP_NAME_IN_USE`: a live port is registered under the name already.
pub const NAME_IN_USE: i32 = 1101;
/// `BOOTSTRAP_UNKNOWN_SERVICE`: no live port is registered under the name.
pub const UNKNOWN_SERVICE: i32 = 1102;
/// `MIG_BAD_ARGUMENTS`: the request itself was malformed.
pub const BAD_ARGUMENTS: i32 = -304;
/// `MIG_BAD_ID`: no such request.
pub const BAD_ID: i32 = -303;
/// The longest name (`name_t` is 128 characters).
pub const MAX_NAME: usize = 128;
/// Connections held at once. A newcomer beyond that takes the slot of the connection
/// that has been silent longest, so that idle connections cannot lock the others out.
pub const MAX_CONNECTIONS: usize = 64;

/// A return code as its `<servers/bootstrap.h>` or MIG name.
pub fn code_name(code: i32) -> &'static str {
    match code {
        SUCCESS => "BOOTSTRAP_SUCCESS",
        NAME_IN_USE => "BOOTSTRAP_NAME_IN_USE",
        UNKNOWN_SERVICE => "BOOTSTRAP_UNKNOWN_SERVICE",
        BAD_ARGUMENTS => "MIG_BAD_ARGUMENTS",
        BAD_ID => "MIG_BAD_ID",
        _ => "an unknown code",
    }
}

/// Checks a service name: 1 to 128 characters of `A-Z a-z 0-9 . _ -`. (For the command
/// line, and for every name that arrives in a message.)
pub fn check_name(name: &[u8]) -> std::result::Result<String, String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(tr!(
            "a name has 1 to {max} characters, not {len}",
            max = MAX_NAME,
            len = name.len()
        ));
    }
    if let Some(bad) = name
        .iter()
        .find(|b| !(b.is_ascii_alphanumeric() || b"._-".contains(b)))
    {
        return Err(tr!(
            "a name uses only A-Z, a-z, 0-9, '.', '_' and '-', not byte {bad}",
            bad = format!("{bad:#04x}")
        ));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}

// ANCHOR: serve
/// A client's connection, and when the server last heard from it (its accept, or its
/// last message).
#[derive(Debug)]
struct Connection {
    fd: OwnedFd,
    heard: Instant,
}

/// The bootstrap server: listens at `path` and answers `register` and `look-up` until it
/// has handled `requests` messages (or forever). One `poll` watches the listening socket
/// and every connection, so a client that connects and says nothing, or vanishes in the
/// middle, never holds up the others. A connection that sends nothing for `idle` is
/// closed, and when all [`MAX_CONNECTIONS`] slots are held, a newcomer takes the slot of
/// the one silent longest: connections that say nothing cannot keep real clients out.
/// `ready`, if given, gets one byte once it listens. Returns its summary line.
pub fn serve(
    n: &Narrator,
    path: &Path,
    requests: Option<u64>,
    ready: Option<OwnedFd>,
    idle: Duration,
) -> Result<String> {
    let (listener, _path_guard) = place::listen(n, path, place::Server::Bootstrap)?;
    n.essential(tr!(
        "bootstrap server ready at {path}",
        path = path.display()
    ));
    if let Some(fd) = ready {
        sys::write(n, &fd, b"r")?;
    }
    let mut names: BTreeMap<String, SendRight> = BTreeMap::new();
    let mut clients: Vec<Connection> = Vec::new();
    let mut handled = 0u64;
    while requests.is_none_or(|limit| handled < limit) {
        let mut watch = vec![(listener.as_fd(), PollFlags::POLLIN)];
        watch.extend(clients.iter().map(|c| (c.fd.as_fd(), PollFlags::POLLIN)));
        // Wake up when the connection heard from longest ago has been silent for `idle`.
        let now = Instant::now();
        let wake = clients
            .iter()
            .map(|c| (c.heard + idle).saturating_duration_since(now))
            .min();
        let ready = sys::poll(n, &watch, wake)?;
        // Newest first, so that removing one does not shift the ones still to look at.
        for i in (0..clients.len()).rev() {
            if !ready.has(
                i + 1,
                PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR,
            ) {
                continue;
            }
            clients[i].heard = Instant::now();
            let keep = match port::receive(n, &clients[i].fd) {
                Ok(Received::Message(msg)) => {
                    handled += 1;
                    answer(n, &clients[i].fd, &mut names, msg)
                }
                Ok(Received::Refused { why, id, .. }) => {
                    handled += 1;
                    n.essential(tr!("refused a message: {why}", why));
                    reply(n, &clients[i].fd, id, BAD_ARGUMENTS, &why, None)
                }
                Ok(Received::NoSenders) => false,
                Err(e) => {
                    n.essential(tr!("a client's connection failed: {e}", e));
                    false
                }
            };
            if !keep {
                let gone = clients.swap_remove(i);
                sys::close(n, gone.fd)?;
            }
        }
        close_idle(n, &mut clients, idle)?;
        if ready.has(0, PollFlags::POLLIN) {
            let Some(client) = place::accept(n, &listener)? else {
                continue;
            };
            make_room(n, &mut clients)?;
            clients.push(Connection {
                fd: client,
                heard: Instant::now(),
            });
        }
    }
    Ok(format!("summary: requests={handled} names={}", names.len()))
}
// ANCHOR_END: serve

/// Closes every connection that has sent nothing for `idle`: a client sends its request
/// as soon as it has connected, so one that stays silent holds a slot for nothing.
fn close_idle(n: &Narrator, clients: &mut Vec<Connection>, idle: Duration) -> Result<()> {
    for i in (0..clients.len()).rev() {
        if clients[i].heard.elapsed() >= idle {
            let gone = clients.swap_remove(i);
            say!(
                n,
                "a client sent nothing for {seconds} s: I close its connection, so that it holds no slot",
                seconds = idle.as_secs_f64()
            );
            sys::close(n, gone.fd)?;
        }
    }
    Ok(())
}

/// When every slot is held, closes the connection that has been silent longest, so that
/// the newcomer gets a slot: a real client sends at once and is served at once, so the
/// connections that lose their slots are the ones that keep saying nothing.
fn make_room(n: &Narrator, clients: &mut Vec<Connection>) -> Result<()> {
    if clients.len() < MAX_CONNECTIONS {
        return Ok(());
    }
    let Some(longest) = (0..clients.len()).min_by_key(|&i| clients[i].heard) else {
        return Ok(());
    };
    let gone = clients.swap_remove(longest);
    say!(
        n,
        "{max} clients are connected already: I close the one silent longest ({ms} ms), to make room",
        max = MAX_CONNECTIONS,
        ms = gone.heard.elapsed().as_millis()
    );
    sys::close(n, gone.fd)
}
// ANCHOR_END: serve

/// Answers one well-formed request; returns whether to keep the connection.
fn answer(
    n: &Narrator,
    client: &OwnedFd,
    names: &mut BTreeMap<String, SendRight>,
    msg: port::Message,
) -> bool {
    let name = match check_name(&msg.body) {
        Ok(name) => name,
        Err(why) => return reply(n, client, msg.header.id, BAD_ARGUMENTS, &why, None),
    };
    match msg.header.id {
        REGISTER => {
            let Some(right) = msg.rider else {
                let why = tr!("register needs a send right riding along");
                return reply(n, client, REGISTER, BAD_ARGUMENTS, &why, None);
            };
            if let Some(old) = names.get(&name) {
                match port::is_dead(n, old) {
                    Ok(true) => say!(n, "{name}: its old port is a dead name; replacing it", name),
                    _ => {
                        let why = tr!("{name} is registered already, to a live port", name);
                        return reply(n, client, REGISTER, NAME_IN_USE, &why, None);
                    }
                }
            }
            say!(
                n,
                "register {name}: I keep send right {right}",
                name,
                right = port::name(&right)
            );
            names.insert(name, right);
            reply(n, client, REGISTER, SUCCESS, "", None)
        }
        LOOK_UP => {
            let dead = match names.get(&name) {
                None => {
                    let why = tr!("no port is registered under {name}", name);
                    return reply(n, client, LOOK_UP, UNKNOWN_SERVICE, &why, None);
                }
                Some(right) => port::is_dead(n, right).unwrap_or(true),
            };
            if dead {
                names.remove(&name);
                let why = tr!(
                    "{name} was registered, but its port is a dead name now (its receiver ended)",
                    name
                );
                say!(n, "{why}", why);
                return reply(n, client, LOOK_UP, UNKNOWN_SERVICE, &why, None);
            }
            say!(n, "look-up {name}: I send a copy of my send right", name);
            reply(n, client, LOOK_UP, SUCCESS, "", names.get(&name))
        }
        other => {
            let why = tr!("no request has id {other}", other);
            reply(n, client, other, BAD_ID, &why, None)
        }
    }
}

/// Sends the reply to request `id`: the code, a line of text, and maybe a right. A client
/// that does not take its reply at once is dropped rather than waited for.
fn reply(
    n: &Narrator,
    client: &OwnedFd,
    id: u32,
    code: i32,
    text: &str,
    right: Option<&SendRight>,
) -> bool {
    let mut body = Writer::default();
    body.i32(code).bytes(text.as_bytes());
    let msg = Outgoing {
        id: id.wrapping_add(REPLY),
        body: body.0,
        disposition: COPY_SEND,
    };
    match port::send(n, client, &msg, right.map(|r| &r.0), SendOption::Now) {
        Ok(Sent::Queued { .. }) => true,
        Ok(_) => {
            say!(
                n,
                "the client does not take its reply: closing its connection"
            );
            false
        }
        Err(e) => {
            n.essential(tr!("the reply failed (the client has gone?): {e}", e));
            false
        }
    }
}

// ANCHOR: client
/// One request to the bootstrap server at `path`: connect, send, take the reply (waiting
/// at most `patience`), check it. Returns the reply's rider (the right a look-up asked
/// for), if any.
fn request(
    n: &Narrator,
    path: &Path,
    id: u32,
    name: &str,
    rider: Option<&SendRight>,
    patience: Option<Duration>,
) -> Result<Option<SendRight>> {
    let op = if id == REGISTER {
        "bootstrap_register"
    } else {
        "bootstrap_look_up"
    };
    let call = format!("{op}({name:?})");
    let conn = place::connect(n, path, place::Server::Bootstrap, patience)?;
    let msg = Outgoing {
        id,
        body: name.as_bytes().to_vec(),
        disposition: COPY_SEND,
    };
    port::send(n, &conn, &msg, rider.map(|r| &r.0), SendOption::Wait)?;
    let got = port::receive(n, &conn)
        .map_err(|e| place::no_answer(e, place::Server::Bootstrap, patience))?;
    let answer = match got {
        Received::Message(m) => m,
        Received::Refused { why, .. } => {
            return Err(Error::bad_data(
                call,
                tr!("its reply was malformed: {why}", why),
            ));
        }
        Received::NoSenders => {
            return Err(Error::bad_data(
                call,
                tr!("the bootstrap server closed the connection without a reply"),
            ));
        }
    };
    let mut r = Reader::new(&answer.body, "a bootstrap reply");
    let code = r.i32("code")?;
    let text = printable(r.rest());
    if answer.header.id != id + REPLY {
        return Err(Error::bad_data(
            call,
            tr!(
                "the reply has id {got}, not {want}",
                got = answer.header.id,
                want = id + REPLY
            ),
        ));
    }
    if code != SUCCESS {
        return Err(Error::bad_data(
            call,
            tr!(
                "{code_name} ({code}): {text}",
                code_name = code_name(code),
                code,
                text
            ),
        ));
    }
    Ok(answer.rider)
}

/// `bootstrap_register`: gives the bootstrap server a copy of `right` under `name`,
/// waiting at most `patience` for its answer.
pub fn register(
    n: &Narrator,
    path: &Path,
    name: &str,
    right: &SendRight,
    patience: Option<Duration>,
) -> Result<()> {
    request(n, path, REGISTER, name, Some(right), patience)?;
    say!(
        n,
        "registered {name}: any task that knows the name can now send to my port",
        name
    );
    Ok(())
}

/// `bootstrap_look_up`: a send right to the port registered under `name`, waiting at
/// most `patience` for the answer.
pub fn look_up(
    n: &Narrator,
    path: &Path,
    name: &str,
    patience: Option<Duration>,
) -> Result<SendRight> {
    let right = request(n, path, LOOK_UP, name, None, patience)?;
    let right = right.ok_or_else(|| {
        Error::bad_data(
            format!("bootstrap_look_up({name:?})"),
            tr!("the reply carries no send right"),
        )
    })?;
    say!(
        n,
        "look-up {name}: send right {right} (a new descriptor, a copy of the server's right)",
        name,
        right = port::name(&right)
    );
    Ok(right)
}
// ANCHOR_END: client
