//! Reaching the live runtime: the control socket's client (`kron_runtime::control_client`),
//! and its failures as the command line reports them.

use kron_core::admin::{RefusalKind, TOKEN_FILE};
pub use kron_runtime::control_client::{send, ControlError, DEFAULT_WAIT};

use crate::data::DataDir;
use crate::error::{one_line, CliError};

/// A control failure as a command-line failure.
pub trait IntoCli {
    /// As a CLI failure about `dir`; an unknown timer reads like the offline one.
    fn into_cli(self, dir: &DataDir, timer: Option<&str>) -> CliError;
}

impl IntoCli for ControlError {
    fn into_cli(self, dir: &DataDir, timer: Option<&str>) -> CliError {
        match self {
            ControlError::Unreachable(why) => CliError::failure(why),
            ControlError::Unknown(why) => {
                let check = match timer {
                    Some(name) => format!("`kron job status {name}` and `kron job history {name}`"),
                    None => "`kron runtime status`".to_string(),
                };
                CliError::unknown(format!(
                    "{why}; the request was delivered and may still be carried out: its outcome is unknown\nhint: check with {check} before trying again"
                ))
            }
            ControlError::Refused { kind, error } => match (kind, timer) {
                (RefusalKind::UnknownTimer, Some(name)) => {
                    CliError::failure(format!("no timer named {name:?} in {}", dir.display()))
                }
                (RefusalKind::Unauthorized, _) => CliError::failure(format!(
                    "the runtime refused the request: {} (is {} from another runtime?)",
                    one_line(&error),
                    dir.path.join(TOKEN_FILE).display()
                )),
                _ => CliError::failure(format!("the runtime refused: {}", one_line(&error))),
            },
        }
    }
}
