//! The engine's inputs and outputs, as data.
//!
//! Every change of engine state is one [`Input`]: the embedded runtime makes them from
//! registrations, operator commands, its clock and its callbacks' outcomes; the command line's
//! offline admin makes them from its arguments; a replicated server reads them from its log. Each
//! carries the instant it acts at (`at`), so applying the same inputs to the same state gives the
//! same [`Output`]s and the same [`Changes`](crate::changes::Changes) on every node, whenever
//! and wherever they are applied. [`Engine::apply`](crate::engine::Engine::apply) is the only
//! way to change an engine.
//!
//! Inputs are versioned ([`LoggedInput`]): a log written by this release is read by the next one,
//! which may add variants and fields (with defaults) but never changes what a written one means.

use serde::{Deserialize, Serialize};

use crate::engine::{ClaimRequest, ClaimedRun, Dispatch, LeaseError, Outcome, Registered};
use crate::error::{CommandError, CoreError};
use crate::run::RunId;
use crate::time::EpochMs;
use crate::timer::TimerDef;

/// The version of [`Input`]'s serialized form written by this release.
pub const INPUT_VERSION: u32 = 1;

/// One change of engine state. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Input {
    /// Registers a timer, or registers it again with its current (maybe changed) definition.
    /// Output: [`Output::Registered`].
    Register { at: EpochMs, def: TimerDef },
    /// Stops the timer from starting runs. Output: [`Output::Applied`].
    Pause { at: EpochMs, timer: String },
    /// Lets a paused timer run again. Output: [`Output::Applied`].
    Resume { at: EpochMs, timer: String },
    /// Makes a manual run of the timer due now. Output: [`Output::Triggered`].
    Trigger { at: EpochMs, timer: String },
    /// Deletes the timer (its history stays). Output: [`Output::Applied`].
    Remove { at: EpochMs, timer: String },
    /// Time has come to `at`: occurrences due within the look-ahead become due runs (at most
    /// `batch`), and up to `capacity` due runs start (at most `batch` too). `capacity` is how many
    /// attempts the applier can begin now (its free workers). Output: [`Output::Dispatched`].
    Tick {
        at: EpochMs,
        capacity: u32,
        batch: u32,
    },
    /// A started attempt ended. Unknown or not-running runs are ignored (a duplicate report
    /// cannot count twice). Output: [`Output::Applied`].
    Finish {
        at: EpochMs,
        run: RunId,
        outcome: Outcome,
    },
    /// A started attempt never began (the applier shut down first): it is due again with the same
    /// attempt number. Output: [`Output::Applied`].
    NotStarted { at: EpochMs, run: RunId },
    /// The applier (re)started on this state: runs found running were interrupted by the end of
    /// the previous process, and occurrences missed meanwhile follow their catch-up policy.
    /// Output: [`Output::Applied`].
    Recover { at: EpochMs },
    /// These timers have no function in the applying process: each is remembered as lacking
    /// one, and an active one becomes orphaned (`TIMER_ORPHANED`). Unknown names are ignored.
    /// Output: [`Output::Orphaned`].
    MarkOrphans { at: EpochMs, timers: Vec<String> },
    /// Server mode: a worker claims due runs of task timers, under one lease until
    /// `lease_until` with the fencing token `token` (above every earlier claim's; `0`: the
    /// engine issues the next one when it applies the claim). Output: [`Output::Claimed`].
    Claim {
        at: EpochMs,
        #[serde(flatten)]
        request: ClaimRequest,
    },
    /// Server mode: the worker holding a run's lease (same token, lease not expired) moves its
    /// deadline. Output: [`Output::Applied`].
    ExtendLease {
        at: EpochMs,
        run: RunId,
        token: u64,
        lease_until: EpochMs,
    },
    /// Server mode: every lease whose deadline passed before `at` expires; its attempt counts
    /// as interrupted and is retried under the attempt budget. Output: [`Output::Expired`].
    ExpireLeases { at: EpochMs },
    /// Server mode: a worker reports its attempt's outcome under its fencing token; refused
    /// (nothing changes) when the run is no longer leased under that token. Output:
    /// [`Output::Applied`].
    Complete {
        at: EpochMs,
        run: RunId,
        token: u64,
        outcome: Outcome,
    },
}

