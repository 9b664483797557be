//! What the three kinds of System V IPC share (svipc(7)): the key two processes agree on,
//! `ftok(3)` that makes one from a path, and how a `*get` call (`msgget`, `shmget`,
//! `semget`) finds its object. msgq-demo's queues and shm-demo's segments and semaphore
//! sets both use these; each demo keeps the calls of its own kind.

use std::ffi::CString;
use std::path::Path;

use nix::errno::Errno;

use crate::error::Result;
use crate::narrate::{Narrator, Shown};

/// A System V key: the number two processes agree on to find one queue, segment or set.
pub type Key = libc::key_t;

/// A key as `ipcs` shows it: `0x53020f3a`.
pub fn key_shown(key: Key) -> String {
    format!("{:#010x}", key as u32)
}

/// A key returned by `ftok`, shown in hex.
struct KeyResult(Key);

impl Shown for KeyResult {
    fn shown(&self) -> String {
        key_shown(self.0)
    }
}

/// `ftok(3)`: a key made from a file's identity (device and inode) and a project number,
/// so that programs that agree on a path and a letter agree on a key.
pub fn ftok(n: &Narrator, path: &Path, project: u8) -> Result<Key> {
    n.call(
        format_args!("ftok({:?}, '{}')", path.display(), project as char),
        || {
            let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
            // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
            let key = unsafe { libc::ftok(c.as_ptr(), libc::c_int::from(project)) };
            if key == -1 {
                Err(Errno::last())
            } else {
                Ok(KeyResult(key))
            }
        },
    )
    .map(|key| key.0)
}

/// How a `*get` call finds its object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Get {
    /// `0`: the object that exists for the key.
    Existing,
    /// `IPC_CREAT | IPC_EXCL | mode`: a new object, or EEXIST if the key has one.
    New {
        /// Its permission bits.
        mode: u32,
    },
}

impl Get {
    /// The flags as the call shows them, and as it takes them.
    pub fn flags(self) -> (String, libc::c_int) {
        match self {
            Get::Existing => ("0".to_string(), 0),
            Get::New { mode } => (
                format!("IPC_CREAT|IPC_EXCL|{:04o}", mode & 0o777),
                libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as libc::c_int,
            ),
        }
    }
}
