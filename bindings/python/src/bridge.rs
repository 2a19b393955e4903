//! Python handlers run on the asyncio loop that serves the server. The
//! core's tasks queue calls; the first call into an empty queue schedules one
//! drain on the loop (`call_soon_threadsafe`), which starts every queued
//! handler as an asyncio task, so a burst of events costs one wake-up of the
//! loop. Results come back over a oneshot channel, awaited without the GIL.

use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use pyo3_async_runtimes::TaskLocals;
use roomcast::{Args, Reply};
use tokio::sync::oneshot;

use crate::{convert, errors};

/// Builds a handler's arguments, on the loop's thread.
type MakeArgs = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>> + Send>;

/// One queued handler call.
struct Job {
    handler: Arc<Py<PyAny>>,
    args: MakeArgs,
    result: oneshot::Sender<PyResult<Py<PyAny>>>,
}

/// The loop and its queue, known once serving starts.
struct Loop {
    locals: TaskLocals,
    queue: Arc<Mutex<Vec<Job>>>,
    /// The Python callable that drains `queue` on the loop.
    drain: Py<PyAny>,
}

/// See the module docs. Cheap to clone; clones share the loop.
#[derive(Clone, Default)]
pub(crate) struct EventLoop(Arc<OnceLock<Loop>>);

impl EventLoop {
    /// Remember the running loop; the first one wins.
    pub(crate) fn capture(&self, py: Python<'_>) -> PyResult<()> {
        if self.0.get().is_some() {
            return Ok(());
        }
        let locals = TaskLocals::with_running_loop(py)?.copy_context(py)?;
        let queue = Arc::new(Mutex::new(Vec::<Job>::new()));
        let jobs = queue.clone();
        let drain = PyCFunction::new_closure(py, Some(c"roomcast_drain"), None, move |args, _kwargs| {
            let py = args.py();
            for job in std::mem::take(&mut *jobs.lock()) {
                start(py, job);
            }
        })?;
        let _ = self.0.set(Loop { locals, queue, drain: drain.into_any().unbind() });
        Ok(())
    }

    /// Call `handler(*leading, *args)` (it returns an awaitable) on the loop
    /// and turn its result into the ack: None → no data, a tuple → several
    /// arguments, anything else → one. An exception is logged and answered
    /// as an error reply; the connection goes on.
    pub(crate) async fn call(&self, handler: Arc<Py<PyAny>>, leading: Vec<String>, args: Args) -> Reply {
        let result = self
            .run(
                handler,
                Box::new(move |py| {
                    let mut items = Vec::with_capacity(leading.len() + args.len());
                    for s in &leading {
                        items.push(s.into_pyobject(py)?.into_any());
                    }
                    for a in args.as_slice() {
                        items.push(convert::to_py(py, a)?);
                    }
                    PyTuple::new(py, items)
                }),
            )
            .await;
        Python::attach(|py| match result.and_then(|v| reply_of(v.bind(py))) {
            Ok(reply) => reply,
            Err(e) => {
                log_exception(py, &e);
                Reply::Error(e.to_string())
            }
        })
    }

    /// Call `handler(*args(py))` on the loop and wait for its result.
    pub(crate) async fn run(&self, handler: Arc<Py<PyAny>>, args: MakeArgs) -> PyResult<Py<PyAny>> {
        let Some(lp) = self.0.get() else {
            return Err(errors::ClosedError::new_err("the server is not serving on an asyncio loop"));
        };
        let (tx, rx) = oneshot::channel();
        let first = {
            let mut queue = lp.queue.lock();
            queue.push(Job { handler, args, result: tx });
            queue.len() == 1
        };
        if first {
            Python::attach(|py| {
                let kwargs = PyDict::new(py);
                kwargs.set_item("context", lp.locals.context(py))?;
                lp.locals.event_loop(py).call_method("call_soon_threadsafe", (lp.drain.bind(py),), Some(&kwargs))?;
                Ok::<_, PyErr>(())
            })
            .or_else(|e| {
                // The loop is closed: fail everything queued, this call included.
                for job in std::mem::take(&mut *lp.queue.lock()) {
                    let _ = job.result.send(Err(Python::attach(|py| e.clone_ref(py))));
                }
                Ok::<_, PyErr>(())
            })?;
        }
        rx.await.unwrap_or_else(|_| Err(errors::ClosedError::new_err("the asyncio loop dropped the handler")))
    }
}

/// On the loop: start one handler as a task whose completion answers the job.
fn start(py: Python<'_>, job: Job) {
    let Job { handler, args, result } = job;
    let task = (|| -> PyResult<Bound<'_, PyAny>> {
        let awaitable = handler.bind(py).call1(args(py)?)?;
        py.import("asyncio")?.call_method1("ensure_future", (awaitable,))
    })();
    let task = match task {
        Ok(task) => task,
        Err(e) => {
            let _ = result.send(Err(e));
            return;
        }
    };
    let result = Mutex::new(Some(result));
    let done = PyCFunction::new_closure(py, Some(c"roomcast_done"), None, move |args, _kwargs| -> PyResult<()> {
        let outcome = args.get_item(0)?.call_method0("result").map(Bound::unbind);
        if let Some(tx) = result.lock().take() {
            let _ = tx.send(outcome);
        }
        Ok(())
    });
    if let Err(e) = done.and_then(|done| task.call_method1("add_done_callback", (done,))) {
        log_exception(py, &e);
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
        let kwargs = PyDict::new(py);
        kwargs.set_item("exc_info", e.value(py))?;
        logger.call_method("error", ("event handler failed",), Some(&kwargs))?;
        Ok(())
    })();
    if logged.is_err() {
        e.print(py);
    }
}
