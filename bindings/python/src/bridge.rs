//! Python handlers run on the asyncio loop that serves the server. The
//! core's tasks queue work for the loop and, when the queue was empty, wake
//! it by writing a byte to a socket pair whose other end the loop watches
//! (`add_reader`): no GIL is taken on the runtime's threads, which would
//! otherwise wait for the busy loop to hand it over (and, at interpreter
//! exit, be killed while holding it). The loop runs every queued piece of
//! work, so a burst costs one wake-up: handlers start as asyncio tasks, their
//! results are converted on the loop's thread and sent back over oneshot
//! channels, and the awaitables the binding hands out are settled there.

use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use roomcast::{Args, Reply};
use tokio::sync::oneshot;

use crate::{convert, errors};

/// Builds a handler's arguments, on the loop's thread.
pub(crate) type MakeArgs = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>> + Send>;
/// Receives the handler's outcome, on the loop's thread.
type Complete = Box<dyn for<'py> FnOnce(Python<'py>, PyResult<Bound<'py, PyAny>>) + Send>;
/// Work queued for the loop's thread.
type Work = Box<dyn for<'py> FnOnce(Python<'py>) + Send>;

/// The loop's side: the queue and the socket that wakes the loop.
struct Loop {
    queue: Arc<Mutex<Vec<Work>>>,
    wake: Arc<UnixStream>,
    /// The asyncio loop and the watched fd, to stop watching it.
    event_loop: Py<PyAny>,
    fd: i32,
}

/// See the module docs. Cheap to clone; clones share the loop.
#[derive(Clone, Default)]
pub(crate) struct EventLoop(Arc<Mutex<Option<Loop>>>);

