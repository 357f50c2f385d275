//! The servers a benchmark runs against: a pgshard cluster (metadata server, default node, 2
//! shard nodes, and the coordinator as a process of its own, so its CPU and memory can be read
//! from /proc) and a plain PostgreSQL with the data nodes' settings.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use super::BenchArgs;
use crate::pg::{InstanceConfig, PgBinaries, PgInstance, free_port};
use crate::up::{LocalServers, NODE_SETTINGS, UpOptions, ensure_metadata_db};

/// The benchmark's servers; stopped (and a directory it made removed) when dropped.
pub struct BenchCluster {
    dir: PathBuf,
    own_dir: bool,
    servers: Option<LocalServers>,
    plain: Option<PgInstance>,
    coordinator: Option<Child>,
    /// The coordinator's port.
    pub pgshard_port: u16,
    /// The plain PostgreSQL's port.
    pub plain_port: u16,
    /// The default node's port (to count its connections).
    pub default_node_port: u16,
    bins: PgBinaries,
    /// Clock ticks per second of /proc's CPU times.
    hz: f64,
}

impl BenchCluster {
    /// Starts everything; the coordinator runs `serve` of this very binary.
    pub fn start(args: &BenchArgs) -> anyhow::Result<Self> {
        let (dir, own_dir) = match &args.dir {
            Some(d) => (d.clone(), false),
            None => (std::env::temp_dir().join(format!("pgshard-bench-{}", std::process::id())), true),
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        }
        let bins = PgBinaries::discover()?;
        let mut me = Self {
            dir: dir.clone(),
            own_dir,
            servers: None,
            plain: None,
            coordinator: None,
            pgshard_port: 0,
            plain_port: 0,
            default_node_port: 0,
            bins: bins.clone(),
            hz: clock_ticks(),
        };
        println!("starting plain PostgreSQL and a pgshard cluster under {}", dir.display());
        let settings = NODE_SETTINGS.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let plain = PgInstance::start(
            &bins,
            InstanceConfig { name: "plain".into(), datadir: dir.join("plain"), port: free_port()?, settings, fast: false },
        )?;
        me.plain_port = plain.port();
        me.plain = Some(plain);
        let servers =
            LocalServers::start(&UpOptions { data_nodes: 2, port: 0, dir: dir.join("cluster"), fast: false, coordinators: 1 })?;
        tokio::runtime::Runtime::new()?.block_on(ensure_metadata_db(servers.meta.port()))?;
        me.default_node_port = servers.nodes[0].port();
        let port = free_port()?;
        let mut toml = format!(
            "name = \"bench\"\nlisten = \"127.0.0.1:{port}\"\n[metadata]\ndsn = \"host={} port={} user=postgres dbname=pgshard\"\n",
            servers.meta.host(),
            servers.meta.port()
        );
        for n in &servers.nodes {
            toml.push_str(&format!("[[data_nodes]]\nname = \"{}\"\nhost = \"{}\"\nport = {}\n", n.name(), n.host(), n.port()));
        }
        let config = dir.join("pgshard.toml");
        std::fs::write(&config, toml)?;
        me.servers = Some(servers);
        let child = Command::new(std::env::current_exe()?)
            .args(["serve", "--config"])
            .arg(&config)
            .env("PGSHARD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start the coordinator")?;
        me.coordinator = Some(child);
        me.pgshard_port = port;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(Instant::now() < deadline, "the coordinator did not start listening on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(me)
    }

    /// The coordinator's CPU time so far (user + system), in microseconds.
    pub fn coordinator_cpu_us(&self) -> anyhow::Result<f64> {
        let pid = self.coordinator.as_ref().map(Child::id).context("no coordinator")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).context("bad /proc stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = fields.get(11).context("utime")?.parse::<f64>()? + fields.get(12).context("stime")?.parse::<f64>()?;
        Ok(ticks * 1_000_000.0 / self.hz)
    }

    /// The coordinator's resident memory (`VmRSS`) and its peak (`VmHWM`), in MiB.
    pub fn coordinator_rss_mib(&self) -> anyhow::Result<(f64, f64)> {
        let pid = self.coordinator.as_ref().map(Child::id).context("no coordinator")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        Ok((field("VmRSS:"), field("VmHWM:")))
    }

    /// Resets the coordinator's peak RSS (`VmHWM`) to its current RSS, so a check measures
    /// its own peak (Linux: `5` written to `/proc/<pid>/clear_refs`).
    pub fn reset_peak_rss(&self) -> anyhow::Result<()> {
        let pid = self.coordinator.as_ref().map(Child::id).context("no coordinator")?;
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("cannot reset the coordinator's peak RSS")
    }

    /// A PostgreSQL client program (`pgbench`, `psql`).
    pub fn tool(&self, name: &str) -> PathBuf {
        let local = self.bins.bindir().join(name);
        if local.exists() { local } else { PathBuf::from(name) }
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops everything.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(mut c) = self.coordinator.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(s) = self.servers.take() {
            s.stop();
        }
        if let Some(mut p) = self.plain.take() {
            let _ = p.stop();
        }
        if self.own_dir {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for BenchCluster {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Clock ticks per second for /proc times: `getconf CLK_TCK` (100 on every Linux we know;
/// asked rather than assumed, without `unsafe`).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .filter(|hz| *hz > 0.0)
        .unwrap_or(100.0)
}
