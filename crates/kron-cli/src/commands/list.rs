//! `kron job list`: a table of timers.

use serde::Serialize;

use super::Ctx;
use crate::cli::JsonArg;
use crate::data::{self, TimerJson};
use crate::error::CliResult;
use crate::output::style::{state_color, status_color};
use crate::output::table::{Cell, Column, Table};

#[derive(Serialize)]
struct ListJson {
    data_dir: String,
    live: bool,
    timers: Vec<TimerJson>,
}

pub fn run(ctx: &mut Ctx, args: JsonArg) -> CliResult {
    let reader = ctx.dir.reader()?;
    let directory = data::directory_view(&reader)?;
    let live = ctx.dir.is_live();
    if args.json {
        let value = data::to_value(&ListJson {
            data_dir: data::absolute(&ctx.dir.path),
            live,
            timers: directory.views.iter().map(TimerJson::from_view).collect(),
        })?;
        return ctx.out.json(&value);
    }
    if directory.views.is_empty() {
        return ctx.out.line(format!("No timers in {}.", ctx.dir.display()));
    }
    let mut table = Table::new(columns());
    let time = &ctx.time;
    let mut overdue = false;
    for view in &directory.views {
        let rec = &view.record;
        let next = match view.next_run_at {
            Some(at) => {
                overdue |= at < time.now;
                Cell::new(time.when(at)).or_compact(time.relative(at))
            }
            None => Cell::new("-"),
        };
        let last = match rec.last_run_at {
            Some(at) => Cell::new(time.when(at)).or_compact(time.relative(at)),
            None => Cell::new("-"),
        };
        let status = rec
            .last_status
            .as_ref()
            .map_or("-".to_string(), |s| s.display());
        table.push(vec![
            Cell::new(rec.def.id.to_string()),
            Cell::colored(view.state.as_str(), state_color(view.state.as_str())),
            Cell::new(view.schedule.clone()),
            next,
            last,
            Cell::colored(status.clone(), status_color(&status)),
            Cell::new(rec.run_count.to_string()),
            Cell::new(rec.failure_count.to_string()),
        ]);
    }
    for line in table.render(&ctx.out.style, ctx.out.width) {
        ctx.out.line(line)?;
    }
    if overdue && !live {
        ctx.out
            .wrapped("(no runtime is running: overdue timers run when the application starts)")?;
    }
    Ok(())
}

/// The table's columns: which ones shrink first, and how far, when the terminal is narrow.
pub(crate) fn columns() -> Vec<Column> {
    vec![
        Column::left("ID"),
        Column::left("STATE"),
        Column::left("SCHEDULE").shrink(2, 12),
        Column::left("NEXT RUN").shrink(1, 10),
        Column::left("LAST RUN").shrink(3, 10),
        Column::left("LAST STATUS").shrink(4, 12),
        Column::right("RUNS"),
        Column::right("FAILS"),
    ]
}
