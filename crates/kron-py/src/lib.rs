//! The `kron._kron` extension module: converts Python values to the runtime's types and back, and
//! runtime errors to `kron`'s exception classes. No scheduling logic lives here.

mod callback;
mod convert;
mod errors;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kron_runtime::{Durability, Kron, Role, RuntimeConfig};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::callback::{Callback, PythonHost};
use crate::convert::{Function, TimerOptions, ViewContext};
use crate::errors::{invalid, to_py_err};

type Shared = Arc<Callback>;

/// The process's one embedded scheduler, timed by the system clock.
fn kron() -> &'static Kron<Shared> {
    static KRON: OnceLock<Kron<Shared>> = OnceLock::new();
    KRON.get_or_init(Kron::new)
}

/// The callback for `function`: applications register many timers with one function, so the
/// last one is reused rather than allocating a callback per timer.
fn shared_callback(
    Function {
        function,
        takes_context,
        is_async,
        ..
    }: Function,
) -> Shared {
    static LAST: Mutex<Option<Shared>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(callback) = last.as_ref() {
        if callback.function.as_ptr() == function.as_ptr()
            && callback.takes_context == takes_context
            && callback.is_async == is_async
        {
            return callback.clone();
        }
    }
    let callback = Arc::new(Callback {
        function,
        takes_context,
        is_async,
    });
    *last = Some(callback.clone());
    callback
}

/// Registers or re-registers the timer `name` (see `kron._args.TimerOptions` and `Function`).
#[pyfunction]
fn register(
    py: Python<'_>,
    name: &str,
    options: TimerOptions<'_>,
    function: Function,
) -> PyResult<()> {
    let def = options
        .timer_def(name, &function.fn_name)
        .map_err(|e| invalid(py, e))?;
    let callback = shared_callback(function);
    py.detach(|| kron().register(def, callback))
        .map_err(|e| to_py_err(py, e))
}

/// Starts the runtime. `runner(jobs)` runs a batch of callbacks; `log(level, message)` logs.
/// With `standby`, waits as a standby when another process owns the directory. Answers the
/// role this process took: "active" or "standby".
#[pyfunction]
#[pyo3(signature = (data_dir, max_workers, durability, runner, log, history_limit=None, standby=false))]
#[allow(clippy::too_many_arguments)]
fn start(
    py: Python<'_>,
    data_dir: String,
    max_workers: i64,
    durability: &str,
    runner: Py<PyAny>,
    log: Py<PyAny>,
    history_limit: Option<i64>,
    standby: bool,
) -> PyResult<&'static str> {
    let history_limit = match history_limit {
        None => None,
        Some(n) => Some(usize::try_from(n).ok().filter(|n| *n >= 1).ok_or_else(|| {
            invalid(
                py,
                kron_core::CoreError::invalid(
                    "history_limit",
                    n.to_string(),
                    "must be at least 1 (runs kept per timer)",
                ),
            )
        })?),
    };
    let max_workers = usize::try_from(max_workers)
        .ok()
        .filter(|n| (1..=1024).contains(n))
        .ok_or_else(|| {
            invalid(
                py,
                kron_core::CoreError::invalid(
                    "max_workers",
                    max_workers.to_string(),
                    "must be between 1 and 1024",
                ),
            )
        })?;
    let durability = match durability {
        "normal" => Durability::Normal,
        "full" => Durability::Full,
        other => {
            return Err(invalid(
                py,
                kron_core::CoreError::invalid(
                    "durability",
                    other,
                    "durability must be one of normal, full",
                ),
            ));
        }
    };
    let mut config = RuntimeConfig::new(data_dir);
    config.max_workers = max_workers;
    config.durability = durability;
    config.history_limit = history_limit;
    let host = Arc::new(PythonHost { runner, log });
    let admin: Arc<dyn kron_runtime::Admin> = Arc::new(kron());
    let role = py.detach(|| {
        if standby {
            kron().start_or_standby(config, host, Some(admin))
        } else {
            kron()
                .start(config, host, Some(admin))
                .map(|()| Role::Active)
        }
    });
    role.map(Role::as_str).map_err(|e| to_py_err(py, e))
}

/// Whether this process is active or standby, since when, and who owns the data directory.
#[pyfunction]
fn runtime_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let info = py.detach(|| kron().runtime_info());
    convert::runtime_info_dict(py, &info)
}

