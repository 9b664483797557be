//! `clean`: removes the FIFOs that killed runs left behind, and only those.

use std::path::{Path, PathBuf};

use common::narrate::print_summary;
use common::owner::{Kind, lstat_ours};
use common::process;
use common::{Error, Narrator, Result, say, sys, tr};

use crate::lock_holder;

/// `clean`: removes what killed runs left at each of `paths`: the FIFO at the path and
/// the client FIFOs beside it (`PATH-PID`). Only what the demo makes is removed: a FIFO
/// (`lstat`, so a symbolic link is judged as itself), owned by this user, named `PATH`
/// or `PATH-PID`, that no process is using (no producer or server holds a lock on it,
/// see [`crate::claim`], and the client PID is not running). Everything else is left
/// alone and named, and clean goes on to the next. Ends with an error if it left anything
/// that bears a name the demo makes.
pub fn clean(n: &Narrator, paths: &[PathBuf]) -> Result<()> {
    let (mut removed, mut refused) = (0u64, 0u64);
    for path in paths {
        let others: Vec<&PathBuf> = paths.iter().filter(|p| *p != path).collect();
        let mut candidates = vec![(path.clone(), None)];
        candidates.extend(client_fifos(n, path, &others));
        for (candidate, pid) in candidates {
            match verdict(&candidate, pid) {
                Verdict::Missing => {}
                Verdict::Refuse(why) => {
                    n.essential(tr!("left {path}: {why}", path = candidate.display(), why));
                    refused += 1;
                }
                Verdict::Remove => {
                    // In the private folder (0700), nobody else can swap the file between
                    // the look and the unlink; in a folder shared with others, use the
                    // sticky bit (as /tmp does) so that they cannot rename ours.
                    say!(
                        n,
                        "{path}: a FIFO of yours that no process uses; removing it",
                        path = candidate.display()
                    );
                    sys::unlink(n, &candidate)?;
                    removed += 1;
                }
            }
        }
    }
    if removed + refused == 0 {
        say!(n, "nothing to clean");
    }
    print_summary(format_args!("summary: removed={removed} refused={refused}"))?;
    if refused > 0 {
        return Err(Error::bad_data(
            "clean",
            tr!("left {refused} object(s) that are not its to remove (named above)", refused),
        )
        .hint(tr!("clean removes only FIFOs of yours, named PATH or PATH-PID, that nobody uses; remove the others yourself if they are yours")));
    }
    Ok(())
}

/// What [`clean`] does with one path.
enum Verdict {
    Missing,
    Remove,
    Refuse(String),
}

/// Judges `path`, a FIFO of the demo's name (a client's, if `pid` is given).
fn verdict(path: &Path, pid: Option<i32>) -> Verdict {
    let st = match lstat_ours(path, Kind::Fifo) {
        Ok(None) => return Verdict::Missing,
        Ok(Some(st)) => st,
        Err(e) => return Verdict::Refuse(e.to_string()),
    };
    if let Some(holder) = lock_holder(&st) {
        return Verdict::Refuse(tr!(
            "pid {holder} holds a lock on it (/proc/locks): a producer or server is using it",
            holder
        ));
    }
    if let Some(pid) = pid.filter(|&pid| process::is_alive(pid)) {
        return Verdict::Refuse(tr!(
            "pid {pid} is running: the client whose reply FIFO it is may be waiting on it",
            pid
        ));
    }
    Verdict::Remove
}

/// The entries beside `path` named `NAME-PID`, the client FIFOs a server's clients make,
/// sorted, with their pids. Other entries whose names start with `NAME-` are not the
/// demo's: each is named and left alone (except those that belong to one of `others`,
/// the other paths being cleaned).
fn client_fifos(n: &Narrator, path: &Path, others: &[&PathBuf]) -> Vec<(PathBuf, Option<i32>)> {
    let Some(name) = path.file_name().map(|f| f.to_string_lossy().into_owned()) else {
        return Vec::new();
    };
    let prefix = format!("{name}-");
    let mut siblings: Vec<PathBuf> = path
        .parent()
        .and_then(|dir| std::fs::read_dir(dir).ok())
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(&prefix))
        })
        .collect();
    siblings.sort();
    let mut found = Vec::new();
    for sibling in siblings {
        let other = others.iter().any(|o| {
            let mut o_prefix = o.as_os_str().to_owned();
            o_prefix.push("-");
            sibling == **o
                || sibling
                    .as_os_str()
                    .as_encoded_bytes()
                    .starts_with(o_prefix.as_encoded_bytes())
        });
        if other {
            continue;
        }
        let suffix = sibling
            .file_name()
            .map(|f| f.to_string_lossy()[prefix.len()..].to_string())
            .unwrap_or_default();
        match suffix.parse::<i32>() {
            Ok(pid) if pid > 0 && suffix.bytes().all(|b| b.is_ascii_digit()) => {
                found.push((sibling, Some(pid)));
            }
            _ => n.announce(tr!(
                "left {path}: not a name fifo-demo makes ({name} and {name}-PID)",
                path = sibling.display(),
                name
            )),
        }
    }
    found
}
