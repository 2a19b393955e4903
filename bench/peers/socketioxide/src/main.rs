//! The bench/APP.md Socket.IO app on socketioxide 0.18 + axum (the integration socketioxide's
//! README shows: `SocketIo::new_layer()` as a tower layer on an axum `Router`, `axum::serve`).
//!
//! Process contract: listens on 127.0.0.1:$PORT (0 = any free port), prints `PORT <n>` as the
//! first stdout line, exits when stdin closes or on SIGTERM. Quiet: no logging.
//!
//! # Runtime: tokio current-thread
//!
//! socketioxide spawns one tokio task per incoming event (`tokio::spawn` in
//! `handler/message.rs`), so the order of one socket's `publish` handlers is whatever the
//! scheduler makes it. On tokio's multi-thread runtime that order is NOT arrival order: with 2
//! workers, and also with 1 worker (under `taskset -c 0`) because of the worker's LIFO slot, a
//! burst of 100 publishes from one client reached the other client reordered in every trial
//! (bench/peers/check.sh's in-order check). APP.md's subscribers require per-publisher order, so
//! this peer runs the current-thread runtime, whose run queue is FIFO: handlers run in arrival
//! order, and the one-core pin (taskset) costs nothing because there is one thread anyway.
//!
//! # Buffering: library defaults, drops counted
//!
//! socketioxide's config is left at its defaults, as a typical user runs it. One of them matters
//! under load: each socket's outgoing queue holds `max_buffer_size` = 128 packets and an emit
//! to a socket whose queue is full is dropped with `InternalChannelFull` (Node's socket.io
//! buffers without bound instead). Dropped deliveries are counted and, if any, reported on stderr
//! at exit (`socketioxide-peer: dropped N ...`). `SOCKETIOXIDE_MAX_BUFFER_SIZE=<n>` (optional)
//! sets a larger queue, for a run that wants to compare without drops.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use serde_json::Value;
use socketioxide::{
    BroadcastError, SocketIo,
    extract::{AckSender, Data, SocketRef},
};
use tokio::io::AsyncReadExt;

const ROOM: &str = "bench";

/// Deliveries socketioxide refused (a full per-socket queue or a closed socket).
static DROPPED: AtomicU64 = AtomicU64::new(0);

async fn on_connect(socket: SocketRef) {
    socket.join(ROOM);

    // publish P → msg P to room "bench" except the sender.
    socket.on("publish", async |socket: SocketRef, Data::<Value>(data)| {
        if let Err(e) = socket.to(ROOM).emit("msg", &data).await {
            let n = match e {
                BroadcastError::Socket(errs) => errs.len() as u64,
                _ => 1,
            };
            DROPPED.fetch_add(n, Ordering::Relaxed);
        }
    });

    // echo D with an ack → the ack carries D.
    socket.on("echo", async |Data::<Value>(data), ack: AckSender| {
        if ack.send(&data).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// Resolves when stdin reaches EOF (or fails): the orchestrator's "stop" signal.
async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

async fn sigterm() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending::<()>().await,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) if !p.is_empty() => p.parse()?,
        _ => 0,
    };

    let (layer, io) = match std::env::var("SOCKETIOXIDE_MAX_BUFFER_SIZE") {
        Ok(n) if !n.is_empty() => SocketIo::builder().max_buffer_size(n.parse()?).build_layer(),
        _ => SocketIo::new_layer(),
    };
    io.ns("/", on_connect);
    let app = Router::new().layer(layer);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let port = listener.local_addr()?.port();
    // Rust's stdout is line-buffered: the line is out as soon as println! returns.
    println!("PORT {port}");

    tokio::select! {
        r = axum::serve(listener, app) => r?,
        () = stdin_closed() => {}
        () = sigterm() => {}
    }
    let dropped = DROPPED.load(Ordering::Relaxed);
    if dropped > 0 {
        eprintln!("socketioxide-peer: dropped {dropped} deliveries (per-socket queue full or closed)");
    }
    // Open WebSocket connections would keep a graceful shutdown waiting: just leave.
    std::process::exit(0);
}
