//! `roomcast serve` as a user runs it: real process, real port, SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use common::serve::Serve;
use common::{Tc, http_get, http_status, within};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn serve_relays_and_stops_on_sigterm() {
    let mut serve = Serve::start(&["--ping-interval-ms", "1000"]);
    let addr = serve.addr;

    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut page = String::new();
    within(s.read_to_string(&mut page)).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("/ws"), "landing page served");

    let mut a = Tc::connect(addr, "").await;
    let mut b = Tc::connect(addr, "").await;
    a.join("lobby").await;
    b.join("lobby").await;
    a.send(json!({"type":"message","room":"lobby","payload":{"kind":"chat","text":"hi"}})).await;
    assert_eq!(b.recv().await["payload"]["text"], "hi");

    serve.signal("-TERM");
    let close = a.closed().await.expect("close frame on shutdown");
    assert_eq!(u16::from(close.code), 1001);
    let exit = within(tokio::task::spawn_blocking(move || serve.wait())).await.unwrap();
    assert!(exit.success(), "clean exit, got {exit:?}");
}

#[tokio::test]
async fn serve_takes_the_outbound_queue_and_overflow_policy() {
    let args = ["--outbound-queue-messages", "8", "--outbound-queue-bytes", "16384", "--overflow", "drop"];
    let mut serve = Serve::start(&args);
    let mut stalled = Tc::connect(serve.addr, "").await;
    let mut sender = Tc::connect(serve.addr, "").await;
    stalled.join("lobby").await;
    sender.join("lobby").await;
    // `stalled` reads nothing meanwhile: far more than its queue and the kernel's buffers hold.
    let text = "x".repeat(16 * 1024);
    for i in 0..1000 {
        sender.send(json!({"type":"message","room":"lobby","payload":{"i": i, "text": text}})).await;
    }
    // With `drop` it is still connected: it gets what was kept, in order.
    let reader = tokio::spawn(async move {
        let mut last = -1;
        loop {
            let m = stalled.recv_type("message").await;
            if m["payload"]["end"] == true {
                return last;
            }
            let i = m["payload"]["i"].as_i64().unwrap();
            assert!(i > last, "in order");
            last = i;
        }
    });
    // The end marker, again until it got through (a full queue drops it too).
    within(async {
        while !reader.is_finished() {
            sender.send(json!({"type":"message","room":"lobby","payload":{"end": true}})).await;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    })
    .await;
    let last = within(reader).await.unwrap();
    assert!(last < 999, "some were dropped ({last} last)");
    serve.signal("-TERM");
    within(tokio::task::spawn_blocking(move || serve.wait())).await.unwrap();
}

#[tokio::test]
async fn serve_logs_json_lines_and_serves_metrics() {
    let serve = Serve::start(&["--log-format", "json"]);
    let line: serde_json::Value = serde_json::from_str(&serve.announced).expect("a JSON log line");
    assert_eq!(line["level"], "INFO");
    assert!(line["fields"]["message"].as_str().unwrap().contains("serving http://"), "{line}");
    let _client = Tc::connect(serve.addr, "").await;
    let metrics = http_get(serve.addr, "/metrics").await;
    assert!(metrics.lines().any(|l| l == "roomcast_connections 1"), "{metrics}");
    drop(serve);
    let off = Serve::start(&["--metrics-path", ""]);
    assert!(http_get(off.addr, "/metrics").await.starts_with("HTTP/1.1 404"));
}

#[tokio::test]
async fn serve_limits_new_connections_per_ip() {
    let serve = Serve::start(&["--connection-rate-per-ip", "0.01", "--connection-burst-per-ip", "2"]);
    let _a = Tc::connect(serve.addr, "").await;
    let _b = Tc::connect(serve.addr, "").await;
    assert_eq!(http_status(&Tc::try_connect(serve.addr, "", &[]).await.err().unwrap()), 429);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(["serve", "--connection-burst-per-ip", "2"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a burst needs a rate");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--connection-rate-per-ip"));
}
