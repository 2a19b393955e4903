//! `NativeClient`: roomcast's Socket.IO client (reconnecting, with an
//! offline buffer) driven from Node; `node/client.js` shapes it like
//! socket.io-client's `Socket`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, UnknownReturnValue};
use napi_derive::napi;
use parking_lot::Mutex;
use roomcast::client::ClientState;
use roomcast::client::socketio::{SocketIoClient, SocketIoEvent, SocketIoOptions};
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;

use crate::errors;
use crate::handler::{self, EventFn};
use crate::server::Keepalive;
use crate::value::{JsArgs, JsJson, ReplyIn, args_from_js};

/// `(event, args, wantsAck)`.
type EventArgs = FnArgs<(String, JsArgs, bool)>;
/// `(kind, detail) => void`: "connect" (sid), "disconnect" (reason),
/// "connect_error" ({message, data}), "reconnect_failed".
type LifecycleFn = ThreadsafeFunction<
    FnArgs<(String, JsJson<Value>)>,
    UnknownReturnValue,
    FnArgs<(String, JsJson<Value>)>,
    Status,
    false,
    true,
>;

/// Client options, in socket.io-client's names and units (milliseconds).
#[napi(object)]
pub struct ClientOptions {
    pub path: Option<String>,
    pub auth: Option<Value>,
    pub query: Option<HashMap<String, String>>,
    pub extra_headers: Option<HashMap<String, String>>,
    pub reconnection: Option<bool>,
    pub reconnection_attempts: Option<u32>,
    pub reconnection_delay: Option<u32>,
    pub reconnection_delay_max: Option<u32>,
    pub randomization_factor: Option<f64>,
    pub timeout: Option<u32>,
    /// At-least-once emits: sends after the first (socket.io-client's `retries`).
    pub retries: Option<u32>,
    /// Milliseconds each try of an at-least-once emit waits for its ack.
    pub ack_timeout: Option<u32>,
}

#[napi]
pub struct NativeClient {
    core: SocketIoClient,
    /// Held from `open()` to `close()`: a client that may reconnect keeps Node alive.
    keepalive: Arc<Mutex<Option<Keepalive>>>,
}

fn invalid(message: String) -> Error<String> {
    errors::kind(roomcast::ErrorKind::InvalidArgument, message)
}

