//! bench: every IPC mechanism of the demos, measured side by side on this machine.
//!
//! Notes 001 and 004 claim that shared memory is the fastest model and that message
//! passing pays a system call and a copy per message; note 000 ends with a table that
//! compares the mechanisms. This program puts numbers in that table: round-trip latency
//! and streaming throughput at 64 B, 4 KiB, 64 KiB and 1 MiB, each next to the floor the
//! hardware and the kernel set (a cache-line round trip, a futex wake-up, memcpy).
//!
//! ```text
//! cargo run --release -p bench                 # the full run, a minute or two
//! cargo run --release -p bench -- --quick      # a few seconds
//! cargo run --release -p bench -- --json out.json --runs 5
//! ```
//!
//! Speed depends on the machine and on what else it does: compare the ratios of one run,
//! not numbers from different machines.

mod measure;
mod mechanisms;
mod report;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use common::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::measure::{Amount, Placement, floors};
use crate::mechanisms::{ALL, Spec};
use crate::report::{Floors, Machine, Report, Row};

/// Where the report goes: standard output, which a reader may close before the end.
struct Out {
    /// The reader has gone: the rest is not printed.
    closed: bool,
}

impl Out {
    /// Prints one piece of the report. A reader that stops early, as `bench | head -1`
    /// does, closes the pipe, and the write fails with EPIPE (Rust ignores SIGPIPE, which
    /// would otherwise end the process). That is the reader's choice, not a failure: as
    /// ripgrep does, the bench stops printing and ends with exit code 0, after writing
    /// the files it was asked for (charts, JSON), which took minutes to measure. Any other
    /// write error is one (exit code 1).
    fn line(&mut self, text: impl std::fmt::Display) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(e) => Err(Error::sys(
                "write(1, report)",
                nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            )),
        }
    }
}

/// Measures every IPC mechanism of the demos, side by side: round-trip latency and
/// streaming throughput, next to the hardware's floors.
#[derive(Parser, Debug)]
#[command(
    name = "bench",
    version,
    after_help = "Example:\n  cargo run --release -p bench\n  cargo run --release -p bench -- --quick --json target/bench/quick.json"
)]
struct Cli {
    /// A run of a few seconds: few repetitions, one run.
    #[arg(long)]
    quick: bool,
    /// Repeat each measurement this many times and report the median and the range.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=20))]
    runs: Option<u32>,
    /// Also write every number to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Put both processes on the same CPU (the spinning mechanisms are then skipped).
    #[arg(long)]
    same_cpu: bool,
    /// Measure only these mechanisms (comma-separated names, as in the report).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Where to write the two SVG charts (default: target/bench/).
    #[arg(long)]
    charts: Option<PathBuf>,
    #[command(flatten)]
    lang: common::i18n::LangArgs,
}

/// The payload sizes of every test.
pub const SIZES: [usize; 4] = [64, 4 << 10, 64 << 10, 1 << 20];

fn main() -> ExitCode {
    common::exit::main_with("bench", run)
}

