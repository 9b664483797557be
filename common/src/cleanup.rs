//! Cleanup: what a role created is removed when it ends, normally or by Ctrl-C.
//!
//! A kernel object with a name (a FIFO, a shared memory object, a message queue) outlives
//! the process that made it; if nobody removes it, it stays until reboot. So every object
//! a demo creates gets a [`Guard`] whose `Drop` removes it. `Drop` runs when `run()`
//! returns, with or without an error, but not when a signal kills the process, so
//! [`exit_on_interrupt`] installs a SIGINT/SIGTERM handler (the `ctrlc` crate, which
//! uses a thread) that runs the pending guards and exits with 130.
//!
//! Two rules keep this safe (they are invariants in `ARCHITECTURE.md`):
//! - install the handler only *after* the last `fork()`: a thread and `fork` do not mix
//!   (fork(2): only the calling thread is copied into the child);
//! - a forked child inherits a copy of the pending guards but must not run them (the
//!   objects are its parent's): [`crate::process::fork`] forgets them in the child
//!   and leaves the child with `_exit`.
//!
//! A signal that arrives just as the main thread finishes its work ends the process one
//! of two ways, both clean: the handler removes everything and exits with 130, or the
//! main thread's guards remove everything on drop and the process exits normally. Once
//! the handler has started, [`crate::exit::main_with`] leaves the ending to it.
//!
//! Before a role installs that handler (and in roles that own nothing, which never
//! install it), [`exit_130_on_interrupt`], which every demo's `main` calls first, makes
//! SIGINT and SIGTERM end the process with 130 too, instead of the default action (death
//! by the signal, which a shell reports as 130 for SIGINT but 143 for SIGTERM, and a
//! test as no exit code at all).
//!
//! A process killed with SIGKILL cannot clean up at all; each demo's `clean` subcommand
//! exists for that.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::stat::FileStat;

use crate::error::{Error, Result};
use crate::narrate::Narrator;

type Action = Box<dyn FnOnce() + Send>;

/// The pending actions, oldest first, each with its guard's id.
static PENDING: Mutex<Vec<(u64, Action)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
/// Set by the interrupt handler before it starts cleaning up.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn pending() -> MutexGuard<'static, Vec<(u64, Action)>> {
    // A panic while the lock was held leaves the list as it was; keep using it.
    PENDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs its action once: when dropped, or from the interrupt handler, whichever is first.
#[must_use = "the object is removed as soon as the guard is dropped"]
#[derive(Debug)]
pub struct Guard {
    id: u64,
}

impl Guard {
    /// Registers `action` (for example, unlinking a path) to run when the guard drops.
    pub fn new(action: impl FnOnce() + Send + 'static) -> Guard {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        pending().push((id, Box::new(action)));
        Guard { id }
    }

    /// Forgets the action without running it: the object now belongs to someone else.
    pub fn disarm(self) {
        take(self.id);
        std::mem::forget(self);
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Once the interrupt handler has started, it runs every pending action and then
        // ends the process. A guard dropped meanwhile by the main thread (which may be
        // returning because the handler removed an object under it) leaves its action to
        // the handler: two threads taking actions from one list would race the handler's
        // exit(130), and the main thread's half would be cut off, unsaid.
        if interrupted() {
            return;
        }
        if let Some(action) = take(self.id) {
            action();
        }
    }
}

fn take(id: u64) -> Option<Action> {
    let mut list = pending();
    let at = list.iter().position(|(i, _)| *i == id)?;
    Some(list.remove(at).1)
}

/// A guard that removes the file at `path` (a FIFO, a socket) with `unlink(2)`,
/// narrated by `n`, when it drops or on Ctrl-C.
pub fn unlink_on_drop(n: &Narrator, path: &std::path::Path) -> Guard {
    let (n, path) = (n.clone(), path.to_path_buf());
    Guard::new(move || {
        // A failure here has nobody left to report to but the narration itself.
        let _ = crate::sys::unlink(&n, &path);
    })
}

/// A guard that removes the file at `path` (a file, a FIFO, a socket) when it drops or on
/// Ctrl-C, but only if `lstat(2)` still finds there the very object `made` describes (its
/// device and inode, from the `fstat` or `lstat` made right after creating it). Whatever
/// took the path since, another user's file or a symbolic link, is not ours to remove:
/// the guard says so and leaves it.
pub fn remove_own_on_drop(n: &Narrator, path: &std::path::Path, made: &FileStat) -> Guard {
    let (made, n, path) = ((made.st_dev, made.st_ino), n.clone(), path.to_path_buf());
    Guard::new(move || {
        let shown = path.display().to_string();
        match nix::sys::stat::lstat(&path) {
            Ok(now) if (now.st_dev, now.st_ino) == made => {
                // A failure here has nobody left to report to but the narration itself.
                let _ = crate::sys::unlink(&n, &path);
            }
            Ok(_) => n.say(crate::tr!(
                "{path} is no longer the file I created: I leave it",
                path = shown
            )),
            Err(_) => n.say(crate::tr!("{path} is gone already", path = shown)),
        }
    })
}

/// Runs every pending action, newest first (the reverse of creation, as `Drop` would).
pub fn run_all() {
    loop {
        // Take one action at a time and release the lock before running it, so that an
        // action may itself create or drop guards.
        let Some((_, action)) = pending().pop() else {
            return;
        };
        action();
    }
}

