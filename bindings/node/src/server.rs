//! `NativeServer`: the roomcast server driven from Node. Sockets are named
//! by namespace and id; the JS facade (`node/index.js`) shapes them like
//! socket.io's. Handlers are weak threadsafe functions, so only a listening
//! server (its keepalive) holds the process open.

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, UnknownReturnValue};
use napi_derive::napi;
use parking_lot::Mutex;
use roomcast::{BroadcastOperator, Handshake, LostSocket, Member, RedisConfig, Rejection, Server as Core};
use serde::Serialize;
use serde_json::Value;

use crate::cluster::RemoteHandshakeJs;
use crate::errors;
use crate::handler::{self, EventFn};
use crate::value::{JsArgs, JsJson, JsPlain, ReplyIn, args_from_js};

/// `(sid, event, args, wantsAck)`.
type EventArgs = FnArgs<(String, String, JsArgs, bool)>;
/// `(sid, admission) => Promise<null | {message, data}>`.
type ConnectFn = ThreadsafeFunction<
    FnArgs<(String, JsJson<AdmissionJs>)>,
    Promise<Value>,
    FnArgs<(String, JsJson<AdmissionJs>)>,
    Status,
    false,
    true,
>;
/// `(sid, reason) => void`.
type DisconnectFn =
    ThreadsafeFunction<FnArgs<(String, String)>, UnknownReturnValue, FnArgs<(String, String)>, Status, false, true>;
/// `(lostSocket) => void`.
type LostFn = ThreadsafeFunction<JsJson<LostSocket>, UnknownReturnValue, JsJson<LostSocket>, Status, false, true>;
/// Each user id with whether it has a connection.
type Online = JsJson<Vec<(String, bool)>>;
/// Never called: while held, Node's event loop stays alive.
pub(crate) type Keepalive = ThreadsafeFunction<(), (), (), Status, false, false>;

/// Server options, in socket.io's names and units (milliseconds, bytes).
#[napi(object)]
pub struct ServerOptions {
    pub ping_interval: Option<u32>,
    pub ping_timeout: Option<u32>,
    pub connect_timeout: Option<u32>,
    pub max_http_buffer_size: Option<u32>,
    /// The Engine.IO path, `/socket.io/` by default.
    pub path: Option<String>,
    /// Allowed origins for CORS and WebSocket upgrades; any when absent.
    pub cors_origins: Option<Vec<String>>,
    /// Join a cluster over Redis.
    pub redis: Option<RedisOptions>,
    /// Connection state recovery (socket.io's option): off when absent.
    pub connection_state_recovery: Option<RecoveryOptions>,
    /// Frames the outbound queue of one connection may hold (4096 by default).
    pub outbound_queue_messages: Option<u32>,
    /// Bytes the outbound queue of one connection may hold (8 MiB by default).
    pub outbound_queue_bytes: Option<u32>,
    /// What a full outbound queue does with an event that is not volatile:
    /// `"close"` (the default) or `"drop"`.
    pub overflow: Option<String>,
    /// Serve the Prometheus metrics at this path (off when absent).
    pub metrics_path: Option<String>,
    /// Connections open at once, in total (unlimited when absent).
    pub max_connections: Option<u32>,
    /// Connections open at once from one IP address.
    pub max_connections_per_ip: Option<u32>,
    /// New connections per second from one IP address.
    pub connection_rate_per_ip: Option<f64>,
    /// New connections at once from one IP address (twice the rate by default).
    pub connection_burst_per_ip: Option<u32>,
}

/// socket.io's `connectionStateRecovery`, durations in milliseconds.
#[napi(object)]
pub struct RecoveryOptions {
    /// How long a disconnected client may come back (120000 by default).
    pub max_disconnection_duration: Option<u32>,
    /// Whether a recovered socket skips the middlewares (true by default).
    pub skip_middlewares: Option<bool>,
    /// Packets kept per namespace at most (10000 by default).
    pub max_packets: Option<u32>,
}

impl RecoveryOptions {
    fn config(self) -> roomcast::RecoveryConfig {
        let d = roomcast::RecoveryConfig::default();
        roomcast::RecoveryConfig {
            max_disconnection_duration: self.max_disconnection_duration.map_or(d.max_disconnection_duration, millis),
            skip_middlewares: self.skip_middlewares.unwrap_or(d.skip_middlewares),
            max_packets: self.max_packets.map_or(d.max_packets, |n| n as usize),
        }
    }
}

