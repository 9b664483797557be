//! Note 000 says a mapped file's size cannot change while it is mapped. The kernel does
//! allow `ftruncate`; what it does not allow is touching the part of the mapping the
//! file no longer covers.

use common::mapping::{self, Mapping, Prot, Share};
use common::narrate::print_summary;
use common::process::{self, Fork};
use common::{Error, Narrator, Result, cleanup, say, sys, tr};
use nix::fcntl::OFlag;
use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;

use crate::shared::create_file;

// ANCHOR: resize
/// Maps a two-page file, truncates it to one page while mapped, and lets a child touch
/// the second page: the kernel sends it SIGBUS. The parent reports how the child ended.
pub fn resize(n: &Narrator, path: &std::path::Path) -> Result<()> {
    let (fd, _remove) = create_file(n, path, OFlag::O_RDWR)?;
    let page = mapping::page_size();
    sys::ftruncate(n, &fd, 2 * page as u64)?;
    let map = Mapping::map(n, &fd, 2 * page, Prot::ReadWrite, Share::Shared)?;
    say!(n, "now shrink the file to one page, under the mapping:");
    sys::ftruncate(n, &fd, page as u64)?;
    say!(
        n,
        "the kernel allowed it: the mapping still covers two pages, but the file has one"
    );
    match process::fork(n, "toucher")? {
        Fork::Child(me) => {
            // No core file: this child is meant to die, and a core dump of it would be
            // a file left behind.
            let result = crate::sys::no_core_file(&me).and_then(|()| {
                say!(
                    me,
                    "reading the byte at offset {page}, in the second page ...",
                    page
                );
                let mut byte = [0u8; 1];
                // Inside the mapping, so the bounds check passes; past the end of the
                // file, so the kernel raises SIGBUS, which ends this child. The lesson.
                map.read(page, &mut byte)?;
                say!(me, "read {byte}: no SIGBUS?", byte = byte[0]);
                Ok(())
            });
            process::exit_child(&me, result)
        }
        Fork::Parent { child } => {
            match cleanup::exit_on_interrupt(n).and_then(|()| sys::waitpid(n, child))? {
                WaitStatus::Signaled(_, Signal::SIGBUS, _) => {
                    say!(
                        n,
                        "SIGBUS: the page past the end of the file has nothing behind it"
                    );
                    print_summary("summary: truncate=allowed access_beyond_end=SIGBUS")
                }
                other => Err(Error::bad_data(
                    tr!("the toucher"),
                    tr!(
                        "it ended with {status}, not SIGBUS",
                        status = format!("{other:?}")
                    ),
                )),
            }
        }
    }
}
// ANCHOR_END: resize
