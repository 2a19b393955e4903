//! Cluster queries: a request published once on the shared request channel,
//! answered by every other node on the requester's own channel. The
//! requester expects an answer from each node registered in Redis and waits
//! at most the request timeout: a dead or frozen node makes the answer
//! partial (its id is listed as missing), never a hang.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fred::prelude::{PubsubInterface, SetsInterface, Value as RedisValue};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Node, redis_error};
use crate::error::{Error, ErrorKind, Result};
use crate::hub::Hub;
use crate::hub::args::{self, Args};
use crate::hub::broadcast::BroadcastOperator;
use crate::hub::socket::Socket;

/// A cluster-wide answer: what the nodes that answered in time said, and
/// the ids of the nodes that did not (dead, frozen or too slow).
#[derive(Debug, Clone, PartialEq)]
pub struct Partial<T> {
    pub value: T,
    /// Nodes that did not answer in time; empty when the answer is complete.
    pub missing: Vec<String>,
}

impl<T> Partial<T> {
    pub(crate) fn complete(value: T) -> Self {
        Self { value, missing: Vec::new() }
    }

    /// Whether every node answered.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// A socket on any node, as `fetch_sockets` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteSocket {
    pub id: String,
    /// The node it is connected to (`None` without Redis).
    pub node: Option<String>,
    pub namespace: String,
    pub user_id: Option<String>,
    /// Its rooms, its own room first.
    pub rooms: Vec<String>,
    pub data: Value,
    pub handshake: RemoteHandshake,
}

/// The connection request of a [`RemoteSocket`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteHandshake {
    /// Headers valid as text, lower-case names.
    pub headers: HashMap<String, String>,
    pub query: Vec<(String, String)>,
    pub address: String,
    pub path: String,
    pub auth: Value,
}

impl RemoteSocket {
    pub(crate) fn of(s: &Socket, node: Option<&str>) -> Self {
        let h = s.handshake();
        let headers = h.headers.iter().filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())));
        Self {
            id: s.id().to_string(),
            node: node.map(str::to_owned),
            namespace: s.namespace().to_owned(),
            user_id: s.user_id().map(str::to_owned),
            rooms: s.rooms(),
            data: s.data(),
            handshake: RemoteHandshake {
                headers: headers.collect(),
                query: h.query.to_vec(),
                address: h.remote_addr.to_string(),
                path: h.path.clone(),
                auth: h.auth.clone(),
            },
        }
    }
}

/// Which sockets of a namespace a request is about.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Selector {
    pub ns: String,
    pub rooms: Vec<String>,
    pub except: Vec<String>,
}

impl Selector {
    fn operator(&self, hub: &Hub) -> Option<BroadcastOperator> {
        let ns = hub.existing(&self.ns)?;
        let op = self.rooms.iter().fold(ns.broadcast(), |op, r| op.to(r.clone()));
        Some(self.except.iter().fold(op, |op, r| op.except(r.clone())))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Query {
    FetchSockets {
        sel: Selector,
    },
    Join {
        sel: Selector,
        room: String,
    },
    Leave {
        sel: Selector,
        room: String,
    },
    Disconnect {
        sel: Selector,
        close: bool,
    },
    Rooms {
        ns: String,
    },
    Count {
        ns: String,
    },
    /// A broadcast whose acks are collected on each node.
    EmitWithAck {
        sel: Selector,
        volatile: bool,
        event: String,
        args: Vec<Value>,
        timeout_ms: u64,
    },
    /// An event for the other servers' handlers (`on_server_event`).
    ServerEvent {
        event: String,
        args: Vec<Value>,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    id: u64,
    from: String,
    query: Query,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    id: u64,
    node: String,
    body: Value,
}

/// One acknowledgement of a cluster-wide broadcast: the socket and its
/// reply, or the error code of why there is none (`ERR_TIMEOUT`, `ERR_CLOSED`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckReply {
    pub sid: String,
    pub reply: std::result::Result<Vec<Value>, String>,
}

impl AckReply {
    /// The reply as event arguments (bytes restored from the wire), or the error code.
    pub fn into_args(self) -> std::result::Result<Args, String> {
        self.reply.map(from_wire)
    }
}

/// The handler of a server-to-server event; its return value is the ack.
pub(crate) type ServerEventHandler = Arc<dyn Fn(Args) -> BoxFuture<'static, Args> + Send + Sync>;

pub(crate) fn to_wire(args: &Args) -> Vec<Value> {
    args.as_slice().iter().map(args::to_json).collect()
}

pub(crate) fn from_wire(values: Vec<Value>) -> Args {
    Args::new(values.into_iter().map(args::from_json).collect())
}

impl Node {
    pub(super) fn request_channel(&self) -> String {
        format!("{}#requests#", self.config.prefix)
    }

    pub(super) fn answer_channel(&self, node: &str) -> String {
        format!("{}#node#{node}#", self.config.prefix)
    }

    /// The ids of every node registered in Redis (this one included).
    pub async fn nodes(&self) -> Result<Vec<String>> {
        self.client.smembers(self.key(&["nodes"])).await.map_err(redis_error)
    }

    /// [`Self::ask`] with the configured request timeout.
    pub(crate) async fn ask_with_timeout(&self, query: Query) -> Result<Partial<Vec<(String, Value)>>> {
        let wait = match &query {
            // The nodes wait for their sockets' acks first.
            Query::EmitWithAck { timeout_ms, .. } => Duration::from_millis(*timeout_ms) + self.config.request_timeout,
            _ => self.config.request_timeout,
        };
        self.ask(query, wait).await
    }

    /// Ask every other node; each answer's body, and who did not answer.
    pub(crate) async fn ask(&self, query: Query, wait: Duration) -> Result<Partial<Vec<(String, Value)>>> {
        let mut expected: Vec<String> = self.nodes().await?.into_iter().filter(|n| *n != self.id).collect();
        if expected.is_empty() {
            return Ok(Partial::complete(Vec::new()));
        }
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.pending.lock().insert(id, tx);
        let envelope = serde_json::to_string(&Envelope { id, from: self.id.clone(), query })
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))?;
        let sent = self.send_raw(self.request_channel(), envelope.into()).await;
        let mut answers = Vec::new();
        if sent.is_ok() {
            let collect = async {
                while let Some((node, body)) = rx.recv().await {
                    if let Some(i) = expected.iter().position(|n| *n == node) {
                        expected.swap_remove(i);
                        answers.push((node, body));
                        if expected.is_empty() {
                            break;
                        }
                    }
                }
            };
            let _ = tokio::time::timeout(wait, collect).await;
        }
        self.pending.lock().remove(&id);
        sent?;
        if !expected.is_empty() {
            self.count(|c| &c.cluster_request_timeouts, 1);
            tracing::debug!(missing = ?expected, "cluster request answered partially");
        }
        expected.sort();
        Ok(Partial { value: answers, missing: expected })
    }

