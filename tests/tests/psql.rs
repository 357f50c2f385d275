//! psql as a real client: the same script through the coordinator and directly on the data
//! node must print the same output, byte for byte.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use pgshard_tests::{TestCluster, run_pg_tool};

fn run_script(port: u16, script: &Path) -> (String, String) {
    let port = port.to_string();
    let path = script.to_string_lossy().into_owned();
    let args = ["-X", "-a", "-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-d", "postgres", "-f", &path];
    let out = run_pg_tool("psql", &args, None, Duration::from_secs(60)).unwrap();
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn psql_script_output_is_identical_through_the_coordinator() {
    let cluster = TestCluster::start(2).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("psql/tour.sql");
    let (coord_out, coord_err) = run_script(cluster.port(), &script);
    let (direct_out, direct_err) = run_script(cluster.node_port(1), &script);
    // The script really ran: rows, errors with SQLSTATEs, notices and COPY output are there.
    assert!(coord_out.contains("(3 rows)"), "{coord_out}");
    assert!(coord_err.contains("ERROR:  23505: duplicate key value violates unique constraint \"tour_people_pkey\""), "{coord_err}");
    assert!(coord_err.contains("ERROR:  25P02"), "{coord_err}");
    assert!(coord_err.contains("NOTICE:  00000: first"), "{coord_err}");
    assert!(coord_out.contains("12\tcopy, c\thappy"), "{coord_out}");
    assert_eq!(coord_err, direct_err, "stderr differs");
    assert_eq!(coord_out, direct_out, "stdout differs");
}

#[test]
fn psql_sees_the_real_server_version() {
    let cluster = TestCluster::start(1).unwrap();
    let port = cluster.port().to_string();
    let direct = cluster.node_port(1).to_string();
    let q = ["-X", "-At", "-h", "127.0.0.1", "-U", "postgres", "-c", "SHOW server_version", "-c", "SELECT current_setting('server_version_num')", "-p"];
    let through = run_pg_tool("psql", &[&q[..], &[port.as_str()]].concat(), None, Duration::from_secs(30)).unwrap();
    let plain = run_pg_tool("psql", &[&q[..], &[direct.as_str()]].concat(), None, Duration::from_secs(30)).unwrap();
    assert!(through.status.success(), "{}", String::from_utf8_lossy(&through.stderr));
    let text = String::from_utf8_lossy(&through.stdout);
    assert!(text.starts_with("15."), "{text}");
    assert_eq!(through.stdout, plain.stdout);
}

#[test]
fn ctrl_c_in_psql_cancels_the_query_and_the_session_goes_on() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    let cluster = TestCluster::start(1).unwrap();
    let bins = pgshard::pg::PgBinaries::discover().unwrap();
    let psql = format!(
        "{} -X -P pager=off -h 127.0.0.1 -p {} -U postgres",
        bins.bindir().join("psql").display(),
        cluster.port()
    );
    // psql on a pseudo-terminal (script(1)), where Ctrl-C is the ^C character the terminal turns
    // into SIGINT, exactly as for a person at a terminal.
    let mut term = Command::new("script")
        .args(["-q", "-e", "-c", &psql, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut keys = term.stdin.take().unwrap();
    let mut type_slowly = |text: &[u8], pause_ms: u64| {
        keys.write_all(text).unwrap();
        keys.flush().unwrap();
        std::thread::sleep(Duration::from_millis(pause_ms));
    };
    type_slowly(b"SELECT pg_sleep(60);\n", 1500);
    let started = std::time::Instant::now();
    type_slowly(b"\x03", 1000);
    type_slowly(b"SELECT 'still ' || 'here' AS alive;\n", 1000);
    type_slowly(b"\\q\n", 0);
    drop(keys);
    let mut screen = String::new();
    term.stdout.take().unwrap().read_to_string(&mut screen).unwrap();
    term.wait().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30), "the query was not cancelled");
    assert!(screen.contains("Cancel request sent"), "{screen}");
    assert!(screen.contains("ERROR:  canceling statement due to user request"), "{screen}");
    assert!(screen.contains(" still here\r\n(1 row)"), "{screen}");
}
