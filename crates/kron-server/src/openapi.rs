//! The API's OpenAPI 3.1 description, built from one table of routes ([`ROUTES`]): each route's
//! method, path, role, request fields and answer. A test checks the table against the router,
//! so a route cannot be added without being described.

use serde_json::{json, Map, Value};

/// One route as described.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// The role(s) allowed; "none" for no token.
    pub roles: &'static str,
    /// Request body fields: (name, JSON type, required, description).
    pub body: &'static [(&'static str, &'static str, bool, &'static str)],
    /// What a success answers.
    pub answer: &'static str,
}

const TIMER_BODY: &[(&str, &str, bool, &str)] = &[
    (
        "name",
        "string",
        true,
        "The timer's name (1-128 of A-Z a-z 0-9 _ - . :).",
    ),
    ("task", "string", true, "The task workers claim."),
    (
        "payload",
        "any",
        false,
        "JSON handed to the worker with each run (default null, at most 64 KiB).",
    ),
    (
        "cron",
        "string",
        false,
        "A cron expression read in timezone (exactly one of cron, every, after, at).",
    ),
    (
        "every",
        "string|integer",
        false,
        "A duration such as \"30m\", or milliseconds.",
    ),
    (
        "after",
        "string|integer",
        false,
        "Once, this long after creation.",
    ),
    (
        "at",
        "string",
        false,
        "Once, at this ISO 8601 instant (naive: in timezone).",
    ),
    ("timezone", "string", false, "IANA zone (default UTC)."),
    (
        "max_attempts",
        "integer",
        false,
        "Attempts per run, 1 to 1000000 (default 3).",
    ),
    (
        "overlap",
        "string",
        false,
        "delay | skip | allow (default delay).",
    ),
    (
        "catchup",
        "string",
        false,
        "once | skip | all (default once).",
    ),
    (
        "jitter",
        "string|integer|null",
        false,
        "Random delay up to this duration (default none).",
    ),
    (
        "tenant_id",
        "string",
        false,
        "The timer's tenant (a tenant's token: its own, the default).",
    ),
];

const COMPLETE_BODY: &[(&str, &str, bool, &str)] = &[
    ("worker_id", "string", true, "The reporting worker."),
    (
        "fencing_token",
        "integer",
        true,
        "The token the run was claimed with.",
    ),
    ("duration_ms", "integer", false, "How long the attempt ran."),
];

