//! What `/proc` says about the processes around an object: who they are, which
//! descriptors they hold, and what they are waiting in (proc(5)).
//!
//! Everything here only reads files under `/proc`. A process can end between two reads,
//! so every function treats a missing file as "gone" and returns what it has, never an
//! error that would stop the view.

use std::path::PathBuf;

use nix::unistd::Uid;

/// The processes of this user, by pid, with their command names (`/proc/PID/comm`),
/// leaving out this process.
pub fn our_processes() -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let uid = Uid::current().as_raw();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<(i32, String)> = dir
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && owner(pid) == Some(uid))
        .filter_map(|pid| Some((pid, comm(pid)?)))
        .collect();
    found.sort_unstable();
    found
}

/// The owner of `/proc/PID` (the process's effective user), if it is still there.
fn owner(pid: i32) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}"))
        .ok()
        .map(|m| m.uid())
}

/// The command name of `pid` (`/proc/PID/comm`, at most 15 bytes).
pub fn comm(pid: i32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    Some(text.trim_end().to_string())
}

/// `pid 4242 (pipe-demo)`, or `pid 4242 (gone)`.
pub fn who(pid: i32) -> String {
    match comm(pid) {
        Some(name) => format!("pid {pid} ({name})"),
        None => common::tr!("pid {pid} (gone)", pid),
    }
}

/// `pid 4242 (shm-demo), waits in futex: ...`: who the process is and what it does now,
/// or `pid 4242 (gone)`.
pub fn who_and_what(pid: i32) -> String {
    match comm(pid) {
        Some(name) => format!("pid {pid} ({name}), {}", activity(pid)),
        None => common::tr!("pid {pid} (gone)", pid),
    }
}

/// The open descriptors of `pid` and what each refers to (`pipe:[1234]`, `socket:[99]`,
/// a path), from the links in `/proc/PID/fd`.
pub fn fds(pid: i32) -> Vec<(i32, String)> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    let mut found: Vec<(i32, String)> = dir
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse::<i32>().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, target.to_string_lossy().into_owned()))
        })
        .collect();
    found.sort_unstable();
    found
}

/// The inode number in a link such as `pipe:[1234]` or `socket:[99]`.
pub fn inode_in(target: &str, kind: &str) -> Option<u64> {
    target
        .strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The access mode a descriptor was opened with, from the `flags:` line (octal) of
/// `/proc/PID/fdinfo/FD`: `O_RDONLY`, `O_WRONLY` or `O_RDWR`.
pub fn access_mode(pid: i32, fd: i32) -> Option<i32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).ok()?;
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|v| i32::from_str_radix(v.trim(), 8).ok())?;
    Some(flags & libc::O_ACCMODE)
}

/// The identity (device, inode) of what a descriptor of `pid` refers to, by `stat(2)` of
/// its link in `/proc/PID/fd`, which describes the object without opening it.
pub fn fd_identity(pid: i32, fd: i32) -> Option<(u64, u64)> {
    let st = nix::sys::stat::stat(&PathBuf::from(format!("/proc/{pid}/fd/{fd}"))).ok()?;
    Some((st.st_dev, st.st_ino))
}

/// What a process is doing now, in a few words: `running`, `waits in read(3)`, `waits
/// for Enter (--step)`, ... From `/proc/PID/syscall` (the system call it is blocked in,
/// readable by the process's owner) or, failing that, the state in `/proc/PID/stat`.
pub fn activity(pid: i32) -> String {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/syscall")) else {
        return state(pid);
    };
    let mut words = text.split_whitespace();
    let Some(first) = words.next() else {
        return state(pid);
    };
    if first == "running" {
        return common::tr!("running");
    }
    let Ok(number) = first.parse::<i64>() else {
        return state(pid);
    };
    // The first argument, in hexadecimal: for read and write, the descriptor.
    let arg0 = words
        .next()
        .and_then(|a| i64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
        .unwrap_or(-1);
    let name = syscall_name(number);
    if matches!(name, "read") && arg0 >= 0 && is_terminal_fd(pid, arg0) {
        return common::tr!("waits for Enter (--step)");
    }
    let call = match name {
        "read" | "write" => format!("{name}({arg0})"),
        "?" => format!("system call {number}"),
        other => other.to_string(),
    };
    match wait_meaning(name) {
        Some(meaning) => common::tr!("waits in {call}: {meaning}", call, meaning),
        None => common::tr!("waits in {call}", call),
    }
}

