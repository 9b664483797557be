//! The live view: a [`Screen`] drawn with ratatui several times a second, large enough
//! for a projector (bars three rows high, slots as coloured blocks, few words).
//!
//! `q`, Esc or Ctrl-C quits. The terminal is put back as it was found (raw mode off, the
//! alternate screen left, the cursor shown) when the view ends, however it ends: on an
//! error, and on a panic too, through the panic hook `ratatui::init` installs.

use std::io;
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Gauge, Paragraph};

use crate::Watched;
use crate::view::{Cell, Part, Screen};

/// Runs the live view of `watched`, looking again every `interval`, until the user quits.
pub fn run(watched: &Watched, interval: Duration) -> common::Result<()> {
    use std::io::IsTerminal;
    if !io::stdout().is_terminal() {
        return Err(common::Error::usage(common::tr!(
            "the live view draws on a terminal, and standard output is not one: add --once for one frame as text"
        )));
    }
    // Raw mode, the alternate screen, and a panic hook that undoes both before the panic
    // message is printed.
    let mut terminal = ratatui::init();
    let result = (|| -> io::Result<()> {
        loop {
            let screen = watched.look();
            terminal.draw(|frame| draw(frame, &screen))?;
            let next = Instant::now() + interval;
            while let Some(left) = next.checked_duration_since(Instant::now()) {
                if !event::poll(left)? {
                    break;
                }
                if let Event::Key(key) = event::read()? {
                    let ctrl_c = key.code == KeyCode::Char('c')
                        && key.modifiers.contains(KeyModifiers::CONTROL);
                    let quit = matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) || ctrl_c;
                    if key.kind == KeyEventKind::Press && quit {
                        return Ok(());
                    }
                }
            }
        }
    })();
    ratatui::restore();
    result.map_err(|e| {
        common::Error::sys(
            "write(1) to the terminal",
            nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)),
        )
    })
}

/// Rows each part takes on the screen.
fn height(part: &Part) -> u16 {
    match part {
        Part::Heading(_) | Part::Line { .. } => 1,
        Part::Gauge { .. } | Part::Missing(_) => 3,
        Part::Cells { .. } => 5,
    }
}

/// Draws one frame.
pub fn draw(frame: &mut Frame<'_>, screen: &Screen) {
    let outer = Block::bordered()
        .title(Line::from(format!(" {} ", screen.title)).bold())
        .title_bottom(Line::from(common::tr!(" q: quit ")).right_aligned());
    let inner = outer.inner(frame.area());
    frame.render_widget(outer, frame.area());
    let mut constraints: Vec<Constraint> = screen
        .parts
        .iter()
        .map(|p| Constraint::Length(height(p)))
        .collect();
    constraints.push(Constraint::Min(0));
    let areas = Layout::vertical(constraints).split(inner);
    for (part, area) in screen.parts.iter().zip(areas.iter()) {
        draw_part(frame, part, *area);
    }
}

fn draw_part(frame: &mut Frame<'_>, part: &Part, area: Rect) {
    match part {
        Part::Heading(text) => frame.render_widget(
            Paragraph::new(Line::from(text.as_str()).bold().fg(Color::Cyan)),
            area,
        ),
        Part::Line { label, text } => frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(format!("{label}: "), Style::new().bold()),
                Span::raw(text.as_str()),
            ])),
            area,
        ),
        Part::Missing(text) => frame.render_widget(
            Paragraph::new(Line::from(text.as_str()).bold().fg(Color::Yellow))
                .block(Block::bordered()),
            area,
        ),
        Part::Gauge {
            label,
            value,
            max,
            unit,
        } => {
            let block = Block::bordered().title(Line::from(label.as_str()).bold());
            let unit_name = unit.name();
            if *max == 0 {
                frame.render_widget(
                    Paragraph::new(Line::from(format!("{value} {unit_name}")).bold()).block(block),
                    area,
                );
            } else {
                let ratio = (*value as f64 / *max as f64).clamp(0.0, 1.0);
                let colour = if ratio >= 1.0 {
                    Color::Red
                } else if ratio >= 0.75 {
                    Color::Yellow
                } else {
                    Color::Green
                };
                frame.render_widget(
                    Gauge::default()
                        .block(block)
                        .gauge_style(Style::new().fg(colour).bg(Color::DarkGray))
                        .ratio(ratio)
                        .label(
                            Span::from(format!("{value} / {max} {unit_name}"))
                                .add_modifier(Modifier::BOLD),
                        ),
                    area,
                );
            }
        }
        Part::Cells {
            label,
            cells,
            marks,
        } => {
            let block = Block::bordered().title(Line::from(label.as_str()).bold());
            let inside = block.inner(area);
            frame.render_widget(block, area);
            let n = cells.len().max(1) as u16;
            // Each cell as wide as fits, at most 6 columns, with one column between cells.
            let width = (inside.width / n).clamp(1, 6);
            let block_text = "█".repeat(width.saturating_sub(1).max(1) as usize);
            let gap = if width > 1 { " " } else { "" };
            let row: Vec<Span> = cells
                .iter()
                .map(|c| {
                    let colour = match c {
                        Cell::Full => Color::Green,
                        Cell::Done => Color::Blue,
                        Cell::Empty => Color::DarkGray,
                    };
                    Span::styled(format!("{block_text}{gap}"), Style::new().fg(colour))
                })
                .collect();
            let mut under = vec![' '; inside.width as usize];
            let mut words = Vec::new();
            for (at, word) in marks {
                let col = *at * width as usize;
                if col < under.len() {
                    under[col] = '^';
                }
                words.push(format!("^{word}: {at}"));
            }
            // Two rows of blocks, then the markers: large enough to see from the back.
            let lines = vec![
                Line::from(row.clone()),
                Line::from(row),
                Line::from(under.into_iter().collect::<String>()).bold(),
            ];
            frame.render_widget(Paragraph::new(lines), inside);
            if !words.is_empty() {
                // The marks' words go on the block's top border, at the right.
                frame.render_widget(
                    Paragraph::new(Line::from(words.join("  ")).right_aligned().bold()),
                    Rect {
                        y: area.y,
                        height: 1,
                        ..area
                    }
                    .inner(ratatui::layout::Margin::new(2, 0)),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    #[test]
    fn a_frame_draws_bars_slots_and_marks() {
        let mut s = Screen::new("System V message queue");
        s.gauge("bytes", 480, 16384, crate::view::Unit::Bytes);
        s.push(Part::Cells {
            label: "slots".into(),
            cells: vec![Cell::Full, Cell::Full, Cell::Empty, Cell::Empty],
            marks: vec![(2, "head".into()), (0, "tail".into())],
        });
        s.line("producer", "pid 4242");
        let mut terminal = Terminal::new(TestBackend::new(60, 16)).unwrap();
        terminal.draw(|f| draw(f, &s)).unwrap();
        let text: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        assert!(text.contains("System V message queue"), "{text}");
        assert!(text.contains("480 / 16384 bytes"), "{text}");
        assert!(text.contains("█"), "{text}");
        assert!(text.contains("^head: 2"), "{text}");
        assert!(text.contains("producer: pid 4242"), "{text}");
    }
}
