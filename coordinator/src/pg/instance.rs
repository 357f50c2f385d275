//! One local PostgreSQL server, run as a child process: created with initdb on first use,
//! started on 127.0.0.1 only, stopped with a fast shutdown, or killed to simulate a crash.

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::account::RunAs;
use super::datadir::{self, DataDirState};
use super::process::spawn_owned;
use super::shutdown::{kill_server, shut_down};
use super::{PgBinaries, PgError};

/// How long a server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often readiness is polled.
const READY_POLL: Duration = Duration::from_millis(50);

/// What to run: where the cluster lives, its port and its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    /// Short name used in logs and messages, e.g. `meta` or `dn1`.
    pub name: String,
    /// The PGDATA directory, created by initdb if missing or empty.
    pub datadir: PathBuf,
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Passed as `-c key=value` on every start, after (so overriding) our own settings.
    pub settings: Vec<(String, String)>,
    /// For tests: initdb `--no-sync`; fsync, synchronous_commit and full_page_writes off.
    pub fast: bool,
}

/// A running (or stopped) local PostgreSQL server; dropping it stops the server.
#[derive(Debug)]
pub struct PgInstance {
    name: String,
    datadir: PathBuf,
    log: PathBuf,
    port: u16,
    pid: u32,
    created: bool,
    child: Option<Child>,
    socket_dir: Option<PathBuf>,
}

/// A data directory ready for `postgres`, with the log this run appends to.
struct Prepared {
    datadir: PathBuf,
    log_path: PathBuf,
    log: File,
    log_start: u64,
    run_as: RunAs,
    created: bool,
}

impl PgInstance {
    /// Creates the cluster with initdb on first use (superuser `postgres`, trust auth, UTF8,
    /// C.UTF-8), starts `postgres` listening on 127.0.0.1 only, its output appended to
    /// `<datadir>.log`, and waits up to 60 s until it accepts connections.
    ///
    /// The server runs with SIGINT as its parent-death signal, so it shuts down if this
    /// process dies, even by SIGKILL. Linux ties that signal to the *thread* that forked the
    /// child, so servers are forked by one internal thread that lives as long as the process:
    /// `start` may be called from any thread (e.g. tokio's `spawn_blocking`).
    pub fn start(bins: &PgBinaries, config: InstanceConfig) -> Result<Self, PgError> {
        let began = Instant::now();
        let prepared = prepare(bins, &config)?;
        let socket_dir = socket_dir(&prepared.datadir, config.port);
        let child = spawn_postgres(bins, &prepared, &config, socket_dir.as_deref())?;
        let log_start = prepared.log_start;
        let mut instance = PgInstance {
            name: config.name,
            datadir: prepared.datadir,
            log: prepared.log_path,
            port: config.port,
            pid: child.id(),
            created: prepared.created,
            child: Some(child),
            socket_dir,
        };
        instance.wait_ready(bins, log_start)?;
        tracing::info!(
            name = %instance.name,
            port = instance.port,
            pid = instance.pid,
            datadir = %instance.datadir.display(),
            created = instance.created,
            elapsed_ms = began.elapsed().as_millis() as u64,
            "PostgreSQL instance started"
        );
        Ok(instance)
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where clients on this machine should connect: the Unix-domain socket's directory (the
    /// data directory) in libpq's `host` form, or `127.0.0.1` when the path would be too long
    /// for a socket address. Local sockets skip the kernel's TCP work on every message.
    pub fn host(&self) -> String {
        match &self.socket_dir {
            Some(dir) => dir.display().to_string(),
            None => "127.0.0.1".to_owned(),
        }
    }

    /// The instance's short name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The absolute data directory.
    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    /// The postmaster's pid (of the last start, also after a stop).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// True when this start ran initdb (a new cluster).
    pub fn created(&self) -> bool {
        self.created
    }

    /// The server's log file, `<datadir>.log`.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Fast shutdown: SIGINT, wait up to 30 s, then SIGQUIT, then kill. Idempotent.
    pub fn stop(&mut self) -> Result<(), PgError> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let result = shut_down(&mut child, &self.name);
        if result.is_ok() {
            tracing::info!(name = %self.name, port = self.port, pid = self.pid, "PostgreSQL instance stopped");
        }
        result
    }

