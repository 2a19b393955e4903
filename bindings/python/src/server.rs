//! `_native.Server`: a roomcast server driven from Python.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyTuple};
use roomcast::{Args, Handshake, Rejection, Server as Core};

use crate::bridge::EventLoop;
use crate::{convert, errors};

#[pyclass(module = "roomcast._native", frozen)]
pub(crate) struct Server {
    core: Core,
    event_loop: EventLoop,
}

/// A socket's Python session object, kept with the socket in the core.
#[derive(Clone)]
struct Session(Arc<Py<PyAny>>);

impl Server {
    fn find(&self, sid: &str, namespace: &str) -> Option<roomcast::Socket> {
        self.core.of(namespace).socket(sid)
    }

    fn socket(&self, sid: &str, namespace: &str) -> PyResult<roomcast::Socket> {
        self.find(sid, namespace)
            .ok_or_else(|| errors::NotFoundError::new_err(format!("no socket {sid} in namespace {namespace}")))
    }
}

#[pymethods]
impl Server {
    #[new]
    #[pyo3(signature = (*, ping_interval = 25.0, ping_timeout = 20.0, max_payload = 1_000_000, allowed_origins = None))]
    fn new(
        ping_interval: f64,
        ping_timeout: f64,
        max_payload: usize,
        allowed_origins: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let mut b = Core::builder()
            .ping_interval(convert::seconds(ping_interval, "ping_interval")?)
            .ping_timeout(convert::seconds(ping_timeout, "ping_timeout")?)
            .max_payload(max_payload);
        for origin in allowed_origins.unwrap_or_default() {
            b = b.allowed_origin(origin);
        }
        Ok(Self { core: b.build().map_err(errors::to_py)?, event_loop: EventLoop::default() })
    }

    /// Handle `event` on `namespace`: `handler(sid, *args)` returns an
    /// awaitable whose result is the ack.
    #[pyo3(signature = (event, handler, namespace = "/"))]
    fn on(&self, event: String, handler: Py<PyAny>, namespace: &str) {
        let (handler, event_loop) = (Arc::new(handler), self.event_loop.clone());
        self.core.of(namespace).on(event, move |socket, args| {
            let (handler, event_loop) = (handler.clone(), event_loop.clone());
            async move { event_loop.call(handler, vec![socket.id().as_str().to_owned()], args).await }
        });
    }

    /// `handler(sid, environ, auth)` decides on each new socket of
    /// `namespace` before the client learns it is connected: False or
    /// `ConnectionRefusedError(message, data)` refuses it.
    #[pyo3(signature = (handler, namespace = "/"))]
    fn on_connect(&self, handler: Py<PyAny>, namespace: &str) {
        let (handler, event_loop) = (Arc::new(handler), self.event_loop.clone());
        self.core.of(namespace).on_connect(move |socket| {
            let (handler, event_loop) = (handler.clone(), event_loop.clone());
            async move {
                let hs = socket.handshake();
                let (sid, environ, auth) = (socket.id().as_str().to_owned(), environ(hs), hs.auth.clone());
                let args: crate::bridge::MakeArgs = Box::new(move |py| {
                    let auth = convert::to_py(py, &auth.into())?;
                    let environ = environ.into_py_dict(py)?.into_any();
                    PyTuple::new(py, [sid.into_pyobject(py)?.into_any(), environ, auth])
                });
                event_loop.run(handler, args, admission).await.unwrap_or_else(|e| Err(Rejection::new(e.message())))
            }
        });
    }

    /// `handler(sid, reason)` runs when a socket of `namespace` disconnects.
    #[pyo3(signature = (handler, namespace = "/"))]
    fn on_disconnect(&self, handler: Py<PyAny>, namespace: &str) {
        let (handler, event_loop) = (Arc::new(handler), self.event_loop.clone());
        self.core.of(namespace).on_disconnect(move |socket, reason| {
            let (handler, event_loop) = (handler.clone(), event_loop.clone());
            async move {
                let leading = vec![socket.id().as_str().to_owned(), reason.as_str().to_owned()];
                event_loop.call(handler, leading, Args::none()).await;
            }
        });
    }

