//! The one error type of ipc-demos: TLPI's `errExit`, in Rust.
//!
//! An [`Error`] says which call failed and on what (`write(4, buf, 80)`), the errno's
//! symbolic name and text (`EPIPE (Broken pipe)`), and, where a student would be stuck,
//! a hint (`the reader has exited`). It is printed once, on one line, by
//! [`crate::exit::main_with`], which also turns it into the exit code.
//!
//! This module is not about *which* calls can fail: each demo decides that and attaches
//! its own hints. It only carries the facts to the place where they are printed.

use std::fmt;

use nix::errno::Errno;

/// The result type of every fallible function in the demos.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the words of the system call that reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The call as a man page would write it, with its arguments: `pipe()`, `read(3, buf, 16)`.
    call: String,
    /// What the kernel said, if it was a system call that failed.
    errno: Option<Errno>,
    /// What we found wrong, if it was not the kernel that refused (bad data from the peer).
    problem: Option<String>,
    /// What a student should try next.
    hint: Option<String>,
    kind: Kind,
}

/// How the program should end because of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An operation failed: exit code 1.
    Failed,
    /// The command line asked for something impossible: exit code 2 (as clap's own errors).
    Usage,
    /// The user pressed Ctrl-C (SIGINT) or sent SIGTERM: exit code 130, after cleanup.
    Interrupted,
}

impl Error {
    /// A system call failed with `errno`. `call` names it with its arguments.
    pub fn sys(call: impl Into<String>, errno: Errno) -> Error {
        let kind = if errno == Errno::EINTR {
            Kind::Interrupted
        } else {
            Kind::Failed
        };
        Error {
            call: call.into(),
            errno: Some(errno),
            problem: None,
            hint: None,
            kind,
        }
    }

    /// Something other than the kernel was wrong: usually data from the other process
    /// (a length over the limit, a bad magic number). `call` names what we were doing.
    pub fn bad_data(call: impl Into<String>, problem: impl Into<String>) -> Error {
        Error {
            call: call.into(),
            errno: None,
            problem: Some(problem.into()),
            hint: None,
            kind: Kind::Failed,
        }
    }

    /// The process was asked to stop by a signal (`SIGINT` for Ctrl-C, `SIGTERM`): exit
    /// code 130 once the caller has cleaned up.
    pub fn interrupted(signal: &str) -> Error {
        Error {
            call: String::new(),
            errno: None,
            problem: Some(crate::tr!("interrupted by {signal}", signal)),
            hint: None,
            kind: Kind::Interrupted,
        }
    }

    /// The command line cannot work (exit code 2), for checks clap cannot express.
    pub fn usage(problem: impl Into<String>) -> Error {
        Error {
            call: "command line".into(),
            errno: None,
            problem: Some(problem.into()),
            hint: None,
            kind: Kind::Usage,
        }
    }

    /// Attaches a hint for the student, replacing any earlier one.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// The errno, if a system call failed.
    pub fn errno(&self) -> Option<Errno> {
        self.errno
    }

    /// How the program should end.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The process exit code for this error: 1, 2 or 130 (see [`crate::exit`]).
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::Failed => 1,
            Kind::Usage => 2,
            Kind::Interrupted => 130,
        }
    }
}

impl fmt::Display for Error {
    /// One line: `write(4, buf, 80) failed: EPIPE (Broken pipe); hint: ...`. The words
    /// "failed" and "hint" follow the chosen language (`write(4, buf, 80) 실패: EPIPE
    /// (Broken pipe); 힌트: ...`); the call, the errno's name and its C-library text do not.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.call.is_empty() {
            // Not a failed call: a signal asked us to stop.
            return match &self.problem {
                Some(problem) => write!(f, "{problem}"),
                None => write!(f, "{}", crate::tr!("interrupted")),
            };
        }
        write!(f, "{}", crate::tr!("{call} failed", call = self.call))?;
        if let Some(errno) = self.errno {
            write!(f, ": {}", errno_name(errno))?;
        }
        if let Some(problem) = &self.problem {
            write!(f, ": {problem}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "; {}", crate::tr!("hint: {hint}", hint))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// `EPIPE (Broken pipe)`: the symbolic name and the C library's text, as `strace` and
/// `perror(3)` print them.
pub fn errno_name(errno: Errno) -> String {
    let code = errno as i32;
    // std's io::Error prints strerror_r(3)'s text followed by " (os error N)".
    let text = std::io::Error::from_raw_os_error(code).to_string();
    let suffix = format!(" (os error {code})");
    let text = text.strip_suffix(&suffix).unwrap_or(&text);
    format!("{errno:?} ({text})")
}

/// Adds the call's name to a `nix::Result`, so that `?` yields an [`Error`]:
/// `unistd::close(fd).context("close(4)")?`.
pub trait Context<T> {
    /// Names the call that produced this result.
    fn context(self, call: impl Into<String>) -> Result<T>;
}

impl<T> Context<T> for nix::Result<T> {
    fn context(self, call: impl Into<String>) -> Result<T> {
        self.map_err(|errno| Error::sys(call, errno))
    }
}

impl<T> Context<T> for std::io::Result<T> {
    fn context(self, call: impl Into<String>) -> Result<T> {
        self.map_err(|e| match e.raw_os_error() {
            Some(code) => Error::sys(call, Errno::from_raw(code)),
            None => Error::bad_data(call, e.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_call_error_names_the_call_the_errno_and_its_text() {
        let e = Error::sys("write(4, buf, 80)", Errno::EPIPE).hint("the reader has exited");
        assert_eq!(
            e.to_string(),
            "write(4, buf, 80) failed: EPIPE (Broken pipe); hint: the reader has exited"
        );
        assert_eq!(e.exit_code(), 1);
        assert_eq!(e.errno(), Some(Errno::EPIPE));
    }

    #[test]
    fn bad_data_has_no_errno_and_says_what_was_wrong() {
        let e = Error::bad_data("decode frame", "length 99 is over the limit 10");
        assert_eq!(
            e.to_string(),
            "decode frame failed: length 99 is over the limit 10"
        );
        assert_eq!(e.errno(), None);
    }

    #[test]
    fn exit_codes_follow_the_design() {
        assert_eq!(Error::usage("x").exit_code(), 2);
        assert_eq!(Error::sys("read(3, buf, 1)", Errno::EINTR).exit_code(), 130);
        assert_eq!(Error::sys("read(3, buf, 1)", Errno::EIO).exit_code(), 1);
        assert_eq!(Error::interrupted("SIGINT").exit_code(), 130);
        assert_eq!(
            Error::interrupted("SIGINT").to_string(),
            "interrupted by SIGINT"
        );
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let io = std::io::Error::from_raw_os_error(libc::ENOENT);
        let e = Err::<(), _>(io).context("open(\"/nope\")").unwrap_err();
        assert_eq!(e.errno(), Some(Errno::ENOENT));
    }
}
