//! The `kron` command line: observe and administer a Kron data directory, live or stopped.
//!
//! The whole CLI is this library, so it ships two ways from the same code: the `kron` cargo
//! binary (`src/main.rs`) and the console script of the Python package, which calls
//! [`main_with_args`] through the binding. Neither path ever exits the process or lets a panic
//! through: the result is an exit code (0 success, 1 failure, 2 usage error).
//!
//! * Read commands (`job list/status/history/explain`, `cron`, `doctor`, `runtime status`) use
//!   [`kron_store::Reader`]: they never take the writer lock, never write, never create.
//! * Admin commands (`job pause/resume/trigger/remove`, `runtime shutdown`) go to the live
//!   runtime over its control socket ([`live`]) when one holds the lock, and otherwise apply
//!   to storage directly through the [`kron_store::Store`] and the engine.
//! * With `--server URL` (or `KRON_SERVER`) the `job` commands go to a Kron server's HTTP API
//!   instead (module `remote`); `server join|leave|status` always do.

mod cli;
mod commands;
mod data;
mod error;
pub mod live;
mod output;
mod parse;
mod remote;
mod ui;

use std::cell::{Cell, RefCell};
use std::ffi::OsString;
use std::io::Write;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use clap::Parser;

pub use error::{EXIT_FAILURE, EXIT_USAGE};

/// Runs the CLI with `args` (the program name first) and returns the exit code.
pub fn main_with_args(args: Vec<String>) -> i32 {
    main_with_os_args(args.into_iter().map(OsString::from).collect())
}

/// [`main_with_args`] for arguments that may not be UTF-8.
pub fn main_with_os_args(args: Vec<OsString>) -> i32 {
    guarded(|| run(args))
}

/// Runs `f` so that a panic becomes one line on standard error and exit code 1: no panic
/// message or backtrace ever reaches the user.
fn guarded(f: impl FnOnce() -> i32) -> i32 {
    install_panic_hook();
    IN_CLI.with(|flag| flag.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    IN_CLI.with(|flag| flag.set(false));
    match result {
        Ok(code) => code,
        Err(_) => {
            let what = PANIC_MESSAGE
                .with(|m| m.borrow_mut().take())
                .unwrap_or_else(|| "unexpected error".to_string());
            let _ = writeln!(
                std::io::stderr(),
                "kron: internal error: {} (please report this)",
                error::one_line(&what)
            );
            EXIT_FAILURE
        }
    }
}

thread_local! {
    /// Set while this thread runs the CLI: its panics are reported as one line, not by the
    /// default hook (no panic message or backtrace reaches the user).
    static IN_CLI: Cell<bool> = const { Cell::new(false) };
    static PANIC_MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Wraps the process's panic hook once: panics on a thread running the CLI are recorded
/// silently; all others (the host application's, when embedded in Python) go to the previous
/// hook as before.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CLI.with(Cell::get) {
                let message = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".to_string());
                let location = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                PANIC_MESSAGE.with(|m| *m.borrow_mut() = Some(format!("{message}{location}")));
            } else {
                previous(info);
            }
        }));
    });
}

fn run(args: Vec<OsString>) -> i32 {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout (exit 0), errors to stderr (exit 2). A closed pipe
            // is not worth reporting.
            let _ = e.print();
            return e.exit_code();
        }
    };
    let mut ctx = commands::Ctx::new(&cli);
    let result = commands::dispatch(&mut ctx, cli.command);
    let flushed = ctx.out.flush();
    match result.and(flushed) {
        Ok(()) => 0,
        Err(e) => {
            if let Some(message) = e.message() {
                let _ = writeln!(std::io::stderr(), "kron: {message}");
            }
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_exit_code_1() {
        assert_eq!(guarded(|| panic!("boom")), EXIT_FAILURE);
        assert_eq!(PANIC_MESSAGE.with(|m| m.borrow().clone()), None);
        assert_eq!(guarded(|| 0), 0);
        assert!(!IN_CLI.with(Cell::get));
    }

    #[test]
    fn usage_errors_and_help_never_exit_the_process() {
        assert_eq!(
            main_with_args(vec!["kron".into(), "--nope".into()]),
            EXIT_USAGE
        );
        assert_eq!(main_with_args(vec!["kron".into(), "--version".into()]), 0);
        assert_eq!(main_with_args(vec!["kron".into()]), EXIT_USAGE);
    }
}