    /// `handler(event, sid, *args)` handles every event of `namespace`
    /// without a handler of its own; its result is the ack.
    #[pyo3(signature = (handler, namespace = "/"))]
    fn on_any(&self, handler: Py<PyAny>, namespace: &str) {
        let (handler, event_loop) = (Arc::new(handler), self.event_loop.clone());
        self.core.of(namespace).on_any(move |socket, event, args| {
            let (handler, event_loop) = (handler.clone(), event_loop.clone());
            async move { event_loop.call(handler, vec![event, socket.id().as_str().to_owned()], args).await }
        });
    }

    /// Put socket `sid` in `room`; false if there is no such socket.
    #[pyo3(signature = (sid, room, namespace = "/"))]
    fn enter_room(&self, sid: &str, room: String, namespace: &str) -> PyResult<bool> {
        match self.find(sid, namespace) {
            Some(socket) => socket.join(room).map(|()| true).map_err(errors::to_py),
            None => Ok(false),
        }
    }

    /// Take socket `sid` out of `room`; false if there is no such socket.
    #[pyo3(signature = (sid, room, namespace = "/"))]
    fn leave_room(&self, sid: &str, room: &str, namespace: &str) -> PyResult<bool> {
        match self.find(sid, namespace) {
            Some(socket) => socket.leave(room).map(|()| true).map_err(errors::to_py),
            None => Ok(false),
        }
    }

    /// Take every socket out of `room`.
    #[pyo3(signature = (room, namespace = "/"))]
    fn close_room(&self, room: &str, namespace: &str) -> PyResult<()> {
        self.core.of(namespace).to(room).leave(room).map_err(errors::to_py)
    }

    /// The rooms of socket `sid` (its own room first); empty if there is no such socket.
    #[pyo3(signature = (sid, namespace = "/"))]
    fn rooms(&self, sid: &str, namespace: &str) -> Vec<String> {
        self.find(sid, namespace).map(|s| s.rooms()).unwrap_or_default()
    }

    /// Disconnect socket `sid` (with `close`, every namespace of its
    /// connection, and close it); false if there is no such socket.
    #[pyo3(signature = (sid, namespace = "/", close = false))]
    fn disconnect(&self, sid: &str, namespace: &str, close: bool) -> bool {
        let socket = self.find(sid, namespace);
        match &socket {
            Some(s) if close => s.disconnect_connection(),
            Some(s) => s.disconnect(),
            None => {}
        }
        socket.is_some()
    }