/// The descriptors holding the data directory's locks, which a child forked now must close.
#[pyfunction]
fn fork_fds() -> Vec<i32> {
    kron_store::fork_fds::lock_fds()
}

/// Stops the runtime; returns how many attempts were still running at the timeout.
#[pyfunction]
fn shutdown(py: Python<'_>, timeout: f64) -> PyResult<usize> {
    let timeout = Duration::try_from_secs_f64(timeout.max(0.0)).unwrap_or(Duration::MAX);
    Ok(py.detach(|| kron().shutdown(timeout)).abandoned)
}

#[pyfunction]
fn is_running(py: Python<'_>) -> bool {
    py.detach(|| kron().is_running())
}

#[pyfunction]
fn status<'py>(py: Python<'py>, name: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
    let (view, storage_error, active_pid) = py.detach(|| {
        (
            kron().status(name),
            kron().storage_error(),
            kron().active_pid(),
        )
    });
    let context = ViewContext {
        storage_error: storage_error.as_deref(),
        active_pid,
    };
    view.map_err(|e| to_py_err(py, e))?
        .map(|v| convert::view_dict(py, &v, context))
        .transpose()
}

#[pyfunction]
fn list<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
    let (views, storage_error, active_pid) =
        py.detach(|| (kron().list(), kron().storage_error(), kron().active_pid()));
    let context = ViewContext {
        storage_error: storage_error.as_deref(),
        active_pid,
    };
    let items = views
        .map_err(|e| to_py_err(py, e))?
        .iter()
        .map(|v| convert::view_dict(py, v, context))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

#[pyfunction]
fn history<'py>(py: Python<'py>, name: &str, limit: i64) -> PyResult<Bound<'py, PyList>> {
    let limit = usize::try_from(limit).map_err(|_| {
        invalid(
            py,
            kron_core::CoreError::invalid("limit", limit.to_string(), "must be >= 0"),
        )
    })?;
    let events = py
        .detach(|| kron().history(name, limit))
        .map_err(|e| to_py_err(py, e))?;
    let items = events
        .iter()
        .map(|e| convert::event_dict(py, e))
        .collect::<PyResult<Vec<_>>>()?;
    PyList::new(py, items)
}

#[pyfunction]
fn pause(py: Python<'_>, name: &str) -> PyResult<()> {
    py.detach(|| kron().pause(name))
        .map_err(|e| to_py_err(py, e))
}

#[pyfunction]
fn resume(py: Python<'_>, name: &str) -> PyResult<()> {
    py.detach(|| kron().resume(name))
        .map_err(|e| to_py_err(py, e))
}

#[pyfunction]
fn trigger(py: Python<'_>, name: &str) -> PyResult<String> {
    let run_id = py
        .detach(|| kron().trigger(name))
        .map_err(|e| to_py_err(py, e))?;
    Ok(run_id.to_string())
}

#[pyfunction]
fn remove(py: Python<'_>, name: &str) -> PyResult<()> {
    py.detach(|| kron().remove(name))
        .map_err(|e| to_py_err(py, e))
}

/// The `kron` command line, for the package's console script: `argv` is `sys.argv`; returns the
/// exit code. Runs without the GIL, so a live runtime in this process keeps going meanwhile.
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> i32 {
    py.detach(|| kron_cli::main_with_args(argv))
}

#[pymodule]
fn _kron(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("DEFAULT_HISTORY_LIMIT", kron_runtime::DEFAULT_HISTORY_LIMIT)?;
    m.add_function(wrap_pyfunction!(register, m)?)?;
    m.add_function(wrap_pyfunction!(start, m)?)?;
    m.add_function(wrap_pyfunction!(shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(is_running, m)?)?;
    m.add_function(wrap_pyfunction!(status, m)?)?;
    m.add_function(wrap_pyfunction!(list, m)?)?;
    m.add_function(wrap_pyfunction!(history, m)?)?;
    m.add_function(wrap_pyfunction!(pause, m)?)?;
    m.add_function(wrap_pyfunction!(resume, m)?)?;
    m.add_function(wrap_pyfunction!(trigger, m)?)?;
    m.add_function(wrap_pyfunction!(remove, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(runtime_info, m)?)?;
    m.add_function(wrap_pyfunction!(fork_fds, m)?)?;
    m.add_class::<callback::Gate>()?;
    Ok(())
}
