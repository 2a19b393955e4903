//! A JS event listener as a core handler: called through a weak threadsafe
//! function; its promise is awaited only when the peer wants an ack.

use std::future::Future;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use roomcast::Reply;

use crate::value::ReplyIn;

/// A JS function taking `A` and answering the ack (see [`ReplyIn`]).
pub(crate) type EventFn<A> = ThreadsafeFunction<A, Promise<ReplyIn>, A, Status, false, true>;

/// Hand `args` to `handler`, from inside a core handler. Without an ack
/// wanted it is fire and forget (the queue keeps events in order); with
/// one, the reply is what the JS promise resolves to.
pub(crate) fn deliver<A>(handler: Arc<EventFn<A>>, args: A, wants_ack: bool) -> impl Future<Output = Reply>
where
    A: JsValuesTupleIntoVec + Send + 'static,
{
    let awaited = if wants_ack {
        Some(args)
    } else {
        handler.call(args, ThreadsafeFunctionCallMode::NonBlocking);
        None
    };
    async move {
        let Some(args) = awaited else { return Reply::None };
        match async { handler.call_async_catch(args).await?.await }.await {
            Ok(ReplyIn(reply)) => reply,
            Err(e) => Reply::Error(e.reason.clone()),
        }
    }
}
