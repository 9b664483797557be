//! SIGBUS, caught: one clear line and exit 1, instead of a crash, when a peer shrinks a
//! shared object under this process's mapping.
//!
//! A mapping of a shared memory object or a file keeps its length, but the object does
//! not: any process that may write to it can `ftruncate` it (a bug, a hostile peer, a
//! Python one-liner). A load or store in the part of the mapping that no longer has the
//! object behind it raises SIGBUS (mmap(2), "Errors"), whose default action kills the
//! process. A demo checks the object's size with `fstat` before each access window
//! ([`check_size`]), but the peer can shrink it between the check and the access;
//! [`exit_on_sigbus`] covers that gap.
//!
//! The handler runs in the middle of an instruction that cannot complete, so it may do
//! only what signal-safety(7) allows, and it never returns (returning would run the
//! faulting access again). It does three things, all prepared before it is installed:
//! - `unlink(2)` of the one object this process created, so that nothing is left behind
//!   (`Drop` and the cleanup guards do not run when a process leaves by `_exit`), and
//!   only if `lstat(2)` finds the very object (device and inode) that was there when the
//!   handler was armed: a name someone reused is not ours to remove. A POSIX shared
//!   memory object is removed with `unlink` of its file in `/dev/shm`, which is what
//!   glibc's `shm_unlink(3)` does on Linux (shm_overview(7)); `shm_unlink` itself is not
//!   on the async-signal-safe list, `lstat` and `unlink` are;
//! - `write(2)` of one line to standard error, naming SIGBUS, the object, and a hint;
//! - `_exit(1)`: a failed operation, as the design's exit codes say.
//!
//! This is not a way to survive the fault: the access never happens, and the process
//! ends. It replaces only the default action (death by signal, maybe a core file) with
//! an ending a student can read. On Linux, Rust's standard library handles SIGSEGV for
//! stack overflows; SIGBUS is not used for that, so taking it over loses nothing.
//!
//! See also: sigaction(2), signal-safety(7), mmap(2), and TLPI 49.4.3 ("Boundary
//! Cases") and 21.1.2 ("Reentrant and Async-Signal-Safe Functions").

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use crate::error::{Error, Result};
use crate::tr;

/// What the handler removes before the process ends: what this process created, and
/// nothing else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remove {
    /// Nothing: this process created no object (a consumer).
    Nothing,
    /// The POSIX shared memory object of this name (`/ipc-demo-shm-1000`).
    ShmObject(String),
    /// The file at this path.
    File(PathBuf),
}

/// The line the handler writes: set before the handler is installed, never freed.
static LINE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());
static LINE_LEN: AtomicUsize = AtomicUsize::new(0);
/// The path the handler unlinks (NUL-terminated), or null for nothing.
static UNLINK: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
/// The device and inode the object at UNLINK had when the handler was armed.
static DEVICE: AtomicU64 = AtomicU64::new(0);
static INODE: AtomicU64 = AtomicU64::new(0);

/// `fstat(2)` on the descriptor of a shared object that this process has mapped `need`
/// bytes of: an error if a peer shrank it below that, since touching the part that is
/// gone would raise SIGBUS. `what` names the object for the error (`the shared memory
/// object /ipc-demo-shm-1000`).
pub fn check_size(fd: impl AsFd, what: &str, need: usize) -> Result<()> {
    let call = format!("fstat({}) of {what}", fd.as_fd().as_raw_fd());
    let st = nix::sys::stat::fstat(fd.as_fd()).map_err(|errno| Error::sys(call.clone(), errno))?;
    let len = usize::try_from(st.st_size).unwrap_or(0);
    if len < need {
        return Err(Error::bad_data(
            call,
            tr!(
                "the peer shrank the shared object to {len} bytes, under a mapping of {need}: \
                 an access past its new end would raise SIGBUS",
                len,
                need
            ),
        )
        .hint(tr!(
            "another process truncated it (ftruncate) while it was in use; start both roles again"
        )));
    }
    Ok(())
}

