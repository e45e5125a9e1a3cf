//! Why a timer did (or did not) run around an instant, and what it does next: the reasoning
//! behind `kron job explain`, over the timer's record, its runs in flight and its history.
//!
//! Pure: history comes in through [`History`] (storage answers the queries; [`EventLog`]
//! answers them from events in memory), and the answer is data ([`Explanation`] with
//! [`Finding`]s) that the caller puts into words.

mod answer;
mod history;
mod reason;
#[cfg(test)]
mod tests;

pub use answer::{Explanation, Finding, Outcome, Standing};
pub use history::{is_final, EventLog, History, FOLLOW_MS, LIFECYCLE, RUN_KINDS};
pub use reason::{explain_at, explain_latest, Subject, TOLERANCE_MS};
