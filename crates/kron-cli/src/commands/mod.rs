//! One module per command; `dispatch` maps the parsed command line to them.

mod admin;
mod audit;
mod completions;
mod cron;
mod doctor;
mod explain;
mod history;
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

/// What every command needs: the data directory, standard output, "now" and the local zone.
pub struct Ctx {
    pub dir: DataDir,
    pub out: Out,
    pub time: TimeFormatter,
}

impl Ctx {
    pub fn new(cli: &Cli) -> Ctx {
        Ctx {
            dir: DataDir::new(cli.data_dir.clone()),
            out: Out::new(cli.color),
            time: TimeFormatter::system(),
        }
    }
}

pub fn dispatch(ctx: &mut Ctx, command: Command) -> CliResult {
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
        Command::Audit(AuditCommand::Verify(args)) => audit::verify(ctx, &args),
        Command::Audit(AuditCommand::Tail(args)) => audit::tail(ctx, &args),
        Command::Audit(AuditCommand::Query(args)) => audit::query(ctx, &args),
        Command::Completions(args) => completions::run(ctx, args.shell),
        Command::Ui(args) => ui::run(ctx, &args),
    }
}