    /// Immediate kill (SIGKILL of the postmaster and its backends) for fault tests; the
    /// server is left crashed and recovers on the next [`start`](Self::start).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_server(&mut child, &self.name);
            tracing::info!(name = %self.name, port = self.port, pid = self.pid, "PostgreSQL instance killed");
        }
    }

    /// Polls `pg_isready` until the server accepts connections, it exits, or time runs out.
    fn wait_ready(&mut self, bins: &PgBinaries, log_start: u64) -> Result<(), PgError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let Some(child) = self.child.as_mut() else {
                return Err(self.start_failure(log_start, "it was stopped while starting"));
            };
            let exited = child.try_wait().map_err(PgError::io(format!(
                "cannot wait for PostgreSQL instance `{}`",
                self.name
            )))?;
            if let Some(status) = exited {
                self.child = None;
                return Err(self.start_failure(log_start, &format!("it exited ({status})")));
            }
            if is_ready(bins, self.port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                if let Err(err) = self.stop() {
                    tracing::error!(name = %self.name, %err, "cannot stop a server that did not start");
                }
                let reason = format!(
                    "it did not accept connections within {} s",
                    READY_TIMEOUT.as_secs()
                );
                return Err(self.start_failure(log_start, &reason));
            }
            thread::sleep(READY_POLL);
        }
    }

    /// The error for a failed start, from what this run wrote to the log.
    fn start_failure(&self, log_start: u64, reason: &str) -> PgError {
        let text = datadir::read_since(&self.log, log_start);
        tracing::error!(name = %self.name, port = self.port, log = %self.log.display(), reason, "PostgreSQL instance failed to start");
        if is_port_conflict(&text) {
            return PgError::PortInUse { port: self.port };
        }
        PgError::StartFailed {
            name: self.name.clone(),
            log_tail: datadir::describe_tail(reason, &self.log, &text),
        }
    }
}

impl Drop for PgInstance {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            tracing::error!(name = %self.name, pid = self.pid, %err, "cannot stop PostgreSQL instance");
        }
    }
}

/// Checks the directory and port, creates the cluster if needed, and opens the log.
fn prepare(bins: &PgBinaries, config: &InstanceConfig) -> Result<Prepared, PgError> {
    let datadir = std::path::absolute(&config.datadir).map_err(PgError::io(format!(
        "invalid data directory {}",
        config.datadir.display()
    )))?;
    let log_path = datadir::log_path(&datadir)?;
    let run_as = RunAs::detect()?;
    run_as.check_can_create(&datadir)?;
    let state = datadir::inspect(&datadir)?;
    if let DataDirState::Cluster { version } = &state {
        datadir::check_version(&datadir, version, bins)?;
        if let Some(pid) = datadir::running_pid(&datadir) {
            return Err(PgError::DirInUse { dir: datadir, pid });
        }
    }
    check_port_free(config.port)?;
    if state == DataDirState::Missing {
        datadir::create(&datadir)?;
    }
    let mut log = datadir::open_log(&log_path)?;
    run_as.give(&datadir)?;
    run_as.give(&log_path)?;
    run_as.check_reachable(&datadir)?;
    let created = !matches!(state, DataDirState::Cluster { .. });
    if created {
        tracing::info!(name = %config.name, datadir = %datadir.display(), "creating PostgreSQL cluster with initdb");
        datadir::initdb(bins, &run_as, &datadir, config.fast, &mut log)?;
    }
    let log_start = datadir::log_len(&log, &log_path)?;
    Ok(Prepared {
        datadir,
        log_path,
        log,
        log_start,
        run_as,
        created,
    })
}

/// Fails with [`PgError::PortInUse`] if 127.0.0.1:`port` cannot be bound.
fn check_port_free(port: u16) -> Result<(), PgError> {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(PgError::PortInUse { port }),
        Err(e) => Err(PgError::Io {
            context: format!("cannot bind 127.0.0.1:{port}"),
            source: e,
        }),
    }
}

/// The longest Unix-domain socket path the kernel takes (`sun_path` less its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The data directory as the server's socket directory, when `<datadir>/.s.PGSQL.<port>` fits
/// in a socket address and the path can be written as a plain libpq `host` value (UTF-8, no
/// blanks, quotes or backslashes).
fn socket_dir(datadir: &Path, port: u16) -> Option<PathBuf> {
    let socket = datadir.join(format!(".s.PGSQL.{port}"));
    let plain = datadir.to_str().is_some_and(|d| !d.chars().any(|c| c.is_whitespace() || matches!(c, '\'' | '"' | '\\')));
    (datadir.is_absolute() && plain && socket.as_os_str().len() <= MAX_SOCKET_PATH).then(|| datadir.to_path_buf())
}

