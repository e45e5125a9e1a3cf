//! `kron server join|leave|status`: a cluster's membership through any node's HTTP API (writes
//! follow `not_leader` to the leader).

use std::time::Duration;

use serde_json::{json, Value};

use super::client::Server;
use crate::cli::{ServerJoinArgs, ServerLeaveArgs};
use crate::commands::Ctx;
use crate::error::{one_line, CliError, CliResult};
use crate::output::style::Color;
use crate::output::table::{Cell, Column, Table};
use crate::parse;

/// Membership changes need the admin token.
const ADMIN: &str = "an admin";
/// Cluster status needs any reading token.
const READER: &str = "a reader, operator or admin";

fn wait(timeout: &str) -> CliResult<Duration> {
    let ms = parse::seconds_or_duration("timeout", timeout)?;
    if ms == 0 {
        return Err(CliError::usage(format!(
            "--timeout must be more than 0, got {timeout:?}"
        )));
    }
    Ok(Duration::from_millis(ms))
}

fn required(arg: &str, value: &str) -> CliResult {
    if value.trim().is_empty() {
        return Err(CliError::usage(format!("{arg} must not be empty")));
    }
    Ok(())
}

pub fn join(ctx: &mut Ctx, server: &Server, args: &ServerJoinArgs) -> CliResult {
    required("NODE", &args.node)?;
    required("--http", &args.http)?;
    required("--raft", &args.raft)?;
    let body = json!({
        "node_id": args.node,
        "http_addr": args.http,
        "raft_addr": args.raft,
    });
    let answer = server
        .post("/v1/cluster/join", &body, wait(&args.timeout)?)
        .map_err(|e| super::cli_error(e, server, "server join", ADMIN))?;
    if args.json.json {
        let value = json!({
            "ok": true,
            "op": "join",
            "node_id": args.node,
            "http_addr": args.http,
            "raft_addr": args.raft,
            "server": answer.node,
        });
        return ctx.out.json(&super::pretty(&value)?);
    }
    ctx.out.line(format!(
        "Node {} joined the cluster through {} (HTTP {}, Raft {}): a learner until it has \
         caught up, then a voter.",
        args.node, answer.node, args.http, args.raft
    ))?;
    ctx.out
        .line("hint: kron server status shows its role and how far behind it is")
}

pub fn leave(ctx: &mut Ctx, server: &Server, args: &ServerLeaveArgs) -> CliResult {
    required("NODE", &args.node)?;
    let body = json!({ "node_id": args.node });
    let answer = server
        .post("/v1/cluster/leave", &body, wait(&args.timeout)?)
        .map_err(|e| super::cli_error(e, server, "server leave", ADMIN))?;
    if args.json.json {
        let value = json!({
            "ok": true,
            "op": "leave",
            "node_id": args.node,
            "server": answer.node,
        });
        return ctx.out.json(&super::pretty(&value)?);
    }
    ctx.out.line(format!(
        "Node {} left the cluster (through {}); it can be stopped now.",
        args.node, answer.node
    ))
}

pub fn status(ctx: &mut Ctx, server: &Server, json: bool) -> CliResult {
    let answer = server
        .get("/v1/cluster/status")
        .map_err(|e| super::cli_error(e, server, "server status", READER))?;
    let s = &answer.body;
    if json {
        return ctx.out.json(&super::pretty(s)?);
    }
    let text = |key: &str| s.get(key).and_then(Value::as_str).map(str::to_string);
    let number = |key: &str| s.get(key).and_then(Value::as_u64);
    let node = text("node_id").unwrap_or_else(|| "?".to_string());
    let role = text("role").unwrap_or_else(|| "?".to_string());
    let leader_id = text("leader_id");
    let style = ctx.out.style;
    ctx.out.line(format!(
        "{}  {}  ({})",
        style.paint(Some(Color::Bold), &node),
        role,
        answer.node
    ))?;
    let leader = match (&leader_id, text("leader_http")) {
        (Some(id), Some(http)) => format!("{id} at {http}"),
        (Some(id), None) => id.clone(),
        (None, _) => "none known (an election may be under way)".to_string(),
    };
    let shown = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
    let mut fields = vec![
        ("leader", leader),
        ("term", shown(number("term"))),
        ("commit index", shown(number("commit_index"))),
        ("applied index", shown(number("applied_index"))),
    ];
    if let Some(offset) = s.get("clock_offset_ms").filter(|v| !v.is_null()) {
        fields.push(("clock offset", offset_text(offset)));
    }
    for (key, value) in fields {
        ctx.out.line(format!("  {key:<14} {value}"))?;
    }
    let members: &[Value] = s
        .get("members")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if members.is_empty() {
        return Ok(());
    }
    ctx.out.line("")?;
    let has = |key: &str| {
        members
            .iter()
            .any(|m| m.get(key).is_some_and(|v| !v.is_null()))
    };
    let (with_lag, with_offset) = (has("lag"), has("clock_offset_ms"));
    let mut columns = vec![
        Column::left("NODE"),
        Column::left("ROLE"),
        Column::left("HTTP"),
        Column::left("RAFT"),
    ];
    if with_lag {
        columns.push(Column::right("LAG"));
    }
    if with_offset {
        columns.push(Column::right("CLOCK OFFSET"));
    }
    let mut table = Table::new(columns);
    for member in members {
        let field = |key: &str| {
            member
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_string()
        };
        let id = field("node_id");
        let role = if leader_id.as_deref() == Some(id.as_str()) {
            "leader"
        } else if member.get("voter").and_then(Value::as_bool).unwrap_or(true) {
            "voter"
        } else {
            "learner"
        };
        let mut row = vec![
            Cell::new(id.clone()),
            Cell::new(role),
            Cell::new(field("http_addr")),
            Cell::new(field("raft_addr")),
        ];
        if with_lag {
            row.push(Cell::new(lag_text(member.get("lag"))));
        }
        if with_offset {
            row.push(Cell::new(
                member
                    .get("clock_offset_ms")
                    .filter(|v| !v.is_null())
                    .map_or("-".to_string(), offset_text),
            ));
        }
        table.push(row);
    }
    for line in table.render(&ctx.out.style, ctx.out.width) {
        ctx.out.line(line)?;
    }
    Ok(())
}

/// A follower's lag: log entries behind the leader (a number), or whatever the node says.
fn lag_text(lag: Option<&Value>) -> String {
    match lag {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => one_line(&other.to_string()),
    }
}

/// A clock offset in milliseconds, signed: `+1250 ms`, `-3 ms`.
fn offset_text(offset: &Value) -> String {
    match offset.as_i64() {
        Some(ms) => format!("{ms:+} ms"),
        None => one_line(&offset.to_string()),
    }
}
