//! The bytes of a snapshot: how one is stored in `raft.db` and how it travels to a replica.
//!
//! A snapshot is the engine's deterministic bytes ([`Engine::snapshot`](kron_core::engine::Engine::snapshot))
//! plus the point the history had reached when it was taken (`history_upto`, an event number).
//! Stored, it holds no history: the node's own `kron.db` has it. Sent to a replica, it carries
//! every event up to that point ([`HistoryCopy`]), read from `kron.db` at the time of sending,
//! so the replica's history is the sender's, not only its timers and runs. Events are never
//! deleted on a server and their numbers are the same on every node (each applies the same
//! entries in the same order), so "every event numbered up to `history_upto`" is the history as
//! of the snapshot, whenever it is read.
//!
//! Layout: `KRONSNP1`, the engine's length (8 bytes, big-endian), the engine's bytes,
//! `history_upto` (8 bytes, big-endian, -1 for unknown), then the history as JSON (empty when
//! not carried).

use kron_store::HistoryCopy;
use openraft::{AnyError, SnapshotMeta, StorageIOError};

use super::{NodeId, NodeInfo, StorageError};

const MAGIC: &[u8; 8] = b"KRONSNP1";

/// A snapshot's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotBody {
    pub engine: Vec<u8>,
    /// The last event number the snapshot's state includes; `None` when it is not known (a
    /// snapshot taken while re-applying entries `kron.db` already held): then a replica keeps
    /// its own history.
    pub history_upto: Option<i64>,
    /// The history up to `history_upto`, when carried (see the module documentation).
    pub history: Option<HistoryCopy>,
}

fn bad(detail: impl Into<String>) -> StorageError {
    StorageIOError::read_snapshot(None, AnyError::error(detail.into())).into()
}

impl SnapshotBody {
    pub fn encode(&self) -> Result<Vec<u8>, StorageError> {
        let history = match &self.history {
            Some(copy) => serde_json::to_vec(copy)
                .map_err(|e| StorageError::from(StorageIOError::write_snapshot(None, &e)))?,
            None => Vec::new(),
        };
        let mut out = Vec::with_capacity(32 + self.engine.len() + history.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.engine.len() as u64).to_be_bytes());
        out.extend_from_slice(&self.engine);
        out.extend_from_slice(&self.history_upto.unwrap_or(-1).to_be_bytes());
        out.extend_from_slice(&history);
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<SnapshotBody, StorageError> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| bad("snapshot data is not in a format this version reads"))?;
        let (len, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("snapshot data is shorter than its header"))?;
        let len = usize::try_from(u64::from_be_bytes(*len))
            .ok()
            .filter(|len| *len <= rest.len())
            .ok_or_else(|| bad("snapshot data is truncated (engine)"))?;
        let (engine, rest) = rest.split_at(len);
        let (upto, rest) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| bad("snapshot data is truncated (history mark)"))?;
        let upto = i64::from_be_bytes(*upto);
        let history = if rest.is_empty() {
            None
        } else {
            Some(
                serde_json::from_slice::<HistoryCopy>(rest)
                    .map_err(|e| bad(format!("snapshot history: {e}")))?,
            )
        };
        Ok(SnapshotBody {
            engine: engine.to_vec(),
            history_upto: (upto >= 0).then_some(upto),
            history,
        })
    }
}

/// A snapshot as stored in `raft.db`: its meta (JSON) length in 8 bytes, the meta, then the
/// data.
pub fn encode_stored(
    meta: &SnapshotMeta<NodeId, NodeInfo>,
    data: &[u8],
) -> Result<Vec<u8>, StorageError> {
    let meta_bytes = serde_json::to_vec(meta)
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
    let mut out = Vec::with_capacity(8 + meta_bytes.len() + data.len());
    out.extend_from_slice(&(meta_bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(&meta_bytes);
    out.extend_from_slice(data);
    Ok(out)
}

pub fn decode_stored(
    bytes: &[u8],
) -> Result<(SnapshotMeta<NodeId, NodeInfo>, Vec<u8>), StorageError> {
    let (len, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| bad("stored snapshot is shorter than its header"))?;
    let len = usize::try_from(u64::from_be_bytes(*len))
        .map_err(|_| bad("stored snapshot header is too large"))?;
    if rest.len() < len {
        return Err(bad("stored snapshot is truncated"));
    }
    let (meta, data) = rest.split_at(len);
    let meta =
        serde_json::from_slice(meta).map_err(|e| bad(format!("stored snapshot meta: {e}")))?;
    Ok((meta, data.to_vec()))
}

#[cfg(test)]
mod tests {
    use kron_store::EventRow;

    use super::*;

    #[test]
    fn bodies_round_trip_with_and_without_history() {
        let plain = SnapshotBody {
            engine: b"engine bytes".to_vec(),
            history_upto: Some(7),
            history: None,
        };
        assert_eq!(
            SnapshotBody::decode(&plain.encode().unwrap()).unwrap(),
            plain
        );
        let unknown = SnapshotBody {
            engine: Vec::new(),
            history_upto: None,
            history: None,
        };
        assert_eq!(
            SnapshotBody::decode(&unknown.encode().unwrap()).unwrap(),
            unknown
        );
        let carried = SnapshotBody {
            engine: vec![1, 2, 3],
            history_upto: Some(1),
            history: Some(HistoryCopy {
                upto_seq: 1,
                rows: vec![EventRow {
                    seq: 1,
                    ts: 5,
                    timer_id: "a".to_string(),
                    kind: "TIMER_CREATED".to_string(),
                    run_id: None,
                    attempt: None,
                    detail: Some("{}".to_string()),
                }],
            }),
        };
        assert_eq!(
            SnapshotBody::decode(&carried.encode().unwrap()).unwrap(),
            carried
        );
    }

    #[test]
    fn damaged_bodies_are_refused() {
        let body = SnapshotBody {
            engine: b"engine".to_vec(),
            history_upto: Some(3),
            history: None,
        }
        .encode()
        .unwrap();
        assert!(SnapshotBody::decode(b"not a snapshot").is_err());
        assert!(SnapshotBody::decode(&body[..body.len() - 3]).is_err());
        assert!(SnapshotBody::decode(&body[..12]).is_err());
        let mut bad_history = body.clone();
        bad_history.extend_from_slice(b"{oops");
        assert!(SnapshotBody::decode(&bad_history).is_err());
    }
}
