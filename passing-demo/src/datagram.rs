//! Direct naming by address: every process binds a datagram socket at a path that is its
//! own (its pid is in the name), and a sender names the receiving process by that path.
//!
//! Note 001, IPC models, section 3 ("direct communication"), asks who names whom:
//!
//! - *asymmetric*: each sender names the receiver with `sendto(2)`; the receiver names
//!   nobody, takes datagrams from anyone with `recvfrom(2)`, and learns from the kernel
//!   the address each came from. (That address is the path the sender bound, a name it
//!   chose; for a pid the kernel vouches for, see `SO_PEERCRED` in socket-demo.)
//! - *symmetric* (`--symmetric`): the receiver then names its partner too, with
//!   `connect(2)` on its datagram socket, and the partner connects back. From then on the
//!   kernel delivers to the receiver only what the partner sends: another sender's
//!   `sendto` fails with EPERM (unix(7)). Each side now names the other.
//!
//! The receiver is the parent; it removes every address file when it ends, the
//! senders' included (a child leaves with `_exit` and cleans nothing).
//!
//! Usage: `passing-demo datagram [--senders 2] [--count 3] [--symmetric]`. See also:
//! unix(7), sendto(2), recvfrom(2), connect(2) "SOCK_DGRAM", [`crate::direct`].

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::time::Duration;

use common::message;
use common::narrate::print_summary;
use common::owner::{Kind, lstat_ours};
use common::sys::Opt;
use common::{Error, HintOn, Narrator, Result, cleanup, say, tr};
use nix::errno::Errno;
use nix::sys::socket::{AddressFamily, SockType, UnixAddr};
use nix::unistd;

use crate::crew::Crew;
use crate::{Names, SENDERS, sys};

/// How long the receiver waits for a datagram before it checks that no sender failed.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What the receiver tells each sender in the symmetric part.
const PARTNER: &[u8] = b"P";
const OUTSIDER: &[u8] = b"O";

/// The lesson's choices.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Senders to start.
    pub senders: usize,
    /// Datagrams each sends.
    pub count: u64,
    /// Payload bytes per datagram.
    pub size: usize,
    /// Whether the receiver and one sender then name each other.
    pub symmetric: bool,
}

impl Plan {
    /// Refuses a plan that cannot run (exit code 2).
    pub fn check(&self) -> Result<()> {
        if !(1..=crate::MAX_CREW).contains(&self.senders)
            || !(1..=1000).contains(&self.count)
            || !(1..=4096).contains(&self.size)
        {
            return Err(Error::usage(tr!(
                "datagram takes --senders 1 to {max}, --count 1 to 1000 and --size 1 to 4096",
                max = crate::MAX_CREW
            )));
        }
        if self.symmetric && self.senders < 2 {
            return Err(Error::usage(tr!(
                "--symmetric needs --senders 2 or more: one partner, and an outsider the kernel refuses"
            )));
        }
        Ok(())
    }
}

/// `socket(AF_UNIX, SOCK_DGRAM)` bound at this process's own address.
fn own_socket(n: &Narrator, names: &Names) -> Result<(OwnedFd, UnixAddr)> {
    let path = names.address_of(unistd::getpid())?;
    let addr = UnixAddr::new(&path)
        .map_err(|e| Error::sys(format!("sockaddr_un({})", path.display()), e))?;
    let fd = common::sys::socket(n, AddressFamily::Unix, SockType::Datagram)?;
    sys::fchmod_0600(n, &fd)?;
    common::sys::bind(n, &fd, &addr).hint_on(
        Errno::EADDRINUSE,
        tr!("a file a killed run left has this name: `passing-demo clean` removes it"),
    )?;
    Ok((fd, addr))
}

