//! Running an inbound event: middlewares, then the resolved handler. Shared
//! by every protocol; only the way the outcome is answered differs.

use super::args::Args;
use super::handler::Reply;
use super::socket::Socket;

/// What became of an inbound event.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The handler ran; its reply is the ack.
    Replied(Reply),
    /// No handler (nor catch-all) for the event.
    NoHandler,
    /// A middleware refused the event with this message.
    Refused(String),
}

pub(crate) async fn run_event(socket: &Socket, event: String, mut args: Args) -> Outcome {
    for mw in socket.middlewares() {
        match mw(socket.clone(), event.clone(), args).await {
            Ok(a) => args = a,
            Err(why) => return Outcome::Refused(why),
        }
    }
    match socket.0.ns.resolve_handler(socket, &event) {
        Some(handler) => Outcome::Replied(handler(socket.clone(), args).await),
        None => Outcome::NoHandler,
    }
}