/// A cluster over Redis: servers on the same Redis and prefix share
/// broadcasts, rooms and presence. Durations in milliseconds.
#[napi(object)]
pub struct RedisOptions {
    /// `redis://`, `rediss://`, `redis-cluster://host:port?node=…` or `redis-sentinel://…`.
    pub url: String,
    /// Prefix of every key and channel, `roomcast` by default.
    pub prefix: Option<String>,
    /// A node silent this long is dead (10000 by default, 300 at least).
    pub node_ttl: Option<u32>,
    /// How long `listen` waits for Redis (5000 by default).
    pub connect_timeout: Option<u32>,
    /// How long a cluster query waits for the other nodes (5000 by default).
    pub request_timeout: Option<u32>,
}

impl RedisOptions {
    fn config(self) -> RedisConfig {
        let mut c = RedisConfig::new(self.url);
        if let Some(prefix) = self.prefix {
            c.prefix = prefix;
        }
        if let Some(ms) = self.node_ttl {
            c.node_ttl = millis(ms);
        }
        if let Some(ms) = self.connect_timeout {
            c.connect_timeout = millis(ms);
        }
        if let Some(ms) = self.request_timeout {
            c.request_timeout = millis(ms);
        }
        c
    }
}

/// The handshake as socket.io's `socket.handshake`.
#[derive(Serialize)]
pub struct HandshakeJs {
    #[serde(flatten)]
    fields: RemoteHandshakeJs,
    time: String,
    issued: f64,
}

/// What the facade needs to admit a new socket: its handshake, whether it
/// took up a disconnected one's session (with that session's data), and
/// whether the application's middlewares are skipped for it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionJs {
    handshake: HandshakeJs,
    recovered: bool,
    skip_middlewares: bool,
    data: JsPlain,
}

impl AdmissionJs {
    fn of(socket: &roomcast::Socket) -> Self {
        Self {
            handshake: HandshakeJs::of(socket.handshake()),
            recovered: socket.recovered(),
            skip_middlewares: socket.skips_middlewares(),
            data: crate::cluster::object_or_empty(socket.data()),
        }
    }
}

impl HandshakeJs {
    fn of(hs: &Handshake) -> Self {
        let headers = hs
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let address = hs.remote_addr.ip().to_string();
        Self {
            fields: RemoteHandshakeJs::new(headers, &hs.query, hs.auth.clone(), address, &hs.path),
            time: format!("{}", now.as_secs()),
            issued: now.as_millis() as f64,
        }
    }
}

#[napi]
pub struct NativeServer {
    pub(crate) core: Core,
    keepalive: Mutex<Option<Keepalive>>,
}

impl NativeServer {
    pub(crate) fn socket(&self, ns: &str, sid: &str) -> Result<roomcast::Socket, String> {
        self.core
            .of(ns)
            .socket(sid)
            .ok_or_else(|| errors::kind(roomcast::ErrorKind::NotFound, format!("no socket {sid} in namespace {ns}")))
    }

    pub(crate) fn select(
        &self,
        ns: &str,
        rooms: Vec<String>,
        except: Vec<String>,
        volatile: bool,
    ) -> BroadcastOperator {
        let mut op = self.core.of(ns).broadcast();
        for room in rooms {
            op = op.to(room);
        }
        for room in except {
            op = op.except(room);
        }
        if volatile { op.volatile() } else { op }
    }
}

pub(crate) fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

