//! The `pgshard` binary as a user runs it: `up` creates a cluster, stops cleanly on SIGTERM and
//! Ctrl-C (SIGINT) with every server it started, brings the data back on the next run, and
//! says clearly what is wrong when the port is taken or PostgreSQL is missing; `serve` runs
//! from a config file with SCRAM authentication, flags and environment overriding the file.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use pgshard::pg::free_port;
use pgshard::up::{LocalServers, UpOptions, ensure_metadata_db};

const BIN: &str = env!("CARGO_BIN_EXE_pgshard");

fn temp_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("pgshard-cli-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A running `pgshard` process whose stdout lines arrive on a channel; killed on drop.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Running {
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn_command(cmd)
    }

    fn spawn_command(mut cmd: Command) -> Self {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx2.send(format!("stderr: {line}"));
            }
        });
        Self { child, lines }
    }

    /// Waits for a line containing `needle`; returns every line seen so far.
    fn wait_for(&self, needle: &str, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    seen.push(line);
                    if hit {
                        return seen;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no line containing {needle:?} within {limit:?}; saw:\n{}", seen.join("\n"));
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(ok.success());
    }

    fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "pgshard did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn rest(&self) -> String {
        self.lines.try_iter().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn psql(port: u16, sql: &str) -> (bool, String, String) {
    let out = Command::new("psql")
        .args(["-X", "-At", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-c", sql])
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// PostgreSQL servers whose command line mentions `dir`.
fn processes_using(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) && cmdline.contains("postgres -D") {
            found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

#[test]
fn up_creates_stops_cleanly_and_brings_data_back() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let data_arg = data.to_string_lossy().into_owned();
    let port = free_port().unwrap();
    let port_arg = port.to_string();
    let args = ["up", "--data-nodes", "2", "--port", &port_arg, "--dir", &data_arg];

    let mut up = Running::spawn(&args, &[]);
    let lines = up.wait_for("connect with:", Duration::from_secs(120));
    let hint = lines.iter().find(|l| l.contains("connect with:")).unwrap();
    assert!(hint.contains(&format!("psql -h 127.0.0.1 -p {port} -U postgres")), "{hint}");
    let (ok, _, err) = psql(port, "CREATE TABLE kept (id int PRIMARY KEY, v text); INSERT INTO kept VALUES (1, 'one'), (2, 'two')");
    assert!(ok, "{err}");
    let (ok, _, err) = psql(port, "INSERT INTO kept VALUES (1, 'again')");
    assert!(!ok && err.contains("duplicate key value violates unique constraint \"kept_pkey\""), "{err}");
    let (_, prepared, _) = psql(port, "SHOW max_prepared_transactions");
    assert_eq!(prepared.trim(), "200");
    // The metadata server, the default node dn0 and the two shard nodes.
    assert_eq!(processes_using(&data).len(), 4, "{:?}", processes_using(&data));
    // A second `up` on the same directory is refused, and leaves the running cluster alone.
    let other_port = free_port().unwrap().to_string();
    let second = Command::new(BIN).args(["up", "--port", &other_port, "--dir", &data_arg]).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success());
    assert!(err.contains("another pgshard is running on"), "{err}");
    let (ok, rows, err) = psql(port, "SELECT count(*) FROM kept");
    assert!(ok, "{err}");
    assert_eq!(rows, "2\n");
    // A distributed table too, to come back from the catalog after the restart.
    let (ok, _, err) = psql(port, "CREATE TABLE spread (k int PRIMARY KEY, v text); INSERT INTO spread SELECT g, 'v' || g FROM generate_series(1, 50) g");
    assert!(ok, "{err}");
    let (ok, _, err) = psql(port, "SELECT create_distributed_table('spread', 'k')");
    assert!(ok, "{err}");

    up.signal("TERM");
    let status = up.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "exit {status:?}: {}", up.rest());
    assert!(processes_using(&data).is_empty(), "servers left running: {:?}", processes_using(&data));

    // Second run on the same directory: same tables and rows; Ctrl-C (SIGINT) stops it too.
    let mut up = Running::spawn(&args, &[]);
    up.wait_for("connect with:", Duration::from_secs(60));
    let (ok, rows, err) = psql(port, "SELECT id, v FROM kept ORDER BY id");
    assert!(ok, "{err}");
    assert_eq!(rows, "1|one\n2|two\n");
    let (ok, rows, err) = psql(port, "SELECT count(*), sum(k) FROM spread");
    assert!(ok, "{err}");
    assert_eq!(rows, "50|1275\n");
    let (ok, rows, err) = psql(port, "SELECT kind FROM pgshard.tables WHERE table_name = 'spread'");
    assert!(ok, "{err}");
    assert_eq!(rows, "distributed\n");
    up.signal("INT");
    let status = up.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "exit {status:?}: {}", up.rest());
    assert!(processes_using(&data).is_empty(), "servers left running: {:?}", processes_using(&data));
}

#[test]
fn up_with_two_coordinators_runs_a_primary_and_a_follower() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let data_arg = data.to_string_lossy().into_owned();
    let port = free_port().unwrap();
    let port_arg = port.to_string();
    let mut up = Running::spawn(&["up", "--data-nodes", "1", "--coordinators", "2", "--port", &port_arg, "--dir", &data_arg], &[]);
    let lines = up.wait_for("stop with Ctrl-C", Duration::from_secs(120)).join("\n");
    assert!(lines.contains(&format!("-p {port} -U postgres   (primary coordinator c0)")), "{lines}");
    assert!(lines.contains(&format!("-p {} -U postgres   (follower coordinator c1)", port + 1)), "{lines}");
    let (ok, _, err) = psql(port + 1, "CREATE TABLE t (a int PRIMARY KEY)");
    assert!(!ok && err.contains("follower") && err.contains("c0"), "{err}");
    let (ok, _, err) = psql(port, "CREATE TABLE t (a int PRIMARY KEY)");
    assert!(ok, "{err}");
    let (ok, _, err) = psql(port, "SELECT create_distributed_table('t', 'a')");
    assert!(ok, "{err}");
    // The follower loads the new catalog within a second.
    let changed = Instant::now();
    while !psql(port + 1, "EXPLAIN SELECT * FROM t WHERE a = 1").1.contains("pgshard:") {
        assert!(changed.elapsed() < Duration::from_secs(1), "the follower did not pick up the catalog change");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (ok, _, err) = psql(port + 1, "INSERT INTO t VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10)");
    assert!(ok, "the follower serves DML: {err}");
    let (ok, rows, err) = psql(port, "SELECT count(*) FROM t");
    assert!(ok, "{err}");
    assert_eq!(rows, "10\n");
    up.signal("TERM");
    let status = up.wait_exit(Duration::from_secs(60));
    assert!(status.success(), "exit {status:?}: {}", up.rest());
    assert!(processes_using(&data).is_empty(), "servers left running: {:?}", processes_using(&data));
}

#[test]
fn up_on_a_taken_port_says_so() {
    let dir = temp_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let out = Command::new(BIN).args(["up", "--port", &port, "--dir", &data]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")) && err.contains("--port"), "{err}");
    assert!(!err.contains("panicked") && !err.contains("backtrace"), "{err}");
    assert!(processes_using(dir.path()).is_empty());
}

#[test]
fn up_without_postgresql_says_what_to_install() {
    // Hide the machine's PostgreSQL in a private mount namespace, as on a machine without it
    // (pg_config and PATH entries then point into the emptied directory).
    let dir = temp_dir();
    let data = dir.path().join("data").to_string_lossy().into_owned();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let port = free_port().unwrap().to_string();
    let script = format!(
        "mount --bind {} /usr/lib/postgresql && exec {BIN} up --port {port} --dir {data}",
        empty.display()
    );
    let out = Command::new("unshare").args(["--mount", "--map-root-user", "sh", "-c", &script]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("no PostgreSQL server binaries found") && err.contains("apt-get install postgresql"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn serve_uses_the_config_file_with_flags_and_env_overriding_it() {
    let dir = temp_dir();
    let servers = LocalServers::start(&UpOptions {
        data_nodes: 1,
        port: 0,
        dir: dir.path().join("cluster"),
        fast: true,
        coordinators: 1,
    })
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(ensure_metadata_db(servers.meta.port())).unwrap();
    let node = &servers.nodes[0];
    let file_port = free_port().unwrap();
    let config = format!(
        r#"
listen = "127.0.0.1:{file_port}"
[metadata]
dsn = "host=127.0.0.1 port={meta} user=postgres dbname=pgshard"
[[data_nodes]]
name = "dn1"
host = "127.0.0.1"
port = {dn}
[auth]
method = "trust"
[[auth.users]]
name = "postgres"
password = "s3cret"
"#,
        meta = servers.meta.port(),
        dn = node.port(),
    );
    let path = dir.path().join("pgshard.toml");
    std::fs::write(&path, config).unwrap();
    let flag_port = free_port().unwrap();
    let listen = format!("127.0.0.1:{flag_port}");
    let config_arg = path.to_string_lossy().into_owned();
    // The file says trust; the environment says SCRAM; the flag moves the port.
    let serve = Running::spawn(
        &["serve", "--config", &config_arg, "--listen", &listen],
        &[("PGSHARD_AUTH", "scram-sha-256"), ("PGSHARD_LISTEN", "127.0.0.1:1")],
    );
    serve.wait_for("coordinator ready", Duration::from_secs(30));

    let try_login = |password: &str| {
        Command::new("psql")
            .args(["-X", "-At", "-h", "127.0.0.1", "-p", &flag_port.to_string(), "-U", "postgres", "-c", "SELECT 40 + 2"])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .output()
            .unwrap()
    };
    let good = try_login("s3cret");
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    assert_eq!(String::from_utf8_lossy(&good.stdout), "42\n");
    let bad = try_login("wrong");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(err.contains("password authentication failed for user \"postgres\""), "{err}");
    // Nothing listens on the file's port: the flag won.
    assert!(std::net::TcpStream::connect(("127.0.0.1", file_port)).is_err());
    drop(serve);
    servers.stop();
}

fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// Root runs the servers as the `pgshard` account (the test above); a normal user runs them as
/// itself. When the tests run as root, this one drops to `nobody` to be that normal user.
#[test]
fn up_runs_as_a_normal_user() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let port = free_port().unwrap();
    let mut cmd = if running_as_root() {
        let status = Command::new("chown").args(["nobody", &dir.path().to_string_lossy()]).status().unwrap();
        assert!(status.success());
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    cmd.args(["up", "--data-nodes", "1", "--port", &port.to_string(), "--dir", &data.to_string_lossy()]);
    let mut up = Running::spawn_command(cmd);
    up.wait_for("connect with:", Duration::from_secs(120));
    let (ok, rows, err) = psql(port, "SELECT current_setting('data_directory') LIKE '%/dn0'");
    assert!(ok, "{err}");
    assert_eq!(rows, "t\n");
    up.signal("TERM");
    assert!(up.wait_exit(Duration::from_secs(60)).success(), "{}", up.rest());
    assert!(processes_using(&data).is_empty(), "servers left running: {:?}", processes_using(&data));
}
