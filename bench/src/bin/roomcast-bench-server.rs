//! The roomcast peer of the benchmarks: the app of `bench/APP.md` on
//! roomcast's Rust API, Socket.IO at `/socket.io/` and the JSON protocol at
//! `/ws` on one port. With `REDIS_URL` set it is a node of a cluster on that
//! Redis (B4), and announces its port once Redis answered. With
//! `--recovery`, connection state recovery is on.
//!
//! It uses tokio's multi-thread runtime, as an application would; the
//! orchestrator pins the process to one core with `taskset`, and tokio sizes
//! its worker pool from the CPU affinity mask, so it runs one worker thread.

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let redis_url = std::env::var("REDIS_URL").ok().filter(|u| !u.trim().is_empty());
        let recovery = std::env::args().skip(1).any(|a| a == "--recovery");
        let server = roomcast_bench::app::build_with(redis_url.as_deref(), recovery)?;
        let addr = if redis_url.is_some() {
            // `listen` waits for Redis (and this node's subscriptions) before serving.
            server.listen(roomcast_bench::contract::addr_from_env()?).await?
        } else {
            server.serve(roomcast_bench::contract::bind_from_env().await?)?
        };
        roomcast_bench::contract::announce(addr)?;
        roomcast_bench::contract::wait_for_exit().await;
        anyhow::Ok(())
    })?;
    // Connections may still be open: leave without a graceful shutdown.
    std::process::exit(0)
}