#[napi]
impl NativeServer {
    #[napi(constructor)]
    pub fn new(options: Option<ServerOptions>) -> Result<Self, String> {
        let o = options.unwrap_or(ServerOptions {
            ping_interval: None,
            ping_timeout: None,
            connect_timeout: None,
            max_http_buffer_size: None,
            path: None,
            cors_origins: None,
            redis: None,
            connection_state_recovery: None,
            outbound_queue_messages: None,
            outbound_queue_bytes: None,
            overflow: None,
            metrics_path: None,
            max_connections: None,
            max_connections_per_ip: None,
            connection_rate_per_ip: None,
            connection_burst_per_ip: None,
        });
        let mut b = Core::builder();
        let d = roomcast::ServerConfig::default();
        b = b.outbound_queue(
            o.outbound_queue_messages.map_or(d.outbound_queue_messages, |n| n as usize),
            o.outbound_queue_bytes.map_or(d.outbound_queue_bytes, |n| n as usize),
        );
        b = b.overflow(match o.overflow.as_deref() {
            None | Some("close") => roomcast::Overflow::Close,
            Some("drop") => roomcast::Overflow::Drop,
            Some(other) => {
                let why = format!("overflow must be \"close\" or \"drop\", not {other:?}");
                return Err(errors::coded(&roomcast::Error::new(roomcast::ErrorKind::InvalidArgument, why)));
            }
        });
        if let Some(ms) = o.ping_interval {
            b = b.ping_interval(millis(ms));
        }
        if let Some(ms) = o.ping_timeout {
            b = b.ping_timeout(millis(ms));
        }
        if let Some(ms) = o.connect_timeout {
            b = b.connect_timeout(millis(ms));
        }
        if let Some(bytes) = o.max_http_buffer_size {
            b = b.max_payload(bytes as usize);
        }
        if let Some(path) = o.path {
            b = b.socketio_path(path);
        }
        if let Some(path) = o.metrics_path {
            b = b.metrics_path(path);
        }
        if let Some(n) = o.max_connections {
            b = b.max_connections(n as usize);
        }
        if let Some(n) = o.max_connections_per_ip {
            b = b.max_connections_per_ip(n as usize);
        }
        if let Some(per_sec) = o.connection_rate_per_ip {
            let rate = roomcast::ConnectionRate::new(per_sec);
            b = b.connection_rate_per_ip(o.connection_burst_per_ip.map_or(rate, |n| rate.burst(n)));
        }
        for origin in o.cors_origins.unwrap_or_default() {
            b = b.allowed_origin(origin);
        }
        if let Some(redis) = o.redis {
            b = b.redis(redis.config());
        }
        if let Some(recovery) = o.connection_state_recovery {
            b = b.connection_state_recovery(recovery.config());
        }
        let core = napi::bindgen_prelude::within_runtime_if_available(|| b.build()).map_err(|e| errors::coded(&e))?;
        Ok(Self { core, keepalive: Mutex::new(None) })
    }