/// Installs the SIGBUS handler for this process: on a fault, it removes what `remove`
/// names, writes one line saying that the peer shrank `object` (for the reader, such as
/// `/ipc-demo-shm-1000`), and exits with status 1. `program` starts the line, as
/// [`crate::exit::main_with`] starts an error.
///
/// Arm it right after creating the object: what `lstat(2)` finds at its path now is
/// what the handler will remove, and nothing else.
///
/// Call it again to change what is removed, for example in a child after `fork()`, which
/// inherits the handler and must not remove its parent's object.
pub fn exit_on_sigbus(program: &str, object: &str, remove: Remove) -> Result<()> {
    let (path, removed) = match &remove {
        Remove::Nothing => (
            None,
            tr!("this process created nothing, so it leaves nothing"),
        ),
        Remove::ShmObject(name) => (
            Some(PathBuf::from(format!("/dev/shm{name}"))),
            tr!(
                "this process removed the object it created, {name} (unlink of /dev/shm{name})",
                name
            ),
        ),
        Remove::File(path) => (
            Some(path.clone()),
            tr!(
                "this process removed the file it created, {path}",
                path = path.display()
            ),
        ),
    };
    // The line is made now, in the language chosen at start-up: the handler may only
    // write it out.
    let line = format!(
        "{program}: {}\n",
        tr!(
            "the peer shrank the shared object {object} under this process's mapping: an \
             access past its new end raised SIGBUS; hint: another process truncated it \
             (ftruncate) while it was in use; {removed}; start both roles again",
            object,
            removed
        )
    );
    let (unlink, device, inode) = match path {
        None => (std::ptr::null_mut(), 0, 0),
        Some(path) => {
            let st = nix::sys::stat::lstat(&path)
                .map_err(|errno| Error::sys(format!("lstat({:?})", path.display()), errno))?;
            (c_path(&path)?.into_raw(), st.st_dev, st.st_ino)
        }
    };
    // Publish what the handler uses before the handler can run: the new path first (or
    // null), then its identity, then the line. The old values are leaked, not freed: the
    // handler may hold them if a SIGBUS came in between, and a process arms this once or
    // twice at most.
    UNLINK.store(std::ptr::null_mut(), Ordering::SeqCst);
    DEVICE.store(device, Ordering::SeqCst);
    INODE.store(inode, Ordering::SeqCst);
    UNLINK.store(unlink, Ordering::SeqCst);
    let line: &'static mut [u8] = Box::leak(line.into_bytes().into_boxed_slice());
    LINE_LEN.store(0, Ordering::SeqCst);
    LINE.store(line.as_mut_ptr(), Ordering::SeqCst);
    LINE_LEN.store(line.len(), Ordering::SeqCst);
    // SA_RESETHAND: should the handler itself fault, the default action (death by
    // SIGBUS) applies rather than a loop. No SA_RESTART: the handler never returns.
    let action = SigAction::new(
        SigHandler::Handler(on_sigbus),
        SaFlags::SA_RESETHAND,
        SigSet::empty(),
    );
    // SAFETY: `on_sigbus` does only async-signal-safe work (atomic loads, lstat, unlink,
    // write, _exit) on data published above, which is never freed; see signal-safety(7).
    unsafe { sigaction(Signal::SIGBUS, &action) }
        .map_err(|errno| Error::sys("sigaction(SIGBUS, {on_sigbus}, NULL)", errno))?;
    Ok(())
}

fn c_path(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        Error::bad_data(
            format!("sigaction(SIGBUS): the path {}", path.display()),
            "it contains a NUL byte",
        )
    })
}

/// The handler. Async-signal-safe only: atomic loads, `lstat(2)`, `unlink(2)`,
/// `write(2)`, `_exit(2)`.
extern "C" fn on_sigbus(_signal: libc::c_int) {
    let path = UNLINK.load(Ordering::SeqCst);
    if !path.is_null() {
        // SAFETY: an all-zero `struct stat` is a valid value of it (plain integers).
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a non-null UNLINK is a NUL-terminated string leaked by exit_on_sigbus,
        // valid for the rest of the process; `st` is ours to fill. A failure (the peer
        // removed it already) changes nothing about what happens next.
        let same = unsafe { libc::lstat(path, &mut st) } == 0
            && st.st_dev == DEVICE.load(Ordering::SeqCst)
            && st.st_ino == INODE.load(Ordering::SeqCst);
        if same {
            // SAFETY: as above.
            unsafe { libc::unlink(path) };
        }
    }
    let (line, len) = (LINE.load(Ordering::SeqCst), LINE_LEN.load(Ordering::SeqCst));
    let mut done = 0;
    while !line.is_null() && done < len {
        // SAFETY: LINE points at LINE_LEN bytes leaked by exit_on_sigbus (LINE_LEN is set
        // to 0 while LINE changes), valid for the rest of the process.
        let wrote = unsafe { libc::write(libc::STDERR_FILENO, line.add(done).cast(), len - done) };
        if wrote <= 0 {
            break;
        }
        done += wrote as usize;
    }
    // SAFETY: _exit(2) ends the process at once, without running atexit handlers or
    // destructors, which would not be async-signal-safe; it is on signal-safety(7)'s list.
    unsafe { libc::_exit(1) }
}

#[cfg(test)]
mod tests {
    //! The handler is tested for real: a copy of this test binary, started as a separate
    //! process (so the test harness keeps its own dispositions), maps a file, arms the
    //! handler, truncates the file and touches it. The parent checks how it ended.
    use super::*;
    use std::num::NonZeroUsize;
    use std::process::Command;

