//! `pgshard up`: the embedded default. Starts (creating on first run) one PostgreSQL server for
//! the metadata store and N for the data nodes under one directory, registers the nodes in the
//! catalog, runs the coordinator until Ctrl-C or SIGTERM, then stops every server it started.
//!
//! Layout of the directory: `meta/` and `dn1/`, `dn2/`, ... are PostgreSQL data directories,
//! each with its server log beside it (`meta.log`, `dn1.log`, ...). Ports of the servers are
//! picked free at each start; the catalog is updated with them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;

use crate::config::{Config, DataNodeConfig, MetadataConfig};
use crate::pg::{InstanceConfig, PgBinaries, PgInstance, free_port};
use crate::server::{Coordinator, shutdown_signal};

/// The metadata database's name on the metadata server.
pub const METADATA_DB: &str = "pgshard";

/// What `pgshard up` was asked for.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Data nodes wanted (an existing cluster with more keeps them all).
    pub data_nodes: usize,
    /// Coordinator port on 127.0.0.1 (0 picks a free one).
    pub port: u16,
    /// Cluster directory.
    pub dir: PathBuf,
    /// Tests: no fsync anywhere.
    pub fast: bool,
    /// Coordinators to run: `c0` (the primary) on `port`, then followers `c1`, ... on the
    /// ports after it.
    pub coordinators: usize,
}

/// The PostgreSQL servers of a local cluster, running. Dropping it stops them.
pub struct LocalServers {
    /// Held for the servers' life: one `up` per cluster directory.
    _lock: std::fs::File,
    /// The metadata store's server.
    pub meta: PgInstance,
    /// Data-node servers, `dn0` (the default node) first.
    pub nodes: Vec<PgInstance>,
    dir: PathBuf,
    fast: bool,
}

impl LocalServers {
    /// Starts (creating on first use) the metadata server and the data-node servers. Must be
    /// called from a thread that outlives the servers (see [`PgInstance::start`]).
    pub fn start(opts: &UpOptions) -> anyhow::Result<Self> {
        if opts.data_nodes == 0 {
            anyhow::bail!("--data-nodes must be at least 1");
        }
        std::fs::create_dir_all(&opts.dir)
            .with_context(|| format!("cannot create cluster directory {}", opts.dir.display()))?;
        let dir = opts.dir.canonicalize()?;
        let lock = lock_dir(&dir)?;
        let existing = existing_nodes(&dir);
        if existing > opts.data_nodes {
            tracing::info!(existing, asked = opts.data_nodes, "the cluster already has more data nodes; starting them all");
        }
        let count = existing.max(opts.data_nodes);
        let bins = PgBinaries::discover()?;
        let meta = PgInstance::start(&bins, instance(&dir, "meta", opts.fast, &[])?)?;
        let mut nodes = Vec::with_capacity(count + 1);
        // dn0 is the default node: ordinary tables, the shells of distributed tables and the
        // reference tables, where introspection is answered; dn1..dnN hold the shards.
        for i in 0..=count {
            nodes.push(PgInstance::start(&bins, instance(&dir, &format!("dn{i}"), opts.fast, &NODE_SETTINGS)?)?);
        }
        Ok(Self { _lock: lock, meta, nodes, dir, fast: opts.fast })
    }

