//! What the bench prints: the machine, the floors, a table like note 000's summary with
//! the measured columns, the targets as ratios, a JSON file and two SVG charts.
//!
//! What a person reads (the header, the tables' headings and labels, the targets, the
//! charts' titles) is in the chosen language (`--lang`, or the locale); the JSON file is
//! data for programs, and its keys and values are English whatever the language.

use std::fmt::Write as _;
use std::path::PathBuf;

use common::tr;

use crate::SIZES;
use crate::measure::{Latency, Placement};
use crate::mechanisms::{ALL, Floor, Spec};

/// The machine the numbers come from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    /// The CPU's model name.
    pub cpu: String,
    /// CPUs this process may use.
    pub cores: usize,
    /// Whether a hypervisor is present, and which, if the machine says.
    pub virtualization: String,
    /// The kernel's release.
    pub kernel: String,
    /// The compiler that built the bench.
    pub rustc: String,
    /// debug or release.
    pub profile: String,
    /// The CPUs of the two processes.
    pub placement: String,
    /// Repetitions of each measurement.
    pub runs: u32,
    /// The same descriptions in the chosen language, for the header (not in the JSON).
    #[serde(skip)]
    pub words: MachineWords,
}

/// [`Machine`]'s descriptions as the header prints them, in the chosen language.
#[derive(Debug, Clone, Default)]
pub struct MachineWords {
    /// As [`Machine::virtualization`].
    pub virtualization: String,
    /// As [`Machine::profile`].
    pub profile: String,
    /// As [`Machine::placement`].
    pub placement: String,
}

fn first_line(path: &str) -> Option<String> {
    Some(
        std::fs::read_to_string(path)
            .ok()?
            .lines()
            .next()?
            .trim()
            .to_string(),
    )
}

impl Machine {
    /// What this machine says about itself.
    pub fn here(placement: Placement, runs: u32) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        };
        let hypervisor =
            field("flags").is_some_and(|flags| flags.split(' ').any(|f| f == "hypervisor"));
        let vendor = [
            first_line("/sys/class/dmi/id/sys_vendor"),
            first_line("/sys/class/dmi/id/product_name"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
        let same_cpu = placement.parent == placement.child;
        let release = !cfg!(debug_assertions);
        let (parent, child) = (placement.parent, placement.child);
        Machine {
            cpu: field("model name").unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            virtualization: match (hypervisor, vendor.is_empty()) {
                (false, _) => "none detected".into(),
                (true, true) => "a hypervisor (CPU flag)".into(),
                (true, false) => format!("a hypervisor: {vendor}"),
            },
            kernel: first_line("/proc/sys/kernel/osrelease").unwrap_or_else(|| "unknown".into()),
            rustc: env!("BENCH_RUSTC_VERSION").into(),
            profile: if release {
                "release"
            } else {
                "debug (numbers are not representative: use --release)"
            }
            .into(),
            placement: if same_cpu {
                format!("both processes on CPU {parent}")
            } else {
                format!("parent on CPU {parent}, child on CPU {child}")
            },
            runs,
            words: MachineWords {
                virtualization: match (hypervisor, vendor.is_empty()) {
                    (false, _) => tr!("none detected"),
                    (true, true) => tr!("a hypervisor (CPU flag)"),
                    (true, false) => tr!("a hypervisor: {vendor}", vendor),
                },
                profile: if release {
                    tr!("release")
                } else {
                    tr!("debug (numbers are not representative: use --release)")
                },
                placement: if same_cpu {
                    tr!("both processes on CPU {parent}", parent)
                } else {
                    tr!(
                        "parent on CPU {parent}, child on CPU {child}",
                        parent,
                        child
                    )
                },
            },
        }
    }

    /// The lines printed before the table.
    pub fn header(&self) -> String {
        let w = &self.words;
        [
            tr!(
                "machine: {cpu} ({cores} CPUs), virtualisation: {virtualization}",
                cpu = self.cpu,
                cores = self.cores,
                virtualization = w.virtualization
            ),
            tr!(
                "kernel {kernel}, {rustc}, {profile} build",
                kernel = self.kernel,
                rustc = self.rustc,
                profile = w.profile
            ),
            tr!(
                "placement: {placement}; {runs} run(s) of each measurement",
                placement = w.placement,
                runs = self.runs
            ),
        ]
        .join("\n")
    }
}

