//! The processes of one lesson: children forked by the observer, each running one role.
//!
//! A lesson with several senders and receivers forks them all from one parent, the
//! observer, which then watches them. [`Crew::spawn`] is `fork(2)` with the child's
//! role run in the child (which leaves by `_exit`, never returning into the observer's
//! code); [`Crew::failed`] asks the kernel, without waiting, whether a member has ended
//! badly (`waitid(2)` with WNOHANG|WNOWAIT, which leaves the child to be collected
//! later), so that the observer can stop the others instead of waiting forever for a
//! message a dead process will never send; [`Crew::wait_all`] collects every member
//! with `waitpid(2)`. If the observer is interrupted (Ctrl-C, SIGTERM) first, its
//! cleanup sends each member not yet collected SIGTERM, before it removes the objects.
//!
//! This module starts and ends processes; what they say to each other is the lessons'.

use common::cleanup::{self, Guard};
use common::process::{self, Fork};
use common::{Error, Narrator, Result, tr};
use nix::sys::signal::Signal;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::{self, Pid};

/// One forked child.
#[derive(Debug)]
struct Member {
    role: &'static str,
    pid: Pid,
    /// Collected by [`Crew::wait_all`] (or by the drop of the crew).
    reaped: bool,
    /// Sends the child SIGTERM if the observer is interrupted (Ctrl-C) before it has
    /// collected the child; disarmed once it is collected, when its pid may be reused.
    stop_on_interrupt: Option<Guard>,
}

/// The children of this process in one lesson.
#[derive(Debug)]
pub struct Crew {
    members: Vec<Member>,
    /// The process that forked them: only it may signal or collect them. A forked child
    /// holds a copy of the crew (its siblings' pids) and must leave them alone.
    owner: Pid,
}

impl Default for Crew {
    fn default() -> Crew {
        Crew::new()
    }
}

impl Crew {
    /// An empty crew owned by this process.
    pub fn new() -> Crew {
        Crew {
            members: Vec::new(),
            owner: unistd::getpid(),
        }
    }

    /// Forks a child that runs `role_body` as `role` and exits with its result (0, or
    /// the error's exit code after printing it). Returns the child's pid in the parent.
    pub fn spawn(
        &mut self,
        n: &Narrator,
        role: &'static str,
        role_body: impl FnOnce(&Narrator) -> Result<()>,
    ) -> Result<Pid> {
        match process::fork(n, role)? {
            Fork::Child(me) => process::exit_child(&me, role_body(&me)),
            Fork::Parent { child } => {
                let quiet = n.clone();
                let stop = Guard::new(move || {
                    let _ = common::sys::kill(&quiet, child, Signal::SIGTERM);
                });
                self.members.push(Member {
                    role,
                    pid: child,
                    reaped: false,
                    stop_on_interrupt: Some(stop),
                });
                Ok(child)
            }
        }
    }

    /// The role of the member with `pid`, if it is one.
    pub fn role_of(&self, pid: i32) -> Option<&'static str> {
        self.members
            .iter()
            .find(|m| m.pid.as_raw() == pid)
            .map(|m| m.role)
    }

    /// The pids of the members, in the order they were started.
    pub fn pids(&self) -> Vec<Pid> {
        self.members.iter().map(|m| m.pid).collect()
    }

    /// Whether a member has already ended with a failure (a status other than 0, or a
    /// signal), without waiting and without collecting it: the error that says which.
    pub fn failed(&self) -> Option<Error> {
        self.members.iter().filter(|m| !m.reaped).find_map(|m| {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
            match waitid(Id::Pid(m.pid), flags) {
                Ok(WaitStatus::Exited(_, 0)) | Ok(WaitStatus::StillAlive) | Err(_) => None,
                Ok(WaitStatus::Exited(_, code)) => Some(ended_badly(m, &format!("status {code}"))),
                Ok(WaitStatus::Signaled(_, sig, _)) => Some(ended_badly(m, sig.as_str())),
                Ok(_) => None,
            }
        })
    }

    /// Sends SIGTERM to every member not yet collected: after a failure, so that the
    /// others stop instead of waiting for a peer that is gone. They are this process's
    /// own children, which `kill(2)` names one by one.
    pub fn stop_all(&self, n: &Narrator) {
        // Once Ctrl-C's handler has started, it stops the members itself (their guards).
        if unistd::getpid() != self.owner || cleanup::interrupted() {
            return;
        }
        for m in self.members.iter().filter(|m| !m.reaped) {
            if process::is_alive(m.pid.as_raw()) {
                // A member that ended in the meantime is ESRCH or a zombie: nothing to do.
                let _ = common::sys::kill(n, m.pid, Signal::SIGTERM);
            }
        }
    }

    /// Collects every member with `waitpid(2)`; the first that ended badly is the error.
    pub fn wait_all(&mut self, n: &Narrator) -> Result<()> {
        if cleanup::interrupted() {
            // The handler is sending the members SIGTERM through their guards; a member
            // collected here could have its pid reused before its guard runs.
            return Err(Error::interrupted("SIGINT or SIGTERM"));
        }
        let mut first = Ok(());
        for m in self.members.iter_mut().filter(|m| !m.reaped) {
            let result = process::wait_for(n, m.pid, m.role);
            m.reaped = true;
            if let Some(guard) = m.stop_on_interrupt.take() {
                guard.disarm();
            }
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

impl Drop for Crew {
    /// A lesson that returns early with an error still owns its children: stop and
    /// collect them, so that none is left running or as a zombie.
    fn drop(&mut self) {
        let done = self.members.iter().all(|m| m.reaped);
        if unistd::getpid() != self.owner || done || cleanup::interrupted() {
            return;
        }
        let quiet = Narrator::silent("observer");
        self.stop_all(&quiet);
        let _ = self.wait_all(&quiet);
    }
}

fn ended_badly(m: &Member, how: &str) -> Error {
    Error::bad_data(
        format!("the {} (pid {})", m.role, m.pid),
        tr!("it ended with {how} before the others", how),
    )
    .hint(tr!(
        "its own error message above says why; the others were stopped"
    ))
}
