//! The one mapping from runtime errors to `kron`'s exception classes (defined in Python, in
//! `kron/_errors.py`, so they can inherit both `KronError` and the builtin people expect).

use kron_core::{CommandError, CoreError};
use kron_runtime::RuntimeError;
use kron_store::StoreError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// Instantiates `kron._errors.<class_name>(*args)`.
fn kron_error<'py>(
    py: Python<'py>,
    class_name: &str,
    args: impl pyo3::call::PyCallArgs<'py>,
) -> PyErr {
    let made = py
        .import("kron._errors")
        .and_then(|module| module.getattr(class_name))
        .and_then(|class| class.call1(args));
    match made {
        Ok(instance) => PyErr::from_value(instance),
        Err(err) => err,
    }
}

pub fn invalid(py: Python<'_>, err: CoreError) -> PyErr {
    match err {
        CoreError::InvalidArgument { arg, value, reason } => {
            let message = format!("invalid {arg} {value:?}: {reason}");
            kron_error(py, "InvalidArgumentError", (message, arg, value))
        }
    }
}

pub fn to_py_err(py: Python<'_>, err: RuntimeError) -> PyErr {
    let message = err.to_string();
    match err {
        RuntimeError::Invalid(core) => invalid(py, core),
        RuntimeError::InvalidWorkers(n) => invalid(
            py,
            CoreError::invalid("max_workers", n.to_string(), "must be at least 1"),
        ),
        RuntimeError::Command(CommandError::UnknownTimer(name)) => {
            kron_error(py, "TimerNotFoundError", (message, name))
        }
        RuntimeError::Command(CommandError::NotRunnable { id, .. }) => {
            kron_error(py, "TimerNotRunnableError", (message, id))
        }
        RuntimeError::AlreadyStarted(dir) => kron_error(
            py,
            "AlreadyStartedError",
            (message, dir.to_string_lossy().into_owned()),
        ),
        RuntimeError::NotStarted(_) => kron_error(py, "NotStartedError", (message,)),
        RuntimeError::Unreachable(_) => kron_error(py, "RuntimeUnreachableError", (message,)),
        RuntimeError::Thread(_) | RuntimeError::Internal(_) => PyRuntimeError::new_err(message),
        RuntimeError::Store(store) => store_error(py, message, store),
    }
}

fn store_error(py: Python<'_>, message: String, err: StoreError) -> PyErr {
    match err {
        StoreError::Locked { data_dir, pid } => kron_error(
            py,
            "DataDirLockedError",
            (message, data_dir.to_string_lossy().into_owned(), pid),
        ),
        StoreError::SchemaTooNew {
            path,
            found,
            supported,
        } => kron_error(
            py,
            "SchemaVersionError",
            (
                message,
                path.to_string_lossy().into_owned(),
                found,
                supported,
            ),
        ),
        StoreError::Corrupt { path, .. } => kron_error(
            py,
            "CorruptStorageError",
            (message, path.to_string_lossy().into_owned()),
        ),
        StoreError::NotADirectory { data_dir, .. } => kron_error(
            py,
            "DataDirIsAFileError",
            (message, "data_dir", data_dir.to_string_lossy().into_owned()),
        ),
        StoreError::NotFound { path }
        | StoreError::ReadOnly { path, .. }
        | StoreError::Io { path, .. }
        | StoreError::Sqlite { path, .. }
        | StoreError::InvalidValue { path, .. } => kron_error(
            py,
            "StorageError",
            (message, path.to_string_lossy().into_owned()),
        ),
    }
}
