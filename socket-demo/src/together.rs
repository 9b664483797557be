//! The default lesson: a server and its clients in one terminal. The server listens, then
//! forks the clients, which connect to it as clients in other terminals would.

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::process::{self, Fork};
use common::{Narrator, Result, cleanup, say};

use crate::{DEFAULT_MAX, Endpoint, client, listen, serve};

/// How long a client of the one-terminal mode waits for an answer: as long as a client
/// of its own (`client --timeout`), but forever under `--step`, where the server waits
/// for Enter before each call.
const PATIENCE: Duration = Duration::from_secs(10);

/// Listens at `endpoint`, forks `clients` clients that each send `count` messages of
/// `size` bytes, serves them all at once, and waits for them. Each client prints its own
/// summary line; `step` (`--step`) makes them wait for answers without a time limit.
pub fn together(
    n: &Narrator,
    endpoint: &Endpoint,
    clients: u64,
    count: u64,
    size: usize,
    step: bool,
) -> Result<()> {
    let (listener, endpoint, _path) = listen(n, endpoint)?;
    let patience = (!step).then_some(PATIENCE);
    let mut children = Vec::new();
    for _ in 0..clients {
        match process::fork(n, "client")? {
            Fork::Child(me) => {
                drop(listener);
                let result = client(&me, &endpoint, count, size, patience);
                process::exit_child(&me, result)
            }
            Fork::Parent { child } => children.push(child),
        }
    }
    // Every fork is done: threads (the interrupt handler, the server's) may start.
    cleanup::exit_on_interrupt(n)?;
    // The clients are this process's own children: serve them all at once, and take
    // frames as large as they send (up to the largest --size).
    let at_once = usize::try_from(clients).unwrap_or(usize::MAX);
    let served = serve(n, &listener, Some(clients), size.max(DEFAULT_MAX), at_once);
    // If serving failed, clients still waiting to be accepted must not wait forever:
    // closing the listener makes their connect or read fail.
    drop(listener);
    let waited: Vec<Result<()>> = children
        .into_iter()
        .map(|child| process::wait_for(n, child, "client"))
        .collect();
    let served = served?;
    waited.into_iter().collect::<Result<()>>()?;
    say!(
        n,
        "served {clients} clients, {messages} messages",
        clients = served.clients.load(Ordering::SeqCst),
        messages = served.messages.load(Ordering::SeqCst)
    );
    Ok(())
}
