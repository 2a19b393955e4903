//! Application callbacks. Handlers are boxed async closures so that the Rust
//! API and every binding register them the same way.

use std::fmt::Display;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::Value;

use super::args::Args;

use super::socket::{DisconnectReason, Socket};

/// What an event handler answers: sent back as the ack when the client asked for one.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// No data (acked as `null`).
    None,
    /// Acked with these arguments.
    Data(Args),
    /// The handler failed; the client gets an `internal` error.
    Error(String),
    /// Nothing handled the event (a catch-all of a binding whose app has no
    /// listener for it): answered as if no handler were registered.
    Unhandled,
}

/// Conversion of handler return values into a [`Reply`].
pub trait IntoReply {
    fn into_reply(self) -> Reply;
}

impl IntoReply for () {
    fn into_reply(self) -> Reply {
        Reply::None
    }
}

impl IntoReply for Value {
    fn into_reply(self) -> Reply {
        Reply::Data(Args::one(self))
    }
}

impl IntoReply for Args {
    fn into_reply(self) -> Reply {
        Reply::Data(self)
    }
}

impl IntoReply for Reply {
    fn into_reply(self) -> Reply {
        self
    }
}

impl<T: IntoReply> IntoReply for Option<T> {
    fn into_reply(self) -> Reply {
        self.map_or(Reply::None, IntoReply::into_reply)
    }
}

impl<T: IntoReply, E: Display> IntoReply for Result<T, E> {
    fn into_reply(self) -> Reply {
        match self {
            Ok(v) => v.into_reply(),
            Err(e) => Reply::Error(e.to_string()),
        }
    }
}

pub(crate) type EventHandler = Arc<dyn Fn(Socket, Args) -> BoxFuture<'static, Reply> + Send + Sync>;
pub(crate) type AnyHandler = Arc<dyn Fn(Socket, String, Args) -> BoxFuture<'static, Reply> + Send + Sync>;
pub(crate) type ConnectionHandler = Arc<dyn Fn(Socket) -> BoxFuture<'static, ()> + Send + Sync>;
pub(crate) type DisconnectHandler = Arc<dyn Fn(Socket, DisconnectReason) -> BoxFuture<'static, ()> + Send + Sync>;
pub(crate) type Middleware =
    Arc<dyn Fn(Socket, String, Args) -> BoxFuture<'static, Result<Args, String>> + Send + Sync>;
pub(crate) type JoinHook = Arc<dyn Fn(Socket, String) -> BoxFuture<'static, Result<(), String>> + Send + Sync>;
pub(crate) type ConnectHook =
    Arc<dyn Fn(Socket) -> BoxFuture<'static, Result<(), crate::auth::Rejection>> + Send + Sync>;

pub(crate) fn event_handler<F, Fut, R>(f: F) -> EventHandler
where
    F: Fn(Socket, Args) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
{
    Arc::new(move |s, v| {
        let fut = f(s, v);
        Box::pin(async move { fut.await.into_reply() })
    })
}

pub(crate) fn any_handler<F, Fut, R>(f: F) -> AnyHandler
where
    F: Fn(Socket, String, Args) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
    R: IntoReply,
{
    Arc::new(move |s, e, v| {
        let fut = f(s, e, v);
        Box::pin(async move { fut.await.into_reply() })
    })
}

pub(crate) fn connection_handler<F, Fut>(f: F) -> ConnectionHandler
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |s| Box::pin(f(s)))
}

pub(crate) fn disconnect_handler<F, Fut>(f: F) -> DisconnectHandler
where
    F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    Arc::new(move |s, r| Box::pin(f(s, r)))
}

pub(crate) fn connect_hook<F, Fut>(f: F) -> ConnectHook
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), crate::auth::Rejection>> + Send + 'static,
{
    Arc::new(move |s| Box::pin(f(s)))
}

pub(crate) fn join_hook<F, Fut, E>(f: F) -> JoinHook
where
    F: Fn(Socket, String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display,
{
    Arc::new(move |s, room| {
        let fut = f(s, room);
        Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
    })
}

pub(crate) fn middleware<F, Fut, E>(f: F) -> Middleware
where
    F: Fn(Socket, String, Args) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Args, E>> + Send + 'static,
    E: Display,
{
    Arc::new(move |s, event, args| {
        let fut = f(s, event, args);
        Box::pin(async move { fut.await.map_err(|e| e.to_string()) })
    })
}
