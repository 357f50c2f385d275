//! The `pgshard` command: `up` runs a local cluster, `serve` a coordinator against servers
//! that already run.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use pgshard::config::{AuthMethod, Config, DataNodeConfig};
use pgshard::server::{Coordinator, shutdown_signal};
use pgshard::up::{UpOptions, run_up};

#[derive(Parser)]
#[command(name = "pgshard", version, about = "Distributed SQL coordinator for sharded PostgreSQL")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a local cluster: a metadata PostgreSQL, N data-node PostgreSQLs and the coordinator.
    Up(UpArgs),
    /// Run the coordinator against PostgreSQL servers that already run.
    Serve(ServeArgs),
    /// Compare pgshard with plain PostgreSQL on this machine (README: TPC-C and benchmarks).
    Bench(pgshard::bench::BenchArgs),
    /// TPC-C style benchmark: load, run, check (against pgshard or a plain PostgreSQL).
    Tpcc {
        #[command(subcommand)]
        command: pgshard_tpcc::TpccCommand,
    },
}

#[derive(Args)]
struct UpArgs {
    /// Number of data nodes (created on first run; an existing cluster keeps its nodes).
    #[arg(long, env = "PGSHARD_DATA_NODE_COUNT", default_value_t = 2)]
    data_nodes: usize,
    /// Port the coordinator listens on (127.0.0.1).
    #[arg(long, env = "PGSHARD_PORT", default_value_t = 6432)]
    port: u16,
    /// Coordinators to run: c0 (the primary) on --port, followers c1, c2, ... on the next ports.
    #[arg(long, env = "PGSHARD_COORDINATORS", default_value_t = 1)]
    coordinators: usize,
    /// Directory holding the cluster's data (created on first run, reused afterwards).
    #[arg(long, env = "PGSHARD_DIR", default_value = "pgshard-data")]
    dir: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// TOML configuration file (see examples/pgshard.toml).
    #[arg(long, env = "PGSHARD_CONFIG")]
    config: Option<PathBuf>,
    /// This coordinator's name (lowercase letters and digits), overriding `name`.
    #[arg(long, env = "PGSHARD_NAME")]
    name: Option<String>,
    /// Address to listen on, overriding `listen`.
    #[arg(long, env = "PGSHARD_LISTEN")]
    listen: Option<String>,
    /// Metadata store DSN, overriding `metadata.dsn`.
    #[arg(long, env = "PGSHARD_METADATA_DSN")]
    metadata_dsn: Option<String>,
    /// Data node `name=host:port`, repeatable, replacing `data_nodes`.
    #[arg(long = "data-node", env = "PGSHARD_DATA_NODES", value_delimiter = ',', value_parser = DataNodeConfig::parse)]
    data_nodes: Vec<DataNodeConfig>,
    /// Client authentication: trust or scram-sha-256, overriding `auth.method`.
    #[arg(long, env = "PGSHARD_AUTH")]
    auth: Option<AuthMethod>,
    /// Most connections to one data node, overriding `pool.max_per_node`.
    #[arg(long, env = "PGSHARD_POOL_MAX_PER_NODE")]
    pool_max_per_node: Option<usize>,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(name) = self.name {
            config.name = name;
        }
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(dsn) = self.metadata_dsn {
            config.metadata.dsn = dsn;
        }
        if !self.data_nodes.is_empty() {
            config.data_nodes = self.data_nodes;
        }
        if let Some(auth) = self.auth {
            config.auth.method = auth;
        }
        if let Some(n) = self.pool_max_per_node {
            config.pool.max_per_node = n;
        }
        config.validate()?;
        Ok(config)
    }
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGSHARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    pgshard::raise_open_files_limit();
    let result = match Cli::parse().command {
        Command::Up(a) => run_up(UpOptions { data_nodes: a.data_nodes, port: a.port, dir: a.dir, fast: false, coordinators: a.coordinators }),
        Command::Serve(a) => serve(a),
        Command::Bench(a) => pgshard::bench::main(a),
        Command::Tpcc { command } => pgshard_tpcc::main(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pgshard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.into_config()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let coordinator = Coordinator::start(config).await?;
        coordinator.serve(shutdown_signal()).await;
        Ok(())
    })
}