    /// Listen on `host:port` (0 = a free port); resolves to the bound port.
    /// The process stays alive until `close()`.
    #[napi(ts_return_type = "Promise<number>")]
    pub fn listen<'env>(&self, env: &'env Env, port: u32, host: String) -> Result<PromiseRaw<'env, u32>> {
        let keepalive = env
            .create_function_from_closure::<(), (), _>("roomcastKeepalive", |_| Ok(()))?
            .build_threadsafe_function::<()>()
            .build()?;
        let core = self.core.clone();
        let port = u16::try_from(port).map_err(|_| Error::new(Status::InvalidArg, "port out of range"))?;
        *self.keepalive.lock() = Some(keepalive);
        env.spawn_future_with_callback(async move { Ok(core.listen((host.as_str(), port)).await) }, |env, bound| {
            bound.map(|a| u32::from(a.port())).map_err(|e| errors::rejection(env, &e))
        })
    }

    /// Close every connection and stop listening; the process may exit after.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&'env self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let core = self.core.clone();
        let keepalive = self.keepalive.lock().take();
        env.spawn_future_with_callback(
            async move {
                core.shutdown().await;
                drop(keepalive);
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }

    /// `handler(sid, {handshake, recovered, skipMiddlewares, data})` admits
    /// each new socket of `ns` before it learns it is connected, recovered
    /// ones too: resolving to null accepts, to `{message, data}` refuses
    /// (the client's connect_error).
    #[napi(
        ts_args_type = "ns: string, handler: (sid: string, admission: { handshake: any, recovered: boolean, skipMiddlewares: boolean, data: any }) => Promise<any>"
    )]
    pub fn on_connect(
        &self,
        ns: String,
        handler: Function<'_, FnArgs<(String, JsJson<AdmissionJs>)>, Promise<Value>>,
    ) -> Result<()> {
        let handler: Arc<ConnectFn> =
            Arc::new(handler.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?);
        self.core.of(&ns).on_admit(move |socket| {
            let handler = handler.clone();
            async move {
                let args = FnArgs::from((socket.id().as_str().to_owned(), JsJson(AdmissionJs::of(&socket))));
                let verdict = async { handler.call_async_catch(args).await?.await };
                match verdict.await {
                    Ok(Value::Null) => Ok(()),
                    Ok(refusal) => Err(Rejection {
                        message: refusal["message"].as_str().unwrap_or("Connection refused by server").to_owned(),
                        data: refusal.get("data").filter(|d| !d.is_null()).cloned(),
                    }),
                    Err(e) => Err(Rejection::new(e.reason.clone())),
                }
            }
        });
        Ok(())
    }

    /// `handler(sid, event, args, wantsAck)` receives every event of `ns`;
    /// when the client wants an ack, the ack is what the promise resolves to.
    #[napi(
        ts_args_type = "ns: string, handler: (sid: string, event: string, args: any[], wantsAck: boolean) => Promise<any[] | undefined | false>"
    )]
    pub fn on_event(&self, ns: String, handler: Function<'_, EventArgs, Promise<ReplyIn>>) -> Result<()> {
        let handler: Arc<EventFn<EventArgs>> =
            Arc::new(handler.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?);
        self.core.of(&ns).on_any(move |socket, event, args| {
            let wants_ack = roomcast::wants_ack();
            let args = FnArgs::from((socket.id().as_str().to_owned(), event, JsArgs(args), wants_ack));
            handler::deliver(handler.clone(), args, wants_ack)
        });
        Ok(())
    }

    /// `handler(sid, reason)` runs when a socket of `ns` disconnects; the
    /// socket can still be looked up while it runs.
    #[napi(ts_args_type = "ns: string, handler: (sid: string, reason: string) => void")]
    pub fn on_disconnect(
        &self,
        ns: String,
        handler: Function<'_, FnArgs<(String, String)>, UnknownReturnValue>,
    ) -> Result<()> {
        let handler: Arc<DisconnectFn> =
            Arc::new(handler.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?);
        self.core.of(&ns).on_disconnect(move |socket, reason| {
            let handler = handler.clone();
            async move {
                let args = FnArgs::from((socket.id().as_str().to_owned(), reason.as_str().to_owned()));
                let _ = handler.call_async_catch(args).await;
            }
        });
        Ok(())
    }

    /// Send `event` with `args` to socket `sid`.
    #[napi(ts_args_type = "ns: string, sid: string, event: string, args: any[]")]
    pub fn emit(&self, env: &Env, ns: String, sid: String, event: String, args: Unknown<'_>) -> Result<(), String> {
        let args = args_from_js(env, args).map_err(errors::from_napi)?;
        self.socket(&ns, &sid)?.emit_args(event, args).map_err(|e| errors::coded(&e))
    }

    /// Send `event` to socket `sid` and resolve to its ack's arguments;
    /// rejects with `ERR_TIMEOUT` after `timeoutMs`.
    #[napi(
        ts_args_type = "ns: string, sid: string, event: string, args: any[], timeoutMs: number",
        ts_return_type = "Promise<any[]>"
    )]
    pub fn emit_with_ack<'env>(
        &self,
        env: &'env Env,
        ns: String,
        sid: String,
        event: String,
        args: Unknown<'_>,
        timeout_ms: u32,
    ) -> Result<PromiseRaw<'env, JsArgs>> {
        let args = args_from_js(env, args)?;
        let socket = self.core.of(&ns).socket(&sid);
        env.spawn_future_with_callback(
            async move {
                Ok(match socket {
                    Some(socket) => socket.emit_args_with_ack(event, args, millis(timeout_ms)).await,
                    None => Err(roomcast::Error::new(roomcast::ErrorKind::NotFound, format!("no socket {sid}"))),
                })
            },
            |env, reply| reply.map(JsArgs).map_err(|e| errors::rejection(env, &e)),
        )
    }

    /// Bytes queued for socket `sid`'s connection and not yet written; null
    /// if there is no such socket.
    #[napi]
    pub fn buffered_amount(&self, ns: String, sid: String) -> Option<u32> {
        let socket = self.core.of(&ns).socket(&sid)?;
        Some(u32::try_from(socket.buffered_amount()).unwrap_or(u32::MAX))
    }

    /// Resolve once nothing is buffered for socket `sid`, or it is gone.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn drained<'env>(&self, env: &'env Env, ns: String, sid: String) -> Result<PromiseRaw<'env, ()>> {
        let socket = self.core.of(&ns).socket(&sid);
        env.spawn_future(async move {
            if let Some(socket) = socket {
                socket.drained().await;
            }
            Ok(())
        })
    }

    /// Put socket `sid` in `rooms`.
    #[napi]
    pub fn join(&self, ns: String, sid: String, rooms: Vec<String>) -> Result<(), String> {
        let socket = self.socket(&ns, &sid)?;
        rooms.into_iter().try_for_each(|r| socket.join(r)).map_err(|e| errors::coded(&e))
    }

    /// Take socket `sid` out of `room`.
    #[napi]
    pub fn leave(&self, ns: String, sid: String, room: String) -> Result<(), String> {
        self.socket(&ns, &sid)?.leave(&room).map_err(|e| errors::coded(&e))
    }

    /// The rooms of socket `sid`, its own room first; empty once it is gone.
    #[napi]
    pub fn rooms(&self, ns: String, sid: String) -> Vec<String> {
        self.core.of(&ns).socket(&sid).map(|s| s.rooms()).unwrap_or_default()
    }

    /// Disconnect socket `sid` from `ns` (with `close`, every namespace of
    /// its connection, and close it); false if there is no such socket.
    #[napi]
    pub fn disconnect(&self, ns: String, sid: String, close: bool) -> bool {
        let socket = self.core.of(&ns).socket(&sid);
        match &socket {
            Some(s) if close => s.disconnect_connection(),
            Some(s) => s.disconnect(),
            None => {}
        }
        socket.is_some()
    }

    /// Send `event` to the sockets of `ns` in `rooms` (all when empty) and
    /// not in `except`; returns how many it was queued for.
    #[napi(
        ts_args_type = "ns: string, rooms: string[], except: string[], volatile: boolean, event: string, args: any[]"
    )]
    #[allow(clippy::too_many_arguments)]
    pub fn broadcast(
        &self,
        env: &Env,
        ns: String,
        rooms: Vec<String>,
        except: Vec<String>,
        volatile: bool,
        event: String,
        args: Unknown<'_>,
    ) -> Result<u32, String> {
        let args = args_from_js(env, args).map_err(errors::from_napi)?;
        Ok(self.select(&ns, rooms, except, volatile).emit_args(event, args) as u32)
    }

    /// Broadcast with acks: resolves once every selected socket answered or
    /// `timeoutMs` passed, to one reply per socket (`args` absent when it
    /// did not answer).
    #[napi(
        ts_args_type = "ns: string, rooms: string[], except: string[], event: string, args: any[], timeoutMs: number",
        ts_return_type = "Promise<Array<{ sid: string, args?: any[] }>>"
    )]
    #[allow(clippy::too_many_arguments)]
    pub fn broadcast_with_ack<'env>(
        &self,
        env: &'env Env,
        ns: String,
        rooms: Vec<String>,
        except: Vec<String>,
        event: String,
        args: Unknown<'_>,
        timeout_ms: u32,
    ) -> Result<PromiseRaw<'env, JsJson<Vec<BroadcastAck>>>> {
        let args = args_from_js(env, args)?;
        let op = self.select(&ns, rooms, except, false);
        env.spawn_future_with_callback(
            async move {
                let replies = op.emit_with_ack(event, args, millis(timeout_ms)).await;
                Ok(replies.into_iter().map(|(s, r)| (s.id().as_str().to_owned(), r.ok())).collect::<Vec<_>>())
            },
            |_, replies| {
                Ok(JsJson(
                    replies.into_iter().map(|(sid, args)| BroadcastAck { sid, args: args.map(JsArgs) }).collect(),
                ))
            },
        )
    }

    /// The ids of the sockets of `ns` in `rooms` (all when empty), not in `except`.
    #[napi]
    pub fn socket_ids(&self, ns: String, rooms: Vec<String>, except: Vec<String>) -> Vec<String> {
        self.select(&ns, rooms, except, false).sockets().iter().map(|s| s.id().as_str().to_owned()).collect()
    }

    /// Make the selected sockets of this node join each of `targets` (or
    /// leave them); how many sockets were selected.
    #[napi]
    pub fn sockets_room(
        &self,
        ns: String,
        rooms: Vec<String>,
        except: Vec<String>,
        targets: Vec<String>,
        join: bool,
    ) -> Result<u32, String> {
        let selected = self.select(&ns, rooms, except, false).sockets();
        for socket in &selected {
            for room in &targets {
                if join { socket.join(room.clone()) } else { socket.leave(room) }.map_err(|e| errors::coded(&e))?;
            }
        }
        Ok(u32::try_from(selected.len()).unwrap_or(u32::MAX))
    }

    /// Disconnect the selected sockets of this node (with `close`, their
    /// whole connections); how many.
    #[napi]
    pub fn disconnect_sockets(&self, ns: String, rooms: Vec<String>, except: Vec<String>, close: bool) -> u32 {
        let selected = self.select(&ns, rooms, except, false).sockets();
        for socket in &selected {
            if close { socket.disconnect_connection() } else { socket.disconnect() }
        }
        u32::try_from(selected.len()).unwrap_or(u32::MAX)
    }

    /// Track presence in `room` of `ns`, or in every named room of it.
    #[napi]
    pub fn enable_presence(&self, ns: String, room: Option<String>) {
        match room {
            Some(room) => self.core.of(&ns).enable_presence_in(&room),
            None => self.core.of(&ns).enable_presence(),
        }
    }

    /// The members of `room` in `ns` (on every node of a cluster).
    #[napi(
        ts_return_type = "Promise<Array<{ userId: string, anonymous?: boolean, connections: number, meta: Record<string, any>, joinedAt: number, lastSeen: number }>>"
    )]
    pub fn presence<'env>(&self, env: &'env Env, ns: String, room: String) -> Result<PromiseRaw<'env, JsPlain>> {
        let nsp = self.core.of(&ns);
        env.spawn_future_with_callback(async move { Ok(nsp.presence(&room).await) }, |env, members| {
            members.map(|m: Vec<Member>| JsPlain::of(&m)).map_err(|e| errors::rejection(env, &e))
        })
    }

    /// How many members `room` in `ns` has (on every node of a cluster).
    #[napi(ts_return_type = "Promise<number>")]
    pub fn presence_count<'env>(&self, env: &'env Env, ns: String, room: String) -> Result<PromiseRaw<'env, u32>> {
        let nsp = self.core.of(&ns);
        env.spawn_future_with_callback(async move { Ok(nsp.presence_count(&room).await) }, |env, n| {
            n.map(|n| u32::try_from(n).unwrap_or(u32::MAX)).map_err(|e| errors::rejection(env, &e))
        })
    }

    /// Name the user of socket `sid`: only while its connect hooks run
    /// (`io.use`), before it joins rooms.
    #[napi(ts_args_type = "ns: string, sid: string, userId: string")]
    pub fn set_user_id(&self, env: &Env, ns: String, sid: String, user_id: Unknown<'_>) -> Result<(), String> {
        let user_id: String = env.from_js_value(user_id).map_err(errors::from_napi)?;
        self.socket(&ns, &sid)?.set_user_id(user_id).map_err(|e| errors::coded(&e))
    }

    /// The user id of socket `sid`; null without one or once it is gone.
    #[napi]
    pub fn user_id(&self, ns: String, sid: String) -> Option<String> {
        self.core.of(&ns).socket(&sid).and_then(|s| s.user_id().map(str::to_owned))
    }

    /// Replace the presence metadata of socket `sid` (an object; `status`
    /// online, away or busy).
    #[napi(ts_args_type = "ns: string, sid: string, meta: Record<string, any>")]
    pub fn set_presence(&self, env: &Env, ns: String, sid: String, meta: Unknown<'_>) -> Result<(), String> {
        let meta: Value = env.from_js_value(meta).map_err(errors::from_napi)?;
        self.socket(&ns, &sid)?.set_presence(meta).map_err(|e| errors::coded(&e))
    }

    /// The presence metadata of socket `sid`; null once it is gone.
    #[napi(ts_return_type = "Record<string, any> | null")]
    pub fn presence_meta(&self, ns: String, sid: String) -> Option<JsPlain> {
        self.core.of(&ns).socket(&sid).map(|s| JsPlain::of(&s.presence_meta()))
    }

    /// Whether `userId` has a connection (on any node of a cluster).
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn is_online<'env>(&self, env: &'env Env, user_id: String) -> Result<PromiseRaw<'env, bool>> {
        let core = self.core.clone();
        env.spawn_future_with_callback(async move { Ok(core.is_online(&user_id).await) }, |env, online| {
            online.map_err(|e| errors::rejection(env, &e))
        })
    }

    /// Each of `userIds` with whether it has a connection, in one call.
    #[napi(ts_return_type = "Promise<Array<[string, boolean]>>")]
    pub fn online_users<'env>(&self, env: &'env Env, user_ids: Vec<String>) -> Result<PromiseRaw<'env, Online>> {
        let core = self.core.clone();
        env.spawn_future_with_callback(async move { Ok(core.online_users(&user_ids).await) }, |env, online| {
            online.map(JsJson).map_err(|e| errors::rejection(env, &e))
        })
    }

    /// `handler(lost)` runs once for each socket of a cluster node found
    /// dead, on the node that cleaned up after it (never without Redis).
    #[napi(
        ts_args_type = "handler: (lost: { node: string, namespace: string, sid: string, userId: string | null }) => void"
    )]
    pub fn on_node_lost(&self, handler: Function<'_, JsJson<LostSocket>, UnknownReturnValue>) -> Result<()> {
        let handler: Arc<LostFn> =
            Arc::new(handler.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?);
        self.core.on_node_lost(move |lost| {
            let handler = handler.clone();
            async move {
                let _ = handler.call_async_catch(JsJson(lost)).await;
            }
        });
        Ok(())
    }

    /// This server's cluster node id; null without Redis.
    #[napi]
    pub fn node_id(&self) -> Option<String> {
        self.core.node_id().map(str::to_owned)
    }

    /// The server's counters now.
    /// The counters and gauges in the Prometheus text format (OpenMetrics).
    #[napi]
    pub fn metrics(&self) -> String {
        self.core.metrics()
    }

    #[napi]
    pub fn stats(&self) -> ServerStats {
        self.core.stats().into()
    }
}