/// Whether descriptor `fd` of `pid` is a terminal (its link names a tty or pts device).
fn is_terminal_fd(pid: i32, fd: i64) -> bool {
    std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|t| {
            let t = t.to_string_lossy();
            t.starts_with("/dev/pts/") || t.starts_with("/dev/tty")
        })
        .unwrap_or(false)
}

/// What a wait in system call `name` means in the demos.
fn wait_meaning(name: &str) -> Option<String> {
    Some(match name {
        "futex" => common::tr!("a semaphore (sem_wait) or a lock"),
        "clock_nanosleep" | "nanosleep" => common::tr!("sleeping (--rate, or polling)"),
        "msgsnd" => common::tr!("the queue is full"),
        "msgrcv" => common::tr!("no message of the type it wants"),
        "mq_timedsend" => common::tr!("the queue is full"),
        "mq_timedreceive" => common::tr!("the queue is empty"),
        "openat" => common::tr!("a FIFO's other side"),
        "accept" | "accept4" => common::tr!("a client to connect"),
        "rt_sigtimedwait" | "rt_sigsuspend" | "pause" => common::tr!("a signal"),
        "wait4" | "waitid" => common::tr!("a child to end"),
        _ => return None,
    })
}

/// The name of system call `number` for the ones the demos wait in.
fn syscall_name(number: i64) -> &'static str {
    let names: &[(libc::c_long, &str)] = &[
        (libc::SYS_read, "read"),
        (libc::SYS_write, "write"),
        (libc::SYS_openat, "openat"),
        (libc::SYS_futex, "futex"),
        (libc::SYS_clock_nanosleep, "clock_nanosleep"),
        (libc::SYS_nanosleep, "nanosleep"),
        (libc::SYS_msgsnd, "msgsnd"),
        (libc::SYS_msgrcv, "msgrcv"),
        (libc::SYS_mq_timedsend, "mq_timedsend"),
        (libc::SYS_mq_timedreceive, "mq_timedreceive"),
        (libc::SYS_accept, "accept"),
        (libc::SYS_accept4, "accept4"),
        (libc::SYS_connect, "connect"),
        (libc::SYS_recvfrom, "recvfrom"),
        (libc::SYS_sendto, "sendto"),
        (libc::SYS_recvmsg, "recvmsg"),
        (libc::SYS_sendmsg, "sendmsg"),
        (libc::SYS_wait4, "wait4"),
        (libc::SYS_waitid, "waitid"),
        (libc::SYS_rt_sigtimedwait, "rt_sigtimedwait"),
        (libc::SYS_rt_sigsuspend, "rt_sigsuspend"),
        (libc::SYS_ppoll, "ppoll"),
        (libc::SYS_pselect6, "pselect6"),
        (libc::SYS_epoll_pwait, "epoll_pwait"),
        (libc::SYS_semtimedop, "semtimedop"),
        (libc::SYS_flock, "flock"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_pause, "pause"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_poll, "poll"),
        #[cfg(target_arch = "x86_64")]
        (libc::SYS_epoll_wait, "epoll_wait"),
    ];
    names
        .iter()
        // c_long is i64 here, but i32 on 32-bit Linux: the conversion is not useless there.
        .find(|(n, _)| {
            #[allow(clippy::useless_conversion)]
            let n = i64::from(*n);
            n == number
        })
        .map_or("?", |(_, name)| name)
}

/// The state letter of `/proc/PID/stat` in words.
fn state(pid: i32) -> String {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return common::tr!("gone");
    };
    // The command name is in parentheses and may hold spaces: the state follows the last ')'.
    let state = text
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?");
    match state {
        "R" => common::tr!("running"),
        "S" | "D" => common::tr!("waits"),
        "T" | "t" => common::tr!("stopped"),
        "Z" => common::tr!("ended (a zombie, not yet waited for)"),
        other => other.to_string(),
    }
}

