//! pgbench as a real client: initialise through the coordinator, then run the TPC-B-like
//! workload in each query mode with no failed transaction, and check that every transaction
//! pgbench counted left its history row.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::Duration;

use pgshard_tests::{TestCluster, run_pg_tool};

fn history_rows(port: u16) -> i64 {
    let port = port.to_string();
    let out = run_pg_tool(
        "psql",
        &["-X", "-At", "-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-c", "SELECT count(*) FROM pgbench_history"],
        None,
        Duration::from_secs(30),
    )
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn field(output: &str, prefix: &str) -> i64 {
    let line = output.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in:\n{output}"));
    line[prefix.len()..].split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn pgbench_runs_in_every_protocol_mode() {
    let cluster = TestCluster::start(2).unwrap();
    let port = cluster.port().to_string();
    let conn = ["-h", "127.0.0.1", "-p", port.as_str(), "-U", "postgres"];
    let init = run_pg_tool("pgbench", &[&conn[..], &["-i", "-s", "1", "postgres"]].concat(), None, Duration::from_secs(120)).unwrap();
    assert!(init.status.success(), "pgbench -i failed: {}", String::from_utf8_lossy(&init.stderr));
    // pgbench -i loads with COPY: the rows are there.
    let accounts = run_pg_tool(
        "psql",
        &[&conn[..], &["-X", "-At", "-c", "SELECT count(*) FROM pgbench_accounts"]].concat(),
        None,
        Duration::from_secs(30),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&accounts.stdout).trim(), "100000");

    for mode in ["simple", "extended", "prepared"] {
        let out = run_pg_tool(
            "pgbench",
            &[&conn[..], &["-T", "5", "-c", "4", "-j", "2", "-M", mode, "postgres"]].concat(),
            None,
            Duration::from_secs(60),
        )
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "pgbench -M {mode} failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
        let processed = field(&text, "number of transactions actually processed: ");
        let failed = field(&text, "number of failed transactions: ");
        assert!(processed > 0, "-M {mode}: no transaction processed\n{text}");
        assert_eq!(failed, 0, "-M {mode}: failed transactions\n{text}");
        // pgbench empties pgbench_history before each run: every counted transaction left one row.
        assert_eq!(history_rows(cluster.port()), processed, "-M {mode}: history rows");
        eprintln!("pgbench -M {mode}: {processed} transactions");
    }
}

fn psql_value(conn: &[&str], sql: &str) -> String {
    let out = run_pg_tool("psql", &[conn, &["-X", "-At", "-c", sql]].concat(), None, Duration::from_secs(60)).unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// pgbench with `pgbench_accounts` and `pgbench_history` distributed by aid (colocated) and
/// branches and tellers as reference tables: `-S` and `-N` in every protocol mode with no
/// failed transaction; afterwards the balances match the history and every row is where its
/// aid hashes to.
#[test]
fn pgbench_on_distributed_tables() {
    let cluster = TestCluster::start(2).unwrap();
    let port = cluster.port().to_string();
    let conn = ["-h", "127.0.0.1", "-p", port.as_str(), "-U", "postgres"];
    let init = run_pg_tool("pgbench", &[&conn[..], &["-i", "-s", "1", "postgres"]].concat(), None, Duration::from_secs(120)).unwrap();
    assert!(init.status.success(), "pgbench -i failed: {}", String::from_utf8_lossy(&init.stderr));
    for sql in [
        "SELECT create_distributed_table('pgbench_accounts', 'aid')",
        "SELECT create_distributed_table('pgbench_history', 'aid', colocate_with => 'pgbench_accounts')",
        "SELECT create_reference_table('pgbench_branches')",
        "SELECT create_reference_table('pgbench_tellers')",
    ] {
        psql_value(&conn, sql);
    }
    assert_eq!(psql_value(&conn, "SELECT count(*) FROM pgbench_accounts"), "100000");
    assert_eq!(psql_value(&conn, "SELECT verify_placement('pgbench_accounts')"), "100000|0");

    let mut new_orders = 0;
    let mut tpcb_deltas = 0i64;
    let history_sum = || psql_value(&conn, "SELECT coalesce(sum(delta), 0) FROM pgbench_history").parse::<i64>().unwrap();
    for mode in ["simple", "extended", "prepared"] {
        // -S reads one account; -N updates it and logs history; TPC-B also updates the
        // teller and the branch (reference tables: every node), one transaction over all nodes.
        for script in ["-S", "-N", "-btpcb-like"] {
            let before = history_sum();
            let out = run_pg_tool(
                "pgbench",
                &[&conn[..], &["-n", script, "-T", "4", "-c", "4", "-j", "2", "-M", mode, "postgres"]].concat(),
                None,
                Duration::from_secs(60),
            )
            .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "pgbench {script} -M {mode} failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
            let processed = field(&text, "number of transactions actually processed: ");
            let failed = field(&text, "number of failed transactions: ");
            assert!(processed > 0, "{script} -M {mode}: no transaction processed\n{text}");
            assert_eq!(failed, 0, "{script} -M {mode}: failed transactions\n{text}");
            if script != "-S" {
                new_orders += processed;
            }
            if script == "-btpcb-like" {
                tpcb_deltas += history_sum() - before;
            }
            eprintln!("pgbench {script} -M {mode} on distributed tables: {processed} transactions");
        }
    }
    assert_eq!(psql_value(&conn, "SELECT count(*) FROM pgbench_history").parse::<i64>().unwrap(), new_orders);
    let balances = psql_value(&conn, "SELECT sum(abalance) FROM pgbench_accounts");
    let deltas = psql_value(&conn, "SELECT sum(delta) FROM pgbench_history");
    assert_eq!(balances, deltas, "the balances must match the history");
    assert_eq!(psql_value(&conn, "SELECT verify_placement('pgbench_history')"), format!("{new_orders}|0"));
    assert_eq!(psql_value(&conn, "SELECT verify_placement('pgbench_accounts')"), "100000|0");
    // TPC-B moved the same deltas through tellers and branches, on every copy alike.
    let tellers = psql_value(&conn, "SELECT sum(tbalance) FROM pgbench_tellers");
    let branches = psql_value(&conn, "SELECT sum(bbalance) FROM pgbench_branches");
    assert_eq!(tellers, tpcb_deltas.to_string(), "tellers moved by the TPC-B deltas");
    assert_eq!(branches, tpcb_deltas.to_string(), "branches moved by the TPC-B deltas");
    for node in 1..=3 {
        let direct = ["-h", "127.0.0.1", "-p", &cluster.node_port(node).to_string(), "-U", "postgres"].map(str::to_owned);
        let direct: Vec<&str> = direct.iter().map(String::as_str).collect();
        assert_eq!(psql_value(&direct, "SELECT sum(bbalance) FROM pgbench_branches"), branches, "copy on node {node}");
        assert_eq!(psql_value(&direct, "SELECT sum(tbalance) FROM pgbench_tellers"), tellers, "copy on node {node}");
    }
}
