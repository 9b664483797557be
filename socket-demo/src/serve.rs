//! The server: accepts clients, a thread for each, and answers every message of each in
//! capital letters; the kernel tells it who connected (`getpeername`, `SO_PEERCRED`).

use std::net::SocketAddrV4;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use common::message;
use common::narrate::print_summary;
use common::stream::FdStream;
use common::{Context, Narrator, Result, cleanup, say, sys, tr};
use nix::sys::socket::UnixCredentials;

use crate::listen::PROBE_NAME;
use crate::{Endpoint, listen, sys as my};

/// How many clients a server serves at once unless told otherwise (`--max-clients`).
pub const DEFAULT_MAX_CLIENTS: usize = 16;

/// The counters of a server, shared by its client threads.
#[derive(Debug, Default)]
pub struct Served {
    /// Connections accepted as clients (probes and refused connections are not).
    pub clients: AtomicU64,
    /// Messages answered.
    pub messages: AtomicU64,
    /// Connections that ended with an error (a bad frame, a reset).
    pub errors: AtomicU64,
}

impl Served {
    /// The server's summary line: `summary: clients=2 messages=20 errors=0`.
    pub fn summary(&self) -> String {
        let load = |c: &AtomicU64| c.load(Ordering::SeqCst);
        format!(
            "summary: clients={} messages={} errors={}",
            load(&self.clients),
            load(&self.messages),
            load(&self.errors)
        )
    }
}

/// The `server` subcommand: listens at `endpoint`, says where, and serves `clients`
/// clients (all that come, if `None`), at most `max_clients` at once; `raw` echoes bytes
/// instead of frames. Ends with the summary line.
pub fn server(
    n: &Narrator,
    endpoint: &Endpoint,
    clients: Option<u64>,
    max: usize,
    max_clients: usize,
    raw: bool,
) -> Result<()> {
    let (listener, endpoint, _path) = listen(n, endpoint)?;
    cleanup::exit_on_interrupt(n)?;
    n.essential(tr!(
        "listening on {endpoint}; run `socket-demo client` with the same address",
        endpoint
    ));
    if raw {
        return serve_raw(n, &listener, clients, max_clients);
    }
    let served = serve(n, &listener, clients, max, max_clients)?;
    print_summary(served.summary())
}

/// Who is at the other end of an accepted connection, as the kernel tells it.
#[derive(Debug)]
enum Peer {
    /// A Unix socket client: its credentials (SO_PEERCRED).
    Unix(UnixCredentials),
    /// A TCP client: its address and port (getpeername).
    Tcp(SocketAddrV4),
    /// Another socket-demo's [`crate::probe`], named by its abstract address.
    Probe(String),
    /// The kernel would not say.
    Unknown,
}

/// `getpeername` on an accepted connection, and, on a Unix socket, `SO_PEERCRED`. A
/// connection that is gone already is [`Peer::Unknown`], not an error: the server goes on.
fn peer_of(n: &Narrator, conn: &OwnedFd) -> Peer {
    let Ok(addr) = my::getpeername(n, conn) else {
        return Peer::Unknown;
    };
    if let Some(sin) = addr.as_sockaddr_in() {
        return Peer::Tcp(SocketAddrV4::new(sin.ip(), sin.port()));
    }
    let probe = addr
        .as_unix_addr()
        .and_then(|unix| unix.as_abstract())
        .filter(|name| name.starts_with(PROBE_NAME.as_bytes()));
    if let Some(name) = probe {
        return Peer::Probe(String::from_utf8_lossy(name).into_owned());
    }
    sys::getsockopt_peercred(n, conn).map_or(Peer::Unknown, Peer::Unix)
}

/// Counts a client thread as running until it ends: the count goes down when this is
/// dropped, at the end of the thread, even if the thread panics.
struct Running(Arc<AtomicUsize>);

