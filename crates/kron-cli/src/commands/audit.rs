//! `kron audit verify | tail | query`: a server's hash-chained audit log.

use std::path::PathBuf;

use kron_core::time::parse_datetime;
use kron_server::audit::{self, VerifyError, AUDIT_FILE};
use serde_json::{json, Value};

use super::Ctx;
use crate::cli::{AuditFileArgs, AuditQueryArgs, AuditTailArgs};
use crate::data;
use crate::error::{CliError, CliResult};

fn log_path(ctx: &Ctx, args: &AuditFileArgs) -> PathBuf {
    args.file
        .clone()
        .unwrap_or_else(|| ctx.dir.path.join(AUDIT_FILE))
}

fn records(ctx: &Ctx, args: &AuditFileArgs) -> CliResult<Vec<Value>> {
    let path = log_path(ctx, args);
    if !path.is_file() {
        return Err(CliError::failure(format!(
            "no audit log at {} (give --file PATH, or the server's --data-dir)",
            path.display()
        )));
    }
    audit::read_records(&path).map_err(CliError::failure)
}

pub fn verify(ctx: &mut Ctx, args: &AuditFileArgs) -> CliResult {
    let path = log_path(ctx, args);
    let result = audit::verify(&path);
    if args.json.json {
        let report = match &result {
            Ok(n) => json!({ "ok": true, "records": n, "file": data::absolute(&path) }),
            Err(VerifyError::Bad(bad)) => json!({
                "ok": false, "bad_record": bad.line, "reason": bad.reason,
                "file": data::absolute(&path),
            }),
            Err(VerifyError::Io(e)) => json!({ "ok": false, "error": e }),
        };
        ctx.out.json(&report.to_string())?;
    }
    match (result, args.json.json) {
        (Ok(n), false) => ctx.out.line(format!(
            "OK: {n} records, hash chain intact ({})",
            path.display()
        )),
        (Ok(_), true) => Ok(()),
        // The JSON report above says why.
        (Err(_), true) => Err(CliError::Reported),
        (Err(e), false) => Err(CliError::failure(e.to_string())),
    }
}

fn text(record: &Value, key: &str) -> String {
    match record.get(key) {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn show(ctx: &mut Ctx, records: &[Value], json: bool) -> CliResult {
    if json {
        return ctx.out.json(&Value::Array(records.to_vec()).to_string());
    }
    for r in records {
        let who = match (text(r, "actor").as_str(), text(r, "role").as_str()) {
            ("-", _) => "-".to_string(),
            (actor, role) => format!("{actor}({role})"),
        };
        let mut line = format!(
            "{:>6}  {}  {:<7} {}  {:<20} {} {}",
            text(r, "seq"),
            text(r, "ts"),
            text(r, "decision"),
            text(r, "status"),
            who,
            text(r, "method"),
            text(r, "path"),
        );
        if let Some(target) = r.get("target").and_then(Value::as_str) {
            line.push_str(&format!("  [{target}]"));
        }
        if let Some(reason) = r.get("reason").and_then(Value::as_str) {
            line.push_str(&format!("  {reason}"));
        }
        ctx.out.line(line)?;
    }
    Ok(())
}

pub fn tail(ctx: &mut Ctx, args: &AuditTailArgs) -> CliResult {
    let all = records(ctx, &args.file)?;
    let skip = all.len().saturating_sub(args.limit);
    show(ctx, &all[skip..], args.file.json.json)
}

fn instant(arg: &'static str, text: &Option<String>) -> CliResult<Option<i64>> {
    text.as_deref()
        .map(|t| parse_datetime(arg, t, "UTC"))
        .transpose()
        .map_err(CliError::from)
}

pub fn query(ctx: &mut Ctx, args: &AuditQueryArgs) -> CliResult {
    let since = instant("since", &args.since)?;
    let until = instant("until", &args.until)?;
    let all = records(ctx, &args.file)?;
    let same = |record: &Value, key: &str, want: &Option<String>| {
        want.as_deref()
            .is_none_or(|w| record.get(key).and_then(Value::as_str) == Some(w))
    };
    let at = |record: &Value| {
        record
            .get("ts")
            .and_then(Value::as_str)
            .and_then(|t| parse_datetime("ts", t, "UTC").ok())
    };
    let matching: Vec<Value> = all
        .into_iter()
        .filter(|r| same(r, "actor", &args.actor))
        .filter(|r| same(r, "tenant", &args.tenant))
        .filter(|r| same(r, "decision", &args.decision))
        .filter(|r| {
            args.status
                .is_none_or(|s| r.get("status").and_then(Value::as_u64) == Some(u64::from(s)))
        })
        .filter(|r| {
            args.path.as_deref().is_none_or(|p| {
                r.get("path")
                    .and_then(Value::as_str)
                    .is_some_and(|path| path.starts_with(p))
            })
        })
        .filter(|r| since.is_none_or(|s| at(r).is_some_and(|t| t >= s)))
        .filter(|r| until.is_none_or(|u| at(r).is_some_and(|t| t < u)))
        .collect();
    let skip = args.limit.map_or(0, |n| matching.len().saturating_sub(n));
    show(ctx, &matching[skip..], args.file.json.json)
}