/// The hardware and kernel floors, measured in the same run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Floors {
    /// What reading the clock costs (ns).
    pub timer_ns: f64,
    /// A system call that does nothing (ns).
    pub null_syscall_ns: f64,
    /// A cache-line round trip between the two CPUs (ns); none on one CPU.
    pub cache_line_ns: Option<f64>,
    /// A futex wake-up round trip (ns).
    pub futex_ns: f64,
    /// memcpy bandwidth (bytes/s) at each size, and at 64 MiB.
    pub memcpy: Vec<(usize, f64)>,
}

impl Floors {
    /// memcpy bandwidth at `size`.
    pub fn memcpy_at(&self, size: usize) -> Option<f64> {
        self.memcpy
            .iter()
            .find(|(s, _)| *s == size)
            .map(|(_, b)| *b)
    }
}

/// One mechanism, one test, one size.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// The mechanism and its columns from note 000's table.
    pub spec: Spec,
    /// "latency" or "throughput".
    pub test: String,
    /// Payload bytes.
    pub size: usize,
    /// "ok", or why there is no number ("n/a (limit)", ...).
    pub status: String,
    /// Latency percentiles of the median run (ns per round trip).
    pub latency: Option<Latency>,
    /// Throughput of the median run (payload bytes/s).
    pub bytes_per_s: Option<f64>,
    /// The lowest and highest of the runs (p50 ns, or bytes/s).
    pub range: Option<(f64, f64)>,
    /// Latency over its floor, or throughput over memcpy at the same size.
    pub ratio: Option<f64>,
}

impl Row {
    /// A row with no number yet.
    pub fn new(spec: &Spec, test: &str, size: usize) -> Row {
        Row {
            spec: *spec,
            test: test.into(),
            size,
            status: String::new(),
            latency: None,
            bytes_per_s: None,
            range: None,
            ratio: None,
        }
    }
}

/// Everything one run of the bench found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// Where.
    pub machine: Machine,
    /// The floors.
    pub floors: Floors,
    /// Every measurement.
    pub rows: Vec<Row>,
}

fn us(ns: f64) -> String {
    if ns < 10_000.0 {
        format!("{:.2} µs", ns / 1000.0)
    } else {
        format!("{:.0} µs", ns / 1000.0)
    }
}

fn rate(bytes_per_s: f64) -> String {
    if bytes_per_s >= 1e9 {
        format!("{:.2} GB/s", bytes_per_s / 1e9)
    } else {
        format!("{:.0} MB/s", bytes_per_s / 1e6)
    }
}

/// A row's status as its table cell shows it: `skipped`, `n/a (limit)`, ... in the chosen
/// language (the JSON keeps the English status).
fn short(status: &str) -> String {
    if status.starts_with("skipped") {
        tr!("skipped")
    } else if status == "n/a (limit)" {
        tr!("n/a (limit)")
    } else if status == "n/a (no payload)" {
        tr!("n/a (no payload)")
    } else {
        status.to_string()
    }
}

/// One of [`Spec`]'s English words (model, unit, direction) as the table shows it.
fn label(word: &str) -> String {
    match word {
        "message passing" => tr!("message passing"),
        "shared memory" => tr!("shared memory"),
        "stream" => tr!("stream"),
        "message" => tr!("message"),
        "slot" => tr!("slot"),
        "datagram" => tr!("datagram"),
        "notification" => tr!("notification"),
        "one-way" => tr!("one-way"),
        "two-way" => tr!("two-way"),
        other => other.to_string(),
    }
}

/// How many columns `text` takes on a terminal: Hangul and other wide characters take
/// two (Unicode's East Asian Width), which `format!`'s padding does not know.
fn columns(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '\u{1100}'..='\u{115F}'
            | '\u{2E80}'..='\u{A4CF}'
            | '\u{AC00}'..='\u{D7A3}'
            | '\u{F900}'..='\u{FAFF}'
            | '\u{FF00}'..='\u{FF60}' => 2,
            _ => 1,
        })
        .sum()
}

/// `text` padded with spaces to `width` columns, on the left (`right`) or the right.
fn pad(text: &str, width: usize, right: bool) -> String {
    let fill = " ".repeat(width.saturating_sub(columns(text)));
    if right {
        format!("{fill}{text}")
    } else {
        format!("{text}{fill}")
    }
}

