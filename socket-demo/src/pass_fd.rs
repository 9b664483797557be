//! `pass-fd`: an open file descriptor sent to another process over a Unix socket
//! (SCM_RIGHTS), and the kernel's word on who is at the other end (SO_PEERCRED).

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use common::cleanup;
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::stream::FdStream;
use common::{Error, Narrator, Result, say, sys, tr};
use nix::fcntl::OFlag;
use nix::sys::socket::SockType;
use nix::sys::stat::Mode;
use nix::unistd;

/// The text of the file `pass-fd` hands over.
const SECRET: &str = "this file was opened by the sender; its name is gone\n";

// ANCHOR: pass_fd
/// The sender opens a file, removes its name, and sends the open descriptor over a Unix
/// socket with SCM_RIGHTS; the receiver reads the file it never opened, and asks the
/// kernel who is at the other end of the socket (SO_PEERCRED).
pub fn pass_fd(n: &Narrator, dir: &Path) -> Result<()> {
    let (near, far) = sys::socketpair(n, SockType::Stream)?;
    match process::fork(n, "receiver")? {
        Fork::Child(me) => {
            let result = sys::close(&me, near).and_then(|()| receive_fd(&me, &far));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            sys::close(n, far)?;
            let path = dir.join(format!("pass-fd-{}", unistd::getpid()));
            let file = write_secret(n, &path)?;
            sys::unlink(n, &path)?;
            say!(n, "the file has no name now; only my descriptor keeps it");
            sys::sendmsg_fds(n, &near, b"f", &[file.as_raw_fd()])?;
            say!(
                n,
                "sent: one byte, and beside it my descriptor {fd} (SCM_RIGHTS)",
                fd = file.as_raw_fd()
            );
            sys::close(n, file)?;
            process::wait_for(n, child, "receiver")?;
            print_summary(format_args!(
                "summary: passed_fd=yes read_by_receiver=yes peer_pid={}",
                unistd::getpid()
            ))
        }
    }
}

/// Creates the file `pass-fd` hands over, writes [`SECRET`] into it, and opens it again
/// for reading. O_EXCL|O_NOFOLLOW: the demo writes only into a file it has just created
/// itself, never into whatever (or wherever a symbolic link) already was at the path.
fn write_secret(n: &Narrator, path: &Path) -> Result<OwnedFd> {
    let create =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let created = sys::open(n, path, create, Mode::S_IRUSR | Mode::S_IWUSR)?;
    // Removed on any early return; the lesson unlinks it itself once it is open.
    let guard = cleanup::unlink_on_drop(n, path);
    let mut out = FdStream::new(created, n);
    out.write_all(SECRET.as_bytes())?;
    sys::close(n, out.into_inner())?;
    let file = sys::open(
        n,
        path,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    guard.disarm();
    Ok(file)
}

// ANCHOR_END: pass_fd

// ANCHOR: scm_rights
/// The receiver: who sent it (SO_PEERCRED), the descriptor (SCM_RIGHTS), and the file.
fn receive_fd(me: &Narrator, far: &OwnedFd) -> Result<()> {
    let peer = sys::getsockopt_peercred(me, far)?;
    say!(
        me,
        "the kernel says pid {pid} (uid {uid}) is at the other end; it cannot pretend otherwise",
        pid = peer.pid(),
        uid = peer.uid()
    );
    let received = sys::recvmsg_fds(me, far, &mut [0u8; 1])?;
    let Some(file) = received.fds.into_iter().next() else {
        return Err(Error::bad_data(
            "recvmsg",
            tr!("no descriptor came with the message"),
        ));
    };
    say!(
        me,
        "a new descriptor, {fd}, to the sender's open file: a file I never opened",
        fd = file.as_raw_fd()
    );
    let mut content = Vec::new();
    FdStream::new(file, me).read_to_end(&mut content)?;
    say!(
        me,
        "read it: {content}",
        content = String::from_utf8_lossy(&content).trim_end()
    );
    if content != SECRET.as_bytes() {
        return Err(Error::bad_data(
            tr!("read the passed file"),
            tr!("its content is not what the sender wrote"),
        ));
    }
    Ok(())
}
// ANCHOR_END: scm_rights
