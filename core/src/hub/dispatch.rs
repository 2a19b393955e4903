//! Running an inbound event: middlewares, then the resolved handler. Shared
//! by every protocol; only the way the outcome is answered differs.

use super::args::Args;
use super::dedupe::Seen;
use super::handler::Reply;
use super::socket::Socket;
use crate::metrics::Counters;
use crate::protocol::CLIENT_KEY;

/// What became of an inbound event.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    /// The handler ran; its reply is the ack.
    Replied(Reply),
    /// No handler (nor catch-all) for the event.
    NoHandler,
    /// A middleware refused the event with this message.
    Refused(String),
}

tokio::task_local! {
    static WANTS_ACK: bool;
}

/// Whether the peer asked for an ack of the event being handled (false
/// outside a handler), in server and client handlers alike. Bindings whose
/// handlers get an ack callback, as socket.io's do, pass one only then.
pub fn wants_ack() -> bool {
    WANTS_ACK.try_with(|w| *w).unwrap_or(false)
}

/// Call `start` (a handler, synchronously) with [`wants_ack`] answering `wants`.
pub(crate) fn start_with_wants_ack<R>(wants: bool, start: impl FnOnce() -> R) -> R {
    WANTS_ACK.sync_scope(wants, start)
}

/// Run `handling` with [`wants_ack`] answering `wants`.
pub(crate) fn with_wants_ack<F: Future>(wants: bool, handling: F) -> impl Future<Output = F::Output> {
    WANTS_ACK.scope(wants, handling)
}

pub(crate) async fn run_event(socket: &Socket, event: String, mut args: Args) -> Outcome {
    for mw in socket.middlewares() {
        match mw(socket.clone(), event.clone(), args).await {
            Ok(a) => args = a,
            Err(why) => return Outcome::Refused(why),
        }
    }
    let outcome = match socket.0.ns.resolve_handler(socket, &event) {
        Some(handler) => Outcome::Replied(handler(socket.clone(), args).await),
        None => return Outcome::NoHandler,
    };
    // A client acked after joining a room gets that room's broadcasts from
    // every node: the subscriptions the handler caused are in place.
    socket.0.ns.subscriptions_settled().await;
    outcome
}

/// Start an inbound event (`id`: its ack id) in the session task so
/// handlers begin in arrival order, as socket.io's do; whatever the handler
/// then waits for continues on a task of its own, so a slow handler does not
/// stall the connection. A repeat from an at-least-once client is answered
/// with the first run's outcome instead (see `dedupe`).
pub(crate) async fn start_event<F>(socket: Socket, event: String, args: Args, id: Option<u64>, respond: F)
where
    F: FnOnce(&Socket, String, Outcome) + Send + 'static,
{
    // Only an event with an ack id can be a retry: others skip the lookup.
    let retried = id.and_then(|id| Some((id, socket.handshake().query_param(CLIENT_KEY)?.to_owned())));
    if let Some((id, key)) = &retried {
        let seen = socket.0.ns.dedupe().begin(key, socket.user_id(), *id);
        if !matches!(seen, Seen::New) {
            Counters::add(&socket.0.counters.retries_deduplicated, 1);
        }
        match seen {
            Seen::New => {}
            Seen::Done(outcome) => return respond(&socket, event, outcome),
            Seen::Running | Seen::Stale => return,
        }
    }
    let mut fut = Box::pin(with_wants_ack(id.is_some(), async move {
        let outcome = run_event(&socket, event.clone(), args).await;
        if let Some((id, key)) = &retried {
            socket.0.ns.dedupe().finish(key, *id, &outcome);
        }
        respond(&socket, event, outcome);
    }));
    let done = std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx).is_ready())).await;
    if !done {
        tokio::spawn(fut);
    }
}
