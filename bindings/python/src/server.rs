//! `_native.Server`: a roomcast server driven from Python.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyTuple};
use roomcast::{Args, BroadcastOperator, Handshake, Rejection, Reply, Server as Core};

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

    /// The sockets of `namespace` in `to` (rooms or sids; all when empty)
    /// and in none of `skip`.
    fn select(&self, to: Vec<String>, skip: Vec<String>, namespace: &str) -> BroadcastOperator {
        let op = to.into_iter().fold(self.core.of(namespace).broadcast(), BroadcastOperator::to);
        skip.into_iter().fold(op, BroadcastOperator::except)
    }

    /// Whether this server is a node of a cluster.
    fn clustered(&self) -> bool {
        self.core.node_id().is_some()
    }
}

/// Send `event` to socket `sid` on another node and wait for its ack.
async fn call_remote(
    op: BroadcastOperator,
    sid: String,
    namespace: String,
    event: String,
    args: Args,
    timeout: std::time::Duration,
) -> roomcast::Result<Args> {
    use roomcast::{Error, ErrorKind};
    let answer = op.emit_with_ack_everywhere(event, args, timeout).await?;
    match answer.value.into_iter().find(|r| r.sid == sid) {
        Some(reply) => reply.into_args().map_err(|code| {
            Error::new(
                ErrorKind::from_code(&code).unwrap_or(ErrorKind::Internal),
                format!("socket {sid} did not ack ({code})"),
            )
        }),
        None if answer.missing.is_empty() => {
            Err(Error::new(ErrorKind::NotFound, format!("no socket {sid} in namespace {namespace}")))
        }
        None => Err(Error::new(
            ErrorKind::Timeout,
            format!("no socket {sid} on the nodes that answered; {} did not", answer.missing.join(", ")),
        )),
    }
}

