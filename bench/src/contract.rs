//! The peer process contract of `bench/APP.md`: listen on 127.0.0.1:`$PORT`
//! (0 = any free port), print `PORT <n>` as the first stdout line, exit when
//! stdin closes or on SIGTERM. Peers that take part in B4 join a cluster on
//! the Redis at `$REDIS_URL` when it is set, and print their port once Redis
//! answered.

use std::io::Write;
use std::net::SocketAddr;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// 127.0.0.1:`$PORT` (default 0).
pub fn addr_from_env() -> anyhow::Result<SocketAddr> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p.trim().parse().map_err(|_| anyhow::anyhow!("PORT must be a port number, not {p:?}"))?,
        Err(_) => 0,
    };
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Bind 127.0.0.1:`$PORT` (default 0).
pub async fn bind_from_env() -> anyhow::Result<TcpListener> {
    Ok(TcpListener::bind(addr_from_env()?).await?)
}

/// Announce the port on stdout (first line).
pub fn announce(addr: SocketAddr) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "PORT {}", addr.port())?;
    out.flush()?;
    Ok(())
}

/// Resolve when stdin reaches EOF (the orchestrator went away) or on SIGTERM / SIGINT.
pub async fn wait_for_exit() {
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 256];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = stdin_closed => {}
        () = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