/// The signal masks of `/proc/PID/status`: `SigPnd`, `ShdPnd`, `SigBlk`, `SigIgn`,
/// `SigCgt`, each a bit per signal (bit 0 is signal 1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignalMasks {
    /// Pending for the thread (`SigPnd`).
    pub thread_pending: u64,
    /// Pending for the whole process (`ShdPnd`).
    pub shared_pending: u64,
    /// Blocked (`SigBlk`).
    pub blocked: u64,
    /// Ignored (`SigIgn`).
    pub ignored: u64,
    /// Caught by a handler (`SigCgt`).
    pub caught: u64,
}

/// Reads the signal masks of `pid`; `None` if the process is gone.
pub fn signal_masks(pid: i32) -> Option<SignalMasks> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(parse_signal_masks(&text))
}

/// Parses the `Sig*:` and `ShdPnd:` lines of a `/proc/PID/status` text.
pub fn parse_signal_masks(text: &str) -> SignalMasks {
    let mut masks = SignalMasks::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let Ok(bits) = u64::from_str_radix(value.trim(), 16) else {
            continue;
        };
        match key {
            "SigPnd" => masks.thread_pending = bits,
            "ShdPnd" => masks.shared_pending = bits,
            "SigBlk" => masks.blocked = bits,
            "SigIgn" => masks.ignored = bits,
            "SigCgt" => masks.caught = bits,
            _ => {}
        }
    }
    masks
}

/// The names of the signals in `mask`: `SIGINT SIGUSR1 SIGRTMIN+2`, or `-` for none.
pub fn signal_names(mask: u64) -> String {
    let names: Vec<String> = (1..=64)
        .filter(|n| mask & (1u64 << (n - 1)) != 0)
        .map(signal_name)
        .collect();
    if names.is_empty() {
        "-".into()
    } else {
        names.join(" ")
    }
}

/// A signal's name as `kill -l` gives it. The kernel numbers real-time signals from 32;
/// the C library keeps the first two (32 and 33) for itself and starts its SIGRTMIN
/// after them (signal(7), "Real-time signals").
pub fn signal_name(number: i32) -> String {
    if let Ok(standard) = nix::sys::signal::Signal::try_from(number) {
        return standard.as_str().to_string();
    }
    let rtmin = libc::SIGRTMIN();
    match number - rtmin {
        0 => "SIGRTMIN".into(),
        k if k > 0 => format!("SIGRTMIN+{k}"),
        _ => format!("{number}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_masks_are_read_bit_by_bit_and_named() {
        let masks = parse_signal_masks(
            "Name:\tx\nSigQ:\t1/100\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000200\n\
             SigBlk:\t0000000000000200\nSigIgn:\t0000000000001000\nSigCgt:\t0000000000004a02\n",
        );
        assert_eq!(signal_names(masks.shared_pending), "SIGUSR1");
        assert_eq!(signal_names(masks.blocked), "SIGUSR1");
        assert_eq!(signal_names(masks.ignored), "SIGPIPE");
        assert_eq!(signal_names(masks.caught), "SIGINT SIGUSR1 SIGUSR2 SIGTERM");
        assert_eq!(signal_names(0), "-");
        let rtmin = libc::SIGRTMIN();
        assert_eq!(signal_name(rtmin + 2), "SIGRTMIN+2");
    }

    #[test]
    fn inodes_are_found_in_descriptor_links() {
        assert_eq!(inode_in("pipe:[1234]", "pipe"), Some(1234));
        assert_eq!(inode_in("socket:[7]", "pipe"), None);
        assert_eq!(inode_in("/tmp/pipe:[1]", "pipe"), None);
    }

    #[test]
    fn this_process_is_running_or_waiting_and_has_a_name() {
        let me = std::process::id() as i32;
        assert!(comm(me).is_some());
        assert!(!activity(me).is_empty());
        assert!(!our_processes().iter().any(|(pid, _)| *pid == me));
    }
}