/// The server's counters (`roomcast::Stats`) in socket.io's naming.
#[napi(object)]
pub struct ServerStats {
    /// Connected sockets, all namespaces.
    pub sockets: i64,
    /// Rooms with at least one member, not counting each socket's own room.
    pub rooms: i64,
    /// Distinct users connected.
    pub users: i64,
    pub messages_in: i64,
    pub bytes_in: i64,
    pub messages_out: i64,
    pub bytes_out: i64,
    /// Volatile frames dropped because a queue was full.
    pub dropped: i64,
    /// Connections closed because they did not read fast enough.
    pub slow_consumer_closes: i64,
    /// Inbound messages rejected by the rate limiter.
    pub rate_limited: i64,
    /// Connections refused before the upgrade (limits, origin, auth).
    pub refused_connections: i64,
    /// Messages received from Redis.
    pub cluster_messages_in: i64,
    /// Messages published for other nodes.
    pub cluster_messages_out: i64,
    /// Redis commands or publishes that failed, and messages lost in between.
    pub cluster_errors: i64,
    /// Cluster queries answered partially (a node did not answer in time).
    pub cluster_request_timeouts: i64,
    /// Open connections (WebSocket or polling sessions).
    pub connections: i64,
    /// Server emits whose ack did not come in time.
    pub ack_timeouts: i64,
    /// Reconnecting clients that got their session back.
    pub recovery_hits: i64,
    /// Reconnecting clients whose session was no longer kept.
    pub recovery_misses: i64,
    /// Repeats of at-least-once clients' emits answered without running the listener.
    pub retries_deduplicated: i64,
}

impl From<roomcast::Stats> for ServerStats {
    fn from(s: roomcast::Stats) -> Self {
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            sockets: n(s.sockets),
            rooms: n(s.rooms),
            users: n(s.users),
            connections: n(s.connections),
            ack_timeouts: n(s.ack_timeouts),
            recovery_hits: n(s.recovery_hits),
            recovery_misses: n(s.recovery_misses),
            retries_deduplicated: n(s.retries_deduplicated),
            messages_in: n(s.messages_in),
            bytes_in: n(s.bytes_in),
            messages_out: n(s.messages_out),
            bytes_out: n(s.bytes_out),
            dropped: n(s.dropped),
            slow_consumer_closes: n(s.slow_consumer_closes),
            rate_limited: n(s.rate_limited),
            refused_connections: n(s.refused_connections),
            cluster_messages_in: n(s.cluster_messages_in),
            cluster_messages_out: n(s.cluster_messages_out),
            cluster_errors: n(s.cluster_errors),
            cluster_request_timeouts: n(s.cluster_request_timeouts),
        }
    }
}

/// One socket's answer to a broadcast with acks.
#[derive(Serialize)]
pub struct BroadcastAck {
    sid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<JsArgs>,
}
