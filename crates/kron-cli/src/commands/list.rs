//! `kron job list`: a table of timers.

use kron_core::time::EpochMs;
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
    let rows: Vec<Row> = directory
        .views
        .iter()
        .map(|view| {
            let rec = &view.record;
            Row {
                id: rec.def.id.to_string(),
                state: view.state.as_str().to_string(),
                schedule: view.schedule.clone(),
                next: view.next_run_at,
                last: rec.last_run_at,
                status: rec.last_status.as_ref().map(|s| s.display()),
                runs: rec.run_count,
                fails: rec.failure_count,
            }
        })
        .collect();
    let overdue = render(ctx, &rows)?;
    if overdue && !live {
        ctx.out
            .wrapped("(no runtime is running: overdue timers run when the application starts)")?;
    }
    Ok(())
}

/// One timer's line in the table, read from a directory or from a server.
pub(crate) struct Row {
    pub id: String,
    pub state: String,
    pub schedule: String,
    pub next: Option<EpochMs>,
    pub last: Option<EpochMs>,
    pub status: Option<String>,
    pub runs: u64,
    pub fails: u64,
}

/// Prints the table of `rows`; answers whether a timer's next run is already past.
pub(crate) fn render(ctx: &mut Ctx, rows: &[Row]) -> CliResult<bool> {
    let mut table = Table::new(columns());
    let time = &ctx.time;
    let mut overdue = false;
    for row in rows {
        let next = match row.next {
            Some(at) => {
                overdue |= at < time.now;
                Cell::new(time.when(at)).or_compact(time.relative(at))
            }
            None => Cell::new("-"),
        };
        let last = match row.last {
            Some(at) => Cell::new(time.when(at)).or_compact(time.relative(at)),
            None => Cell::new("-"),
        };
        let status = row.status.clone().unwrap_or_else(|| "-".to_string());
        table.push(vec![
            Cell::new(row.id.clone()),
            Cell::colored(row.state.clone(), state_color(&row.state)),
            Cell::new(row.schedule.clone()),
            next,
            last,
            Cell::colored(status.clone(), status_color(&status)),
            Cell::new(row.runs.to_string()),
            Cell::new(row.fails.to_string()),
        ]);
    }
    for line in table.render(&ctx.out.style, ctx.out.width) {
        ctx.out.line(line)?;
    }
    Ok(overdue)
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
