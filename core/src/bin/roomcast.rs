//! `roomcast serve`: the standalone server; `--chat` adds the demo chat app.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use roomcast::{AuthRejection, ConnectionRate, JwtVerifier, RateLimit, RedisConfig, Server};
use tracing_subscriber::EnvFilter;

// The chat app of examples/rust/chat.rs, one copy for the example and `--chat`.
#[path = "../../../examples/rust/chat.rs"]
mod chat;

#[derive(Parser)]
#[command(
    name = "roomcast",
    version,
    about = "Real-time messaging server: rooms, acks, presence, JSON protocol over WebSocket"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (one node in memory, or a cluster node with `--redis`).
    /// Every room has presence.
    Serve(ServeArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Require HS256 JWTs signed with this secret (`?token=` or `Authorization: Bearer`).
    #[arg(long, env = "ROOMCAST_JWT_SECRET", conflicts_with = "jwt_public_key")]
    jwt_secret: Option<String>,
    /// Require RS256 JWTs verified with this PEM public key file.
    #[arg(long)]
    jwt_public_key: Option<PathBuf>,
    /// Tell refused clients with close code 4001 after the upgrade instead of HTTP 401.
    #[arg(long)]
    auth_close_frame: bool,
    /// Serve files from this directory (the demo's is examples/web/chat).
    #[arg(long = "static")]
    static_dir: Option<PathBuf>,
    /// Run the demo chat app (examples/rust/chat.rs) on namespace "/": its
    /// events, and clients named by `auth.name` unless a JWT names them.
    #[arg(long)]
    chat: bool,
    /// Allowed `Origin` (repeatable; none allows every origin).
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// Heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 25_000)]
    ping_interval_ms: u64,
    /// Heartbeat timeout in milliseconds.
    #[arg(long, default_value_t = 20_000)]
    ping_timeout_ms: u64,
    /// Largest inbound message in bytes.
    #[arg(long, default_value_t = 1_000_000)]
    max_payload: usize,
    /// Maximum concurrent connections.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Maximum concurrent connections per client IP.
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// New connections per second per client IP (HTTP 429 beyond).
    #[arg(long)]
    connection_rate_per_ip: Option<f64>,
    /// New connections at once per client IP (default: twice the rate).
    #[arg(long, requires = "connection_rate_per_ip")]
    connection_burst_per_ip: Option<u32>,
    /// Sustained inbound messages per second per connection (burst: twice that).
    #[arg(long)]
    rate_limit: Option<f64>,
    /// Outbound queue bound per connection, in frames.
    #[arg(long, default_value_t = 4096)]
    outbound_queue_messages: usize,
    /// Outbound queue bound per connection, in bytes.
    #[arg(long, default_value_t = 8 * 1024 * 1024)]
    outbound_queue_bytes: usize,
    /// What a full outbound queue does with a message that is not volatile:
    /// `close` the slow consumer (the client reconnects) or `drop` the message.
    #[arg(long, value_enum, default_value_t = OverflowArg::Close)]
    overflow: OverflowArg,
    /// Join a cluster over Redis: `redis://host:port`, `rediss://…`,
    /// `redis-cluster://host:port?node=host:port`, `redis-sentinel://…`.
    #[arg(long, env = "ROOMCAST_REDIS")]
    redis: Option<String>,
    /// Prefix of the cluster's Redis keys and channels.
    #[arg(long, default_value = "roomcast")]
    redis_prefix: String,
    /// A node silent for this long is dead; its members leave (milliseconds).
    #[arg(long, default_value_t = 10_000)]
    node_ttl_ms: u64,
    /// How long cluster queries wait for the other nodes (milliseconds).
    #[arg(long, default_value_t = 5_000)]
    request_timeout_ms: u64,
    /// Serve the Prometheus metrics at this path (empty: not at all).
    #[arg(long, default_value = "/metrics")]
    metrics_path: String,
    /// Log lines as text or as JSON objects (one per line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Turn on connection state recovery with this window (milliseconds;
    /// socket.io's default is 120000): clients that come back within it get
    /// their session and the messages they missed.
    #[arg(long)]
    recovery_window_ms: Option<u64>,
}

#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OverflowArg {
    Close,
    Drop,
}

fn main() -> ExitCode {
    let Command::Serve(args) = Cli::parse().command;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")));
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("roomcast: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomcast: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> roomcast::Result<()> {
    let mut b = Server::builder()
        .ping_interval(Duration::from_millis(args.ping_interval_ms))
        .ping_timeout(Duration::from_millis(args.ping_timeout_ms))
        .max_payload(args.max_payload)
        .outbound_queue(args.outbound_queue_messages, args.outbound_queue_bytes)
        .overflow(match args.overflow {
            OverflowArg::Close => roomcast::Overflow::Close,
            OverflowArg::Drop => roomcast::Overflow::Drop,
        });
    if let Some(secret) = &args.jwt_secret {
        b = b.jwt(JwtVerifier::hs256(secret));
    }
    if let Some(path) = &args.jwt_public_key {
        b = b.jwt(JwtVerifier::rs256_pem(std::fs::read(path)?)?);
    }
    if args.chat && args.jwt_secret.is_none() && args.jwt_public_key.is_none() {
        b = chat::with_name_auth(b);
    }
    if args.auth_close_frame {
        b = b.auth_rejection(AuthRejection::CloseFrame);
    }
    if let Some(dir) = args.static_dir {
        b = b.static_dir(dir);
    }
    for o in args.allowed_origins {
        b = b.allowed_origin(o);
    }
    if let Some(n) = args.max_connections {
        b = b.max_connections(n);
    }
    if let Some(n) = args.max_connections_per_ip {
        b = b.max_connections_per_ip(n);
    }
    if let Some(per_sec) = args.connection_rate_per_ip {
        let rate = ConnectionRate::new(per_sec);
        b = b.connection_rate_per_ip(args.connection_burst_per_ip.map_or(rate, |n| rate.burst(n)));
    }
    if let Some(rate) = args.rate_limit {
        b = b.rate_limit(RateLimit {
            messages_per_sec: rate,
            message_burst: (rate * 2.0).max(1.0),
            ..RateLimit::default()
        });
    }
    if let Some(url) = args.redis {
        let mut redis = RedisConfig::new(url);
        redis.prefix = args.redis_prefix;
        redis.node_ttl = Duration::from_millis(args.node_ttl_ms);
        redis.request_timeout = Duration::from_millis(args.request_timeout_ms);
        b = b.redis(redis);
    }
    if !args.metrics_path.is_empty() {
        b = b.metrics_path(args.metrics_path.clone());
    }
    if let Some(window) = args.recovery_window_ms {
        b = b.connection_state_recovery(roomcast::RecoveryConfig {
            max_disconnection_duration: Duration::from_millis(window),
            ..roomcast::RecoveryConfig::default()
        });
    }
    let server = b.build()?;
    server.of("/").enable_presence();
    if args.chat {
        chat::install(&server);
    }
    let addr = server.listen(args.listen).await?;
    if let Some(node) = server.node_id() {
        tracing::info!(node, "cluster node");
    }
    tracing::info!("roomcast serving http://{addr}/ (JSON protocol at ws://{addr}{})", roomcast::server::WS_PATH);
    wait_for_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    let s = server.stats();
    tracing::info!(messages_in = s.messages_in, messages_out = s.messages_out, "stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