#[pymethods]
impl Server {
    /// With `redis_url`, the server is a node of the cluster of every server
    /// on that Redis with the same `redis_prefix`.
    #[new]
    #[pyo3(signature = (
        *,
        ping_interval = 25.0,
        ping_timeout = 20.0,
        max_payload = 1_000_000,
        allowed_origins = None,
        redis_url = None,
        redis_prefix = None,
        node_ttl = 10.0,
        redis_connect_timeout = 5.0,
        redis_request_timeout = 5.0,
        recovery_window = None,
        recovery_skip_middlewares = true,
        recovery_max_packets = 10_000,
        outbound_queue_messages = 4096,
        outbound_queue_bytes = 8_388_608,
        overflow = "close",
        metrics_path = None,
        max_connections = None,
        max_connections_per_ip = None,
        connection_rate_per_ip = None,
        connection_burst_per_ip = None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        ping_interval: f64,
        ping_timeout: f64,
        max_payload: usize,
        allowed_origins: Option<Vec<String>>,
        redis_url: Option<String>,
        redis_prefix: Option<String>,
        node_ttl: f64,
        redis_connect_timeout: f64,
        redis_request_timeout: f64,
        recovery_window: Option<f64>,
        recovery_skip_middlewares: bool,
        recovery_max_packets: usize,
        outbound_queue_messages: usize,
        outbound_queue_bytes: usize,
        overflow: &str,
        metrics_path: Option<String>,
        max_connections: Option<usize>,
        max_connections_per_ip: Option<usize>,
        connection_rate_per_ip: Option<f64>,
        connection_burst_per_ip: Option<u32>,
    ) -> PyResult<Self> {
        let overflow = match overflow {
            "close" => roomcast::Overflow::Close,
            "drop" => roomcast::Overflow::Drop,
            other => {
                let e = roomcast::Error::new(
                    roomcast::ErrorKind::InvalidArgument,
                    format!("overflow must be \"close\" or \"drop\", not {other:?}"),
                );
                return Err(errors::to_py(e));
            }
        };
        let mut b = Core::builder()
            .ping_interval(convert::seconds(ping_interval, "ping_interval")?)
            .ping_timeout(convert::seconds(ping_timeout, "ping_timeout")?)
            .max_payload(max_payload)
            .outbound_queue(outbound_queue_messages, outbound_queue_bytes)
            .overflow(overflow);
        if let Some(path) = metrics_path {
            b = b.metrics_path(path);
        }
        if let Some(n) = max_connections {
            b = b.max_connections(n);
        }
        if let Some(n) = max_connections_per_ip {
            b = b.max_connections_per_ip(n);
        }
        if let Some(per_sec) = connection_rate_per_ip {
            let rate = roomcast::ConnectionRate::new(per_sec);
            b = b.connection_rate_per_ip(connection_burst_per_ip.map_or(rate, |n| rate.burst(n)));
        }
        for origin in allowed_origins.unwrap_or_default() {
            b = b.allowed_origin(origin);
        }
        if let Some(window) = recovery_window {
            b = b.connection_state_recovery(roomcast::RecoveryConfig {
                max_disconnection_duration: convert::seconds(window, "recovery_window")?,
                skip_middlewares: recovery_skip_middlewares,
                max_packets: recovery_max_packets,
            });
        }
        // The Redis clients are made inside the runtime that will drive them.
        let _runtime = redis_url.is_some().then(|| pyo3_async_runtimes::tokio::get_runtime().enter());
        if let Some(url) = redis_url {
            let mut redis = roomcast::RedisConfig::new(url);
            if let Some(prefix) = redis_prefix {
                redis.prefix = prefix;
            }
            redis.node_ttl = convert::seconds(node_ttl, "node_ttl")?;
            redis.connect_timeout = convert::seconds(redis_connect_timeout, "connect_timeout")?;
            redis.request_timeout = convert::seconds(redis_request_timeout, "request_timeout")?;
            b = b.redis(redis);
        }
        Ok(Self { core: b.build().map_err(errors::to_py)?, event_loop: EventLoop::default() })
    }

    /// Handle `event` on `namespace`: `handler(sid, *args)` returns an
    /// awaitable whose result is the ack.
    #[pyo3(signature = (event, handler, namespace = "/"))]
    fn on(&self, event: String, handler: Py<PyAny>, namespace: &str) {
        let (handler, event_loop) = (Arc::new(handler), self.event_loop.clone());
        // Queued for the loop as the event arrives: handlers start in order.
        self.core.of(namespace).on(event, move |socket, args| {
            event_loop.call(handler.clone(), vec![socket.id().as_str().to_owned()], args)
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
            event_loop.call(handler.clone(), vec![event, socket.id().as_str().to_owned()], args)
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

    /// Whether socket `sid` took up a disconnected one's session
    /// (connection state recovery); false if there is no such socket.
    #[pyo3(signature = (sid, namespace = "/"))]
    fn recovered(&self, sid: &str, namespace: &str) -> bool {
        self.find(sid, namespace).is_some_and(|s| s.recovered())
    }

    /// Bytes queued for socket `sid`'s connection and not yet written; None
    /// if there is no such socket here.
    #[pyo3(signature = (sid, namespace = "/"))]
    fn buffered_amount(&self, sid: &str, namespace: &str) -> Option<usize> {
        self.find(sid, namespace).map(|s| s.buffered_amount())
    }

    /// Resolve once nothing is buffered for socket `sid` (or it is gone);
    /// NotFoundError if there is no such socket here.
    #[pyo3(signature = (sid, namespace = "/"))]
    fn drained<'py>(&self, py: Python<'py>, sid: &str, namespace: &str) -> PyResult<Bound<'py, PyAny>> {
        let socket = self.find(sid, namespace);
        let wait = async move {
            let socket = socket.ok_or_else(|| roomcast::Error::new(roomcast::ErrorKind::NotFound, "no such socket"))?;
            socket.drained().await;
            Ok(())
        };
        self.event_loop.future(py, wait, |py, ()| Ok(py.None().into_bound(py)))
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

    /// Send `event` to socket `sid` (in a cluster, on any node) and resolve
    /// to the arguments of its ack (a list), or raise `TimeoutError` after
    /// `timeout` seconds.
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
        // Not here: in a cluster the socket may be on another node.
        let local = if self.clustered() { self.find(sid, namespace) } else { Some(self.socket(sid, namespace)?) };
        let (op, sid, namespace) = (self.core.of(namespace).to(sid), sid.to_owned(), namespace.to_owned());
        let reply = async move {
            match local {
                Some(socket) => socket.emit_args_with_ack(event, args, timeout).await,
                None => call_remote(op, sid, namespace, event, args, timeout).await,
            }
        };
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

    /// Track presence in `room`, or in every named room of `namespace` when None.
    #[pyo3(signature = (room = None, namespace = "/"))]
    fn enable_presence(&self, room: Option<&str>, namespace: &str) {
        match room {
            Some(room) => self.core.of(namespace).enable_presence_in(room),
            None => self.core.of(namespace).enable_presence(),
        }
    }

    /// The members of `room` (on every node), as dicts.
    #[pyo3(signature = (room, namespace = "/"))]
    fn presence<'py>(&self, py: Python<'py>, room: String, namespace: &str) -> PyResult<Bound<'py, PyAny>> {
        let ns = self.core.of(namespace);
        let members = async move { ns.presence(&room).await };
        self.event_loop.future(py, members, |py, members| convert::serialized(py, serde_json::to_value(members)))
    }

    /// How many members `room` has (on every node).
    #[pyo3(signature = (room, namespace = "/"))]
    fn presence_count<'py>(&self, py: Python<'py>, room: String, namespace: &str) -> PyResult<Bound<'py, PyAny>> {
        let ns = self.core.of(namespace);
        let count = async move { ns.presence_count(&room).await };
        self.event_loop.future(py, count, |py, n| Ok(n.into_pyobject(py)?.into_any()))
    }

    /// Whether `user_id` has a connection (on any node).
    fn is_online<'py>(&self, py: Python<'py>, user_id: String) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        let online = async move { core.is_online(&user_id).await };
        self.event_loop.future(py, online, |py, on| Ok(pyo3::types::PyBool::new(py, on).to_owned().into_any()))
    }

    /// Each of `user_ids` with whether it has a connection (on any node).
    fn online_users<'py>(&self, py: Python<'py>, user_ids: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        let online = async move { core.online_users(&user_ids).await };
        self.event_loop.future(py, online, |py, pairs| pairs.into_pyobject(py))
    }

    /// Name the user of socket `sid`: only from its connect handler, before it joins rooms.
    #[pyo3(signature = (sid, user_id, namespace = "/"))]
    fn set_user_id(&self, sid: &str, user_id: String, namespace: &str) -> PyResult<()> {
        self.socket(sid, namespace)?.set_user_id(user_id).map_err(errors::to_py)
    }

    /// The user of socket `sid`, if named.
    #[pyo3(signature = (sid, namespace = "/"))]
    fn get_user_id(&self, sid: &str, namespace: &str) -> PyResult<Option<String>> {
        Ok(self.socket(sid, namespace)?.user_id().map(str::to_owned))
    }

    /// Replace the presence metadata of socket `sid` (a dict; `status`
    /// online, away or busy); its rooms with presence get `presence:update`.
    #[pyo3(signature = (sid, meta, namespace = "/"))]
    fn set_presence(&self, sid: &str, meta: &Bound<'_, PyAny>, namespace: &str) -> PyResult<()> {
        let meta = convert::to_json(meta)?;
        self.socket(sid, namespace)?.set_presence(meta).map_err(errors::to_py)
    }

    /// The presence metadata of socket `sid`.
    #[pyo3(signature = (sid, namespace = "/"))]
    fn get_presence<'py>(&self, py: Python<'py>, sid: &str, namespace: &str) -> PyResult<Bound<'py, PyAny>> {
        convert::json_to_py(py, self.socket(sid, namespace)?.presence_meta())
    }

    /// `handler(info)` runs for each socket of a dead cluster node, once, on
    /// the node that cleans up after it; never without Redis.
    fn on_node_lost(&self, handler: Py<PyAny>) {
        let (handler, event_loop) = (Arc::new(handler), self.event_loop.clone());
        self.core.on_node_lost(move |lost| {
            let (handler, event_loop) = (handler.clone(), event_loop.clone());
            async move {
                let args: crate::bridge::MakeArgs =
                    Box::new(move |py| PyTuple::new(py, [convert::serialized(py, serde_json::to_value(lost))?]));
                let _ = event_loop
                    .run(handler, args, |py, result| {
                        if let Err(e) = result {
                            crate::bridge::log_exception(py, &e);
                        }
                    })
                    .await;
            }
        });
    }

    /// The sockets in `to` (rooms or sids; all when empty) except those in
    /// `skip`, on every node: `(list of dicts, missing node ids)`.
    #[pyo3(signature = (to = Vec::new(), skip = Vec::new(), namespace = "/"))]
    fn fetch_sockets<'py>(
        &self,
        py: Python<'py>,
        to: Vec<String>,
        skip: Vec<String>,
        namespace: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = self.select(to, skip, namespace);
        let found = async move { op.fetch_sockets().await };
        self.event_loop.future(py, found, |py, found| {
            convert::partial(py, found, |py, sockets| convert::serialized(py, serde_json::to_value(sockets)))
        })
    }

    /// Make the selected sockets on every node join `room`: `(how many, missing node ids)`.
    #[pyo3(signature = (room, to = Vec::new(), skip = Vec::new(), namespace = "/"))]
    fn sockets_join<'py>(
        &self,
        py: Python<'py>,
        room: String,
        to: Vec<String>,
        skip: Vec<String>,
        namespace: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = self.select(to, skip, namespace);
        let joined = async move { op.sockets_join(&room).await };
        self.event_loop.future(py, joined, |py, n| convert::partial(py, n, convert::count))
    }

    /// Make the selected sockets on every node leave `room`: `(how many, missing node ids)`.
    #[pyo3(signature = (room, to = Vec::new(), skip = Vec::new(), namespace = "/"))]
    fn sockets_leave<'py>(
        &self,
        py: Python<'py>,
        room: String,
        to: Vec<String>,
        skip: Vec<String>,
        namespace: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = self.select(to, skip, namespace);
        let left = async move { op.sockets_leave(&room).await };
        self.event_loop.future(py, left, |py, n| convert::partial(py, n, convert::count))
    }

    /// Disconnect the selected sockets on every node (`close`: their whole
    /// connections): `(how many, missing node ids)`.
    #[pyo3(signature = (to = Vec::new(), skip = Vec::new(), close = false, namespace = "/"))]
    fn disconnect_sockets<'py>(
        &self,
        py: Python<'py>,
        to: Vec<String>,
        skip: Vec<String>,
        close: bool,
        namespace: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let op = self.select(to, skip, namespace);
        let gone = async move { op.disconnect_sockets(close).await };
        self.event_loop.future(py, gone, |py, n| convert::partial(py, n, convert::count))
    }

    /// Send `event` to the selected sockets on every node and collect their
    /// acks within `timeout` seconds: `(list of (sid, reply or None, error
    /// code or None), missing node ids)`.
    #[pyo3(signature = (event, args, to = Vec::new(), skip = Vec::new(), timeout = 60.0, namespace = "/"))]
    #[allow(clippy::too_many_arguments)]
    fn call_everywhere<'py>(
        &self,
        py: Python<'py>,
        event: String,
        args: &Bound<'py, PyAny>,
        to: Vec<String>,
        skip: Vec<String>,
        timeout: f64,
        namespace: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = convert::to_args(args)?;
        let timeout = convert::seconds(timeout, "timeout")?;
        let op = self.select(to, skip, namespace);
        let replies = async move { op.emit_with_ack_everywhere(event, args, timeout).await };
        self.event_loop.future(py, replies, |py, replies| convert::partial(py, replies, convert::ack_replies))
    }

    /// The rooms joined by name on every node, sorted: `(rooms, missing node ids)`.
    #[pyo3(signature = (namespace = "/"))]
    fn rooms_everywhere<'py>(&self, py: Python<'py>, namespace: &str) -> PyResult<Bound<'py, PyAny>> {
        let ns = self.core.of(namespace);
        let rooms = async move { ns.rooms_everywhere().await };
        self.event_loop.future(py, rooms, |py, rooms| convert::partial(py, rooms, |py, r| r.into_pyobject(py)))
    }

    /// How many sockets `namespace` has on every node: `(count, missing node ids)`.
    #[pyo3(signature = (namespace = "/"))]
    fn count_everywhere<'py>(&self, py: Python<'py>, namespace: &str) -> PyResult<Bound<'py, PyAny>> {
        let ns = self.core.of(namespace);
        let count = async move { ns.len_everywhere().await };
        self.event_loop.future(py, count, |py, n| convert::partial(py, n, convert::count))
    }

    /// The ids of the cluster's nodes (this one included), sorted; empty without Redis.
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let core = self.core.clone();
        let nodes = async move { core.nodes().await };
        self.event_loop.future(py, nodes, |py, nodes| nodes.into_pyobject(py))
    }

    /// `handler(*args)` answers the server event `event` sent by another
    /// node's `server_emit`; its result is the reply, as an ack's. Never
    /// called without Redis.
    fn on_server_event(&self, event: String, handler: Py<PyAny>) {
        let (handler, event_loop) = (Arc::new(handler), self.event_loop.clone());
        self.core.on_server_event(event, move |args| {
            let (handler, event_loop) = (handler.clone(), event_loop.clone());
            async move {
                match event_loop.call(handler, Vec::new(), args).await {
                    Reply::Data(args) => args,
                    // An exception was logged; the sender gets no data.
                    _ => Args::none(),
                }
            }
        });
    }

    /// Send `event` to every other node's server-event handler and collect
    /// their replies within the request timeout: `(list of (node id, reply),
    /// missing node ids)`.
    fn server_emit<'py>(
        &self,
        py: Python<'py>,
        event: String,
        args: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let args = convert::to_args(args)?;
        let core = self.core.clone();
        let replies = async move { core.server_emit(event, args).await };
        self.event_loop.future(py, replies, |py, replies| {
            convert::partial(py, replies, |py, replies| {
                let items = replies
                    .iter()
                    .map(|(node, reply)| {
                        PyTuple::new(py, [node.into_pyobject(py)?.into_any(), convert::to_py_list(py, reply)?])
                    })
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(pyo3::types::PyList::new(py, items)?.into_any())
            })
        })
    }

    /// This server's cluster node id (None without Redis).
    #[getter]
    fn node_id(&self) -> Option<String> {
        self.core.node_id().map(str::to_owned)
    }

    /// The counters and gauges in the Prometheus text format (OpenMetrics).
    fn metrics(&self) -> String {
        self.core.metrics()
    }

    /// The server's counters now, as a dict keyed by `Stats`' field names.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        convert::serialized(py, serde_json::to_value(self.core.stats()))
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
    /// `volatile`: dropped for sockets whose outbound queue is full.
    #[pyo3(signature = (event, args, to = Vec::new(), skip = Vec::new(), namespace = "/", volatile = false))]
    fn emit(
        &self,
        event: String,
        args: &Bound<'_, PyAny>,
        to: Vec<String>,
        skip: Vec<String>,
        namespace: &str,
        volatile: bool,
    ) -> PyResult<usize> {
        let args = convert::to_args(args)?;
        let mut op = self.select(to, skip, namespace);
        if volatile {
            op = op.volatile();
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