#[napi]
impl NativeClient {
    /// A client of `url` (its path is the namespace), not connected yet.
    #[napi(constructor)]
    pub fn new(url: String, options: Option<ClientOptions>) -> Result<Self, String> {
        let mut opts = SocketIoOptions::default();
        if let Some(o) = options {
            if let Some(path) = o.path {
                opts.path = path;
            }
            opts.auth = o.auth.filter(|a| !a.is_null());
            opts.query.extend(o.query.unwrap_or_default());
            for (name, value) in o.extra_headers.unwrap_or_default() {
                let name = http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| invalid(format!("bad header name {name:?}")))?;
                let value = value.parse().map_err(|_| invalid(format!("bad value for header {name}")))?;
                opts.headers.append(name, value);
            }
            let r = &mut opts.reconnect;
            r.enabled = o.reconnection.unwrap_or(r.enabled);
            r.max_attempts = o.reconnection_attempts.filter(|n| *n > 0 && *n != u32::MAX).or(r.max_attempts);
            r.base = o.reconnection_delay.map_or(r.base, |ms| Duration::from_millis(u64::from(ms)));
            r.max = o.reconnection_delay_max.map_or(r.max, |ms| Duration::from_millis(u64::from(ms)));
            r.jitter = o.randomization_factor.unwrap_or(r.jitter);
            opts.connect_timeout = o.timeout.map_or(opts.connect_timeout, |ms| Duration::from_millis(u64::from(ms)));
            opts.retries = o.retries.unwrap_or(opts.retries);
            opts.ack_timeout = o.ack_timeout.map_or(opts.ack_timeout, |ms| Duration::from_millis(u64::from(ms)));
        }
        let core = SocketIoClient::new(&url, opts).map_err(|e| errors::coded(&e))?;
        Ok(Self { core, keepalive: Arc::default() })
    }

    /// `handler(event, args, wantsAck)` receives every server event; when
    /// the server wants an ack, the ack is what the promise resolves to.
    #[napi(
        ts_args_type = "handler: (event: string, args: any[], wantsAck: boolean) => Promise<any[] | undefined | false>"
    )]
    pub fn on_event(&self, handler: Function<'_, EventArgs, Promise<ReplyIn>>) -> Result<()> {
        let handler: Arc<EventFn<EventArgs>> =
            Arc::new(handler.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?);
        self.core.on_any(move |event, args| {
            let wants_ack = roomcast::wants_ack();
            handler::deliver(handler.clone(), FnArgs::from((event, JsArgs(args), wants_ack)), wants_ack)
        });
        Ok(())
    }

    /// `handler(kind, detail)` hears the connection's life. The client lets
    /// Node exit once it is disconnected for good.
    #[napi(ts_args_type = "handler: (kind: string, detail: any) => void")]
    pub fn on_lifecycle(
        &self,
        handler: Function<'_, FnArgs<(String, JsJson<Value>)>, UnknownReturnValue>,
    ) -> Result<()> {
        let handler: LifecycleFn =
            handler.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?;
        let (mut events, keepalive, state) = (self.core.events(), self.keepalive.clone(), self.core.watch_state());
        napi::bindgen_prelude::spawn(async move {
            loop {
                let (kind, detail) = match events.recv().await {
                    Ok(SocketIoEvent::Connect { id }) => ("connect", Value::String(id)),
                    Ok(SocketIoEvent::Disconnect { reason }) => ("disconnect", reason.as_str().into()),
                    Ok(SocketIoEvent::ConnectError { message, data }) => {
                        ("connect_error", serde_json::json!({"message": message, "data": data}))
                    }
                    Ok(SocketIoEvent::ReconnectFailed) => ("reconnect_failed", Value::Null),
                    Ok(SocketIoEvent::Event { .. }) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                };
                let _ = handler.call_async_catch(FnArgs::from((kind.to_owned(), JsJson(detail)))).await;
                if *state.borrow() == ClientState::Disconnected {
                    keepalive.lock().take();
                }
            }
        });
        Ok(())
    }

    /// Connect; resolves once the server accepted the namespace, rejects
    /// with its refusal (`ERR_REFUSED`) or the failure.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn open<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let keepalive = env
            .create_function_from_closure::<(), (), _>("roomcastKeepalive", |_| Ok(()))?
            .build_threadsafe_function::<()>()
            .build()?;
        *self.keepalive.lock() = Some(keepalive);
        let (core, held, opening) = (self.core.clone(), self.keepalive.clone(), self.core.open());
        env.spawn_future_with_callback(
            async move {
                let opened = opening.await;
                if opened.is_err() && core.state() == ClientState::Disconnected {
                    held.lock().take();
                }
                Ok(opened)
            },
            |env, opened| opened.map_err(|e| errors::rejection(env, &e)),
        )
    }

    /// Send `event` with `args` (buffered while reconnecting).
    #[napi(ts_args_type = "event: string, args: any[]")]
    pub fn emit(&self, env: &Env, event: String, args: Unknown<'_>) -> Result<(), String> {
        let args = args_from_js(env, args).map_err(errors::from_napi)?;
        self.core.emit(&event, args).map_err(|e| errors::coded(&e))
    }

    /// Send `event` and resolve to the server's ack arguments; rejects with
    /// `ERR_TIMEOUT` after `timeoutMs`.
    #[napi(ts_args_type = "event: string, args: any[], timeoutMs: number", ts_return_type = "Promise<any[]>")]
    pub fn emit_with_ack<'env>(
        &self,
        env: &'env Env,
        event: String,
        args: Unknown<'_>,
        timeout_ms: u32,
    ) -> Result<PromiseRaw<'env, JsArgs>> {
        let (args, core) = (args_from_js(env, args)?, self.core.clone());
        env.spawn_future_with_callback(
            async move { Ok(core.emit_with_ack(&event, args, Duration::from_millis(u64::from(timeout_ms))).await) },
            |env, reply| reply.map(JsArgs).map_err(|e| errors::rejection(env, &e)),
        )
    }

    /// Leave the namespace, close, stop reconnecting; Node may exit after.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let (core, held) = (self.core.clone(), self.keepalive.clone());
        env.spawn_future_with_callback(
            async move {
                core.close().await;
                held.lock().take();
                Ok(())
            },
            |_, ()| Ok(()),
        )
    }

    /// The socket id while connected.
    #[napi(getter)]
    pub fn id(&self) -> Option<String> {
        self.core.id()
    }

    /// Whether the current connection took up the previous one's session
    /// (the server has connection state recovery on).
    #[napi(getter)]
    pub fn recovered(&self) -> bool {
        self.core.recovered()
    }

    /// Whether the namespace is connected now.
    #[napi(getter)]
    pub fn connected(&self) -> bool {
        self.core.state() == ClientState::Connected
    }

    /// Whether the client is (re)connecting or connected: it has not given up.
    #[napi(getter)]
    pub fn active(&self) -> bool {
        self.core.state() != ClientState::Disconnected
    }
}
