//! `kron log compact`: history retention on a stopped data directory.

use std::path::Path;

use kron_core::duration::parse_duration;
use kron_store::{Durability, Store, StoreError, DB_FILE};
use serde::Serialize;

use super::Ctx;
use crate::cli::CompactArgs;
use crate::data;
use crate::error::{CliError, CliResult};
use crate::output::timefmt::{bytes, count};

#[derive(Serialize)]
struct CompactJson {
    events_before: u64,
    events_deleted: u64,
    events_after: u64,
    /// `kron.db` plus its write-ahead log, in bytes.
    bytes_before: u64,
    bytes_after: u64,
}

pub fn compact(ctx: &mut Ctx, args: &CompactArgs) -> CliResult {
    if args.keep_runs.is_none() && args.older_than.is_none() {
        return Err(CliError::usage(
            "say what to keep: --keep-runs N (per timer), --older-than DURATION, or both",
        ));
    }
    let cutoff = args
        .older_than
        .as_deref()
        .map(|text| parse_duration("older-than", text))
        .transpose()?
        .map(|ms| {
            ctx.time
                .now
                .saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX))
        });
    let events_before = ctx.dir.reader()?.event_count()?;
    let busy = |pid: Option<u32>| {
        CliError::failure(format!(
            "a runtime{} owns {}: compaction needs it stopped (kron runtime shutdown); a running \
             runtime applies its own retention (the latest {} runs of each timer by default, \
             kron.start(..., history_limit=N))",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
            ctx.dir.display(),
            count(kron_store::DEFAULT_HISTORY_LIMIT as u64)
        ))
    };
    if ctx.dir.is_live() {
        return Err(busy(kron_store::read_owner(&ctx.dir.path).map(|o| o.pid)));
    }
    let bytes_before = db_bytes(&ctx.dir.path);
    let mut store = Store::open(&ctx.dir.path, Durability::Normal).map_err(|e| match e {
        StoreError::Locked { pid, .. } => busy(pid),
        other => other.into(),
    })?;
    let report = store.compact(args.keep_runs, cutoff)?;
    store.close()?;
    let bytes_after = db_bytes(&ctx.dir.path);
    let events_after = ctx.dir.reader()?.event_count()?;
    if args.json.json {
        let value = data::to_value(&CompactJson {
            events_before,
            events_deleted: report.events_deleted,
            events_after,
            bytes_before,
            bytes_after,
        })?;
        return ctx.out.json(&value);
    }
    ctx.out.line(format!(
        "Deleted {} of {} events ({} kept).",
        count(report.events_deleted),
        count(events_before),
        count(events_after)
    ))?;
    ctx.out.line(format!(
        "{}: {} before, {} after ({} reclaimed).",
        ctx.dir.path.join(DB_FILE).display(),
        bytes(bytes_before),
        bytes(bytes_after),
        bytes(bytes_before.saturating_sub(bytes_after))
    ))
}

/// The database and its write-ahead log, in bytes.
pub fn db_bytes(dir: &Path) -> u64 {
    let size = |name: String| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    size(DB_FILE.to_string()) + size(format!("{DB_FILE}-wal"))
}
