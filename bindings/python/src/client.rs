//! `_native.Client`: roomcast's Socket.IO client (reconnecting, with an
//! offline buffer) driven from Python.

use std::sync::Arc;

use parking_lot::Mutex;

use pyo3::prelude::*;
use roomcast::client::ClientState;
use roomcast::client::socketio::{SocketIoClient, SocketIoEvent, SocketIoOptions};
use tokio::sync::{mpsc, oneshot};

use crate::bridge::EventLoop;
use crate::{convert, errors};

#[pyclass(module = "roomcast._native", frozen)]
pub(crate) struct Client {
    core: SocketIoClient,
    event_loop: EventLoop,
    /// Asks the lifecycle task to answer once it has delivered every event
    /// sent so far, so that `close()` resolves after the disconnect handler ran.
    flush: Mutex<Option<mpsc::UnboundedSender<oneshot::Sender<()>>>>,
}

#[pymethods]
impl Client {
    /// A client of `url` (its path is the namespace), not connected yet.
    #[new]
    #[pyo3(signature = (
        url, *, path = "/socket.io/", auth = None, headers = Vec::new(), reconnection = true,
        reconnection_attempts = 0, reconnection_delay = 1.0, reconnection_delay_max = 5.0,
        randomization_factor = 0.5, connect_timeout = 20.0, retries = 0, ack_timeout = 10.0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        url: &str,
        path: &str,
        auth: Option<&Bound<'_, PyAny>>,
        headers: Vec<(String, String)>,
        reconnection: bool,
        reconnection_attempts: u32,
        reconnection_delay: f64,
        reconnection_delay_max: f64,
        randomization_factor: f64,
        connect_timeout: f64,
        retries: u32,
        ack_timeout: f64,
    ) -> PyResult<Self> {
        let mut opts = SocketIoOptions {
            path: path.to_owned(),
            connect_timeout: convert::seconds(connect_timeout, "connect_timeout")?,
            retries,
            ack_timeout: convert::seconds(ack_timeout, "ack_timeout")?,
            ..Default::default()
        };
        if let Some(auth) = auth {
            opts.auth = Some(roomcast::Args::one(convert::to_data(auth)?).json());
        }
        for (name, value) in headers {
            let name = http_name(&name)?;
            let value = value.parse().map_err(|_| errors::InvalidArgumentError::new_err("bad header value"))?;
            opts.headers.append(name, value);
        }
        opts.reconnect.enabled = reconnection;
        opts.reconnect.max_attempts = (reconnection_attempts > 0).then_some(reconnection_attempts);
        opts.reconnect.base = convert::seconds(reconnection_delay, "reconnection_delay")?;
        opts.reconnect.max = convert::seconds(reconnection_delay_max, "reconnection_delay_max")?;
        opts.reconnect.jitter = randomization_factor;
        let core = SocketIoClient::new(url, opts).map_err(errors::to_py)?;
        Ok(Self { core, event_loop: EventLoop::default(), flush: Mutex::new(None) })
    }

    /// `handler(*args)` handles server event `event`; its result is the ack.
    fn on(&self, event: String, handler: Py<PyAny>) {
        let (handler, event_loop) = (Arc::new(handler), self.event_loop.clone());
        // Queued for the loop as the event arrives: handlers start in order.
        self.core.on(event, move |args| event_loop.call(handler.clone(), Vec::new(), args));
    }

    /// `handler(event, *args)` handles server events without a handler of their own.
    fn on_any(&self, handler: Py<PyAny>) {
        let (handler, event_loop) = (Arc::new(handler), self.event_loop.clone());
        self.core.on_any(move |event, args| event_loop.call(handler.clone(), vec![event], args));
    }

    /// `handler(kind, detail)` hears the connection's life: ("connect", sid),
    /// ("disconnect", reason), ("connect_error", {"message", "data"}).
    fn on_lifecycle(&self, py: Python<'_>, handler: Py<PyAny>) -> PyResult<()> {
        self.event_loop.capture(py)?;
        let (handler, event_loop) = (Arc::new(handler), self.event_loop.clone());
        let mut events = self.core.events();
        let (flush, mut flushes) = mpsc::unbounded_channel::<oneshot::Sender<()>>();
        *self.flush.lock() = Some(flush);
        pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
            loop {
                let event = tokio::select! {
                    biased;
                    event = events.recv() => event,
                    Some(done) = flushes.recv() => {
                        // Biased: every event sent before the request was taken first.
                        let _ = done.send(());
                        continue;
                    }
                };
                let (kind, detail) = match event {
                    Ok(SocketIoEvent::Connect { id }) => ("connect", serde_json::Value::String(id)),
                    Ok(SocketIoEvent::Disconnect { reason }) => ("disconnect", reason.as_str().into()),
                    Ok(SocketIoEvent::ConnectError { message, data }) => {
                        ("connect_error", serde_json::json!({"message": message, "data": data}))
                    }
                    Ok(SocketIoEvent::ReconnectFailed | SocketIoEvent::Event { .. }) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let args = roomcast::Args::one(detail);
                event_loop.call(handler.clone(), vec![kind.to_owned()], args).await;
            }
        });
        Ok(())
    }

    /// Connect; resolves once the server accepted the namespace, raises its refusal.
    fn open<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.event_loop.future(py, self.core.open(), convert::none)
    }

    /// Send `event` with `args` (buffered while reconnecting).
    fn emit(&self, event: &str, args: &Bound<'_, PyAny>) -> PyResult<()> {
        self.core.emit(event, convert::to_args(args)?).map_err(errors::to_py)
    }

    /// Send `event` and resolve to the arguments of the server's ack (a list).
    fn call<'py>(
        &self,
        py: Python<'py>,
        event: String,
        args: &Bound<'py, PyAny>,
        timeout: f64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (args, timeout, core) = (convert::to_args(args)?, convert::seconds(timeout, "timeout")?, self.core.clone());
        let reply = async move { core.emit_with_ack(&event, args, timeout).await };
        self.event_loop.future(py, reply, |py, reply| convert::to_py_list(py, &reply))
    }

    /// Leave the namespace, close, stop reconnecting; resolves once the
    /// lifecycle handler heard the disconnect.
    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (core, flush) = (self.core.clone(), self.flush.lock().clone());
        let closed = async move {
            core.close().await;
            if let Some(flush) = flush {
                let (done, delivered) = oneshot::channel();
                if flush.send(done).is_ok() {
                    let _ = delivered.await;
                }
            }
            Ok(())
        };
        self.event_loop.future(py, closed, convert::none)
    }

    /// Stop running handlers on the asyncio loop (after close).
    fn detach(&self, py: Python<'_>) -> PyResult<()> {
        self.event_loop.detach(py)
    }

    /// Resolve once the client is disconnected for good (not reconnecting).
    fn wait<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut state = self.core.watch_state();
        let disconnected = async move {
            let _ = state.wait_for(|s| *s == ClientState::Disconnected).await;
            Ok(())
        };
        self.event_loop.future(py, disconnected, convert::none)
    }

    /// The socket id while connected.
    #[getter]
    fn sid(&self) -> Option<String> {
        self.core.id()
    }

    /// Whether the current connection took up the previous one's session.
    #[getter]
    fn recovered(&self) -> bool {
        self.core.recovered()
    }

    /// Whether the namespace is connected now.
    #[getter]
    fn connected(&self) -> bool {
        self.core.state() == ClientState::Connected
    }
}

fn http_name(name: &str) -> PyResult<http::HeaderName> {
    http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| errors::InvalidArgumentError::new_err(format!("bad header name {name:?}")))
}