// ANCHOR: datagram
/// Forks the senders; each sends `plan.count` datagrams to this process's address. The
/// receiver takes them from anyone and names each sender by the address `recvfrom`
/// reports. With `plan.symmetric`, it then connects to the first sender it heard from;
/// that partner connects back and sends again, and the other senders' `sendto` is EPERM.
pub fn datagram(n: &Narrator, names: &Names, plan: Plan) -> Result<()> {
    let (sock, my_addr) = own_socket(n, names)?;
    let _remove = cleanup::unlink_on_drop(n, &names.address_of(unistd::getpid())?);
    say!(
        n,
        "this address is my name while I live; a sender names me by it"
    );
    let mut crew = Crew::new();
    let mut guards = Vec::new();
    for (index, role) in SENDERS.iter().enumerate().take(plan.senders) {
        let pid = crew.spawn(n, role, |me| sender(me, names, &my_addr, index, plan))?;
        guards.push(remove_address(n, names.address_of(pid)?));
    }
    cleanup::exit_on_interrupt(n)?;
    common::sys::setsockopt(n, &sock, Opt::RcvTimeo(CHECK_EVERY))?;
    let total = plan.senders as u64 * plan.count;
    let mut heard: BTreeMap<String, u64> = BTreeMap::new();
    let (mut first, mut named, mut unknown) = (None, 0u64, 0u64);
    let addresses = crew
        .pids()
        .into_iter()
        .map(|pid| names.address_of(pid))
        .collect::<Result<Vec<_>>>()?;
    let mut buf = vec![0u8; message::OVERHEAD + plan.size];
    for _ in n.first_few(0..total, tr!("the remaining datagrams without narration")) {
        let got = receive(n, &crew, &sock, &mut buf, Receive::From)?;
        let from = got
            .from
            .as_ref()
            .and_then(|a| a.path())
            .map(|p| p.to_path_buf());
        let sender = addresses
            .iter()
            .position(|a| from.as_deref() == Some(a.as_path()));
        let seq = message::decode(&buf[..got.len], plan.size).map(|f| f.seq);
        match (sender, seq) {
            // The content says which sender wrote it; the address must say the same.
            (Some(i), Ok(seq)) if seq / plan.count == i as u64 => {
                say!(
                    n,
                    "the kernel says it came from {role}'s address",
                    role = SENDERS[i]
                );
                *heard.entry(SENDERS[i].to_string()).or_default() += 1;
                first = first.or(got.from);
                named += 1;
            }
            _ => unknown += 1,
        }
    }
    let mut summary = format!(
        "summary: received={total} senders={} named_by_address={named} unknown={unknown}",
        heard.len()
    );
    if plan.symmetric {
        let partner = first.ok_or_else(|| {
            Error::bad_data("recvfrom", tr!("no sender could be named by its address"))
        })?;
        let got = symmetric(n, &crew, names, &sock, &partner, plan, &mut buf)?;
        crew.wait_all(n)?;
        // An outsider exits with 0 only if its sendto was refused with EPERM.
        summary += &format!(" partner={got} refused={}", plan.senders - 1);
    } else {
        crew.wait_all(n)?;
    }
    drop(guards);
    print_summary(summary)?;
    if named != total {
        return Err(Error::bad_data(
            "recvfrom",
            tr!(
                "{unknown} datagrams did not come from the sender they name",
                unknown
            ),
        ));
    }
    Ok(())
}

/// The symmetric part, in the receiver: connect to the partner, tell it so, tell the
/// others they are outsiders now, and take the partner's datagrams. Returns how many.
fn symmetric(
    n: &Narrator,
    crew: &Crew,
    names: &Names,
    sock: &OwnedFd,
    partner: &UnixAddr,
    plan: Plan,
    buf: &mut [u8],
) -> Result<u64> {
    say!(
        n,
        "now I name my partner too: the first sender I heard from"
    );
    common::sys::connect(n, sock, partner)?;
    say!(
        n,
        "from now on the kernel gives my socket only what my partner sends"
    );
    for pid in crew.pids() {
        let addr =
            UnixAddr::new(&names.address_of(pid)?).map_err(|e| Error::sys("sockaddr_un", e))?;
        let role = if addr.path() == partner.path() {
            PARTNER
        } else {
            OUTSIDER
        };
        // A connected datagram socket may still send to another address (unix(7)).
        sys::sendto(n, sock, role, &addr)?;
    }
    let mut got = 0;
    for _ in n.first_few(
        0..plan.count,
        tr!("the partner's remaining datagrams without narration"),
    ) {
        let len = receive(n, crew, sock, buf, Receive::Connected)?.len;
        message::decode(&buf[..len], plan.size)
            .map_err(|e| Error::bad_data("recv", e.to_string()))?;
        got += 1;
    }
    Ok(got)
}
// ANCHOR_END: datagram

