//! The narrated calls of mmap-demo's lessons that no other demo makes, one function per
//! call, named as in the manual. The mapping calls themselves (`mmap`, `msync`,
//! `madvise`, `mincore`, `munmap`) are in `common::mapping`, the file calls (`open`,
//! `ftruncate`, `pread`) in `common::sys`. See also: getrusage(2), setrlimit(2).

use common::narrate::Shown;
use common::{Narrator, Result};
use nix::sys::resource::{self, Resource, Usage, UsageWho};

/// What `getrusage` filled in; the call itself returns 0.
struct Filled(Usage);

impl Shown for Filled {
    fn shown(&self) -> String {
        "0".into()
    }
}

/// `getrusage(RUSAGE_SELF, &usage)`: what this process has used so far, page faults
/// among it.
pub fn getrusage(n: &Narrator) -> Result<Usage> {
    n.call("getrusage(RUSAGE_SELF, &usage)", || {
        resource::getrusage(UsageWho::RUSAGE_SELF).map(Filled)
    })
    .map(|filled| filled.0)
}

/// `setrlimit(RLIMIT_CORE, {0, 0})`: no core file when this process dies of a signal.
pub fn no_core_file(n: &Narrator) -> Result<()> {
    n.call("setrlimit(RLIMIT_CORE, {rlim_cur=0, rlim_max=0})", || {
        resource::setrlimit(Resource::RLIMIT_CORE, 0, 0)
    })
}
