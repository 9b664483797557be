//! What one look at a kernel object found, as a screen: a title and a few parts (bars,
//! rows of slots, short lines), with nothing about how it is drawn.
//!
//! The live view ([`crate::live`]) draws a [`Screen`] with ratatui, large enough for a
//! projector; `--once` prints the same screen as plain text ([`Screen::plain`]), for
//! scripts and tests. Both come from the one model, so what a test checks is what the
//! class sees.

use std::fmt::Write;

/// One frame of the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screen {
    /// What is watched: `System V queue 0x71000001 (id 3)`.
    pub title: String,
    /// The parts, top to bottom.
    pub parts: Vec<Part>,
}

/// What a count is a count of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Bytes.
    Bytes,
    /// Messages.
    Messages,
    /// Pages of memory.
    Pages,
    /// Slots of a ring.
    Slots,
    /// Connections waiting to be accepted.
    Connections,
}

impl Unit {
    /// The unit's name, as the view prints it after a number.
    pub fn name(self) -> String {
        match self {
            Unit::Bytes => common::tr!("bytes"),
            Unit::Messages => common::tr!("messages"),
            Unit::Pages => common::tr!("pages"),
            Unit::Slots => common::tr!("slots"),
            Unit::Connections => common::tr!("connections"),
        }
    }
}

/// One cell of a row of slots (a ring's slots, a file's messages, a file's pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// Holds something not yet taken.
    Full,
    /// Free, or never written.
    Empty,
    /// Written and taken already (a file's message), or only some of the pages a cell
    /// stands for are resident.
    Done,
}

/// A part of a screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A heading between groups of parts (one pipe of several, one connection).
    Heading(String),
    /// A bar: `value` of `max` (`max` 0: no known limit, the bar stays empty).
    Gauge {
        /// What is counted: `bytes waiting`.
        label: String,
        /// How many now.
        value: u64,
        /// The most there can be (the capacity), 0 if not known.
        max: u64,
        /// What the numbers count.
        unit: Unit,
    },
    /// A row of cells, with markers under some of them (`head`, `tail`).
    Cells {
        /// What the cells are: `slots`.
        label: String,
        /// The cells, in order.
        cells: Vec<Cell>,
        /// Markers: the cell's index and a short word.
        marks: Vec<(usize, String)>,
    },
    /// A label and a short text: `producer: pid 4242, waits in futex (sem_wait)`.
    Line {
        /// The label.
        label: String,
        /// The text.
        text: String,
    },
    /// The object is not there (yet); the view keeps looking.
    Missing(String),
}

impl Screen {
    /// A screen titled `title`, with no parts yet.
    pub fn new(title: impl Into<String>) -> Screen {
        Screen {
            title: title.into(),
            parts: Vec::new(),
        }
    }

    /// Adds a part.
    pub fn push(&mut self, part: Part) {
        self.parts.push(part);
    }

    /// Adds a `label: text` line.
    pub fn line(&mut self, label: impl Into<String>, text: impl Into<String>) {
        self.parts.push(Part::Line {
            label: label.into(),
            text: text.into(),
        });
    }

    /// Adds a bar.
    pub fn gauge(&mut self, label: impl Into<String>, value: u64, max: u64, unit: Unit) {
        self.parts.push(Part::Gauge {
            label: label.into(),
            value,
            max,
            unit,
        });
    }

    /// The screen as plain text, one part a line:
    ///
    /// ```text
    /// System V queue 0x71000001 (id 3)
    ///   messages: 6  [######..............]
    ///   bytes: 480 of 16384 bytes  [#...................]
    ///   slots: [FF..] head=2 tail=0
    /// ```
    pub fn plain(&self) -> String {
        let mut out = format!("{}\n", self.title);
        for part in &self.parts {
            match part {
                Part::Heading(text) => {
                    let _ = writeln!(out, "{text}");
                }
                Part::Gauge {
                    label,
                    value,
                    max,
                    unit,
                } => {
                    let unit = unit.name();
                    if *max > 0 {
                        let amount = common::tr!("{value} of {max} {unit}", value, max, unit);
                        let _ = writeln!(out, "  {label}: {amount}  [{}]", bar(*value, *max, 20));
                    } else {
                        // No known limit: a number, no bar.
                        let _ = writeln!(out, "  {label}: {value} {unit}");
                    }
                }
                Part::Cells {
                    label,
                    cells,
                    marks,
                } => {
                    let row: String = cells
                        .iter()
                        .map(|c| match c {
                            Cell::Full => '#',
                            Cell::Done => '+',
                            Cell::Empty => '.',
                        })
                        .collect();
                    let marks: Vec<String> = marks
                        .iter()
                        .map(|(at, word)| format!("{word}={at}"))
                        .collect();
                    let _ = writeln!(out, "  {label}: [{row}] {}", marks.join(" "));
                }
                Part::Line { label, text } => {
                    let _ = writeln!(out, "  {label}: {text}");
                }
                Part::Missing(text) => {
                    let _ = writeln!(out, "  {text}");
                }
            }
        }
        out
    }
}

/// A text bar `width` characters wide, `#` for the filled part.
fn bar(value: u64, max: u64, width: usize) -> String {
    let filled = if max == 0 {
        0
    } else {
        ((u128::from(value.min(max)) * width as u128).div_ceil(u128::from(max))) as usize
    };
    format!("{}{}", "#".repeat(filled), ".".repeat(width - filled))
}

/// Groups `cells` into at most `width` cells, for a row too long to show one by one: a
/// group is full if all its cells are, empty if none is, and `Done` (partly) otherwise.
pub fn squeeze(cells: &[Cell], width: usize) -> Vec<Cell> {
    if cells.len() <= width || width == 0 {
        return cells.to_vec();
    }
    let per = cells.len().div_ceil(width);
    cells
        .chunks(per)
        .map(|group| {
            let full = group.iter().filter(|c| **c == Cell::Full).count();
            if full == group.len() {
                Cell::Full
            } else if group.iter().all(|c| *c == Cell::Empty) {
                Cell::Empty
            } else {
                Cell::Done
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_is_full_only_at_the_limit_and_never_empty_above_zero() {
        assert_eq!(bar(0, 10, 10), "..........");
        assert_eq!(bar(1, 1000, 10), "#.........");
        assert_eq!(bar(10, 10, 10), "##########");
        assert_eq!(bar(99, 10, 10), "##########");
        assert_eq!(bar(5, 0, 4), "....");
    }

    #[test]
    fn the_plain_screen_has_one_line_a_part() {
        let mut s = Screen::new("title");
        s.gauge("bytes waiting", 80, 65536, Unit::Bytes);
        s.push(Part::Cells {
            label: "slots".into(),
            cells: vec![Cell::Full, Cell::Empty],
            marks: vec![(1, "head".into()), (0, "tail".into())],
        });
        s.line("producer", "pid 4242");
        assert_eq!(
            s.plain(),
            "title\n  bytes waiting: 80 of 65536 bytes  [#...................]\n  \
             slots: [#.] head=1 tail=0\n  producer: pid 4242\n"
        );
    }

    #[test]
    fn a_long_row_is_squeezed_without_hiding_what_is_full() {
        let mut cells = vec![Cell::Empty; 100];
        cells[57] = Cell::Full;
        let row = squeeze(&cells, 10);
        assert_eq!(row.len(), 10);
        assert_eq!(row.iter().filter(|c| **c != Cell::Empty).count(), 1);
        assert_eq!(squeeze(&[Cell::Full; 4], 10), vec![Cell::Full; 4]);
    }
}
