//! The observer's side of [`super::sync`]: what the timeline says about the run, the
//! summary line, and the check of what the kernel guarantees.

use common::narrate::print_summary;
use common::{Error, Narrator, Result, say, tr};

use super::Plan;
use crate::link::Mode;
use crate::timeline::{Event, Outcome, What};

/// What the observer learns from the timeline.
#[derive(Debug, Default)]
pub(super) struct Watch {
    sent: u64,
    took: u64,
    empty: Option<Outcome>,
    full: Option<Outcome>,
    /// The message that did not fit, and how many the link held.
    full_at: Option<(u64, u64)>,
    /// Whether the receiver started taking messages after the link was full.
    receiving_since_full: bool,
    /// For a blocking sender: whether the send of the message that did not fit returned
    /// only after the receiver started taking messages.
    waited: Option<bool>,
}

impl Watch {
    /// Counts one event; returns whether it is one the lesson is about (the probes, the
    /// full link, the receiver starting, and the send that met the full link).
    pub(super) fn see(&mut self, e: &Event) -> bool {
        match e.what {
            What::Sent => {
                self.sent += 1;
                match self.full_at {
                    Some((refused, _)) if e.seq == refused => {
                        if self.waited.is_none() {
                            self.waited = Some(self.receiving_since_full);
                        }
                        true
                    }
                    _ => false,
                }
            }
            What::Took => {
                self.took += 1;
                false
            }
            What::Receiving => {
                self.receiving_since_full |= self.full_at.is_some();
                true
            }
            What::Full => {
                self.full_at = Some((e.seq, e.value));
                true
            }
            What::Probe => {
                let outcome = Outcome::from_value(e.value);
                if e.seq == 0 {
                    self.empty = outcome
                } else {
                    self.full = outcome
                }
                true
            }
            What::Done => true,
        }
    }

    /// Prints the summary and checks the kernel's promises: nothing lost, and a blocking
    /// send to a full link that returned only after the receiver took something.
    pub(super) fn finish(&self, n: &Narrator, plan: &Plan, expected: Option<u64>) -> Result<()> {
        let held = self.full_at.map_or(0, |(_, held)| held);
        let full = match (plan.send, self.waited, self.full) {
            (Mode::Block, Some(true), _) => "waited",
            (Mode::Block, _, _) => "returned-early",
            (_, _, Some(o)) => o.word(),
            _ => "?",
        };
        let empty = self.empty.map_or("?", Outcome::word);
        let mut line = format!(
            "summary: via={} send={} receive={} sent={} received={} empty_link={empty} full_link={full} held={held}",
            plan.via.word(),
            plan.send.word(),
            plan.receive.word(),
            self.sent,
            self.took
        );
        if let Some(expected) = expected {
            line += &format!(" expected={expected}");
            say!(
                n,
                "the kernel's numbers said {expected} messages fit; the link held {held}",
                expected,
                held
            );
        }
        print_summary(line)?;
        if full == "returned-early" {
            return Err(Error::bad_data(
                "check the timeline",
                tr!(
                    "a blocking send to the full link returned before the receiver started taking messages"
                ),
            ));
        }
        if self.sent != self.took || expected.is_some_and(|e| e != held) {
            return Err(Error::bad_data(
                "check the timeline",
                tr!("messages were lost, or the link held another number than its capacity says"),
            ));
        }
        Ok(())
    }
}
