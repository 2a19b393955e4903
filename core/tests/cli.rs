//! `roomcast serve` as a user runs it: real process, real port, SIGTERM.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Tc, within};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn serve_runs_the_demo_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_roomcast"))
        .args(["serve", "--listen", "127.0.0.1:0", "--ping-interval-ms", "1000"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn roomcast");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // "roomcast serving http://127.0.0.1:PORT/ ..."
    let addr = loop {
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("server announces its address");
        if let Some(rest) = line.split("serving http://").nth(1) {
            break rest.split('/').next().expect("address").parse::<std::net::SocketAddr>().expect("socket address");
        }
    };

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

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let close = a.closed().await.expect("close frame on shutdown");
    assert_eq!(u16::from(close.code), 1001);
    let exit = within(tokio::task::spawn_blocking(move || child.wait())).await.unwrap().unwrap();
    assert!(exit.success(), "clean exit, got {exit:?}");
}
