//! Presence on one node, seen by Rust Socket.IO clients: members per user,
//! join / leave / update events, queries, user ids set by a connect hook.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use roomcast::client::socketio::{SocketIoClient, SocketIoEvent, SocketIoOptions};
use roomcast::{Args, ErrorKind, Server};
use serde_json::{Value, json};
use tokio::sync::broadcast;

async fn client(url: &str, user: &str) -> (SocketIoClient, broadcast::Receiver<SocketIoEvent>) {
    let opts = SocketIoOptions { auth: Some(json!({"user": user})), ..SocketIoOptions::default() };
    let c = SocketIoClient::new(url, opts).unwrap();
    let events = c.events();
    common::within(c.open()).await.unwrap();
    common::within(c.emit_with_ack("enter", Args::one(json!("lobby")), Duration::from_secs(5))).await.unwrap();
    (c, events)
}

/// The next event named `name`, its one argument.
async fn next(rx: &mut broadcast::Receiver<SocketIoEvent>, name: &str) -> Value {
    common::within(async {
        loop {
            if let SocketIoEvent::Event { event, args } = rx.recv().await.unwrap()
                && event == name
            {
                return args.json_at(0);
            }
        }
    })
    .await
}

async fn quiet(rx: &mut broadcast::Receiver<SocketIoEvent>, name: &str) {
    let got = tokio::time::timeout(Duration::from_millis(300), next(rx, name)).await;
    assert!(got.is_err(), "unexpected {name}: {got:?}");
}

#[tokio::test]
async fn members_are_users_and_their_changes_are_announced() {
    let server = Server::builder().build().unwrap();
    let ns = server.of("/");
    ns.enable_presence_in("lobby");
    ns.on_connect(|s| async move {
        let user = s.handshake().auth["user"].as_str().unwrap_or_default().to_owned();
        if !user.is_empty() {
            s.set_user_id(user).unwrap();
        }
        assert_eq!(s.set_user_id("again").unwrap_err().kind(), ErrorKind::InvalidArgument);
        Ok(())
    });
    ns.on("enter", |s, args| async move {
        s.join(args.json_at(0).as_str().unwrap()).unwrap();
        // A user id is only set while connect hooks run.
        assert_eq!(s.set_user_id("late").unwrap_err().kind(), ErrorKind::InvalidArgument);
    });
    ns.on("status", |s, args| async move {
        match s.set_presence(args.json_at(0)) {
            Ok(()) => json!("ok"),
            Err(e) => json!(e.kind().code()),
        }
    });
    let addr = server.listen("127.0.0.1:0").await.unwrap();
    let url = format!("http://{addr}");

    let (bob, mut bob_rx) = client(&url, "bob").await;
    let (alice1, mut alice1_rx) = client(&url, "alice").await;
    let join = next(&mut bob_rx, "presence:join").await;
    assert_eq!((join["room"].as_str(), join["userId"].as_str()), (Some("lobby"), Some("alice")));
    assert_eq!((join["connections"].as_u64(), &join["meta"]), (Some(1), &json!({"status": "online"})));
    quiet(&mut alice1_rx, "presence:join").await;
    let (alice2, _) = client(&url, "alice").await;
    quiet(&mut bob_rx, "presence:join").await;

    let mut members = ns.presence("lobby").await.unwrap();
    members.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    assert_eq!(
        members.iter().map(|m| (m.user_id.as_str(), m.connections)).collect::<Vec<_>>(),
        [("alice", 2), ("bob", 1)]
    );
    assert_eq!(ns.presence_count("lobby").await.unwrap(), 2);
    assert!(server.is_online("alice").await.unwrap());
    assert_eq!(
        server.online_users(&["bob".into(), "zed".into()]).await.unwrap(),
        [("bob".to_owned(), true), ("zed".to_owned(), false)]
    );

    let reply = bob.emit_with_ack("status", Args::one(json!({"status": "away", "mood": "ok"})), Duration::from_secs(5));
    assert_eq!(common::within(reply).await.unwrap().json_at(0), "ok");
    let update = next(&mut alice1_rx, "presence:update").await;
    assert_eq!((update["userId"].as_str(), &update["meta"]["status"]), (Some("bob"), &json!("away")));
    let bad = bob.emit_with_ack("status", Args::one(json!({"status": "asleep"})), Duration::from_secs(5));
    assert_eq!(common::within(bad).await.unwrap().json_at(0), "ERR_INVALID_ARGUMENT");

    alice1.close().await;
    quiet(&mut bob_rx, "presence:leave").await;
    alice2.close().await;
    let leave = next(&mut bob_rx, "presence:leave").await;
    assert_eq!((leave["userId"].as_str(), leave["connections"].as_u64()), (Some("alice"), Some(0)));
    assert!(!server.is_online("alice").await.unwrap());
    assert_eq!(ns.presence("lobby").await.unwrap().len(), 1);
    // Rooms without presence have no members.
    assert!(ns.presence("elsewhere").await.unwrap().is_empty());
    bob.close().await;
    server.shutdown().await;
}
