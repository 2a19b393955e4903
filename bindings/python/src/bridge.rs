//! Python handlers run on the asyncio loop that serves the server; the
//! core's tasks reach it through `call_soon_threadsafe` (pyo3-async-runtimes)
//! and wait for the handler's result without holding the GIL.

use std::sync::{Arc, OnceLock};

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use pyo3_async_runtimes::TaskLocals;
use roomcast::{Args, Reply};

use crate::convert;

/// The asyncio loop (and context) handlers run on, known once serving starts.
#[derive(Clone, Default)]
pub(crate) struct EventLoop(Arc<OnceLock<TaskLocals>>);

impl EventLoop {
    /// Remember the running loop; the first one wins.
    pub(crate) fn capture(&self, py: Python<'_>) -> PyResult<()> {
        if self.0.get().is_none() {
            let _ = self.0.set(TaskLocals::with_running_loop(py)?.copy_context(py)?);
        }
        Ok(())
    }

    /// Call `handler(*leading, *args)` (it returns an awaitable) on the loop
    /// and turn its result into the ack: None → no data, a tuple → several
    /// arguments, anything else → one. An exception is logged and answered
    /// as an error reply; the connection goes on.
    pub(crate) async fn call(&self, handler: Arc<Py<PyAny>>, leading: Vec<String>, args: Args) -> Reply {
        let result = self
            .run(handler, move |py| {
                let mut items = Vec::with_capacity(leading.len() + args.len());
                for s in &leading {
                    items.push(s.into_pyobject(py)?.into_any());
                }
                for a in args.as_slice() {
                    items.push(convert::to_py(py, a)?);
                }
                PyTuple::new(py, items)
            })
            .await;
        Python::attach(|py| match result.and_then(|v| reply_of(v.bind(py))) {
            Ok(reply) => reply,
            Err(e) => {
                log_exception(py, &e);
                Reply::Error(e.to_string())
            }
        })
    }

    /// Call `handler(*make_args(py))` on the loop and wait for its result.
    pub(crate) async fn run(
        &self,
        handler: Arc<Py<PyAny>>,
        make_args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
    ) -> PyResult<Py<PyAny>> {
        let Some(locals) = self.0.get() else {
            return Err(crate::errors::ClosedError::new_err("the server is not serving on an asyncio loop"));
        };
        let pending = Python::attach(|py| -> PyResult<_> {
            let awaitable = handler.bind(py).call1(make_args(py)?)?;
            pyo3_async_runtimes::into_future_with_locals(locals, awaitable)
        })?;
        pending.await
    }
}

fn reply_of(v: &Bound<'_, PyAny>) -> PyResult<Reply> {
    if v.is_none() {
        return Ok(Reply::None);
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return convert::to_args(t.as_any()).map(Reply::Data);
    }
    Ok(Reply::Data(Args::one(convert::to_data(v)?)))
}

/// Log a handler's exception on the `roomcast` logger, with its traceback.
pub(crate) fn log_exception(py: Python<'_>, e: &PyErr) {
    let logged = (|| -> PyResult<()> {
        let logger = py.import("logging")?.call_method1("getLogger", ("roomcast",))?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("exc_info", e.value(py))?;
        logger.call_method("error", ("event handler failed",), Some(&kwargs))?;
        Ok(())
    })();
    if logged.is_err() {
        e.print(py);
    }
}
