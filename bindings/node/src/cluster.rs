//! The socket.io operations that span the servers of a cluster (the core's
//! cluster queries): fetch sockets, remote join / leave / disconnect,
//! broadcasts with acks collected on every node, rooms and counts across
//! nodes, server-side events. Each answer is partial when a node did not
//! answer within the request timeout: `{ value, missing: [node ids] }`.
//! Without Redis they act on this server's sockets, always complete.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use roomcast::hub::args::from_json;
use roomcast::{AckReply, Args, Partial, RemoteSocket, Reply};
use serde::Serialize;
use serde_json::Value;

use crate::errors;
use crate::handler::EventFn;
use crate::server::{NativeServer, millis};
use crate::value::{JsArgs, JsPlain, ReplyIn, args_from_js, data_from_js};

/// `(args) => Promise<ack args | undefined>`: a server-side event.
type ServerEventArgs = FnArgs<(JsArgs,)>;

/// A core future begun on the JS thread: the core's cluster operations act
/// on this server's sockets before their first wait (then ask the other
/// nodes), so that part is done when the JS call returns, in call order, as
/// socket.io's adapters do. The rest runs on the runtime.
enum Begun<F: Future> {
    Done(F::Output),
    Waiting(Pin<Box<F>>),
}

fn begin<F: Future>(fut: F) -> Begun<F> {
    let mut fut = Box::pin(fut);
    // Polled once with a waker that does nothing: a future must wake the
    // waker of its latest poll, and the runtime polls it again at once.
    let polled = within_runtime_if_available(|| fut.as_mut().poll(&mut Context::from_waker(Waker::noop())));
    match polled {
        Poll::Ready(out) => Begun::Done(out),
        Poll::Pending => Begun::Waiting(fut),
    }
}

impl<F: Future> Begun<F> {
    async fn finish(self) -> F::Output {
        match self {
            Begun::Done(out) => out,
            Begun::Waiting(fut) => fut.await,
        }
    }
}

/// A partial answer as JS gets it.
#[derive(Serialize)]
pub struct PartialJs<T: Serialize> {
    value: T,
    missing: Vec<String>,
}

fn partial<T, U: Serialize>(p: Partial<T>, f: impl FnOnce(T) -> U) -> PartialJs<U> {
    PartialJs { value: f(p.value), missing: p.missing }
}

/// A socket of any node, shaped as socket.io's `RemoteSocket` details.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteSocketJs {
    id: String,
    node: Option<String>,
    user_id: Option<String>,
    rooms: Vec<String>,
    data: JsPlain,
    handshake: RemoteHandshakeJs,
}

/// socket.io's `handshake` as far as another node knows it (no `time` / `issued`).
#[derive(Serialize)]
pub struct RemoteHandshakeJs {
    headers: BTreeMap<String, String>,
    query: BTreeMap<String, String>,
    auth: JsPlain,
    address: String,
    url: String,
    xdomain: bool,
    secure: bool,
}

impl RemoteHandshakeJs {
    /// The fields as socket.io shapes them from what the core knows.
    pub(crate) fn new(
        headers: BTreeMap<String, String>,
        query: &[(String, String)],
        auth: Value,
        address: String,
        path: &str,
    ) -> Self {
        let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        Self {
            xdomain: headers.contains_key("origin"),
            headers,
            query: query.iter().cloned().collect(),
            auth: object_or_empty(auth),
            address,
            url: if qs.is_empty() { path.to_owned() } else { format!("{path}?{}", qs.join("&")) },
            secure: false,
        }
    }
}

/// socket.io's `handshake.auth` and `socket.data` are `{}` until set.
pub(crate) fn object_or_empty(v: Value) -> JsPlain {
    match v {
        Value::Null => JsPlain::of(&serde_json::Map::new()),
        v => JsPlain(from_json(v)),
    }
}

impl RemoteSocketJs {
    fn of(s: RemoteSocket) -> Self {
        let h = s.handshake;
        // The core sends `ip:port`; socket.io's `address` is the IP.
        let address = h.address.parse::<SocketAddr>().map_or(h.address, |a| a.ip().to_string());
        let handshake = RemoteHandshakeJs::new(h.headers.into_iter().collect(), &h.query, h.auth, address, &h.path);
        Self { id: s.id, node: s.node, user_id: s.user_id, rooms: s.rooms, data: object_or_empty(s.data), handshake }
    }
}

