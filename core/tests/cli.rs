//! `roomcast serve` as a user runs it: real process, real port, SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use common::serve::Serve;
use common::{Tc, within};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn serve_runs_the_demo_and_stops_on_sigterm() {
    let mut serve = Serve::start(&["--ping-interval-ms", "1000"]);
    let addr = serve.addr;

    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut page = String::new();
    within(s.read_to_string(&mut page)).await.unwrap();
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("/ws"), "demo page served");

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
