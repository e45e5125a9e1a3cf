//! Running Python callbacks for the runtime: one interpreter attach per batch of jobs.

use std::sync::Arc;

use kron_core::engine::Outcome;
use kron_runtime::{Claims, Host, Job, LogLevel};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// A registered Python function and how to call it.
pub struct Callback {
    pub function: Py<PyAny>,
    pub takes_context: bool,
    pub is_async: bool,
}

/// Asked by the runner right before each callback of a batch: `begin()` is true if the callback
/// may begin, false once the runtime is shutting down (then neither it nor any later one of the
/// batch is called). One atomic operation per call.
#[pyclass(frozen, module = "kron._kron")]
pub struct Gate {
    claims: Arc<Claims>,
}

#[pymethods]
impl Gate {
    fn begin(&self) -> bool {
        self.claims.begin()
    }
}

/// The runtime's host in a Python process. `runner(jobs, gate)` (in `kron._runner`) calls
/// `gate.begin()` before each function and stops at the first false, calls the function,
/// catches everything it raises, and returns `(ok, duration_ms, error)` per job it called.
pub struct PythonHost {
    pub runner: Py<PyAny>,
    pub log: Py<PyAny>,
}

impl Host<Arc<Callback>> for PythonHost {
    fn invoke(&self, jobs: &[Job<Arc<Callback>>], claims: &Arc<Claims>) -> Vec<Outcome> {
        let count = jobs.len();
        Python::attach(|py| match self.invoke_attached(py, jobs, claims) {
            Ok(outcomes) => outcomes,
            Err(err) => {
                // The runner itself failed (it catches callback errors, so this is a bug or an
                // interpreter shutting down): every job failed with that error (the runtime
                // records it for the jobs that began or that it claims now).
                let error = format!("internal error while running the callback: {err}");
                vec![
                    Outcome::Failed {
                        error,
                        duration_ms: 0
                    };
                    count
                ]
            }
        })
    }

    fn log(&self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Info => 20,
            LogLevel::Warning => 30,
            LogLevel::Error => 40,
        };
        Python::attach(|py| {
            if let Err(err) = self.log.call1(py, (level, message)) {
                // Logging must never take the runtime down; fall back to stderr.
                eprintln!("kron: {message} (logging failed: {err})");
            }
        });
    }
}

impl PythonHost {
    fn invoke_attached(
        &self,
        py: Python<'_>,
        jobs: &[Job<Arc<Callback>>],
        claims: &Arc<Claims>,
    ) -> PyResult<Vec<Outcome>> {
        let mut items = Vec::with_capacity(jobs.len());
        for job in jobs {
            let d = &job.dispatch;
            let item = PyTuple::new(
                py,
                [
                    job.callback.function.clone_ref(py).into_any(),
                    job.callback
                        .takes_context
                        .into_pyobject(py)?
                        .to_owned()
                        .into_any()
                        .unbind(),
                    job.callback
                        .is_async
                        .into_pyobject(py)?
                        .to_owned()
                        .into_any()
                        .unbind(),
                    d.timer_id.as_str().into_pyobject(py)?.into_any().unbind(),
                    d.run_id.as_str().into_pyobject(py)?.into_any().unbind(),
                    d.attempt.into_pyobject(py)?.into_any().unbind(),
                    d.scheduled_at.into_pyobject(py)?.into_any().unbind(),
                ],
            )?;
            items.push(item);
        }
        let gate = Gate {
            claims: claims.clone(),
        };
        let results = self.runner.call1(py, (items, gate))?;
        let results: Vec<(bool, f64, Option<String>)> = results.extract(py)?;
        Ok(results
            .into_iter()
            .map(|(ok, duration, error)| {
                let duration_ms = duration.max(0.0).round() as u64;
                if ok {
                    Outcome::Succeeded { duration_ms }
                } else {
                    Outcome::Failed {
                        error: error.unwrap_or_default(),
                        duration_ms,
                    }
                }
            })
            .collect())
    }
}