/// The `-c` settings of every start: ours first, then the caller's (which win).
fn server_settings(config: &InstanceConfig, socket_dir: Option<&Path>) -> Vec<String> {
    let sockets = socket_dir.map(|d| d.display().to_string()).unwrap_or_default();
    let mut settings = vec![
        format!("port={}", config.port),
        "listen_addresses=127.0.0.1".to_owned(),
        format!("unix_socket_directories={sockets}"),
    ];
    if config.fast {
        settings.extend(
            [
                "fsync=off",
                "synchronous_commit=off",
                "full_page_writes=off",
            ]
            .map(String::from),
        );
    }
    settings.extend(
        config
            .settings
            .iter()
            .map(|(key, value)| format!("{key}={value}")),
    );
    settings
}

/// Starts `postgres` in its own process group, output appended to the log.
fn spawn_postgres(
    bins: &PgBinaries,
    prepared: &Prepared,
    config: &InstanceConfig,
    socket_dir: Option<&Path>,
) -> Result<Child, PgError> {
    let mut cmd = prepared.run_as.command(&bins.program("postgres"));
    cmd.arg("-D").arg(&prepared.datadir);
    for setting in server_settings(config, socket_dir) {
        cmd.arg("-c").arg(setting);
    }
    let log_error = PgError::io(format!(
        "cannot use log file {}",
        prepared.log_path.display()
    ));
    let stdout = prepared.log.try_clone().map_err(log_error)?;
    let stderr = prepared
        .log
        .try_clone()
        .map_err(PgError::io("cannot duplicate the log file handle"))?;
    // Its own group: a Ctrl-C at our terminal reaches us, and we decide how the server stops.
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    let description = super::process::describe(&cmd);
    spawn_owned(cmd).map_err(PgError::io(format!("cannot start `{description}`")))
}

/// True if a server log says the port was taken (by someone quicker than our check).
fn is_port_conflict(log: &str) -> bool {
    log.lines()
        .any(|l| l.contains("could not bind") && l.contains("already in use"))
}

/// True if the server on 127.0.0.1:`port` accepts connections.
fn is_ready(bins: &PgBinaries, port: u16) -> bool {
    Command::new(bins.program("pg_isready"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-t",
            "1",
            "-q",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_port_conflict_in_log() {
        let log = "2026-11-22 04:01:44.572 GMT [1] LOG:  could not bind IPv4 address \"127.0.0.1\": Address already in use\n\
                   2026-11-22 04:01:44.572 GMT [1] FATAL:  could not create any TCP/IP sockets\n";
        assert!(is_port_conflict(log));
        assert!(!is_port_conflict(
            "LOG:  could not bind IPv4 address \"127.0.0.1\": Cannot assign requested address"
        ));
    }

    #[test]
    fn caller_settings_come_last() {
        let config = InstanceConfig {
            name: "dn1".into(),
            datadir: "/x/dn1".into(),
            port: 5433,
            settings: vec![("fsync".into(), "on".into())],
            fast: true,
        };
        let settings = server_settings(&config, None);
        assert_eq!(
            settings[..3],
            [
                "port=5433",
                "listen_addresses=127.0.0.1",
                "unix_socket_directories="
            ]
        );
        assert_eq!(settings.last().map(String::as_str), Some("fsync=on"));
        assert!(settings.contains(&"full_page_writes=off".to_owned()));
        let settings = server_settings(&config, Some(Path::new("/x/dn1")));
        assert_eq!(settings[2], "unix_socket_directories=/x/dn1");
    }

    #[test]
    fn socket_in_the_data_directory_only_when_its_path_fits() {
        assert_eq!(socket_dir(Path::new("/tmp/c/dn1"), 5433), Some(PathBuf::from("/tmp/c/dn1")));
        assert_eq!(socket_dir(Path::new("relative/dn1"), 5433), None);
        assert_eq!(socket_dir(Path::new("/tmp/my cluster/dn1"), 5433), None);
        let long = format!("/{}", "d".repeat(MAX_SOCKET_PATH - "/.s.PGSQL.5433".len() - 1));
        assert!(socket_dir(Path::new(&long), 5433).is_some());
        assert_eq!(socket_dir(Path::new(&format!("{long}x")), 5433), None);
    }
}
