//! `pgshard bench` as a user runs it, shrunk to a minute or two: it starts plain PostgreSQL and
//! a pgshard cluster, runs every workload on both, then the memory and scale checks, and writes
//! a report with a ratio for each workload and the coordinator's CPU per statement.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_pgshard");

#[test]
fn bench_compares_every_workload_and_writes_the_report() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("pgshard-bench-").tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = dir.path().join("report.md");
    let data = dir.path().join("data");
    let mut child = Command::new(BIN)
        .args(["bench", "--rounds", "1", "--duration", "2", "--clients", "2", "--scale", "1", "--warehouses", "1"])
        .args(["--sort-rows", "20000", "--stream-rows", "50000", "--connections", "150", "--out"])
        .arg(&out)
        .arg("--dir")
        .arg(&data)
        .env("PGSHARD_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("pgshard bench did not finish within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = child.wait_with_output().unwrap();
    assert!(status.success(), "pgshard bench failed:\n{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let report = std::fs::read_to_string(&out).unwrap();
    // One table row per workload: plain and pgshard throughput, a ratio, the coordinator's CPU.
    for workload in ["pgbench -S, simple protocol", "pgbench -S, -M prepared", "pgbench TPC-B, -M prepared, distributed", "pgshard tpcc, 1 warehouses (NOPM)"] {
        let row = report.lines().find(|l| l.starts_with(&format!("| {workload} |"))).unwrap_or_else(|| panic!("no row for {workload}:\n{report}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let plain: f64 = cells[2].parse().unwrap_or_else(|_| panic!("plain throughput in {row}"));
        let pgshard: f64 = cells[3].parse().unwrap_or_else(|_| panic!("pgshard throughput in {row}"));
        let ratio: f64 = cells[4].parse().unwrap_or_else(|_| panic!("ratio in {row}"));
        assert!(plain > 0.0 && pgshard > 0.0, "{row}");
        assert!((ratio - pgshard / plain).abs() < 0.02, "the ratio is pgshard / plain: {row}");
        if !workload.starts_with("pgshard tpcc") {
            let cpu: f64 = cells[6].parse().unwrap_or_else(|_| panic!("coordinator CPU in {row}"));
            assert!(cpu > 0.0, "{row}");
        }
    }
    assert!(report.contains("## Memory and scale"), "{report}");
    assert!(report.contains("`SELECT * FROM bench_sorted ORDER BY id` of 20000 rows"), "{report}");
    assert!(report.contains("`SELECT * FROM bench_streamed` of 50000 rows"), "{report}");
    assert!(report.contains("150 client connections opened and held: **150 succeeded**"), "{report}");
}