fn run() -> Result<()> {
    let cli = common::i18n::parse::<Cli>();
    let specs: Vec<&Spec> = ALL
        .iter()
        .filter(|s| cli.only.is_empty() || cli.only.iter().any(|o| o == s.name))
        .collect();
    if specs.is_empty() {
        let names: Vec<&str> = ALL.iter().map(|s| s.name).collect();
        return Err(Error::usage(common::tr!(
            "--only {only} names no mechanism; they are {names}",
            only = format!("{:?}", cli.only),
            names = names.join(", ")
        )));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let placement = if cli.same_cpu || cpus < 2 {
        Placement {
            parent: 0,
            child: 0,
        }
    } else {
        Placement {
            parent: 0,
            child: 1,
        }
    };
    let same_cpu = placement.parent == placement.child;
    let runs = cli.runs.unwrap_or(if cli.quick { 1 } else { 3 });
    let machine = Machine::here(placement, runs);
    // Not eprintln!, which panics when standard error is a closed pipe.
    let _ = writeln!(std::io::stderr(), "{}", machine.header());

    let total = (specs.len() * SIZES.len() * 2) as u64 * u64::from(runs) + 4;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    bar.set_message(common::tr!("floors"));
    let rounds = if cli.quick { 2_000 } else { 200_000 };
    let floors = Floors {
        timer_ns: measure::timer_cost(),
        null_syscall_ns: floors::null_syscall(if cli.quick { 100_000 } else { 2_000_000 }),
        cache_line_ns: if same_cpu {
            None
        } else {
            Some(floors::cache_line(placement, rounds)?)
        },
        futex_ns: floors::futex_round_trip(placement, if cli.quick { 200 } else { 5_000 })?,
        memcpy: SIZES
            .iter()
            .chain(&[64 << 20])
            .map(|&size| {
                (
                    size,
                    floors::memcpy(size, if cli.quick { 64 << 20 } else { 1 << 30 }),
                )
            })
            .collect(),
    };
    bar.inc(4);

    let mut rows = Vec::new();
    for spec in &specs {
        for (test, shown) in [
            ("latency", common::tr!("latency")),
            ("throughput", common::tr!("throughput")),
        ] {
            for &size in &SIZES {
                bar.set_message(format!(
                    "{} {shown} {}",
                    spec.name,
                    common::units::bytes(size)
                ));
                rows.push(measure_one(
                    spec, test, size, cli.quick, runs, placement, &floors,
                )?);
                bar.inc(u64::from(runs));
            }
        }
    }
    bar.finish_and_clear();

    let report = Report {
        machine,
        floors,
        rows,
    };
    let mut out = Out { closed: false };
    out.line(report.table())?;
    out.line(report.targets())?;
    let dir = cli.charts.clone().unwrap_or_else(report::output_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::bad_data(format!("mkdir {}", dir.display()), e.to_string()))?;
    for (name, svg) in [
        ("latency.svg", report.chart("latency")),
        ("throughput.svg", report.chart("throughput")),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, svg)
            .map_err(|e| Error::bad_data(format!("write {}", path.display()), e.to_string()))?;
        out.line(common::tr!("chart: {path}", path = path.display()))?;
    }
    if let Some(path) = cli.json {
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::bad_data("JSON", e.to_string()))?;
        std::fs::write(&path, json)
            .map_err(|e| Error::bad_data(format!("write {}", path.display()), e.to_string()))?;
        out.line(common::tr!("json: {path}", path = path.display()))?;
    }
    Ok(())
}

/// Measures one mechanism, test and size `runs` times, or says why it cannot.
fn measure_one(
    spec: &Spec,
    test: &str,
    size: usize,
    quick: bool,
    runs: u32,
    placement: Placement,
    floors: &Floors,
) -> Result<Row> {
    let mut row = Row::new(spec, test, size);
    if spec.spins && placement.parent == placement.child {
        row.status = "skipped (same CPU: spinning would only wait for the scheduler)".into();
        return Ok(row);
    }
    if !spec.carries_data {
        // A signal carries no payload: its round trip is measured once, as "64 B".
        if test == "throughput" || size != SIZES[0] {
            row.status = "n/a (no payload)".into();
            return Ok(row);
        }
    } else if mechanisms::limit(spec).is_some_and(|limit| size + common::message::OVERHEAD > limit)
    {
        row.status = "n/a (limit)".into();
        return Ok(row);
    }
    let scale = if quick { 40 } else { 1 };
    if test == "latency" {
        let count = match size {
            64 | 4096 => 6_000,
            65_536 => 2_000,
            _ => 400,
        } / scale;
        // Warm up for at least two laps of a 16-slot ring, so that every page the
        // mechanism uses is mapped before the clock starts.
        let amount = Amount {
            count: count.max(10),
            warmup: (count / 10).max(32),
        };
        let mut all = (0..runs)
            .map(|_| measure::latency(spec, size, amount, placement))
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(|a, b| a.p50.total_cmp(&b.p50));
        row.latency = Some(all[all.len() / 2]);
        row.range = Some((all[0].p50, all[all.len() - 1].p50));
        let floor = match spec.floor {
            mechanisms::Floor::Futex => Some(floors.futex_ns),
            mechanisms::Floor::CacheLine => floors.cache_line_ns,
        };
        row.ratio = floor.map(|f| all[all.len() / 2].p50 / f);
    } else {
        let count = ((32usize << 20) / size).clamp(100, 200_000) as u64 / scale;
        let amount = Amount {
            count: count.max(10),
            warmup: (count / 10).max(32),
        };
        let mut all = (0..runs)
            .map(|_| measure::throughput(spec, size, amount, placement))
            .collect::<Result<Vec<_>>>()?;
        all.sort_by(f64::total_cmp);
        row.bytes_per_s = Some(all[all.len() / 2]);
        row.range = Some((all[0], all[all.len() - 1]));
        row.ratio = floors.memcpy_at(size).map(|m| all[all.len() / 2] / m);
    }
    row.status = "ok".into();
    Ok(row)
}

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
