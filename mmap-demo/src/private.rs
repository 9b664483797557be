//! MAP_PRIVATE: copy-on-write. The mapping starts as a view of the file, and the first
//! store to a page gives the writer its own copy of it, which nobody else sees.

use std::os::fd::OwnedFd;
use std::path::Path;

use common::mapping::{Mapping, Prot, Share};
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::{Error, Narrator, Result, cleanup, say, sys, tr};
use nix::fcntl::OFlag;

use crate::shared::create_file;

const ORIGINAL: &[u8; 16] = b"original content";
const CHANGED: &[u8; 16] = b"PRIVATE CHANGES!";

/// Bytes as the lesson shows them: `"original content"`.
fn shown(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

// ANCHOR: private
/// MAP_PRIVATE: the writer gets its own copy of each page it writes to (copy-on-write).
/// A child maps the same file MAP_SHARED, read-only, and checks, after the writer has
/// written, that neither its view nor the file changed.
pub fn private(n: &Narrator, path: &Path) -> Result<()> {
    let (fd, _remove) = create_file(n, path, OFlag::O_RDWR)?;
    sys::write(n, &fd, ORIGINAL)?;
    let (go_read, go_write) = sys::pipe(n)?;
    say!(
        n,
        "the pipe is how the writer tells the other process: look now"
    );
    match process::fork(n, "other")? {
        Fork::Child(me) => {
            let result = sys::close(&me, go_write).and_then(|()| look(&me, &fd, go_read));
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            // After the fork, so that only this process has the handler: Ctrl-C removes
            // the file, and the child goes with its parent (PR_SET_PDEATHSIG).
            cleanup::exit_on_interrupt(n)?;
            sys::close(n, go_read)?;
            let mine = Mapping::map(n, &fd, ORIGINAL.len(), Prot::ReadWrite, Share::Private)?;
            mine.copy_in(n, 0, CHANGED)?;
            let mut view = [0u8; 16];
            mine.read(0, &mut view)?;
            say!(
                n,
                "wrote into my MAP_PRIVATE mapping; my view: {view}",
                view = shown(&view)
            );
            sys::write(n, &go_write, b"g")?;
            process::wait_for(n, child, "other")?;
            let mut on_disk = [0u8; 16];
            let got = sys::pread(n, &fd, &mut on_disk, 0)?;
            say!(
                n,
                "pread() of the file: {disk}",
                disk = shown(&on_disk[..got])
            );
            let (mine_changed, file_unchanged) = (view == *CHANGED, on_disk[..got] == ORIGINAL[..]);
            print_summary(format_args!(
                "summary: private_view={} file={} other_process=unchanged",
                if mine_changed { "changed" } else { "unchanged" },
                if file_unchanged {
                    "unchanged"
                } else {
                    "changed"
                }
            ))?;
            if !(mine_changed && file_unchanged) {
                return Err(Error::bad_data(
                    "MAP_PRIVATE",
                    tr!("copy-on-write did not behave as mmap(2) says"),
                ));
            }
            Ok(())
        }
    }
}

/// The other process: maps the file MAP_SHARED and read-only (it only looks), waits for
/// the writer's word on the pipe, and checks that its view did not change.
fn look(me: &Narrator, fd: &OwnedFd, go: OwnedFd) -> Result<()> {
    let map = Mapping::map(me, fd, ORIGINAL.len(), Prot::Read, Share::Shared)?;
    if sys::read(me, &go, &mut [0])? == 0 {
        return Err(Error::bad_data(
            tr!("wait for the writer"),
            tr!("it exited first"),
        ));
    }
    let mut seen = [0u8; 16];
    map.read(0, &mut seen)?;
    say!(me, "my MAP_SHARED view: {view}", view = shown(&seen));
    if seen == *ORIGINAL {
        Ok(())
    } else {
        Err(Error::bad_data(tr!("my view"), tr!("it changed")))
    }
}
// ANCHOR_END: private
