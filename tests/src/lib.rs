//! Integration-test harness for pgshard: real PostgreSQL servers on free loopback ports in
//! temporary directories, a coordinator in front of them, and a plain PostgreSQL to compare
//! with. Everything is torn down on drop, so also when a test panics; the servers also stop if
//! the test process dies (see `pgshard::pg`).

pub mod fuzz;
pub mod proxy;
pub mod raw;
pub mod slt;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use pgshard::config::Config;
use pgshard::pg::{InstanceConfig, PgBinaries, PgInstance, free_port};
use pgshard::server::Coordinator;
use pgshard::up::{LocalServers, UpOptions, ensure_metadata_db};
use tempfile::TempDir;
use tokio::sync::oneshot;

/// A temporary directory the unprivileged server account can reach.
pub fn temp_dir() -> anyhow::Result<TempDir> {
    let dir = tempfile::Builder::new().prefix("pgshard-test-").tempdir()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(dir)
}

/// A local cluster: metadata server, data nodes, and a coordinator running in its own thread.
pub struct TestCluster {
    coordinator: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    servers: Option<LocalServers>,
    port: u16,
    _dir: TempDir,
}

impl TestCluster {
    /// Starts a cluster with `data_nodes` data nodes and the default configuration.
    pub fn start(data_nodes: usize) -> anyhow::Result<Self> {
        Self::start_with(data_nodes, |_| {})
    }

    /// Starts a cluster, letting the test adjust the coordinator's configuration.
    pub fn start_with(data_nodes: usize, adjust: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let dir = temp_dir()?;
        let opts = UpOptions { data_nodes, port: 0, dir: dir.path().join("cluster"), fast: true, coordinators: 1 };
        let servers = LocalServers::start(&opts)?;
        let mut config = servers.coordinator_config(0);
        adjust(&mut config);
        let (stop, thread, port) = spawn_coordinator(config, servers.meta.port())?;
        Ok(Self { coordinator: Some((stop, thread)), servers: Some(servers), port, _dir: dir })
    }

    /// Starts another coordinator on the cluster's metadata store and data nodes (named
    /// `name`, on a free port), letting the test adjust its configuration; stopped on drop.
    pub fn add_coordinator(&self, name: &str, adjust: impl FnOnce(&mut Config)) -> anyhow::Result<ExtraCoordinator> {
        let mut config = self.servers().coordinator_config(0);
        config.name = name.to_owned();
        adjust(&mut config);
        let (stop, thread, port) = spawn_coordinator(config, self.servers().meta.port())?;
        Ok(ExtraCoordinator { running: Some((stop, thread)), port })
    }

    /// Stops the first coordinator (gracefully), leaving the servers running.
    pub fn stop_coordinator(&mut self) {
        if let Some((stop, thread)) = self.coordinator.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }

    /// The coordinator's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq-style connection string to the coordinator.
    pub fn dsn(&self, dbname: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={dbname}", self.port)
    }

    /// The running servers.
    pub fn servers(&self) -> &LocalServers {
        self.servers.as_ref().unwrap_or_else(|| unreachable!("servers live until drop"))
    }

    /// The running servers, to kill and restart them.
    pub fn servers_mut(&mut self) -> &mut LocalServers {
        self.servers.as_mut().unwrap_or_else(|| unreachable!("servers live until drop"))
    }

    /// Port of data node `i` (1-based), to talk to it directly.
    pub fn node_port(&self, i: usize) -> u16 {
        self.servers().nodes[i - 1].port()
    }