/// Every route of the API.
pub const ROUTES: &[RouteDoc] = &[
    RouteDoc { method: "get", path: "/healthz", summary: "Liveness; needs no token.", roles: "none", body: &[], answer: "{ok, node_id, role, now_ms}" },
    RouteDoc { method: "get", path: "/metrics", summary: "Prometheus text format: timers by state, runs by outcome, due-to-claim latency, lease expiries, HTTP requests and latency, Raft term/leader/commit/applied.", roles: "reader, operator, admin", body: &[], answer: "text/plain" },
    RouteDoc { method: "get", path: "/v1/openapi.json", summary: "This description.", roles: "reader, worker, operator, admin", body: &[], answer: "OpenAPI document" },
    RouteDoc { method: "post", path: "/v1/timers", summary: "Create or update a timer targeting a task.", roles: "operator, admin", body: TIMER_BODY, answer: "the timer's status dict" },
    RouteDoc { method: "post", path: "/v1/timers:batch", summary: "Create or update up to 1000 timers in one request, each item as POST /v1/timers reads it. Every item is checked before anything is written: a bad one refuses the whole batch, naming its index (timers[i]) and field. The timers are proposed together, as one log entry.", roles: "operator, admin", body: &[
        ("timers", "array of timer", true, "The timers, each with the fields of POST /v1/timers."),
    ], answer: "{timers: [status dict]}, in the order given" },
    RouteDoc { method: "get", path: "/v1/timers", summary: "Every visible timer's status dict, by name.", roles: "reader, operator, admin", body: &[], answer: "[status dict]" },
    RouteDoc { method: "get", path: "/v1/timers/{name}", summary: "A timer's status dict (embedded mode's keys, instants as ISO 8601 UTC, plus task, payload, tenant_id).", roles: "reader, operator, admin", body: &[], answer: "status dict" },
    RouteDoc { method: "delete", path: "/v1/timers/{name}", summary: "Remove a timer (its history stays).", roles: "operator, admin", body: &[], answer: "{removed: true}" },
    RouteDoc { method: "get", path: "/v1/timers/{name}/history", summary: "The timer's latest events, oldest first (?limit=N, default 100).", roles: "reader, operator, admin", body: &[], answer: "[event dict]" },
    RouteDoc { method: "post", path: "/v1/timers/{name}/pause", summary: "Pause a timer.", roles: "operator, admin", body: &[], answer: "status dict" },
    RouteDoc { method: "post", path: "/v1/timers/{name}/resume", summary: "Resume a paused timer.", roles: "operator, admin", body: &[], answer: "status dict" },
    RouteDoc { method: "post", path: "/v1/timers/{name}/trigger", summary: "Make a manual run due now.", roles: "operator, admin", body: &[], answer: "{run_id}" },
    RouteDoc { method: "get", path: "/v1/workers", summary: "Workers registered with this node.", roles: "reader, operator, admin", body: &[], answer: "[{worker_id, tasks, lease_seconds, tenant_id, registered_at, last_heartbeat, runs_held}]" },
    RouteDoc { method: "post", path: "/v1/workers/register", summary: "Register the tasks a worker serves.", roles: "worker, admin", body: &[
        ("worker_id", "string", true, "The worker's id."),
        ("tasks", "array of string", false, "Task names it serves (empty: any)."),
        ("lease_seconds", "integer", false, "Lease of its claims, 1 to 86400 (default KRON_WORKER_LEASE_SECONDS or 30)."),
    ], answer: "the worker" },
    RouteDoc { method: "post", path: "/v1/workers/heartbeat", summary: "Extend the leases of every run the worker holds.", roles: "worker, admin", body: &[
        ("worker_id", "string", true, "The worker's id."),
    ], answer: "{worker_id, leases: [{run_id, fencing_token, lease_expires_at}], lost: [run_id]}" },
    RouteDoc { method: "post", path: "/v1/workers/poll", summary: "Claim due runs under a lease.", roles: "worker, admin", body: &[
        ("worker_id", "string", true, "The worker's id."),
        ("tasks", "array of string", false, "Task names (default: as registered)."),
        ("max_runs", "integer", false, "Up to this many runs, 1 to 1000; the answer is then {runs: [...]}."),
        ("wait_ms", "integer", false, "Wait up to this long for a run (long-poll), 0 to 60000."),
    ], answer: "{run_id, timer_id, task, payload, attempt, scheduled_at, fencing_token, lease_expires_at} or null; {runs: [...]} with max_runs" },
    RouteDoc { method: "post", path: "/v1/runs/{run_id}/succeed", summary: "Report a successful attempt.", roles: "worker, admin", body: COMPLETE_BODY, answer: "{run_id, ok: true}; 400 \"stale fencing token\" / \"run not active\"" },
    RouteDoc { method: "post", path: "/v1/runs/{run_id}/fail", summary: "Report a failed attempt (retried under max_attempts).", roles: "worker, admin", body: &[
        ("worker_id", "string", true, "The reporting worker."),
        ("fencing_token", "integer", true, "The token the run was claimed with."),
        ("error", "string", true, "Error type, message and traceback."),
        ("duration_ms", "integer", false, "How long the attempt ran."),
    ], answer: "{run_id, ok: true}; 400 \"stale fencing token\" / \"run not active\"" },
    RouteDoc { method: "post", path: "/v1/runs/complete", summary: "Report many attempts at once.", roles: "worker, admin", body: &[
        ("worker_id", "string", true, "The reporting worker."),
        ("results", "array of {run_id, fencing_token, status: succeeded|failed, error?, duration_ms?}", true, "At most 1000 reports."),
    ], answer: "{results: [{run_id, ok: true} | {run_id, ok: false, status, error}]}" },
    RouteDoc { method: "get", path: "/v1/cluster/status", summary: "Raft role, leader, term, members (with replication lag and clock offsets, measured by the leader), log, commit and applied index.", roles: "reader, operator, admin", body: &[], answer: "{raft: \"openraft\", node_id, role, leader_id, leader_http, term, members: [{node_id, http_addr, raft_addr, voter, role: voter|learner, matched_index, matched_term, lag, clock_offset_ms, clock_skewed}], last_log_index, commit_index, applied_index, clock_skewed, note?}" },
    RouteDoc { method: "post", path: "/v1/cluster/join", summary: "Add a node (leader only).", roles: "admin", body: &[
        ("node_id", "string", true, "The node's id."),
        ("http_addr", "string", true, "Its HTTP address (host:port)."),
        ("raft_addr", "string", true, "Its Raft address (host:port)."),
        ("voter", "boolean", false, "Promote it to voter once it has caught up (default true); false keeps it a learner."),
    ], answer: "{joined: true}" },
    RouteDoc { method: "post", path: "/v1/cluster/leave", summary: "Remove a node (leader only).", roles: "admin", body: &[
        ("node_id", "string", true, "The node's id."),
    ], answer: "{left: true}" },
    RouteDoc { method: "post", path: "/v1/runtime/shutdown", summary: "Stop the server gracefully.", roles: "admin", body: &[], answer: "{shutting_down: true}" },
];

