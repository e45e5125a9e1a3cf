//! One module per command; `dispatch` maps the parsed command line to them.

mod admin;
mod audit;
mod completions;
mod cron;
mod doctor;
mod explain;
pub(crate) mod history;
pub(crate) mod list;
mod log;
mod runtime;
mod server;
mod status;
mod ui;

pub(crate) use explain::{
    latest_in_events as explain_latest_in_events, latest_in_store as explain_latest_in_store,
};

use kron_core::admin::TimerOp;

use crate::cli::{
    AuditCommand, Cli, Command, JobCommand, LogCommand, RuntimeCommand, ServerCommand,
};
use crate::data::DataDir;
use crate::error::CliResult;
use crate::output::timefmt::TimeFormatter;
use crate::output::Out;
use crate::remote::{self, Server};

/// What every command needs: the data directory (or the server), standard output, "now" and
/// the local zone.
pub struct Ctx {
    pub dir: DataDir,
    pub out: Out,
    pub time: TimeFormatter,
    /// `--server` (or `KRON_SERVER`) as given: the job commands go there instead of `dir`.
    pub server: Option<String>,
    /// `--token` (or `KRON_TOKEN`).
    pub token: Option<String>,
}

impl Ctx {
    pub fn new(cli: &Cli) -> Ctx {
        Ctx {
            dir: DataDir::new(cli.data_dir.clone()),
            out: Out::new(cli.color),
            time: TimeFormatter::system(),
            server: cli.server.clone().filter(|s| !s.trim().is_empty()),
            token: cli.token.clone(),
        }
    }

    /// The server the user named, with its token, if any.
    fn remote(&self) -> CliResult<Option<Server>> {
        self.server
            .as_deref()
            .map(|urls| self.connect(urls))
            .transpose()
    }

    /// The server the user named, else the local default (for `kron server ...`).
    fn remote_or_default(&self) -> CliResult<Server> {
        self.connect(self.server.as_deref().unwrap_or(remote::DEFAULT_SERVER))
    }

    fn connect(&self, urls: &str) -> CliResult<Server> {
        Server::parse(urls, remote::token(self.token.as_deref(), &self.dir.path))
    }
}

pub fn dispatch(ctx: &mut Ctx, command: Command) -> CliResult {
    if let Some(server) = ctx.remote()? {
        return dispatch_remote(ctx, &server, command);
    }
    dispatch_local(ctx, command)
}

/// With a server: the job commands over HTTP; commands of a data directory refuse (exit 2);
/// the rest as usual.
fn dispatch_remote(ctx: &mut Ctx, server: &Server, command: Command) -> CliResult {
    match command {
        Command::Job(job) => match job {
            JobCommand::List(args) => remote::jobs::list(ctx, server, args),
            JobCommand::Status(args) => {
                remote::jobs::status(ctx, server, &args.name, args.json.json)
            }
            JobCommand::History(args) => remote::jobs::history(ctx, server, &args),
            JobCommand::Explain(_) => Err(remote::unsupported("job explain")),
            JobCommand::Pause(args) => remote::jobs::admin(ctx, server, TimerOp::Pause, &args),
            JobCommand::Resume(args) => remote::jobs::admin(ctx, server, TimerOp::Resume, &args),
            JobCommand::Trigger(args) => remote::jobs::admin(ctx, server, TimerOp::Trigger, &args),
            JobCommand::Remove(args) => remote::jobs::admin(ctx, server, TimerOp::Remove, &args),
        },
        Command::Log(LogCommand::Compact(_)) => Err(remote::unsupported("log compact")),
        Command::Doctor(_) => Err(remote::unsupported("doctor")),
        Command::Runtime(RuntimeCommand::Status(_)) => Err(remote::unsupported("runtime status")),
        Command::Runtime(RuntimeCommand::Shutdown(_)) => {
            Err(remote::unsupported("runtime shutdown"))
        }
        Command::Audit(_) => Err(remote::unsupported("audit")),
        // The dashboard of a server is its own `/ui`; `kron ui` serves a data directory's.
        Command::Ui(_) => Err(remote::unsupported("ui")),
        // Neither reads data (cron, completions), or they already are the server's own.
        other @ (Command::Cron(_) | Command::Completions(_) | Command::Server(_)) => {
            dispatch_local(ctx, other)
        }
    }
}

fn dispatch_local(ctx: &mut Ctx, command: Command) -> CliResult {
    match command {
        Command::Job(job) => match job {
            JobCommand::List(args) => list::run(ctx, args),
            JobCommand::Status(args) => status::run(ctx, &args.name, args.json.json),
            JobCommand::History(args) => history::run(ctx, &args),
            JobCommand::Explain(args) => explain::run(ctx, &args),
            JobCommand::Pause(args) => admin::run(ctx, TimerOp::Pause, &args),
            JobCommand::Resume(args) => admin::run(ctx, TimerOp::Resume, &args),
            JobCommand::Trigger(args) => admin::run(ctx, TimerOp::Trigger, &args),
            JobCommand::Remove(args) => admin::run(ctx, TimerOp::Remove, &args),
        },
        Command::Cron(args) => cron::run(ctx, &args),
        Command::Log(LogCommand::Compact(args)) => log::compact(ctx, &args),
        Command::Doctor(args) => doctor::run(ctx, args.json),
        Command::Runtime(RuntimeCommand::Status(args)) => runtime::status(ctx, args.json),
        Command::Runtime(RuntimeCommand::Shutdown(args)) => runtime::shutdown(ctx, &args),
        Command::Server(ServerCommand::Start(args)) => server::start(ctx, &args),
        Command::Server(ServerCommand::Join(args)) => {
            remote::cluster::join(ctx, &ctx.remote_or_default()?, &args)
        }
        Command::Server(ServerCommand::Leave(args)) => {
            remote::cluster::leave(ctx, &ctx.remote_or_default()?, &args)
        }
        Command::Server(ServerCommand::Status(args)) => {
            remote::cluster::status(ctx, &ctx.remote_or_default()?, args.json)
        }
        Command::Audit(AuditCommand::Verify(args)) => audit::verify(ctx, &args),
        Command::Audit(AuditCommand::Tail(args)) => audit::tail(ctx, &args),
        Command::Audit(AuditCommand::Query(args)) => audit::query(ctx, &args),
        Command::Completions(args) => completions::run(ctx, args.shell),
        Command::Ui(args) => ui::run(ctx, &args),
    }
}