/// One socket's answer to a broadcast with acks: its ack's arguments, or
/// why there is none (`ERR_TIMEOUT`, `ERR_CLOSED`).
#[derive(Serialize)]
pub struct AckJs {
    sid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<JsArgs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl AckJs {
    fn of(mut a: AckReply) -> Self {
        let sid = std::mem::take(&mut a.sid);
        match a.into_args() {
            Ok(args) => Self { sid, args: Some(JsArgs(args)), error: None },
            Err(code) => Self { sid, args: None, error: Some(code) },
        }
    }
}

/// Another node's ack of a server-side event.
#[derive(Serialize)]
pub struct NodeReplyJs {
    node: String,
    args: JsArgs,
}

type Js<T> = crate::value::JsJson<PartialJs<T>>;

#[napi]
impl NativeServer {
    /// The sockets of `ns` in `rooms` (all when empty), not in `except`, on
    /// every node; this node's are listed first, with its node id.
    #[napi(
        ts_return_type = "Promise<{ value: Array<{ id: string, node: string | null, userId: string | null, rooms: string[], data: any, handshake: { headers: Record<string, string>, query: Record<string, string>, auth: Record<string, any>, address: string, url: string, xdomain: boolean, secure: boolean } }>, missing: string[] }>"
    )]
    pub fn cluster_fetch_sockets<'env>(
        &self,
        env: &'env Env,
        ns: String,
        rooms: Vec<String>,
        except: Vec<String>,
    ) -> Result<PromiseRaw<'env, Js<Vec<RemoteSocketJs>>>> {
        let op = self.select(&ns, rooms, except, false);
        let begun = begin(async move { op.fetch_sockets().await });
        env.spawn_future_with_callback(async move { Ok(begun.finish().await) }, |env, found| {
            found
                .map(|p| crate::value::JsJson(partial(p, |v| v.into_iter().map(RemoteSocketJs::of).collect())))
                .map_err(|e| errors::rejection(env, &e))
        })
    }

    /// Make the selected sockets of every node join (or leave) each of
    /// `targets`; this node's do before it returns. Resolves to how many
    /// sockets did (the most of any room).
    #[napi(ts_return_type = "Promise<{ value: number, missing: string[] }>")]
    #[allow(clippy::too_many_arguments)]
    pub fn cluster_sockets_room<'env>(
        &self,
        env: &'env Env,
        ns: String,
        rooms: Vec<String>,
        except: Vec<String>,
        targets: Vec<String>,
        join: bool,
    ) -> Result<PromiseRaw<'env, Js<u32>>> {
        let op = self.select(&ns, rooms, except, false);
        let begun: Vec<_> = targets
            .into_iter()
            .map(|room| {
                let op = op.clone();
                begin(async move { if join { op.sockets_join(&room).await } else { op.sockets_leave(&room).await } })
            })
            .collect();
        env.spawn_future_with_callback(
            async move {
                // Each room's request to the other nodes goes out at once.
                let tasks: Vec<_> = begun.into_iter().map(|b| tokio::spawn(b.finish())).collect();
                let mut total = Partial { value: 0, missing: Vec::new() };
                for task in tasks {
                    let p = match task.await {
                        Ok(p) => p,
                        Err(e) => Err(roomcast::Error::new(roomcast::ErrorKind::Internal, e.to_string())),
                    };
                    match p {
                        Ok(p) => {
                            total.value = total.value.max(p.value);
                            total.missing.extend(p.missing);
                        }
                        Err(e) => return Ok(Err(e)),
                    }
                }
                total.missing.sort();
                total.missing.dedup();
                Ok(Ok(total))
            },
            |env, total| total.map(|p| crate::value::JsJson(partial(p, count))).map_err(|e| errors::rejection(env, &e)),
        )
    }

    /// Disconnect the selected sockets of every node (`close`: their whole
    /// connections); this node's before it returns. Resolves to how many.
    #[napi(ts_return_type = "Promise<{ value: number, missing: string[] }>")]
    pub fn cluster_disconnect_sockets<'env>(
        &self,
        env: &'env Env,
        ns: String,
        rooms: Vec<String>,
        except: Vec<String>,
        close: bool,
    ) -> Result<PromiseRaw<'env, Js<u32>>> {
        let op = self.select(&ns, rooms, except, false);
        let begun = begin(async move { op.disconnect_sockets(close).await });
        env.spawn_future_with_callback(async move { Ok(begun.finish().await) }, |env, n| {
            n.map(|p| crate::value::JsJson(partial(p, count))).map_err(|e| errors::rejection(env, &e))
        })
    }

    /// Broadcast with acks on every node: resolves once every selected
    /// socket answered or `timeoutMs` passed (plus the request timeout for
    /// the other nodes' reports), to one reply per socket.
    #[napi(
        ts_args_type = "ns: string, rooms: string[], except: string[], volatile: boolean, event: string, args: any[], timeoutMs: number",
        ts_return_type = "Promise<{ value: Array<{ sid: string, args?: any[], error?: string }>, missing: string[] }>"
    )]
    #[allow(clippy::too_many_arguments)]
    pub fn cluster_broadcast_with_ack<'env>(
        &self,
        env: &'env Env,
        ns: String,
        rooms: Vec<String>,
        except: Vec<String>,
        volatile: bool,
        event: String,
        args: Unknown<'_>,
        timeout_ms: u32,
    ) -> Result<PromiseRaw<'env, Js<Vec<AckJs>>>> {
        let args = args_from_js(env, args)?;
        let op = self.select(&ns, rooms, except, volatile);
        let begun = begin(async move { op.emit_with_ack_everywhere(event, args, millis(timeout_ms)).await });
        env.spawn_future_with_callback(async move { Ok(begun.finish().await) }, |env, replies| {
            replies
                .map(|p| crate::value::JsJson(partial(p, |v| v.into_iter().map(AckJs::of).collect())))
                .map_err(|e| errors::rejection(env, &e))
        })
    }

    /// The rooms of `ns` joined by name (not the sockets' own rooms) on
    /// every node, sorted.
    #[napi(ts_return_type = "Promise<{ value: string[], missing: string[] }>")]
    pub fn cluster_rooms<'env>(&self, env: &'env Env, ns: String) -> Result<PromiseRaw<'env, Js<Vec<String>>>> {
        let nsp = self.core.of(&ns);
        env.spawn_future_with_callback(async move { Ok(nsp.rooms_everywhere().await) }, |env, rooms| {
            rooms.map(|p| crate::value::JsJson(partial(p, |v| v))).map_err(|e| errors::rejection(env, &e))
        })
    }

    /// How many sockets `ns` has on every node.
    #[napi(ts_return_type = "Promise<{ value: number, missing: string[] }>")]
    pub fn cluster_count<'env>(&self, env: &'env Env, ns: String) -> Result<PromiseRaw<'env, Js<u32>>> {
        let nsp = self.core.of(&ns);
        env.spawn_future_with_callback(async move { Ok(nsp.len_everywhere().await) }, |env, n| {
            n.map(|p| crate::value::JsJson(partial(p, count))).map_err(|e| errors::rejection(env, &e))
        })
    }

    /// The ids of the cluster's nodes (this one included), sorted; none without Redis.
    #[napi(ts_return_type = "Promise<string[]>")]
    pub fn nodes<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<String>>> {
        let core = self.core.clone();
        env.spawn_future_with_callback(async move { Ok(core.nodes().await) }, |env, nodes| {
            nodes.map_err(|e| errors::rejection(env, &e))
        })
    }

    /// `handler(args)` answers server-side events named `event` from the
    /// other nodes; its ack is what the promise resolves to (an array; none
    /// is an empty ack). Never called without Redis.
    #[napi(ts_args_type = "event: string, handler: (args: any[]) => Promise<any[] | undefined>")]
    pub fn on_server_event(
        &self,
        event: String,
        handler: Function<'_, ServerEventArgs, Promise<ReplyIn>>,
    ) -> Result<()> {
        let handler: Arc<EventFn<ServerEventArgs>> =
            Arc::new(handler.build_threadsafe_function().callee_handled::<false>().weak::<true>().build()?);
        self.core.on_server_event(event, move |args: Args| {
            let handler = handler.clone();
            async move {
                let reply = async { handler.call_async_catch(FnArgs::from((JsArgs(args),))).await?.await };
                match reply.await {
                    Ok(ReplyIn(Reply::Data(args))) => args,
                    _ => Args::new(Vec::new()),
                }
            }
        });
        Ok(())
    }

    /// Send `event` to the other nodes' server-side handlers; resolves to
    /// each one's ack with its node id (a node without a handler is in
    /// neither list).
    #[napi(
        ts_args_type = "event: string, args: any[]",
        ts_return_type = "Promise<{ value: Array<{ node: string, args: any[] }>, missing: string[] }>"
    )]
    pub fn server_emit<'env>(
        &self,
        env: &'env Env,
        event: String,
        args: Unknown<'_>,
    ) -> Result<PromiseRaw<'env, Js<Vec<NodeReplyJs>>>> {
        let args = args_from_js(env, args)?;
        let core = self.core.clone();
        env.spawn_future_with_callback(async move { Ok(core.server_emit(event, args).await) }, |env, replies| {
            replies
                .map(|p| {
                    let replies = |v: Vec<(String, Args)>| {
                        v.into_iter().map(|(node, args)| NodeReplyJs { node, args: JsArgs(args) }).collect()
                    };
                    crate::value::JsJson(partial(p, replies))
                })
                .map_err(|e| errors::rejection(env, &e))
        })
    }

    /// Replace socket `sid`'s data (what other nodes' `fetchSockets` see):
    /// JSON values and binary.
    #[napi(ts_args_type = "ns: string, sid: string, data: any")]
    pub fn set_data(&self, env: &Env, ns: String, sid: String, data: Unknown<'_>) -> Result<(), String> {
        let data = data_from_js(env, data).map_err(errors::from_napi)?;
        self.socket(&ns, &sid)?.set_data(data);
        Ok(())
    }

    /// Send `event` to the selected sockets of this node only (socket.io's
    /// `local` flag); how many it was sent to.
    #[napi(ts_args_type = "ns: string, rooms: string[], except: string[], event: string, args: any[]")]
    pub fn broadcast_local(
        &self,
        env: &Env,
        ns: String,
        rooms: Vec<String>,
        except: Vec<String>,
        event: String,
        args: Unknown<'_>,
    ) -> Result<u32, String> {
        let args = args_from_js(env, args).map_err(errors::from_napi)?;
        let sockets = self.select(&ns, rooms, except, false).sockets();
        let sent = sockets.iter().filter(|s| s.emit_args(event.clone(), args.clone()).is_ok()).count();
        Ok(count(sent))
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