impl Running {
    /// The thread is done: the count goes down now; returns how many are still running.
    fn end(self) -> usize {
        let count = Arc::clone(&self.0);
        drop(self);
        count.load(Ordering::SeqCst)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

// ANCHOR: serve
/// Accepts connections (all of them, or `clients` of them) and gives each one to
/// `handle` on a thread of its own, with a narrator of its own, so several clients are
/// served at once, at most `max_clients` at a time: a connection beyond that is closed
/// at once, and said so, so that idle connections cannot pile up threads and buffers
/// without end. A liveness probe of another socket-demo is closed too, and is not a
/// client. Returns when every connection has ended.
fn accept_each(
    n: &Narrator,
    listener: &OwnedFd,
    clients: Option<u64>,
    max_clients: usize,
    handle: impl Fn(&Narrator, u64, OwnedFd) + Clone + Send + 'static,
) -> Result<()> {
    let running = Arc::new(AtomicUsize::new(0));
    let mut threads: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut accepted = 0;
    while clients != Some(accepted) {
        let conn = sys::accept(n, listener)?;
        let fd = conn.as_raw_fd();
        match peer_of(n, &conn) {
            Peer::Probe(name) => {
                say!(
                    n,
                    "connection {fd} is from @{name}: another program checking that I am alive; closed, not a client",
                    fd,
                    name
                );
                sys::close(n, conn)?;
                continue;
            }
            _ if running.load(Ordering::SeqCst) >= max_clients => {
                say!(
                    n,
                    "connection {fd} refused: I serve {max} clients at once already (--max-clients); closing it",
                    fd,
                    max = max_clients
                );
                sys::close(n, conn)?;
                continue;
            }
            Peer::Unix(cred) => say!(
                n,
                "client {id} is pid {pid}, uid {uid}: the kernel says who connected (SO_PEERCRED), a client cannot pretend",
                id = accepted + 1,
                pid = cred.pid(),
                uid = cred.uid()
            ),
            Peer::Tcp(addr) => say!(
                n,
                "client {id} is at {addr}: over TCP the kernel knows only the peer's address and port (SO_PEERCRED means something only on Unix sockets)",
                id = accepted + 1,
                addr
            ),
            Peer::Unknown => {}
        }
        accepted += 1;
        running.fetch_add(1, Ordering::SeqCst);
        let (handle, count, id) = (handle.clone(), Running(Arc::clone(&running)), accepted);
        // Its own narrator: a client's loop goes quiet after its first few messages
        // without silencing the others.
        let me = n.for_role("server");
        // Builder::spawn, not thread::spawn: the system may refuse a thread (no memory
        // for its stack under `ulimit -v`, or too many threads), and that is an error to
        // report, not a panic (pthread_create(3), EAGAIN).
        let thread = std::thread::Builder::new()
            .name(format!("client-{id}"))
            .spawn(move || {
                handle(&me, id, conn);
                let now = count.end();
                say!(me, "client {id} is done; {now} being served", id, now);
            })
            .context(format!("pthread_create(a thread for client {id})"))
            .map_err(|e| e.hint(tr!("the system refused a new thread: too little memory for its stack (see `ulimit -v`) or too many threads (`ulimit -u`); serve fewer clients at once")))?;
        // Forget the threads that have ended, so the list does not grow with every client.
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
    }
    // Each connection ends when its client closes; wait for all of them before returning.
    if threads.iter().any(|t| !t.is_finished()) {
        say!(
            n,
            "every client is accepted; I wait for the last ones to finish"
        );
    }
    for thread in threads {
        let _ = thread.join();
    }
    Ok(())
}

/// Answers each message of each connection with the same message, its payload in
/// capital letters, to at most `max_clients` clients at once. A client that sends a
/// frame longer than `max` bytes is disconnected; the others go on.
pub fn serve(
    n: &Narrator,
    listener: &OwnedFd,
    clients: Option<u64>,
    max: usize,
    max_clients: usize,
) -> Result<Arc<Served>> {
    let served = Arc::new(Served::default());
    let counters = Arc::clone(&served);
    accept_each(n, listener, clients, max_clients, move |me, id, conn| {
        counters.clients.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = answer(me, id, conn, &counters, max) {
            counters.errors.fetch_add(1, Ordering::SeqCst);
            me.announce(tr!(
                "client {id}: {e}; disconnected it, serving the others",
                id,
                e
            ));
        }
    })?;
    Ok(served)
}

/// One connection: read a frame, answer it shouted, until the client closes.
fn answer(n: &Narrator, id: u64, conn: OwnedFd, served: &Served, max: usize) -> Result<()> {
    let mut stream = FdStream::new(conn, n);
    let (mut buf, mut reply) = (Vec::new(), Vec::new());
    for _ in n.first_few(0.., tr!("answering client {id} without narration", id)) {
        let Some(request) = stream.read_frame(&mut buf, max)? else {
            break;
        };
        served.messages.fetch_add(1, Ordering::SeqCst);
        message::encode_payload(
            request.seq,
            &request.payload.to_ascii_uppercase(),
            &mut reply,
        );
        stream.write_all(&reply)?;
    }
    Ok(())
}
// ANCHOR_END: serve

/// `--raw` server: echoes whatever each client sends in capital letters, so `socat` or a
/// Python socket can be the client.
pub fn serve_raw(
    n: &Narrator,
    listener: &OwnedFd,
    clients: Option<u64>,
    max_clients: usize,
) -> Result<()> {
    accept_each(n, listener, clients, max_clients, move |me, id, conn| {
        let mut stream = FdStream::new(conn, me);
        let mut buf = [0u8; 4096];
        for _ in me.first_few(0.., tr!("echoing client {id} without narration", id)) {
            let Ok(got @ 1..) = stream.read(&mut buf) else {
                break;
            };
            if stream.write_all(&buf[..got].to_ascii_uppercase()).is_err() {
                break;
            }
        }
    })
}