    /// Stops the coordinator (gracefully), then the servers.
    pub fn stop(&mut self) {
        self.stop_coordinator();
        if let Some(servers) = self.servers.take() {
            servers.stop();
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A coordinator started with [`TestCluster::add_coordinator`].
pub struct ExtraCoordinator {
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    port: u16,
}

impl ExtraCoordinator {
    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A libpq-style connection string to it.
    pub fn dsn(&self, dbname: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={dbname}", self.port)
    }

    /// Stops it gracefully.
    pub fn stop(&mut self) {
        if let Some((stop, thread)) = self.running.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

impl Drop for ExtraCoordinator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs a coordinator in a thread of its own; returns its stop switch, thread and port.
fn spawn_coordinator(config: Config, meta_port: u16) -> anyhow::Result<(oneshot::Sender<()>, JoinHandle<()>, u16)> {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                let _ = addr_tx.send(Err(anyhow::anyhow!(e)));
                return;
            }
        };
        runtime.block_on(async move {
            let started = async {
                ensure_metadata_db(meta_port).await?;
                Coordinator::start(config).await
            };
            match started.await {
                Ok(c) => {
                    let _ = addr_tx.send(c.local_addr().map_err(anyhow::Error::from));
                    c.serve(async {
                        let _ = stop_rx.await;
                    })
                    .await;
                }
                Err(e) => {
                    let _ = addr_tx.send(Err(e));
                }
            }
        });
    });
    let addr = addr_rx.recv_timeout(Duration::from_secs(60)).context("coordinator did not start")??;
    Ok((stop_tx, thread, addr.port()))
}

/// The integer values of `column` in every shard of `table` held by the data node listening on
/// `port`, read directly from the node: which rows live where.
pub async fn shard_values(port: u16, table: &str, column: &str) -> Vec<i32> {
    let dsn = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    let Ok(node) = connect(&dsn).await else { return Vec::new() };
    let Ok(schemas) = node.query("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'pgshard\\_g%'", &[]).await
    else {
        return Vec::new();
    };
    let mut values = Vec::new();
    for s in schemas {
        let schema: String = s.get(0);
        let sql = format!("SELECT {column} FROM {schema}.{table} ORDER BY 1");
        if let Ok(rows) = node.query(&sql, &[]).await {
            values.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
        }
    }
    values.sort_unstable();
    values
}

/// A plain PostgreSQL server, the reference the coordinator's answers are compared with.
pub struct PlainPg {
    instance: PgInstance,
    _dir: TempDir,
}

impl PlainPg {
    /// Starts one on a free port.
    pub fn start() -> anyhow::Result<Self> {
        let dir = temp_dir()?;
        let bins = PgBinaries::discover()?;
        let config = InstanceConfig {
            name: "plain".into(),
            datadir: dir.path().join("plain"),
            port: free_port()?,
            settings: vec![("max_prepared_transactions".into(), "200".into()), ("max_connections".into(), "200".into())],
            fast: true,
        };
        Ok(Self { instance: PgInstance::start(&bins, config)?, _dir: dir })
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.instance.port()
    }

    /// A libpq-style connection string.
    pub fn dsn(&self, dbname: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={dbname}", self.port())
    }
}

/// Connects with tokio-postgres, driving the connection in a task.
pub async fn connect(dsn: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio::time::timeout(Duration::from_secs(10), tokio_postgres::connect(dsn, tokio_postgres::NoTls))
        .await
        .context("connect timed out")??;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Runs a PostgreSQL client program (psql, pgbench) from the server's binaries directory with
/// a time limit, returning its output.
pub fn run_pg_tool(tool: &str, args: &[&str], stdin: Option<&Path>, limit: Duration) -> anyhow::Result<Output> {
    let bins = PgBinaries::discover()?;
    let mut cmd = Command::new(bins.bindir().join(tool));
    cmd.args(args).env("PGCONNECT_TIMEOUT", "10").env_remove("PGPASSWORD").env_remove("PGSERVICE");
    cmd.stdin(match stdin {
        Some(path) => std::process::Stdio::from(std::fs::File::open(path)?),
        None => std::process::Stdio::null(),
    });
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let child = cmd.spawn().with_context(|| format!("cannot run {tool}"))?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => Ok(out?),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            anyhow::bail!("{tool} {args:?} did not finish within {limit:?}")
        }
    }
}

/// Counts the coordinator's log events saying a read ran on one group's shards.
#[derive(Clone, Default)]
pub struct Broadcasts(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Broadcasts {
    /// Installs the process's log subscriber (once per test binary).
    pub fn install() -> Self {
        let log = Self::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("pgshard::session::broadcast=debug"))
            .with_writer(move || sink.clone())
            .finish();
        // A second install in one process keeps the first subscriber; this log then stays empty.
        let _ = tracing::subscriber::set_global_default(subscriber);
        log
    }

    /// How many reads ran on one group's shards so far.
    pub fn count(&self) -> usize {
        let text = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&text).matches("on one group's shards").count()
    }
}

impl std::io::Write for Broadcasts {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
