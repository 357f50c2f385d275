//! A throwaway PostgreSQL server for the catalog's store tests, shared by the tests of one
//! binary and stopped when the last of them lets go. (The coordinator's launcher would do, but
//! the catalog cannot depend on the coordinator.)
//!
//! Binaries come from `$PGSHARD_PG_BINDIR`, else the newest `/usr/lib/postgresql/*/bin`, else
//! `PATH`. PostgreSQL refuses to run as root, so as root `initdb` and `pg_ctl` run as the
//! `postgres` OS user (`runuser`), in a temporary directory handed to that user.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, NoTls, Notification};

/// Account the servers run as when the tests run as root.
const OS_USER: &str = "postgres";

static SHARED: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());

/// A running PostgreSQL server on 127.0.0.1 with trust authentication for user `postgres`.
pub struct PgServer {
    dir: TempDir,
    bindir: Option<PathBuf>,
    as_os_user: bool,
    port: u16,
}

impl PgServer {
    /// The server the running tests share, started if none is running.
    pub fn shared() -> Arc<PgServer> {
        let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(PgServer::start());
        *slot = Arc::downgrade(&server);
        server
    }

    fn start() -> PgServer {
        let dir = tempfile::Builder::new().prefix("pgshard-catalog-").tempdir().unwrap();
        let as_os_user = running_as_root();
        if as_os_user {
            check(Command::new("chown").arg(format!("{OS_USER}:")).arg(dir.path()).output(), "chown");
        }
        let mut server = PgServer { dir, bindir: bindir(), as_os_user, port: 0 };
        let data = server.data_dir();
        let initdb =
            server.command("initdb").arg("-D").arg(&data).args(["-U", "postgres", "--auth=trust", "-N"]).output();
        check(initdb, "initdb");
        for _ in 0..5 {
            server.port = free_port();
            let options =
                format!("-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off", server.port);
            let log = server.dir.path().join("log");
            let status = server
                .command("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-o", &options, "-l"])
                .arg(&log)
                .args(["-w", "-t", "60", "start"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if status.success() {
                return server;
            }
        }
        let log = std::fs::read_to_string(server.dir.path().join("log")).unwrap_or_default();
        panic!("pg_ctl start failed five times; server log:\n{log}");
    }

    /// A new, empty database on this server and a connection to it.
    pub async fn database(&self, name: &str) -> Client {
        let admin = self.connect("postgres").await;
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        self.connect(name).await
    }

    /// Another connection to an existing database.
    pub async fn connect(&self, dbname: &str) -> Client {
        let (client, connection) = tokio_postgres::connect(&self.dsn(dbname), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// A connection whose notifications (LISTEN) arrive on the returned channel.
    pub async fn connect_listening(&self, dbname: &str) -> (Client, mpsc::UnboundedReceiver<Notification>) {
        let (client, mut connection) = tokio_postgres::connect(&self.dsn(dbname), NoTls).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                if let AsyncMessage::Notification(n) = message {
                    let _ = tx.send(n);
                }
            }
        });
        (client, rx)
    }

    fn dsn(&self, dbname: &str) -> String {
        format!("host=127.0.0.1 port={} user=postgres dbname={dbname}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("d")
    }

    /// A server program, run as [`OS_USER`] when we are root.
    fn command(&self, program: &str) -> Command {
        let program = self.bindir.as_deref().map_or_else(|| PathBuf::from(program), |dir| dir.join(program));
        if self.as_os_user {
            let mut command = Command::new("runuser");
            command.args(["-u", OS_USER, "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data_dir();
        let stopped = self.command("pg_ctl").arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]).output();
        if !stopped.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("pg_ctl stop failed for {}: {stopped:?}", data.display());
        }
    }
}

fn running_as_root() -> bool {
    let output = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim() == "0"
}

fn bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PGSHARD_PG_BINDIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    listener.local_addr().unwrap().port()
}

fn check(output: std::io::Result<Output>, what: &str) {
    let output = output.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
