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
mod reference;
mod report;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use common::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};

use crate::measure::{Placement, floors};
use crate::mechanisms::{ALL, Spec};
use crate::reference::REFERENCES;
use crate::report::{Machine, OtherPlacement, Report};

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
        .chain(REFERENCES)
        .filter(|s| cli.only.is_empty() || cli.only.iter().any(|o| o == s.name))
        .collect();
    if specs.is_empty() {
        let names: Vec<&str> = ALL.iter().chain(REFERENCES).map(|s| s.name).collect();
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

    let total = (specs.len() * SIZES.len() * 2) as u64 * u64::from(runs) + 10;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    bar.set_message(common::tr!("floors"));
    let floors = floors::all(placement, cli.quick, runs)?;
    bar.inc(4);

    // Every cell's runs, interleaved: run 1 of every cell, then run 2, ... (see
    // measure::Cell), so that a ratio of two cells compares runs taken side by side.
    let mut cells = Vec::new();
    for spec in &specs {
        for test in ["latency", "throughput"] {
            for &size in &SIZES {
                cells.push(measure::Cell::plan(spec, test, size, cli.quick, placement));
            }
        }
    }
    for _ in 0..runs {
        for cell in &mut cells {
            let shown = match cell.row.test.as_str() {
                "latency" => common::tr!("latency"),
                _ => common::tr!("throughput"),
            };
            bar.set_message(format!(
                "{} {shown} {}",
                cell.row.spec.name,
                report::size_label(cell.row.size)
            ));
            cell.run(placement)?;
            bar.inc(1);
        }
    }
    let (mut rows, mut reference) = (Vec::new(), Vec::new());
    for cell in cells {
        let row = cell.finish();
        if reference::is_reference(&row.spec) {
            reference.push(row);
        } else {
            rows.push(row);
        }
    }
    let encode_ns = if specs.iter().any(|s| s.name == reference::WORK) {
        SIZES
            .iter()
            .map(|&size| {
                Ok((
                    size,
                    reference::encode_ns(size, if cli.quick { 50 } else { 2_000 })?,
                ))
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    bar.inc(1);
    // The goal for small messages names both placements: streaming at 64 B through the
    // semaphore ring and through a pipe is measured the other way too.
    let other = if same_cpu {
        Placement {
            parent: 0,
            child: 1,
        }
    } else {
        Placement {
            parent: 0,
            child: 0,
        }
    };
    let wanted = |name: &str| specs.iter().find(|s| s.name == name).copied();
    let mut other_placement = match (wanted("shm-block"), wanted("pipe")) {
        (Some(shm), Some(pipe)) if cpus >= 2 => {
            bar.set_message(common::tr!("the other placement"));
            let mut cells = [shm, pipe]
                .map(|spec| measure::Cell::plan(spec, "throughput", SIZES[0], cli.quick, other));
            for _ in 0..runs {
                for cell in &mut cells {
                    cell.run(other)?;
                }
            }
            let rows = cells.into_iter().map(measure::Cell::finish).collect();
            Some(OtherPlacement {
                placement: if same_cpu {
                    common::tr!("the two processes on two CPUs")
                } else {
                    common::tr!("both processes on one CPU")
                },
                rows,
            })
        }
        _ => None,
    };
    bar.inc(1);
    // The floors once more, now that everything else is measured: the spread then covers
    // the whole run, and the ratios are taken against both ends of it.
    bar.set_message(common::tr!("floors"));
    let floors = floors::again(floors, placement, cli.quick, runs)?;
    for row in rows
        .iter_mut()
        .chain(&mut reference)
        .chain(other_placement.iter_mut().flat_map(|o| &mut o.rows))
    {
        report::set_ratio(row, &floors);
    }
    bar.inc(4);
    bar.finish_and_clear();

    let report = Report {
        machine,
        floors,
        rows,
        reference,
        encode_ns,
        other_placement,
    };
    let mut out = Out { closed: false };
    out.line(report.table())?;
    out.line(report.closeness())?;
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

#[test]
fn help_is_translated_to_korean() {
    common::i18n::check::assert_help_translated::<Cli>();
}