    /// Publish now (not through the broadcast queue): a request must fail
    /// visibly when Redis is unreachable.
    async fn send_raw(&self, channel: String, msg: bytes::Bytes) -> Result<()> {
        let c = &self.client;
        let sent = if self.sharded {
            c.spublish::<RedisValue, _, _>(channel, msg).await
        } else {
            c.publish::<RedisValue, _, _>(channel, msg).await
        };
        sent.map(|_| ()).map_err(redis_error)
    }

    /// A message on the request channel or this node's answer channel.
    pub(super) fn on_control(self: &Arc<Self>, channel: &str, bytes: &[u8]) {
        if channel == self.answer_channel(&self.id) {
            if let Ok(a) = serde_json::from_slice::<Answer>(bytes)
                && let Some(tx) = self.pending.lock().get(&a.id)
            {
                let _ = tx.send((a.node, a.body));
            }
            return;
        }
        let Ok(req) = serde_json::from_slice::<Envelope>(bytes) else {
            tracing::warn!("undecodable cluster request ignored");
            return;
        };
        if req.from == self.id {
            return;
        }
        let node = self.clone();
        tokio::spawn(async move {
            let body = node.answer(req.query).await;
            let answer = Answer { id: req.id, node: node.id.clone(), body };
            let text = serde_json::to_string(&answer).unwrap_or_default();
            if let Err(e) = node.send_raw(node.answer_channel(&req.from), text.into()).await {
                tracing::warn!(error = %e, "answering a cluster request failed");
            }
        });
    }

    /// This node's part of a query.
    async fn answer(&self, query: Query) -> Value {
        let Some(hub) = self.hub() else { return Value::Null };
        match query {
            Query::FetchSockets { sel } => {
                let sockets: Vec<RemoteSocket> = sel
                    .operator(&hub)
                    .map(|op| op.sockets().iter().map(|s| RemoteSocket::of(s, Some(&self.id))).collect())
                    .unwrap_or_default();
                json(&sockets)
            }
            Query::Join { ref sel, .. } | Query::Leave { ref sel, .. } | Query::Disconnect { ref sel, .. } => {
                Value::from(sel.operator(&hub).map_or(0, |op| op.act_locally(&query)))
            }
            Query::Rooms { ns } => json(&hub.existing(&ns).map(|n| n.named_rooms()).unwrap_or_default()),
            Query::Count { ns } => Value::from(hub.existing(&ns).map_or(0, |n| n.len())),
            Query::EmitWithAck { sel, volatile, event, args, timeout_ms } => {
                let Some(mut op) = sel.operator(&hub) else { return json(&Vec::<AckReply>::new()) };
                if volatile {
                    op = op.volatile();
                }
                let replies = op.local_emit_with_ack(event, from_wire(args), Duration::from_millis(timeout_ms)).await;
                json(&replies)
            }
            Query::ServerEvent { event, args } => {
                let handler = self.server_events.read().get(&event).cloned();
                match handler {
                    Some(h) => Value::Array(to_wire(&h(from_wire(args)).await)),
                    None => Value::Null,
                }
            }
        }
    }

    /// Handle server-to-server events named `event`.
    pub fn on_server_event(&self, event: String, handler: ServerEventHandler) {
        self.server_events.write().insert(event, handler);
    }
}

/// A count: this node's, plus what each node that answered reported.
pub(crate) fn total(local: usize, answers: Partial<Vec<(String, Value)>>) -> Partial<usize> {
    let remote: usize = answers.value.iter().map(|(_, b)| b.as_u64().unwrap_or(0) as usize).sum();
    Partial { value: local + remote, missing: answers.missing }
}

fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
