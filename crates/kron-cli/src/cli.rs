//! The command-line model (clap derive). Parsing only: the commands live in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Observe and administer a Kron data directory, live or stopped, or a Kron server.
///
/// With --server (or KRON_SERVER) the job commands talk to a server's HTTP API instead of a
/// data directory. Read commands (list, status, history, explain, doctor, runtime status) never take the
/// directory's lock and never write. Admin commands (pause, resume, trigger, remove, shutdown)
/// go to the live runtime when one owns the directory, and to storage directly otherwise.
#[derive(Debug, Parser)]
#[command(
    name = "kron",
    bin_name = "kron",
    version,
    propagate_version = true,
    disable_help_subcommand = true,
    after_help = "Exit codes: 0 success, 1 failure, 2 usage error, 3 outcome unknown (the live runtime did not answer in time). Documentation: docs/cli.md"
)]
pub struct Cli {
    /// The data directory [default: $KRON_HOME, else ./.kron]
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "KRON_HOME",
        hide_env = true
    )]
    pub data_dir: Option<PathBuf>,

    /// A Kron server to work on instead of a data directory (http://host:port; a cluster's
    /// nodes separated by commas) [env: KRON_SERVER]
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "KRON_SERVER",
        hide_env = true
    )]
    pub server: Option<String>,

    /// The server's bearer token [env: KRON_TOKEN; default: DIR/kron.token when it exists]
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "KRON_TOKEN",
        hide_env = true
    )]
    pub token: Option<String>,

    /// When to colour output: auto (a terminal, and NO_COLOR unset), always, never
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Timers: list, status, history, explain, pause, resume, trigger, remove
    #[command(subcommand)]
    Job(JobCommand),
    /// Explain a cron expression and list its next fire times
    Cron(CronArgs),
    /// History retention
    #[command(subcommand)]
    Log(LogCommand),
    /// Check the data directory; one line per check (OK, WARN, FAIL); exit 1 if any failed
    Doctor(JsonArg),
    /// The live runtime: status, shutdown
    #[command(subcommand)]
    Runtime(RuntimeCommand),
    /// Server mode: run a node whose timers target named tasks that workers claim; join, leave
    /// and inspect a cluster
    #[command(subcommand)]
    Server(ServerCommand),
    /// A server's audit log (DIR/kron.audit.jsonl): verify its hash chain, tail it, query it
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a shell completion script (bash, zsh or fish) to standard output
    Completions(CompletionsArgs),
    /// Serve the web dashboard of the data directory (timers, runs, history) in a browser
    Ui(UiArgs),
}

#[derive(Debug, Args)]
pub struct UiArgs {
    /// The address to listen on; loopback by default, since reading needs no login
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7378")]
    pub listen: String,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct JsonArg {
    /// Print JSON (stable shape, instants in ISO 8601 UTC) instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// A table of timers: state, schedule, next and last run, runs and failures
    #[command(visible_alias = "ls")]
    List(JsonArg),
    /// Everything known about one timer, with its next 5 fire times
    Status(NameArgs),
    /// A timer's events, oldest first
    History(HistoryArgs),
    /// Why a timer did (or did not) run around a given time, in plain words
    Explain(ExplainArgs),
    /// Stop a timer from starting runs until resumed
    Pause(AdminArgs),
    /// Resume a paused timer
    Resume(AdminArgs),
    /// Run a timer now, once, off-schedule
    Trigger(AdminArgs),
    /// Delete a timer (its history stays)
    #[command(visible_alias = "rm")]
    Remove(AdminArgs),
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The timer's name
    pub name: String,
    /// How long to wait for the live runtime's answer (10s, 1m; a bare number is seconds); past it the outcome is unknown (exit 3)
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub timeout: String,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// The timer's name
    pub name: String,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The timer's name (a removed timer's history is still shown)
    pub name: String,
    /// Show at most the latest N events
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20,
          value_parser = crate::parse::count, allow_negative_numbers = true)]
    pub limit: usize,
    /// Only events since then: a duration back from now (30m, 2h, 1d) or a time (2026-03-08T02:30:00Z, or local 2026-03-08 02:30)
    #[arg(long, value_name = "DURATION|TIME")]
    pub since: Option<String>,
    /// Only events of these kinds (repeat, or separate with commas): RUN_FAILED, failed, run_dead, ...
    #[arg(long, value_name = "KIND", value_delimiter = ',')]
    pub kind: Vec<String>,
    /// Show whole error tracebacks, not just their first line
    #[arg(long, short = 'v')]
    pub verbose: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The timer's name
    pub name: String,
    /// The time to explain: a time, or a duration back from now [default: the timer's last due time]
    #[arg(long, value_name = "TIME|DURATION")]
    pub at: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct CronArgs {
    /// The expression: 5 fields (minute hour day month weekday), 6 with seconds first, or @daily etc.
    pub expr: String,
    /// The IANA time zone the expression is read in
    #[arg(long, short = 't', value_name = "TZ", default_value = "UTC")]
    pub timezone: String,
    /// How many fire times to list
    #[arg(short = 'n', long = "count", value_name = "N", default_value_t = 10,
          value_parser = crate::parse::count, allow_negative_numbers = true)]
    pub count: usize,
    /// List fire times after this time instead of now
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Delete old events beyond the limits and give the space back (needs the runtime stopped)
    Compact(CompactArgs),
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Keep, per timer, the events of its N most recent runs (and everything after them), and
    /// of its events that belong to no run (registered, updated, paused...) the latest N
    #[arg(long, value_name = "N", value_parser = crate::parse::count, allow_negative_numbers = true)]
    pub keep_runs: Option<usize>,
    /// Delete events older than this (30d, 12h, ...)
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum RuntimeCommand {
    /// The live runtime: pid, started at, version, active runs
    Status(JsonArg),
    /// Ask the live runtime to shut down gracefully, and wait until it has
    Shutdown(ShutdownArgs),
}