/// Which receive call the receiver makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receive {
    /// `recvfrom`, to learn the address.
    From,
    /// `recv` on a connected socket: the address can only be the partner's.
    Connected,
}

/// One datagram, waiting as long as it takes, but checking every [`CHECK_EVERY`] (the
/// socket's SO_RCVTIMEO) that no sender has failed.
fn receive(
    n: &Narrator,
    crew: &Crew,
    sock: &OwnedFd,
    buf: &mut [u8],
    how: Receive,
) -> Result<sys::Datagram> {
    loop {
        let got = match how {
            Receive::From => sys::recvfrom(n, sock, buf),
            Receive::Connected => {
                common::sys::recv(n, sock, buf).map(|len| sys::Datagram { len, from: None })
            }
        };
        match got {
            Err(e) if e.errno() == Some(Errno::EAGAIN) => {
                if let Some(failure) = crew.failed() {
                    crew.stop_all(n);
                    return Err(failure);
                }
            }
            other => return other,
        }
    }
}

/// In a sender: bind its own address, send its datagrams to the receiver, and with
/// `--symmetric` do what the receiver says next.
fn sender(me: &Narrator, names: &Names, to: &UnixAddr, index: usize, plan: Plan) -> Result<()> {
    let (sock, _mine) = own_socket(me, names)?;
    let mut frame = Vec::new();
    for k in me.first_few(
        0..plan.count,
        tr!("the remaining datagrams without narration"),
    ) {
        message::encode_into(index as u64 * plan.count + k, plan.size, &mut frame);
        sys::sendto(me, &sock, &frame, to)?;
    }
    if !plan.symmetric {
        return Ok(());
    }
    let mut word = [0u8; 1];
    let got = common::sys::recv(me, &sock, &mut word)?;
    if &word[..got] == PARTNER {
        say!(me, "the receiver named me as its partner; I name it back");
        common::sys::connect(me, &sock, to)?;
        for k in me.first_few(
            0..plan.count,
            tr!("the remaining datagrams without narration"),
        ) {
            message::encode_into(k, plan.size, &mut frame);
            common::sys::send(me, &sock, &frame)?;
        }
        return Ok(());
    }
    say!(
        me,
        "the receiver is connected to another sender now; I try anyway"
    );
    message::encode_into(0, plan.size, &mut frame);
    match sys::sendto(me, &sock, &frame, to) {
        Err(e) if e.errno() == Some(Errno::EPERM) => {
            say!(
                me,
                "EPERM: the kernel refuses a datagram from anyone but the receiver's partner"
            );
            Ok(())
        }
        Err(e) => Err(e),
        Ok(_) => Err(Error::bad_data(
            "sendto",
            tr!("the receiver took a datagram from an outsider; EPERM was expected"),
        )),
    }
}

/// A guard that removes a sender's address file when the receiver ends, if it is a
/// socket of ours: the sender itself leaves with `_exit` and removes nothing.
fn remove_address(n: &Narrator, path: std::path::PathBuf) -> cleanup::Guard {
    let n = n.clone();
    cleanup::Guard::new(move || {
        if let Ok(Some(_)) = lstat_ours(&path, Kind::Socket) {
            let _ = common::sys::unlink(&n, &path);
        }
    })
}