    /// Send `event` to socket `sid` and resolve to the arguments of its
    /// ack (a list), or raise `TimeoutError` after `timeout` seconds.
    #[pyo3(signature = (event, args, sid, timeout = 60.0, namespace = "/"))]
    fn call<'py>(
        &self,
        py: Python<'py>,
        event: String,
        args: &Bound<'py, PyAny>,
        sid: &str,
        timeout: f64,
        namespace: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = convert::to_args(args)?;
        let timeout = convert::seconds(timeout, "timeout")?;
        let socket = self.socket(sid, namespace)?;
        let reply = async move { socket.emit_args_with_ack(event, args, timeout).await };
        self.event_loop.future(py, reply, |py, reply| convert::to_py_list(py, &reply))
    }

    /// The session object of socket `sid` (a new dict the first time).
    #[pyo3(signature = (sid, namespace = "/"))]
    fn get_session(&self, py: Python<'_>, sid: &str, namespace: &str) -> PyResult<Py<PyAny>> {
        let socket = self.socket(sid, namespace)?;
        if let Some(Session(session)) = socket.extension::<Session>() {
            return Ok(session.clone_ref(py));
        }
        let session: Py<PyAny> = pyo3::types::PyDict::new(py).into_any().unbind();
        socket.set_extension(Session(Arc::new(session.clone_ref(py))));
        Ok(session)
    }

    /// Replace the session object of socket `sid`.
    #[pyo3(signature = (sid, session, namespace = "/"))]
    fn save_session(&self, sid: &str, session: Py<PyAny>, namespace: &str) -> PyResult<()> {
        self.socket(sid, namespace)?.set_extension(Session(Arc::new(session)));
        Ok(())
    }

    /// Listen on `host:port` (0 = any free port) from the running asyncio
    /// loop, which then runs the handlers. Resolves to the bound port.
    fn listen<'py>(&self, py: Python<'py>, host: String, port: u16) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        let bound = async move { core.listen((host.as_str(), port)).await.map(|a| a.port()) };
        self.event_loop.future(py, bound, |py, port| Ok(port.into_pyobject(py)?.into_any()))
    }

    /// Send `event` with `args` to the sockets in `to` (rooms or sids; all
    /// when empty) except those in `skip`. Returns how many sockets it was
    /// queued for.
    #[pyo3(signature = (event, args, to = Vec::new(), skip = Vec::new(), namespace = "/"))]
    fn emit(
        &self,
        event: String,
        args: &Bound<'_, PyAny>,
        to: Vec<String>,
        skip: Vec<String>,
        namespace: &str,
    ) -> PyResult<usize> {
        let args = convert::to_args(args)?;
        let mut op = self.core.of(namespace).broadcast();
        for room in to {
            op = op.to(room);
        }
        for room in skip {
            op = op.except(room);
        }
        let _runtime = pyo3_async_runtimes::tokio::get_runtime().enter();
        Ok(op.emit_args(event, args))
    }

    /// Stop running handlers on the asyncio loop (after shutdown).
    fn detach(&self, py: Python<'_>) -> PyResult<()> {
        self.event_loop.detach(py)
    }

    /// Close every connection and stop listening.
    fn shutdown<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        self.event_loop.future(
            py,
            async move {
                core.shutdown().await;
                Ok(())
            },
            convert::none,
        )
    }
}

/// A WSGI-style environ of the handshake, as python-socketio hands to `connect`.
fn environ(hs: &Handshake) -> Vec<(String, String)> {
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(hs.query.iter()).finish();
    let mut env = vec![
        ("REQUEST_METHOD".to_owned(), "GET".to_owned()),
        ("PATH_INFO".to_owned(), hs.path.clone()),
        ("QUERY_STRING".to_owned(), query),
        ("REMOTE_ADDR".to_owned(), hs.remote_addr.ip().to_string()),
        ("REMOTE_PORT".to_owned(), hs.remote_addr.port().to_string()),
    ];
    for (name, value) in hs.headers.iter() {
        let key = format!("HTTP_{}", name.as_str().to_ascii_uppercase().replace('-', "_"));
        env.push((key, String::from_utf8_lossy(value.as_bytes()).into_owned()));
    }
    env
}

/// The connect handler's verdict: False or `ConnectionRefusedError` refuse;
/// any other exception is logged and refuses too.
fn admission(py: Python<'_>, result: PyResult<Bound<'_, PyAny>>) -> Result<(), Rejection> {
    const REFUSED: &str = "Connection refused by server";
    match result {
        Ok(v) if v.is_instance_of::<pyo3::types::PyBool>() && !v.is_truthy().unwrap_or(true) => {
            Err(Rejection::new(REFUSED))
        }
        Ok(_) => Ok(()),
        Err(e) if e.is_instance_of::<errors::ConnectionRefusedError>(py) => {
            let args = e.value(py).getattr("args").ok();
            let arg = |i: usize| args.as_ref().and_then(|a| a.get_item(i).ok());
            let message = arg(0).and_then(|m| m.str().ok()).map_or_else(|| REFUSED.to_owned(), |m| m.to_string());
            let data = arg(1).and_then(|d| convert::to_data(&d).ok()).map(|d| roomcast::Args::one(d).json());
            Err(Rejection { message, data })
        }
        Err(e) => {
            crate::bridge::log_exception(py, &e);
            Err(Rejection::new(REFUSED))
        }
    }
}
