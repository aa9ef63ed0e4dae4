//! The options of `ironmesh-bench` and what they choose: the suites, a server child's role, how
//! the gateway suite speaks REST and where its grpc-gateway peer is, the suites' sizes and PostgreSQL server.

use std::path::PathBuf;

/// Which measurements to run.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    /// Bare vs server stack vs server stack with token verification.
    Stack,
    /// Login throughput vs the argon2 bound; GetMe p99 during a login flood.
    Auth,
    /// One RPC directly over gRPC vs through the REST gateway.
    Gateway,
    /// The outbox relay vs the producer's inserts; audit Append vs plain INSERTs.
    Events,
    /// CreateOrder end to end vs pgbench; the 200-for-10 contention run.
    Orders,
    /// Webhook deliveries/s vs wrk to the same receiver; p99 beside a hanging endpoint.
    Notification,
    /// Jobs/s of 8 workers vs pgbench simple-update; what 1,000 queue-position watchers cost.
    Provisioning,
    /// Every suite.
    All,
}

impl Suite {
    pub fn name(self) -> &'static str {
        match self {
            Self::Stack => "stack",
            Self::Auth => "auth",
            Self::Gateway => "gateway",
            Self::Events => "events",
            Self::Orders => "orders",
            Self::Notification => "notification",
            Self::Provisioning => "provisioning",
            Self::All => "all",
        }
    }
}

/// What a server child is (internal).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Stack,
    Auth,
    Gateway,
}

/// How the gateway suite speaks REST.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestProtocol {
    /// HTTP/1.1 (h2load `--h1`), one request at a time per connection, as REST clients do.
    H1,
    /// HTTP/2 without TLS (prior knowledge), multiplexed like the gRPC run.
    H2c,
}

/// Options of `ironmesh-bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Which measurements to run.
    #[arg(long, value_enum, default_value_t = Suite::All)]
    pub suite: Suite,
    /// Seconds of measured load per run (events suite: of the run at half load).
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: u64,
    /// Seconds of unmeasured load before each measurement (0: none).
    #[arg(long, value_name = "SECS", default_value_t = 2)]
    pub warmup: u64,
    /// Stack and gateway suites: HTTP/2 connections h2load opens (`-c`).
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub clients: u32,
    /// Stack and gateway suites: concurrent streams per connection (`-m`).
    #[arg(long, value_name = "M", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub streams: u32,
    /// Stack suite: interleaved rounds of bare, stack and stack+auth; the ratios reported are
    /// the medians of the rounds' (the box is noisy: one run each can be off by a fifth).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Stack and gateway suites: the CPU the server process is pinned to.
    #[arg(long, value_name = "CPU", default_value_t = 0)]
    pub server_cpu: usize,
    /// Stack and gateway suites: the CPU h2load is pinned to.
    #[arg(long, value_name = "CPU", default_value_t = 1)]
    pub load_cpu: usize,
    /// Gateway suite: how REST is spoken (h1: `-c N×M -m 1`, the same requests in flight as
    /// the gRPC run; h2c: `-c N -m M` like it).
    #[arg(long, value_enum, default_value_t = RestProtocol::H1)]
    pub gateway_rest: RestProtocol,
    /// Gateway suite: after the measured runs, this many more seconds of the REST load with the
    /// mesh's memory read ten times (0: no soak). Growth with request count shows there.
    #[arg(long, value_name = "SECS", default_value_t = 0)]
    pub soak_secs: u64,
    /// Gateway suite: the grpc-gateway peer binary (`peer-gateway -listen ADDR -backend ADDR`)
    /// measured beside Ironmesh's gateway (default:
    /// `${TMPDIR:-/tmp}/ironmesh-peer-gateway/bin/peer-gateway`, built if missing).
    #[arg(long, value_name = "PATH", env = "IRONMESH_PEER_GATEWAY")]
    pub peer_gateway: Option<PathBuf>,
    /// Gateway suite: the script that builds the peer when its binary is missing (`bash
    /// SCRIPT`, needs apt-get).
    #[arg(
        long,
        value_name = "PATH",
        env = "IRONMESH_PEER_GATEWAY_SCRIPT",
        default_value = "../shared/peers/grpc-gateway/build.sh"
    )]
    pub peer_gateway_script: PathBuf,
    /// Auth suite: concurrent Login calls of the flood (h2load `-c`, one stream each; default
    /// 2 × available cores).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub login_clients: Option<u32>,
    /// Auth suite: h2load connections of the GetMe probe.
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub probe_clients: u32,
    /// Auth suite: GetMe requests per second per probe connection (h2load `--rps`).
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub probe_rps: u32,
    /// Auth suite: argon2id hashes timed for the bound.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub hashes: u32,
    /// Events suite: events the producer writes, then the relay delivers to audit.
    #[arg(long, value_name = "N", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events: u64,
    /// Events suite: entries appended to audit's store, then INSERTed plainly.
    #[arg(long, value_name = "M", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub entries: u64,
    /// Orders suite: concurrent CreateOrder callers on PostgreSQL, and pgbench's clients
    /// (SQLite: 32).
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub order_clients: u32,
    /// Notification suite: notifications sent in each throughput run (end to end, then as a
    /// queued backlog).
    #[arg(long, value_name = "N", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub notifications: u64,
    /// Notification suite: Sends per second to each of the two users in the isolation runs.
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub notification_rate: u32,
    /// Provisioning suite: requests submitted, then drained by the workers (jobs/s).
    #[arg(long, value_name = "N", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub jobs: u64,
    /// Provisioning suite: WatchQueuePosition streams, one per queued request.
    #[arg(long, value_name = "N", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub watchers: u64,
    /// Events, orders, notification and provisioning suites: a PostgreSQL server URL; the
    /// suite also runs there, in a fresh database it creates and drops (unset: SQLite only).
    #[arg(
        long,
        value_name = "URL",
        env = "BENCH_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// Print the result as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Internal: be a server process (started by `ironmesh-bench` itself).
    #[arg(long, value_enum, hide = true)]
    pub serve: Option<Role>,
    /// Internal: the public JWK (`KID:X`) the stack+auth server trusts.
    #[arg(long, hide = true)]
    pub serve_jwk: Option<String>,
    /// Internal: the auth or gateway server's data directory.
    #[arg(long, hide = true)]
    pub serve_dir: Option<PathBuf>,
}