    /// Set in the copy's environment: the scratch file, and what to remove.
    const CHILD: &str = "IPC_DEMOS_FAULT_CHILD";
    const REMOVE: &str = "IPC_DEMOS_FAULT_REMOVE";

    /// In the copy: map `path` (one page), arm the handler, shrink the file, touch it.
    /// With `replace`, another file takes the path after the handler is armed.
    fn fault_in_a_shrunk_mapping(path: &Path, remove: Remove, replace: bool) {
        use nix::sys::mman::{MapFlags, ProtFlags, mmap};
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .expect("create the scratch file");
        file.set_len(4096).expect("ftruncate to one page");
        let len = NonZeroUsize::new(4096).expect("not zero");
        // SAFETY: a new mapping that aliases nothing; this process ends in the handler.
        let map = unsafe {
            mmap(
                None,
                len,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                &file,
                0,
            )
        }
        .expect("mmap");
        exit_on_sigbus("fault-test", "(the scratch file)", remove).expect("arm");
        if replace {
            let other = path.with_extension("other");
            std::fs::write(&other, b"someone else's").expect("write the other file");
            std::fs::rename(&other, path).expect("rename it over the path");
        }
        assert!(check_size(&file, "the scratch file", 4096).is_ok());
        file.set_len(0).expect("ftruncate to 0");
        let err = check_size(&file, "the scratch file", 4096).expect_err("it shrank");
        eprintln!("check_size: {err}");
        // SAFETY: the address is inside the mapping; the file behind it is gone, so this
        // read raises SIGBUS, which the handler turns into exit 1. That is the test.
        let byte = unsafe { std::ptr::read_volatile(map.as_ptr().cast::<u8>()) };
        eprintln!("read {byte}: no SIGBUS?");
        std::process::exit(3);
    }

    /// Runs this test again in a copy of the binary with `CHILD` set; returns its status,
    /// its standard error, and whether the scratch file is still there.
    fn run_copy(test: &str, remove: &str) -> (Option<i32>, String, bool) {
        let path =
            std::env::temp_dir().join(format!("ipc-demos-fault-{}-{remove}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let out = Command::new(std::env::current_exe().expect("this test binary"))
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env(CHILD, &path)
            .env(REMOVE, remove)
            .output()
            .expect("run the copy");
        let left = path.exists();
        let _ = std::fs::remove_file(&path);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            left,
        )
    }

    fn child_part() -> bool {
        let Some(path) = std::env::var_os(CHILD) else {
            return false;
        };
        let path = PathBuf::from(path);
        let (remove, replace) = match std::env::var(REMOVE).as_deref() {
            Ok("file") => (Remove::File(path.clone()), false),
            Ok("replaced") => (Remove::File(path.clone()), true),
            _ => (Remove::Nothing, false),
        };
        fault_in_a_shrunk_mapping(&path, remove, replace);
        true
    }

    #[test]
    fn a_fault_in_a_shrunk_mapping_is_one_line_exit_1_and_the_file_removed() {
        if child_part() {
            return;
        }
        let (code, stderr, left) = run_copy(
            "fault::tests::a_fault_in_a_shrunk_mapping_is_one_line_exit_1_and_the_file_removed",
            "file",
        );
        assert_eq!(
            code,
            Some(1),
            "not exit 1 (None: killed by the signal):\n{stderr}"
        );
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| l.starts_with("fault-test: "))
            .collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains("the peer shrank the shared object"),
            "{stderr}"
        );
        assert!(lines[0].contains("raised SIGBUS; hint: "), "{stderr}");
        assert!(lines[0].contains("removed the file it created"), "{stderr}");
        assert!(!left, "the handler did not remove the file it was given");
        // The fstat check saw the shrinking before the access did.
        assert!(
            stderr.contains("check_size: fstat(")
                && stderr.contains("shrank the shared object to 0 bytes, under a mapping of 4096"),
            "{stderr}"
        );
    }

    #[test]
    fn a_path_that_now_names_another_file_is_not_removed() {
        if child_part() {
            return;
        }
        let (code, stderr, left) = run_copy(
            "fault::tests::a_path_that_now_names_another_file_is_not_removed",
            "replaced",
        );
        assert_eq!(code, Some(1), "{stderr}");
        assert!(stderr.contains("raised SIGBUS"), "{stderr}");
        assert!(left, "the handler removed a file that replaced its own");
    }

    #[test]
    fn a_process_that_created_nothing_removes_nothing() {
        if child_part() {
            return;
        }
        let (code, stderr, left) = run_copy(
            "fault::tests::a_process_that_created_nothing_removes_nothing",
            "nothing",
        );
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains("created nothing, so it leaves nothing"),
            "{stderr}"
        );
        assert!(left, "the handler removed a file it was not given");
    }
}
