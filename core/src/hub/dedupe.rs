//! Deduplication of retried events. An at-least-once client (one that sent
//! a `client_key` with its handshake: roomcast's clients with `retries`)
//! sends an event again, with the same ack id, until it is acked, and its
//! ids only grow. So a namespace remembers, per key, the last id it ran and
//! that run's outcome: a repeat is answered with the outcome instead of
//! running the handler again, and an older id is a stale copy.
//!
//! Bounded: a key is forgotten [`WINDOW`] after its last event, and past
//! [`MAX_KEYS`] new keys are not remembered (their events run as they come).
//! A key is bound to the user of the socket that first used it, so another
//! user cannot be answered with its outcomes. Per node: in a cluster, a
//! retry that reaches another node after a reconnection runs again there.

use std::collections::HashMap;
use std::collections::hash_map::Entry::{Occupied, Vacant};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::dispatch::Outcome;

/// How long a key is remembered after its last event.
pub(crate) const WINDOW: Duration = Duration::from_secs(600);
/// Keys remembered at most per namespace.
pub(crate) const MAX_KEYS: usize = 100_000;
/// Longest key accepted (roomcast's clients send 32 hex digits).
const MAX_KEY_LEN: usize = 64;

/// What to do with an event of an at-least-once client.
#[derive(Debug)]
pub(crate) enum Seen {
    /// Not seen before: run it, then [`Dedupe::finish`].
    New,
    /// A repeat of the event still running: its answer goes out when it ends.
    Running,
    /// A repeat of an event that ran: answer it with this outcome.
    Done(Outcome),
    /// An older event than the last one: drop it.
    Stale,
}

struct Entry {
    user: Option<String>,
    last: u64,
    outcome: Option<Outcome>,
    touched: Instant,
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct Dedupe {
    entries: Mutex<HashMap<String, Entry>>,
}

impl Dedupe {
    /// Event `id` of client `key` (sent by a socket of `user`) arrives.
    pub fn begin(&self, key: &str, user: Option<&str>, id: u64) -> Seen {
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Seen::New;
        }
        let now = Instant::now();
        let fresh = Entry { user: user.map(str::to_owned), last: id, outcome: None, touched: now };
        let mut entries = self.entries.lock();
        if !entries.contains_key(key) && entries.len() >= MAX_KEYS {
            entries.retain(|_, e| now.duration_since(e.touched) < WINDOW);
            if entries.len() >= MAX_KEYS {
                return Seen::New;
            }
        }
        let entry = match entries.entry(key.to_owned()) {
            Vacant(v) => {
                v.insert(fresh);
                return Seen::New;
            }
            Occupied(o) => o.into_mut(),
        };
        if now.duration_since(entry.touched) >= WINDOW {
            *entry = fresh; // forgotten: a new client as far as we know
            return Seen::New;
        }
        if entry.user.as_deref() != user {
            return Seen::New; // not that client's: no dedupe, and no outcome leaks
        }
        entry.touched = now;
        if id > entry.last {
            entry.last = id;
            entry.outcome = None;
            return Seen::New;
        }
        match &entry.outcome {
            _ if id < entry.last => Seen::Stale,
            Some(outcome) => Seen::Done(outcome.clone()),
            None => Seen::Running,
        }
    }

    /// Event `id` of client `key` ran with `outcome`: kept for its repeats.
    pub fn finish(&self, key: &str, id: u64, outcome: &Outcome) {
        if let Some(e) = self.entries.lock().get_mut(key)
            && e.last == id
        {
            e.outcome = Some(outcome.clone());
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::args::Args;
    use crate::hub::handler::Reply;

    fn done(n: i64) -> Outcome {
        Outcome::Replied(Reply::Data(Args::one(crate::hub::args::Data::from(serde_json::json!(n)))))
    }

    #[test]
    fn repeats_get_the_outcome_and_older_ids_are_stale() {
        let d = Dedupe::default();
        assert!(matches!(d.begin("k", None, 1), Seen::New));
        assert!(matches!(d.begin("k", None, 1), Seen::Running));
        d.finish("k", 1, &done(10));
        assert!(matches!(d.begin("k", None, 1), Seen::Done(Outcome::Replied(_))));
        assert!(matches!(d.begin("k", None, 2), Seen::New));
        assert!(matches!(d.begin("k", None, 1), Seen::Stale));
        d.finish("k", 1, &done(11)); // late: not the last any more
        assert!(matches!(d.begin("k", None, 2), Seen::Running));
        assert!(matches!(d.begin("other", None, 1), Seen::New), "keys are independent");
    }

    #[test]
    fn another_user_and_bad_keys_get_no_dedupe() {
        let d = Dedupe::default();
        assert!(matches!(d.begin("k", Some("ann"), 1), Seen::New));
        d.finish("k", 1, &done(1));
        assert!(matches!(d.begin("k", Some("bob"), 1), Seen::New), "bob never sees ann's outcome");
        assert!(matches!(d.begin("k", Some("ann"), 1), Seen::Done(_)));
        assert!(matches!(d.begin("", None, 1), Seen::New));
        let long = "x".repeat(MAX_KEY_LEN + 1);
        assert!(matches!(d.begin(&long, None, 1), Seen::New));
        assert!(matches!(d.begin(&long, None, 1), Seen::New), "not remembered");
        assert_eq!(d.len(), 1);
    }
}
