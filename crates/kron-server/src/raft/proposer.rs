//! Group commit on the leader: writes that arrive while earlier ones are being committed are
//! proposed together, as one log entry.
//!
//! Every write is a Raft entry, and an entry costs an append (an fsync) and a replication round
//! whatever it holds. Under load, requests arrive faster than entries commit; the proposer keeps
//! at most [`IN_FLIGHT`] entries between proposal and commit, and when a slot frees it proposes
//! every write that waited as one [`Proposal`], which the state machine applies input by input,
//! exactly as if each had its own entry. An idle leader proposes a lone write at once: grouping
//! adds no latency, it only takes the waiting that load already causes.
//!
//! Order: proposals enter Raft in the order they reached the proposer (openraft's
//! `client_write_ff` queues them in order), and the inputs of one entry are applied in that
//! order too.

use std::sync::Arc;

use kron_core::input::{Input, Output, Rejected};
use openraft::error::{ClientWriteError, Fatal, RaftError};
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::{NodeId, NodeInfo, Proposal, Raft};

/// Entries proposed and not yet committed, at most. Two: one being written while the next
/// gathers, so the log is never idle and no entry waits behind more than one other.
pub const IN_FLIGHT: usize = 2;

/// Most inputs one entry carries: bounds an entry's size (and a follower's apply step).
pub const MAX_INPUTS_PER_ENTRY: usize = 4_096;

/// Why a proposal was not applied: openraft's error, as `client_write` answers it.
pub type ProposeFailure = RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>;

/// What the engine answered to each input, in order.
pub type Answers = Vec<Result<Output, Rejected>>;

struct Pending {
    inputs: Vec<Input>,
    reply: oneshot::Sender<Result<Answers, ProposeFailure>>,
}

/// The node's single way into the Raft log. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Proposer {
    queue: mpsc::UnboundedSender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("inputs", &self.inputs.len())
            .finish()
    }
}

impl Proposer {
    /// Starts the proposing task of `raft`; it ends when every `Proposer` clone is dropped.
    pub fn start(raft: Raft) -> Proposer {
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, waiting));
        Proposer { queue }
    }

    /// Proposes `inputs` (applied in order, possibly in one entry with other writes); resolves
    /// once they are committed and applied, with the engine's answer to each.
    pub async fn propose(&self, inputs: Vec<Input>) -> Result<Answers, ProposeFailure> {
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { inputs, reply })
            .map_err(|_| RaftError::Fatal(Fatal::Stopped))?;
        answer
            .await
            .unwrap_or(Err(RaftError::Fatal(Fatal::Stopped)))
    }
}

async fn run(raft: Raft, mut waiting: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut carried: Option<Pending> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match carried.take() {
            Some(pending) => pending,
            None => match waiting.recv().await {
                Some(pending) => pending,
                None => return,
            },
        };
        let mut batch = vec![first];
        let mut count = batch[0].inputs.len();
        while count < MAX_INPUTS_PER_ENTRY {
            match waiting.try_recv() {
                Ok(next) if count + next.inputs.len() > MAX_INPUTS_PER_ENTRY => {
                    carried = Some(next);
                    break;
                }
                Ok(next) => {
                    count += next.inputs.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let mut inputs = Vec::with_capacity(count);
        let mut replies = Vec::with_capacity(batch.len());
        for pending in batch {
            replies.push((pending.inputs.len(), pending.reply));
            inputs.extend(pending.inputs);
        }
        let committed = match raft.client_write_ff(Proposal { inputs }).await {
            Ok(receiver) => receiver,
            Err(fatal) => {
                for (_, reply) in replies {
                    let _ = reply.send(Err(RaftError::Fatal(fatal.clone())));
                }
                continue;
            }
        };
        tokio::spawn(async move {
            let result = match committed.await {
                Ok(Ok(response)) => Ok(response.data.results),
                Ok(Err(e)) => Err(RaftError::APIError(e)),
                Err(_) => Err(RaftError::Fatal(Fatal::Stopped)),
            };
            drop(slot);
            distribute(result, replies);
        });
    }
}

/// Hands each waiting write its share of the entry's answers (or the entry's error).
fn distribute(
    result: Result<Answers, ProposeFailure>,
    replies: Vec<(usize, oneshot::Sender<Result<Answers, ProposeFailure>>)>,
) {
    match result {
        Ok(answers) => {
            let mut answers = answers.into_iter();
            for (len, reply) in replies {
                let share: Answers = answers.by_ref().take(len).collect();
                // A requester that gave up (its connection closed) no longer listens.
                let _ = reply.send(Ok(share));
            }
        }
        Err(e) => {
            for (_, reply) in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}
