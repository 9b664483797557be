//! Timing: a stopwatch, rates a person can read, and percentiles for the bench.
//!
//! The demos print how long a run took and what rate that is, as information for the
//! reader; no test ever asserts a speed (the bench compares mechanisms in one run).

use std::time::{Duration, Instant};

/// Time since it was started.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    /// Starts now.
    pub fn start() -> Stopwatch {
        Stopwatch(Instant::now())
    }

    /// Time since [`Stopwatch::start`].
    pub fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
}

/// `1.23 M msg/s, 78.9 MB/s` for `count` messages of `bytes` bytes in all over `time`
/// (MB is 10^6 bytes, as in `dd`'s report).
pub fn rate(count: u64, bytes: u64, time: Duration) -> String {
    let secs = time.as_secs_f64();
    if secs <= 0.0 {
        return "too fast to measure".into();
    }
    let per_sec = count as f64 / secs;
    let messages = if per_sec >= 1e6 {
        format!("{:.2} M", per_sec / 1e6)
    } else if per_sec >= 1e3 {
        format!("{:.2} k", per_sec / 1e3)
    } else {
        format!("{per_sec:.0}")
    };
    format!("{messages} msg/s, {:.1} MB/s", bytes as f64 / secs / 1e6)
}

/// The absolute CLOCK_REALTIME time `timeout` from now, the form `sem_timedwait(3)`,
/// `mq_timedsend(3)` and friends take their time limits in.
pub fn realtime_deadline(timeout: Duration) -> nix::Result<libc::timespec> {
    // SAFETY: timespec is plain data, for which all zero bytes are a valid value.
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `now` is valid for clock_gettime to write.
    nix::errno::Errno::result(unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) })?;
    let nanos = now.tv_nsec + timeout.subsec_nanos() as libc::c_long;
    let seconds = libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX / 2);
    Ok(libc::timespec {
        tv_sec: now.tv_sec.saturating_add(seconds) + nanos / 1_000_000_000,
        tv_nsec: nanos % 1_000_000_000,
    })
}

/// The `p`-th percentile (0 to 100) of `samples` by the nearest-rank method; sorts
/// `samples`. `None` for no samples.
pub fn percentile(samples: &mut [Duration], p: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    Some(samples[rank.clamp(1, samples.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_use_si_prefixes() {
        assert_eq!(
            rate(2_000_000, 128_000_000, Duration::from_secs(2)),
            "1.00 M msg/s, 64.0 MB/s"
        );
        assert_eq!(
            rate(1500, 1_500_000, Duration::from_secs(1)),
            "1.50 k msg/s, 1.5 MB/s"
        );
        assert_eq!(rate(10, 500, Duration::from_secs(1)), "10 msg/s, 0.0 MB/s");
        assert_eq!(rate(1, 1, Duration::ZERO), "too fast to measure");
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_micros).collect();
        assert_eq!(percentile(&mut v, 50.0), Some(Duration::from_micros(50)));
        assert_eq!(percentile(&mut v, 99.0), Some(Duration::from_micros(99)));
        assert_eq!(percentile(&mut v, 100.0), Some(Duration::from_micros(100)));
        assert_eq!(percentile(&mut v, 0.0), Some(Duration::from_micros(1)));
        assert_eq!(percentile(&mut [], 50.0), None);
    }

    #[test]
    fn a_deadline_is_in_the_future_and_normalised() {
        let d = realtime_deadline(Duration::from_millis(1500)).unwrap();
        let now = realtime_deadline(Duration::ZERO).unwrap();
        assert!((0..1_000_000_000).contains(&d.tv_nsec));
        let ahead = (d.tv_sec - now.tv_sec) as f64 + (d.tv_nsec - now.tv_nsec) as f64 / 1e9;
        assert!((1.4..1.6).contains(&ahead), "{ahead}");
    }

    #[test]
    fn a_stopwatch_moves_forward() {
        let w = Stopwatch::start();
        let a = w.elapsed();
        assert!(w.elapsed() >= a);
    }
}