impl Report {
    fn row(&self, name: &str, test: &str, size: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.spec.name == name && r.test == test && r.size == size)
    }

    fn names(&self) -> Vec<&'static str> {
        ALL.iter()
            .map(|s| s.name)
            .filter(|n| self.rows.iter().any(|r| r.spec.name == *n))
            .collect()
    }

    /// The floors and the two tables, as text.
    pub fn table(&self) -> String {
        let f = &self.floors;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n{}",
            tr!(
                "floors: clock read {clock} ns, null system call {syscall} ns, futex round trip {futex}, cache-line round trip {cache}",
                clock = format!("{:.0}", f.timer_ns),
                syscall = format!("{:.0}", f.null_syscall_ns),
                futex = us(f.futex_ns),
                cache = f.cache_line_ns.map_or_else(|| tr!("n/a (one CPU)"), us)
            )
        );
        let memcpy = f
            .memcpy
            .iter()
            .map(|(s, b)| {
                format!(
                    "{} {}",
                    common::units::bytes(*s).split(" (").next().unwrap_or(""),
                    rate(*b)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(out, "{}", tr!("memcpy: {speeds}", speeds = memcpy));
        for (test, title) in [
            (
                "latency",
                tr!("latency: round trip, p50 (ratio to its floor at 64 B)"),
            ),
            (
                "throughput",
                tr!("throughput: one way, streaming (ratio to memcpy at 64 KiB)"),
            ),
        ] {
            let _ = writeln!(out, "\n{title}");
            let headings = [
                (tr!("mechanism"), 13, false),
                (tr!("model"), 16, false),
                (tr!("unit"), 12, false),
                (tr!("way"), 8, false),
                (tr!("scope"), 12, false),
                ("64 B".to_string(), 12, true),
                ("4 KiB".to_string(), 12, true),
                ("64 KiB".to_string(), 12, true),
                ("1 MiB".to_string(), 12, true),
                (tr!("ratio"), 7, true),
            ];
            let line: Vec<String> = headings
                .iter()
                .map(|(text, width, right)| pad(text, *width, *right))
                .collect();
            let _ = writeln!(out, "{}", line.join(" "));
            for name in self.names() {
                let Some(first) = self.row(name, test, SIZES[0]) else {
                    continue;
                };
                let s = &first.spec;
                let scope = if s.scope.starts_with("same and") {
                    tr!("any")
                } else {
                    tr!("this host")
                };
                let mut cells = vec![
                    pad(name, 13, false),
                    pad(&label(s.model), 16, false),
                    pad(&label(s.unit), 12, false),
                    pad(&label(s.direction), 8, false),
                    pad(&scope, 12, false),
                ];
                for &size in &SIZES {
                    let cell = self.row(name, test, size).map_or(String::new(), |r| {
                        match (&r.latency, r.bytes_per_s) {
                            (Some(l), _) => us(l.p50),
                            (_, Some(b)) => rate(b),
                            _ => short(&r.status),
                        }
                    });
                    cells.push(pad(&cell, 12, true));
                }
                let ratio_size = if test == "latency" {
                    SIZES[0]
                } else {
                    SIZES[2]
                };
                let ratio = self
                    .row(name, test, ratio_size)
                    .and_then(|r| r.ratio)
                    .map_or("-".into(), |r| format!("{r:.2}x"));
                cells.push(pad(&ratio, 7, true));
                let _ = writeln!(out, "{}", cells.join(" "));
            }
        }
        out
    }

    /// The issue's targets, each as a measured ratio and whether it is met.
    pub fn targets(&self) -> String {
        let mut out = format!(
            "\n{}\n",
            tr!("targets (ratios from this run; not asserted anywhere):")
        );
        let met = |ok: bool| if ok { tr!("met") } else { tr!("NOT met") };
        match (
            self.row("shm-spin", "latency", 64).and_then(|r| r.ratio),
            self.floors.cache_line_ns,
        ) {
            (Some(r), Some(_)) => {
                let _ = writeln!(
                    out,
                    "- {}",
                    tr!(
                        "shm-spin round trip p50 = {ratio}x the cache-line floor (target <= 1.2): {verdict}",
                        ratio = format!("{r:.2}"),
                        verdict = met(r <= 1.2)
                    )
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "- {}",
                    tr!("shm-spin: not measured (one CPU, or not selected)")
                );
            }
        }
        for row in self
            .rows
            .iter()
            .filter(|r| r.test == "latency" && r.size == 64 && r.spec.floor == Floor::Futex)
        {
            if let Some(r) = row.ratio {
                let _ = writeln!(
                    out,
                    "- {}",
                    tr!(
                        "{name} round trip p50 = {ratio}x the futex floor (target <= 1.2): {verdict}",
                        name = row.spec.name,
                        ratio = format!("{r:.2}"),
                        verdict = met(r <= 1.2)
                    )
                );
            }
        }
        let big = self.floors.memcpy_at(64 << 20);
        let shm = ["shm-spin", "shm-block"]
            .iter()
            .filter_map(|n| {
                self.row(n, "throughput", 64 << 10)?
                    .bytes_per_s
                    .map(|b| (*n, b))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let copies = self
            .rows
            .iter()
            .filter(|r| {
                r.test == "throughput" && r.size == 64 << 10 && r.spec.model == "message passing"
            })
            .filter_map(|r| r.bytes_per_s.map(|b| (r.spec.name, b)))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let (Some((name, b)), Some(m)) = (shm, big) {
            let _ = writeln!(
                out,
                "- {}",
                tr!(
                    "{name} streaming at 64 KiB = {speed} = {ratio}x memcpy at 64 MiB (target >= 0.5): {verdict}",
                    name,
                    speed = rate(b),
                    ratio = format!("{:.2}", b / m),
                    verdict = met(b / m >= 0.5)
                )
            );
            if let Some((other, c)) = copies {
                let _ = writeln!(
                    out,
                    "- {}",
                    tr!(
                        "{name} at 64 KiB vs the best kernel-copy mechanism ({other}, {speed}): {verdict}",
                        name,
                        other,
                        speed = rate(c),
                        verdict = met(b > c)
                    )
                );
            }
        }
        out
    }

    /// An SVG chart of `test` (latency p50 or throughput) by size, both axes logarithmic.
    pub fn chart(&self, test: &str) -> String {
        let (w, h, left, right, top, bottom) = (760.0, 460.0, 80.0, 180.0, 40.0, 60.0);
        let series: Vec<(&str, Vec<(usize, f64)>)> = self
            .names()
            .into_iter()
            .map(|name| {
                let points = SIZES.iter().filter_map(|&s| {
                    let r = self.row(name, test, s)?;
                    r.latency.map(|l| l.p50).or(r.bytes_per_s).map(|v| (s, v))
                });
                (name, points.collect())
            })
            .filter(|(_, p): &(&str, Vec<(usize, f64)>)| !p.is_empty())
            .collect();
        let values: Vec<f64> = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
            .collect();
        let (lo, hi) = values
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        let (lo, hi) = if values.is_empty() {
            (1.0, 10.0)
        } else {
            (
                lo.log10().floor(),
                hi.log10().ceil().max(lo.log10().floor() + 1.0),
            )
        };
        let x = |size: usize| left + ((size as f64).log2() - 6.0) / 14.0 * (w - left - right);
        let y = |v: f64| top + (hi - v.log10()) / (hi - lo) * (h - top - bottom);
        let title = if test == "latency" {
            tr!("latency: ns per round trip (p50)")
        } else {
            tr!("throughput: payload bytes per second")
        };
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="{w}" height="{h}" fill="white"/><text x="{left}" y="24" font-size="14">{title}</text>"#
        );
        for decade in lo as i32..=hi as i32 {
            let yy = y(10f64.powi(decade));
            let _ = write!(
                svg,
                r##"<line x1="{left}" x2="{}" y1="{yy}" y2="{yy}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">1e{decade}</text>"##,
                w - right,
                left - 6.0,
                yy + 4.0
            );
        }
        for &size in &SIZES {
            let xx = x(size);
            let label = common::units::bytes(size)
                .split(" (")
                .next()
                .unwrap_or("")
                .replace(" bytes", " B");
            let label = if size >= 1024 {
                common::units::bytes(size)
                    .split('(')
                    .nth(1)
                    .unwrap_or("")
                    .trim_end_matches(')')
                    .to_string()
            } else {
                label
            };
            let _ = write!(
                svg,
                r##"<line x1="{xx}" x2="{xx}" y1="{top}" y2="{}" stroke="#ddd"/><text x="{xx}" y="{}" text-anchor="middle">{label}</text>"##,
                h - bottom,
                h - bottom + 18.0
            );
        }
        let colours = [
            "#1a73e8", "#e37400", "#188038", "#d93025", "#9334e6", "#12b5cb", "#f9ab00", "#5f6368",
            "#b31412", "#0d652d", "#a142f4",
        ];
        for (i, (name, points)) in series.iter().enumerate() {
            let colour = colours[i % colours.len()];
            let path: Vec<String> = points
                .iter()
                .map(|&(s, v)| format!("{:.1},{:.1}", x(s), y(v)))
                .collect();
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
            for &(s, v) in points {
                let _ = write!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"/>"#,
                    x(s),
                    y(v)
                );
            }
            let ly = top + 16.0 * i as f64;
            let _ = write!(
                svg,
                r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}">{name}</text>"#,
                w - right + 12.0,
                w - right + 32.0,
                w - right + 38.0,
                ly + 4.0
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// Where the charts go: `target/bench/` of the workspace the bench was built in.
pub fn output_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("bench")))
        .unwrap_or_else(|| PathBuf::from("target/bench"))
}