/// Installs the SIGINT/SIGTERM handler: it says what happened, runs the pending guards
/// and exits with 130. Call it after the last `fork()` of the process.
pub fn exit_on_interrupt(n: &Narrator) -> Result<()> {
    let n = n.clone();
    ctrlc::set_handler(move || {
        INTERRUPTED.store(true, Ordering::SeqCst);
        n.announce(crate::tr!(
            "interrupted (SIGINT or SIGTERM): removing what I created, then exit 130"
        ));
        // A loop that went quiet (first_few) may have muted this narrator and its
        // clones; what is removed or stopped on the way out is always shown.
        n.unmute();
        run_all();
        std::process::exit(130);
    })
    .map_err(|e| Error::bad_data("sigaction(SIGINT/SIGTERM) via ctrlc", e.to_string()))
}

/// What [`leave_130`] writes, in English and in Korean, for SIGINT and for SIGTERM: made
/// once, before the handler is installed (and before the command line has chosen the
/// language), so that the handler itself only reads it and the language.
static LEAVING: OnceLock<[[Box<[u8]>; 2]; 2]> = OnceLock::new();

/// The first SIGINT/SIGTERM handler: says why on standard error and leaves with 130.
extern "C" fn leave_130(signal: libc::c_int) {
    if let Some(lines) = LEAVING.get() {
        // A lock-free atomic load: async-signal-safe.
        let lines = match crate::i18n::lang() {
            crate::i18n::Lang::En => &lines[0],
            crate::i18n::Lang::Ko => &lines[1],
        };
        let line = if signal == libc::SIGINT {
            &lines[0]
        } else {
            &lines[1]
        };
        // SAFETY: write(2) is async-signal-safe (signal-safety(7)); `line` lives in a
        // static that is set before the handler is installed and never changed. Its
        // result is ignored: standard error may be closed, and we leave anyway.
        let _ = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    }
    // SAFETY: _exit(2) is async-signal-safe; it ends the process at once, as the default
    // action would, but with the exit code the design gives an interruption.
    unsafe { libc::_exit(130) }
}

/// `program: interrupted by SIGINT` in `lang`, as an interrupted run's error says it
/// (the same sentence as [`Error::interrupted`]'s, from the same catalog entry).
fn leaving_line(program: &str, lang: crate::i18n::Lang, signal: &str) -> Box<[u8]> {
    const MSGID: &str = "interrupted by {signal}";
    let korean = match lang {
        crate::i18n::Lang::Ko => crate::i18n::korean(MSGID),
        crate::i18n::Lang::En => None,
    };
    // The catalog check makes sure the translation has the same one placeholder.
    let text = korean.map_or_else(
        || format!("interrupted by {signal}"),
        |template| template.replace("{signal}", signal),
    );
    format!("{program}: {text}\n")
        .into_bytes()
        .into_boxed_slice()
}

/// Makes SIGINT and SIGTERM end the process with exit code 130 and one line on standard
/// error (`program: interrupted by SIGINT`), for as long as no other handler replaces
/// this one. [`crate::exit::main_with`] calls it before `run()`.
///
/// It is a plain `sigaction(2)` handler, not a thread, so a demo may still `fork` after
/// it (a child inherits it, and leaving with `_exit` is what a child must do anyway). A
/// role that creates objects replaces it with [`exit_on_interrupt`], which removes them
/// first; a lesson about signals installs its own. Between the creation of an object and
/// that replacement, an interruption leaves the object behind, as the default action
/// would: `clean` is for that.
///
/// A signal that is ignored when the program starts (a shell starts background jobs
/// with SIGINT ignored, `nohup` and `trap '' TERM` do the same) stays ignored: that
/// choice was made by whoever started us.
pub fn exit_130_on_interrupt(program: &str) {
    let _ = LEAVING.set([crate::i18n::Lang::En, crate::i18n::Lang::Ko].map(|lang| {
        [
            leaving_line(program, lang, "SIGINT"),
            leaving_line(program, lang, "SIGTERM"),
        ]
    }));
    let action = SigAction::new(
        SigHandler::Handler(leave_130),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        if is_ignored(signal) {
            continue;
        }
        // SAFETY: leave_130 does only async-signal-safe work: one write(2), then _exit(2).
        // A failure leaves the default action, which ends the process too.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// Whether `signal`'s disposition is SIG_IGN, asked with `sigaction(signal, NULL, &old)`,
/// which changes nothing (nix's wrapper always sets a new action).
fn is_ignored(signal: Signal) -> bool {
    // SAFETY: sigaction is plain data, for which all zero bytes are a valid value.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `old`, valid for the call.
    let r = unsafe { libc::sigaction(signal as libc::c_int, std::ptr::null(), &mut old) };
    r == 0 && old.sa_sigaction == libc::SIG_IGN
}

/// Whether the interrupt handler has started. Once it has, it owns the end of the
/// process: [`crate::exit::main_with`] then waits for it to exit with 130 rather than
/// return (the main thread may have woken up because the handler removed an object).
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// In a child right after `fork()`: drops the inherited copies of the parent's actions
/// without running them.
pub(crate) fn forget_inherited() {
    // No other thread exists in the child, so the lock is free unless the parent forked
    // while holding it, which the rule "no handler thread before fork" prevents; try_lock
    // keeps the child from hanging even then.
    if let Ok(mut list) = PENDING.try_lock() {
        list.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    /// The pending actions are one list for the whole process, and `run_all` runs all of
    /// them: tests that use the list take turns, or one would run another's guards.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn a_guard_runs_once_when_dropped_and_a_disarmed_one_never() {
        let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        drop(Guard::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
        }));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        let r = runs.clone();
        Guard::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .disarm();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_guard_already_run_by_run_all_does_not_run_again_on_drop() {
        let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let guard = Guard::new(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        run_all();
        drop(guard);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