impl Input {
    /// The instant the input acts at.
    pub fn at(&self) -> EpochMs {
        match self {
            Input::Register { at, .. }
            | Input::Pause { at, .. }
            | Input::Resume { at, .. }
            | Input::Trigger { at, .. }
            | Input::Remove { at, .. }
            | Input::Tick { at, .. }
            | Input::Finish { at, .. }
            | Input::NotStarted { at, .. }
            | Input::Recover { at }
            | Input::MarkOrphans { at, .. }
            | Input::Claim { at, .. }
            | Input::ExtendLease { at, .. }
            | Input::ExpireLeases { at }
            | Input::Complete { at, .. } => *at,
        }
    }

    /// The input's versioned serialized form (JSON), for a log.
    pub fn encode(&self) -> Vec<u8> {
        let logged = LoggedInputRef {
            version: INPUT_VERSION,
            input: self,
        };
        // Serializing plain data into a vector cannot fail: every map key is a string.
        serde_json::to_vec(&logged).unwrap_or_default()
    }

    /// Reads a serialized input written by this release or an earlier one.
    pub fn decode(bytes: &[u8]) -> Result<Input, CoreError> {
        let logged: LoggedInput = serde_json::from_slice(bytes)
            .map_err(|e| CoreError::invalid("input", preview(bytes), e.to_string()))?;
        if logged.version > INPUT_VERSION || logged.version == 0 {
            return Err(CoreError::invalid(
                "input",
                preview(bytes),
                format!(
                    "version {} is not readable by this release (reads 1 to {INPUT_VERSION})",
                    logged.version
                ),
            ));
        }
        Ok(logged.input)
    }
}

/// An input as logged: its version beside it, so a later release knows how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LoggedInput {
    #[serde(rename = "v")]
    pub version: u32,
    pub input: Input,
}

#[derive(Serialize)]
struct LoggedInputRef<'a> {
    #[serde(rename = "v")]
    version: u32,
    input: &'a Input,
}

/// The start of an unreadable input, for its error message.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars().take(80).collect()
}

/// What applying an [`Input`] decided, beside the [`Changes`](crate::changes::Changes) it made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Output {
    /// The input was applied; it has nothing to report beyond its changes.
    Applied,
    /// What a registration did.
    Registered { result: Registered },
    /// The manual run a trigger made.
    Triggered { run: RunId },
    /// The timers a [`Input::MarkOrphans`] made orphaned (those that were active), by name.
    Orphaned { timers: Vec<String> },
    /// The attempts a tick started, in the order to invoke them: commit the changes first.
    Dispatched { runs: Vec<Dispatch> },
    /// The runs a claim started, oldest first.
    Claimed { runs: Vec<ClaimedRun> },
    /// The runs whose leases expired, by id.
    Expired { runs: Vec<RunId> },
    /// Only from [`Engine::apply_fact`](crate::engine::Engine::apply_fact): the input was
    /// refused, for this reason; nothing changed.
    Refused { reason: String },
}

impl Output {
    /// The attempts to invoke (none for outputs other than [`Output::Dispatched`]).
    pub fn into_dispatched(self) -> Vec<Dispatch> {
        match self {
            Output::Dispatched { runs } => runs,
            _ => Vec::new(),
        }
    }
}

/// Why an input was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Bad input: a definition or an argument that fails validation.
    #[error(transparent)]
    Invalid(#[from] CoreError),
    /// A command on a timer that is missing or cannot take it.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// A claim or a worker's report that its lease or token does not allow.
    #[error(transparent)]
    Lease(#[from] LeaseError),
}