    /// Kills data node `i` (0 is the default node) with SIGKILL, for fault tests.
    pub fn kill_node(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts data node `i` again on its port after [`kill_node`](Self::kill_node).
    pub fn restart_node(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &self.nodes[i];
        let mut config = instance(&self.dir, node.name(), self.fast, &NODE_SETTINGS)?;
        config.port = node.port();
        self.nodes[i] = PgInstance::start(&PgBinaries::discover()?, config)?;
        Ok(())
    }

    /// The coordinator configuration for these servers, listening on `port`.
    pub fn coordinator_config(&self, port: u16) -> Config {
        Config {
            listen: format!("127.0.0.1:{port}"),
            metadata: MetadataConfig {
                dsn: format!("host={} port={} user=postgres dbname={METADATA_DB}", self.meta.host(), self.meta.port()),
            },
            data_nodes: self
                .nodes
                .iter()
                .map(|n| DataNodeConfig { name: n.name().to_owned(), host: n.host(), port: n.port() })
                .collect(),
            ..Config::default()
        }
    }

    /// The cluster directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops every server, data nodes first.
    pub fn stop(mut self) {
        for node in self.nodes.iter_mut().rev() {
            if let Err(e) = node.stop() {
                tracing::warn!(node = node.name(), error = %e, "stopping data node");
            }
        }
        if let Err(e) = self.meta.stop() {
            tracing::warn!(error = %e, "stopping metadata server");
        }
    }
}

/// Takes the cluster directory's lock file, so that a second `up` on the same directory is
/// refused instead of racing the first one's servers.
fn lock_dir(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("pgshard.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            anyhow::bail!("another pgshard is running on {} (lock file {})", dir.display(), path.display())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// Settings of every data node.
pub const NODE_SETTINGS: [(&str, &str); 2] = [
    ("max_connections", "200"),
    // Two-phase commit needs prepared-transaction slots on every data node.
    ("max_prepared_transactions", "200"),
];

fn instance(dir: &Path, name: &str, fast: bool, settings: &[(&str, &str)]) -> anyhow::Result<InstanceConfig> {
    Ok(InstanceConfig {
        name: name.to_owned(),
        datadir: dir.join(name),
        port: free_port()?,
        settings: settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        fast,
    })
}

/// Data-node directories already present (`dn1`, `dn2`, ... without gaps).
fn existing_nodes(dir: &Path) -> usize {
    (1..).take_while(|i| dir.join(format!("dn{i}")).join("PG_VERSION").exists()).count()
}

/// Creates the metadata database on first run.
pub async fn ensure_metadata_db(meta_port: u16) -> anyhow::Result<()> {
    let dsn = format!("host=127.0.0.1 port={meta_port} user=postgres dbname=postgres");
    let (client, conn) = tokio::time::timeout(Duration::from_secs(10), tokio_postgres::connect(&dsn, tokio_postgres::NoTls))
        .await
        .context("metadata server did not answer")??;
    let task = tokio::spawn(conn);
    let exists = client.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&METADATA_DB]).await?.is_some();
    if !exists {
        client.batch_execute(&format!("CREATE DATABASE {METADATA_DB}")).await?;
    }
    drop(client);
    let _ = task.await;
    Ok(())
}

/// `pgshard up`: runs until Ctrl-C / SIGTERM.
pub fn run_up(opts: UpOptions) -> anyhow::Result<()> {
    if opts.port != 0 {
        std::net::TcpListener::bind(("127.0.0.1", opts.port)).map_err(|e| {
            anyhow::anyhow!("cannot listen on 127.0.0.1:{}: {e} (choose another port with --port)", opts.port)
        })?;
    }
    if opts.coordinators == 0 {
        anyhow::bail!("--coordinators must be at least 1");
    }
    let servers = LocalServers::start(&opts)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async {
        ensure_metadata_db(servers.meta.port()).await?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut running = Vec::new();
        for i in 0..opts.coordinators {
            let mut config = servers.coordinator_config(if opts.port == 0 { 0 } else { opts.port + i as u16 });
            config.name = format!("c{i}");
            let coordinator = Coordinator::start(config).await?;
            let addr = coordinator.local_addr()?;
            let role = if i == 0 { "primary" } else { "follower" };
            if i == 0 {
                println!("pgshard is up: {} data node(s), data in {}", servers.nodes.len(), servers.dir().display());
            }
            println!("connect with:  psql -h {} -p {} -U postgres   ({role} coordinator c{i})", addr.ip(), addr.port());
            let mut stop = stop_rx.clone();
            running.push(tokio::spawn(coordinator.serve(async move {
                let _ = stop.wait_for(|s| *s).await;
            })));
        }
        println!("stop with Ctrl-C");
        shutdown_signal().await;
        let _ = stop_tx.send(true);
        for r in running {
            let _ = r.await;
        }
        anyhow::Ok(())
    });
    drop(runtime);
    servers.stop();
    println!("pgshard stopped");
    result
}