#[derive(Debug, Args)]
pub struct ShutdownArgs {
    /// How long the runtime may wait for running callbacks, and how long to wait for it (30s, 2m; a bare number is seconds)
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: String,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; fails naming the first bad record (edited, deleted, moved)
    Verify(AuditFileArgs),
    /// The latest records
    Tail(AuditTailArgs),
    /// Records matching every filter given, oldest first
    Query(AuditQueryArgs),
}

#[derive(Debug, Args)]
pub struct AuditFileArgs {
    /// The audit log [default: DIR/kron.audit.jsonl]
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct AuditTailArgs {
    /// Show the latest N records
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20,
          value_parser = crate::parse::count, allow_negative_numbers = true)]
    pub limit: usize,
    #[command(flatten)]
    pub file: AuditFileArgs,
}

#[derive(Debug, Args)]
pub struct AuditQueryArgs {
    /// Only records of this token name
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
    /// Only records of this tenant
    #[arg(long, value_name = "TENANT")]
    pub tenant: Option<String>,
    /// Only "allowed" or "refused" records
    #[arg(long, value_name = "DECISION", value_parser = ["allowed", "refused"])]
    pub decision: Option<String>,
    /// Only records answered with this HTTP status
    #[arg(long, value_name = "CODE")]
    pub status: Option<u16>,
    /// Only records whose path starts with this (e.g. /v1/timers/digest)
    #[arg(long, value_name = "PREFIX")]
    pub path: Option<String>,
    /// Only records at or after this time (2026-03-08T02:30:00Z)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only records before this time
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Show at most the latest N matching records
    #[arg(long, short = 'n', value_name = "N", value_parser = crate::parse::count)]
    pub limit: Option<usize>,
    #[command(flatten)]
    pub file: AuditFileArgs,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// Run a server node on the data directory until SIGINT, SIGTERM or POST /v1/runtime/shutdown.
    /// A fresh directory without --leader-id becomes a cluster of one; an existing one resumes.
    Start(ServerStartArgs),
    /// Add a node (started with --leader-id) to the cluster: a learner first, a voter once it
    /// has caught up
    Join(ServerJoinArgs),
    /// Remove a node from the cluster
    Leave(ServerLeaveArgs),
    /// The cluster as a node sees it: members, roles, leader, term, commit and applied index
    Status(JsonArg),
}

#[derive(Debug, Clone, Args)]
pub struct ServerStartArgs {
    /// This node's name in the cluster
    #[arg(long, value_name = "ID", default_value = "n1")]
    pub node_id: String,
    /// Where the HTTP API listens (host:port; port 0 picks a free one)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7379")]
    pub http: String,
    /// Where Raft traffic between nodes listens (host:port; port 0 picks a free one)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7380")]
    pub raft: String,
    /// The shared admin token, also accepted for Raft traffic [default: DIR/kron.token,
    /// generated when missing]
    #[arg(
        long,
        value_name = "TOKEN",
        env = "KRON_CLUSTER_TOKEN",
        hide_env_values = true
    )]
    pub cluster_token: Option<String>,
    /// Start empty and wait to be added to the cluster this node leads
    #[arg(long, value_name = "ID")]
    pub leader_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ServerJoinArgs {
    /// The new node's name (the --node-id it was started with)
    pub node: String,
    /// The new node's HTTP address (host:port)
    #[arg(long, value_name = "ADDR")]
    pub http: String,
    /// The new node's Raft address (host:port)
    #[arg(long, value_name = "ADDR")]
    pub raft: String,
    /// How long to wait for the leader's answer (the node catches up first; 60s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub timeout: String,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct ServerLeaveArgs {
    /// The node to remove from the cluster
    pub node: String,
    /// How long to wait for the leader's answer (60s, 2m)
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub timeout: String,
    #[command(flatten)]
    pub json: JsonArg,
}
