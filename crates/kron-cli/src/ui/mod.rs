//! The dashboard's two sources ([`kron_ui::Dashboard`]): a data directory with its live
//! runtime's control channel (`kron ui`, [`embedded`]) and a server node (`kron server start`
//! mounts it at `/ui`, [`server`]).

pub mod embedded;
pub mod server;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use kron_ui::UiError;

use crate::error::CliError;

/// A CLI failure while reading for the dashboard: the store could not answer.
pub fn unavailable(e: CliError) -> UiError {
    UiError::Unavailable(crate::error::one_line(&e.to_string()))
}

/// A blocking read or action, off the async runtime's threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, UiError> + Send + 'static,
) -> Result<T, UiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(UiError::Unavailable(format!("the read failed: {e}"))))
}