impl EventLoop {
    /// Attach to the running loop (the first one wins) and return it.
    pub(crate) fn capture<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(lp) = self.0.lock().as_ref() {
            return Ok(lp.event_loop.bind(py).clone());
        }
        let (wake, woken) = UnixStream::pair().map_err(|e| errors::RoomcastIOError::new_err(e.to_string()))?;
        wake.set_nonblocking(true).map_err(|e| errors::RoomcastIOError::new_err(e.to_string()))?;
        woken.set_nonblocking(true).map_err(|e| errors::RoomcastIOError::new_err(e.to_string()))?;
        let fd = woken.as_raw_fd();
        let queue = Arc::new(Mutex::new(Vec::<Work>::new()));
        let jobs = queue.clone();
        let woken = Mutex::new(woken);
        let drain = PyCFunction::new_closure(py, Some(c"roomcast_drain"), None, move |args, _kwargs| {
            let py = args.py();
            let mut sink = [0u8; 64];
            while matches!(woken.lock().read(&mut sink), Ok(n) if n > 0) {}
            for work in std::mem::take(&mut *jobs.lock()) {
                work(py);
            }
        })?;
        let event_loop = py.import("asyncio")?.call_method0("get_running_loop")?;
        event_loop.call_method1("add_reader", (fd, drain))?;
        *self.0.lock() = Some(Loop { queue, wake: Arc::new(wake), event_loop: event_loop.clone().unbind(), fd });
        Ok(event_loop)
    }

    /// Stop watching the loop (on its thread, after shutdown): its sockets
    /// close, and calls still queued fail as closed.
    pub(crate) fn detach(&self, py: Python<'_>) -> PyResult<()> {
        let Some(lp) = self.0.lock().take() else { return Ok(()) };
        lp.event_loop.bind(py).call_method1("remove_reader", (lp.fd,))?;
        for work in std::mem::take(&mut *lp.queue.lock()) {
            work(py);
        }
        Ok(())
    }

    /// An asyncio future of the running loop that `fut` settles: its value
    /// is converted by `finish` on the loop's thread, its error mapped to
    /// the exception of its kind. Cancelling the future drops `fut`.
    pub(crate) fn future<'py, T, F, C>(&self, py: Python<'py>, fut: F, finish: C) -> PyResult<Bound<'py, PyAny>>
    where
        T: Send + 'static,
        F: Future<Output = roomcast::Result<T>> + Send + 'static,
        C: for<'a> FnOnce(Python<'a>, T) -> PyResult<Bound<'a, PyAny>> + Send + 'static,
    {
        let event_loop = self.capture(py)?;
        let py_future = event_loop.call_method0("create_future")?;
        let settle_on = py_future.clone().unbind();
        let (this, loop_) = (self.clone(), event_loop.unbind());
        let task = pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
            let outcome = fut.await;
            let settle: Work = Box::new(move |py| {
                let future = settle_on.bind(py);
                if future.call_method0("done").and_then(|d| d.is_truthy()).unwrap_or(true) {
                    return; // cancelled meanwhile
                }
                let set = match outcome.map_err(errors::to_py).and_then(|v| finish(py, v)) {
                    Ok(value) => future.call_method1("set_result", (value,)),
                    Err(e) => future.call_method1("set_exception", (e.value(py),)),
                };
                if let Err(e) = set {
                    e.print(py);
                }
            });
            if let Err(settle) = this.schedule(settle) {
                // Detached meanwhile: the loop still settles it, if it runs.
                Python::try_attach(|py| call_soon_threadsafe(py, loop_.bind(py), settle));
            }
        });
        let abort = Mutex::new(Some(task.abort_handle()));
        let on_done =
            PyCFunction::new_closure(py, Some(c"roomcast_cancel"), None, move |args, _kwargs| -> PyResult<()> {
                if args.get_item(0)?.call_method0("cancelled")?.is_truthy()?
                    && let Some(abort) = abort.lock().take()
                {
                    abort.abort();
                }
                Ok(())
            })?;
        py_future.call_method1("add_done_callback", (on_done,))?;
        Ok(py_future)
    }

    /// Queue `work` for the loop's thread; handed back when detached.
    fn schedule(&self, work: Work) -> Result<(), Work> {
        let Some((queue, wake)) = self.0.lock().as_ref().map(|lp| (lp.queue.clone(), lp.wake.clone())) else {
            return Err(work);
        };
        let first = {
            let mut queue = queue.lock();
            queue.push(work);
            queue.len() == 1
        };
        if first {
            // A full socket buffer means a wake-up is pending anyway.
            let _ = (&*wake).write(&[1]);
        }
        Ok(())
    }

    /// Call `handler(*leading, *args)` (it returns an awaitable) on the loop
    /// and turn its result into the ack: None → no data, a tuple → several
    /// arguments, anything else → one. An exception is logged and answered
    /// as an error reply; the connection goes on.
    /// Queued for the loop at once, so handlers start in the order their
    /// events arrived, whenever the returned future is first polled.
    pub(crate) fn call(
        &self,
        handler: Arc<Py<PyAny>>,
        leading: Vec<String>,
        args: Args,
    ) -> impl Future<Output = Reply> + Send + 'static + use<> {
        let make_args: MakeArgs = Box::new(move |py| {
            let mut items = Vec::with_capacity(leading.len() + args.len());
            for s in &leading {
                items.push(s.into_pyobject(py)?.into_any());
            }
            for a in args.as_slice() {
                items.push(convert::to_py(py, a)?);
            }
            PyTuple::new(py, items)
        });
        let reply = self.run(handler, make_args, |py, result| match result.and_then(|v| reply_of(&v)) {
            Ok(reply) => reply,
            Err(e) => {
                log_exception(py, &e);
                Reply::Error(e.to_string())
            }
        });
        async move { reply.await.unwrap_or_else(|e| Reply::Error(e.message().to_owned())) }
    }

    /// Call `handler(*args(py))` on the loop; `finish` turns its outcome
    /// into `T` there. Fails when no loop serves (closed, never started).
    /// Queued at once (see [`EventLoop::call`]).
    pub(crate) fn run<T, F>(
        &self,
        handler: Arc<Py<PyAny>>,
        args: MakeArgs,
        finish: F,
    ) -> impl Future<Output = roomcast::Result<T>> + Send + 'static + use<T, F>
    where
        T: Send + 'static,
        F: for<'py> FnOnce(Python<'py>, PyResult<Bound<'py, PyAny>>) -> T + Send + 'static,
    {
        let closed = || roomcast::Error::new(roomcast::ErrorKind::Closed, "the asyncio loop is not serving");
        let (tx, rx) = oneshot::channel();
        let complete: Complete = Box::new(move |py, outcome| {
            let _ = tx.send(finish(py, outcome));
        });
        let scheduled = self.schedule(Box::new(move |py| start(py, handler, args, complete))).map_err(|_| closed());
        async move {
            scheduled?;
            rx.await.map_err(|_| closed())
        }
    }
}

/// Run `work` on `event_loop`'s thread soon (the loop may be closed: then never).
fn call_soon_threadsafe(py: Python<'_>, event_loop: &Bound<'_, PyAny>, work: Work) {
    let work = Mutex::new(Some(work));
    let run = PyCFunction::new_closure(py, Some(c"roomcast_settle"), None, move |args, _kwargs| {
        if let Some(work) = work.lock().take() {
            work(args.py());
        }
    });
    let _ = run.and_then(|run| event_loop.call_method1("call_soon_threadsafe", (run,)));
}

/// On the loop: start one handler as a task whose completion answers the job.
fn start(py: Python<'_>, handler: Arc<Py<PyAny>>, args: MakeArgs, complete: Complete) {
    let task = (|| -> PyResult<Bound<'_, PyAny>> {
        let awaitable = handler.bind(py).call1(args(py)?)?;
        py.import("asyncio")?.call_method1("ensure_future", (awaitable,))
    })();
    let task = match task {
        Ok(task) => task,
        Err(e) => return complete(py, Err(e)),
    };
    let complete = Mutex::new(Some(complete));
    let done = PyCFunction::new_closure(py, Some(c"roomcast_done"), None, move |args, _kwargs| -> PyResult<()> {
        let outcome = args.get_item(0)?.call_method0("result");
        if let Some(complete) = complete.lock().take() {
            complete(args.py(), outcome);
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
