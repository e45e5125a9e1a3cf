//! [`Engine::apply`]: the one way to change an engine.

use super::Engine;
use crate::input::{Input, Output, Rejected};

impl Engine {
    /// Applies one input at the instant it carries and says what it decided. The changes it made
    /// accumulate until [`Engine::take_changes`]. A refused input changes nothing.
    pub fn apply(&mut self, input: Input) -> Result<Output, Rejected> {
        Ok(match input {
            Input::Register { at, def } => Output::Registered {
                result: self.register(def, at)?,
            },
            Input::Pause { at, timer } => {
                self.pause(&timer, at)?;
                Output::Applied
            }
            Input::Resume { at, timer } => {
                self.resume(&timer, at)?;
                Output::Applied
            }
            Input::Trigger { at, timer } => Output::Triggered {
                run: self.trigger(&timer, at)?,
            },
            Input::Remove { at, timer } => {
                self.remove(&timer, at)?;
                Output::Applied
            }
            Input::Tick {
                at,
                capacity,
                batch,
            } => Output::Dispatched {
                runs: self.poll_batch(at, capacity as usize, batch as usize),
            },
            Input::Finish { at, run, outcome } => {
                self.finish(&run, outcome, at);
                Output::Applied
            }
            Input::NotStarted { at, run } => {
                self.not_started(&run, at);
                Output::Applied
            }
            Input::Recover { at } => {
                self.recover(at);
                Output::Applied
            }
            Input::MarkOrphans { at, timers } => Output::Orphaned {
                timers: self.mark_orphans(timers, at),
            },
            Input::Claim { at, request } => Output::Claimed {
                runs: self.claim(request, at)?,
            },
            Input::ExtendLease {
                at,
                run,
                token,
                lease_until,
            } => {
                self.extend_lease(&run, token, lease_until, at)?;
                Output::Applied
            }
            Input::ExpireLeases { at } => Output::Expired {
                runs: self.expire_leases(at),
            },
            Input::Complete {
                at,
                run,
                token,
                outcome,
            } => {
                self.complete(&run, token, outcome, at)?;
                Output::Applied
            }
        })
    }

    /// [`Engine::apply`] for the inputs that record what happened rather than ask for
    /// something: a tick, an attempt's end or non-start, a recovery, orphan marking. The engine
    /// never refuses those; any other input that is refused comes back as [`Output::Refused`].
    pub fn apply_fact(&mut self, input: Input) -> Output {
        self.apply(input)
            .unwrap_or_else(|rejected| Output::Refused {
                reason: rejected.to_string(),
            })
    }
}