fn schema_of(kind: &str) -> Value {
    match kind {
        "string" => json!({ "type": "string" }),
        "integer" => json!({ "type": "integer", "minimum": 0 }),
        "any" => json!({}),
        other => json!({ "description": other }),
    }
}

fn operation(route: &RouteDoc) -> Value {
    let mut op = Map::new();
    op.insert("summary".into(), json!(route.summary));
    op.insert("x-roles".into(), json!(route.roles));
    if route.roles != "none" {
        op.insert("security".into(), json!([{ "bearer": [] }]));
    } else {
        op.insert("security".into(), json!([]));
    }
    let params: Vec<Value> = route
        .path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .chain(route.path.ends_with("/history").then(|| {
            json!({ "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 0, "default": 100 } })
        }))
        .collect();
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    if !route.body.is_empty() {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (name, kind, needed, description) in route.body {
            let mut schema = schema_of(kind);
            if let Value::Object(map) = &mut schema {
                map.insert(
                    "description".into(),
                    json!(format!("{kind}: {description}")),
                );
            }
            properties.insert((*name).to_string(), schema);
            if *needed {
                required.push(*name);
            }
        }
        op.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { "application/json": { "schema": {
                "type": "object", "properties": properties, "required": required,
            }}}}),
        );
    }
    let error = json!({ "$ref": "#/components/responses/Error" });
    let mut responses = Map::new();
    responses.insert("200".into(), json!({ "description": route.answer }));
    if route.roles != "none" {
        for code in ["400", "401", "403", "404", "413"] {
            responses.insert(code.into(), error.clone());
        }
        if route.method != "get" {
            responses.insert(
                "409".into(),
                json!({ "$ref": "#/components/responses/NotLeader" }),
            );
            responses.insert("503".into(), error.clone());
        }
    }
    op.insert("responses".into(), Value::Object(responses));
    Value::Object(op)
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(methods) = entry {
            methods.insert(route.method.to_string(), operation(route));
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Kron server API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Timers that target named tasks, claimed by workers under leases with fencing tokens. Instants are ISO 8601 UTC strings; errors are {\"error\": ...}.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": { "description": "{\"error\": message}", "content": { "application/json": { "schema": {
                    "type": "object", "properties": { "error": { "type": "string" } }, "required": ["error"] } } } },
                "NotLeader": { "description": "not_leader, or a conflict", "content": { "application/json": { "schema": {
                    "type": "object", "properties": {
                        "error": { "type": "string" },
                        "leader_id": { "type": ["string", "null"] },
                        "leader_http": { "type": ["string", "null"] } },
                    "required": ["error"] } } } },
            },
        },
    })
}
