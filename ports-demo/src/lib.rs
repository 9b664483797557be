//! ports-demo: Mach ports and Windows ALPC, rebuilt from Linux parts, narrated.
//!
//! Follows `003_5ebb38e0b36eb300.txt`, "3.7.2 Mach 메시지 전달" and "3.7.3 Windows". Neither
//! system runs on Linux, but each idea of the two sections has a Linux part that does the
//! same job, and this crate puts them together so that the ideas can be run, watched in
//! several terminals, and tested:
//!
//! - Mach: [`port`] (a port, its rights, its bounded queue), [`message`] (its messages),
//!   [`bootstrap`] (the name server), [`mach_server`] and [`mach_client`] (requests with
//!   reply ports, a dead name, broken rules), [`queue`] (the four options for a full
//!   queue, and message order);
//! - ALPC: [`alpc`] (the message format and sections), [`channel`] (the client's end),
//!   [`alpc_server`], [`rpc`] (stubs on top), [`alpc_client`] (the lessons, and another
//!   process trying to reach a channel);
//! - [`tour`]: both systems in one terminal; [`place`]: the one path each system has;
//!   [`wire`]: bytes in and out; [`sys`]: the narrated calls only this crate makes.
//!
//! Usage: `cargo run -p ports-demo -- --help`. See also: unix(7), socket(7), poll(2),
//! memfd_create(2), process_vm_readv(2), and the chapter "Mach and Windows, on Linux".

pub mod alpc;
pub mod alpc_client;
pub mod alpc_server;
pub mod bootstrap;
pub mod channel;
pub mod mach_client;
pub mod mach_server;
pub mod message;
pub mod place;
pub mod port;
pub mod queue;
pub mod rpc;
pub mod sys;
pub mod tour;
pub mod wire;

/// Where the bootstrap server listens unless `--bootstrap` says otherwise.
pub fn default_bootstrap() -> common::Result<std::path::PathBuf> {
    Ok(common::paths::private_dir()?.join("ports-bootstrap"))
}

/// Where the ALPC server publishes its connection port unless `--port` says otherwise.
pub fn default_port() -> common::Result<std::path::PathBuf> {
    Ok(common::paths::private_dir()?.join("ports-alpc"))
}

/// Seconds a server keeps a connection that sends nothing, unless `--idle-timeout` says
/// otherwise: long enough for a client stepped through with `--step`, short enough that
/// a silent connection cannot hold a slot for long.
pub const DEFAULT_IDLE_SECONDS: u64 = 30;

/// [`DEFAULT_IDLE_SECONDS`] as a duration.
pub fn default_idle() -> std::time::Duration {
    std::time::Duration::from_secs(DEFAULT_IDLE_SECONDS)
}
