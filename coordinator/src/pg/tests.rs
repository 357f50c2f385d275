//! Tests that start real PostgreSQL servers (each on its own free port and temp directory).

use std::fs::Permissions;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::is_running;
use super::*;

/// A temp directory the `pgshard` service account can traverse (we may run as root).
fn shared_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), Permissions::from_mode(0o755)).unwrap();
    dir
}

fn config(parent: &Path, name: &str) -> InstanceConfig {
    InstanceConfig {
        name: name.into(),
        datadir: parent.join(name),
        port: free_port().unwrap(),
        settings: Vec::new(),
        fast: true,
    }
}

fn bins() -> PgBinaries {
    PgBinaries::discover().unwrap()
}

/// Runs `sql` with psql as superuser `postgres` over TCP; returns trimmed unaligned output.
fn psql(port: u16, sql: &str) -> String {
    let out = Command::new(bins().bindir().join("psql"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "psql {sql:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

#[test]
fn free_port_is_bindable() {
    // Tests running in parallel may take a port between free_port() and the bind: a few tries.
    let bound = (0..5).any(|_| {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok_and(|l| l.local_addr().unwrap().port() == port)
    });
    assert!(bound, "free_port() never gave a port that could be bound");
}

#[test]
fn start_query_stop_and_restart_keeps_data() {
    let tmp = shared_tempdir();
    let cfg = config(tmp.path(), "dn1");
    let port = cfg.port;

    let began = Instant::now();
    let mut pg = PgInstance::start(&bins(), cfg.clone()).unwrap();
    eprintln!("initdb + start took {:?}", began.elapsed());
    assert!(pg.created());
    assert_eq!((pg.name(), pg.port()), ("dn1", port));
    assert_eq!(pg.datadir(), tmp.path().join("dn1"));
    assert!(tmp.path().join("dn1.log").is_file());
    assert_eq!(psql(port, "select 1"), "1");
    assert_eq!(psql(port, "show fsync"), "off");
    psql(port, "create table t (x int); insert into t values (42)");

    pg.stop().unwrap();
    pg.stop().unwrap(); // idempotent
    assert!(port_is_free(port));
    assert!(!is_running(pg.pid()));

    let began = Instant::now();
    let pg = PgInstance::start(&bins(), cfg).unwrap();
    eprintln!("restart took {:?}", began.elapsed());
    assert!(!pg.created());
    assert_eq!(psql(port, "select x from t"), "42");
}

#[test]
fn drop_stops_the_server() {
    let tmp = shared_tempdir();
    let cfg = config(tmp.path(), "meta");
    let port = cfg.port;
    let pg = PgInstance::start(&bins(), cfg).unwrap();
    let pid = pg.pid();
    drop(pg);
    assert!(!is_running(pid));
    assert!(port_is_free(port));
}

#[test]
fn bound_port_is_reported_before_anything_is_created() {
    let tmp = shared_tempdir();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut cfg = config(tmp.path(), "dn1");
    cfg.port = listener.local_addr().unwrap().port();
    let err = PgInstance::start(&bins(), cfg.clone()).unwrap_err();
    assert!(
        matches!(err, PgError::PortInUse { port } if port == cfg.port),
        "{err}"
    );
    assert!(err.to_string().contains("--port"), "{err}");
    assert!(!cfg.datadir.exists());
}

#[test]
fn foreign_directory_is_left_alone() {
    let tmp = shared_tempdir();
    let cfg = config(tmp.path(), "dn1");
    std::fs::create_dir(&cfg.datadir).unwrap();
    std::fs::write(cfg.datadir.join("thesis.tex"), "precious").unwrap();
    let err = PgInstance::start(&bins(), cfg.clone()).unwrap_err();
    assert!(matches!(err, PgError::NotACluster { .. }), "{err}");
    let entries: Vec<_> = std::fs::read_dir(&cfg.datadir).unwrap().collect();
    assert_eq!(entries.len(), 1);
}

#[test]
fn second_server_on_same_directory_is_refused() {
    let tmp = shared_tempdir();
    let cfg = config(tmp.path(), "dn1");
    let first = PgInstance::start(&bins(), cfg.clone()).unwrap();
    let second = InstanceConfig {
        port: free_port().unwrap(),
        ..cfg
    };
    let err = PgInstance::start(&bins(), second).unwrap_err();
    assert!(
        matches!(err, PgError::DirInUse { pid, .. } if pid == first.pid()),
        "{err}"
    );
}

#[test]
fn killed_server_recovers_on_restart_with_settings_applied() {
    let tmp = shared_tempdir();
    let mut cfg = config(tmp.path(), "dn1");
    // Caller settings override the fast defaults: commits must survive the kill.
    cfg.settings = vec![
        ("synchronous_commit".into(), "on".into()),
        ("max_prepared_transactions".into(), "100".into()),
    ];
    let mut pg = PgInstance::start(&bins(), cfg.clone()).unwrap();
    assert_eq!(psql(cfg.port, "show max_prepared_transactions"), "100");
    assert_eq!(psql(cfg.port, "show synchronous_commit"), "on");
    psql(cfg.port, "create table t (x int); insert into t values (7)");
    let pid = pg.pid();

    pg.kill();
    assert!(!is_running(pid));
    assert!(
        tmp.path().join("dn1/postmaster.pid").exists(),
        "a crash leaves the pid file"
    );

    let pg = PgInstance::start(&bins(), cfg.clone()).unwrap();
    assert!(!pg.created());
    assert_eq!(psql(cfg.port, "select x from t"), "7");
    let log = std::fs::read_to_string(tmp.path().join("dn1.log")).unwrap();
    assert!(
        log.contains("was interrupted") || log.contains("not properly shut down"),
        "{log}"
    );
}

#[test]
fn failed_start_shows_the_log_tail() {
    let tmp = shared_tempdir();
    let mut cfg = config(tmp.path(), "dn1");
    cfg.settings = vec![("shared_buffers".into(), "plenty".into())];
    let err = PgInstance::start(&bins(), cfg).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, PgError::StartFailed { .. }), "{text}");
    assert!(text.contains("`dn1` failed to start"), "{text}");
    assert!(text.contains("shared_buffers"), "{text}");
    assert!(text.contains("dn1.log"), "{text}");
}

#[test]
fn private_directory_is_unreachable_when_root() {
    if account::RunAs::detect().unwrap() == account::RunAs::CurrentUser {
        return; // only root hands the server to the service account
    }
    let private = tempfile::Builder::new()
        .permissions(Permissions::from_mode(0o700))
        .tempdir()
        .unwrap();
    let cfg = config(private.path(), "dn1");
    let err = PgInstance::start(&bins(), cfg.clone()).unwrap_err();
    assert!(
        matches!(&err, PgError::Unreachable { user, .. } if user == SERVICE_ACCOUNT),
        "{err}"
    );
    assert!(!cfg.datadir.exists());
}

/// Environment variable that makes [`orphan_helper`] start a server and wait to be killed.
const ORPHAN_DIR_ENV: &str = "PGSHARD_TEST_ORPHAN_DIR";

/// Not a test by itself: run by [`server_stops_when_owner_is_killed`] in a child process.
#[test]
#[ignore = "helper run by server_stops_when_owner_is_killed"]
fn orphan_helper() {
    let Some(dir) = std::env::var_os(ORPHAN_DIR_ENV).map(PathBuf::from) else {
        return;
    };
    let cfg = config(&dir, "orphan");
    let pg = PgInstance::start(&bins(), cfg).unwrap();
    std::fs::write(dir.join("pid"), format!("{} {}", pg.pid(), pg.port())).unwrap();
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn server_stops_when_owner_is_killed() {
    let tmp = shared_tempdir();
    let mut owner = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "pg::tests::orphan_helper",
            "--ignored",
            "--nocapture",
        ])
        .env(ORPHAN_DIR_ENV, tmp.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pidfile = tmp.path().join("pid");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pidfile.exists() {
        assert!(Instant::now() < deadline, "helper did not start a server");
        assert!(owner.try_wait().unwrap().is_none(), "helper exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(50)); // let the write finish
    let text = std::fs::read_to_string(&pidfile).unwrap();
    let (pid, port) = text.split_once(' ').unwrap();
    let (pid, port): (u32, u16) = (pid.parse().unwrap(), port.parse().unwrap());
    assert!(is_running(pid));

    owner.kill().unwrap(); // SIGKILL: no destructor runs
    owner.wait().unwrap();
    assert!(
        process::wait_gone(&[pid], Duration::from_secs(30)),
        "server outlived its owner"
    );
    assert!(port_is_free(port));
    let log = std::fs::read_to_string(tmp.path().join("orphan.log")).unwrap();
    assert!(log.contains("fast shutdown request"), "{log}");
}
