//! EXPLAIN of distributed statements through the coordinator: the distributed plan (shards,
//! nodes, merge step, the SQL sent) followed by a shard's own plan; EXPLAIN ANALYZE runs the
//! statement on every target shard and lists each shard's execution time. A read no shard
//! answers alone shows how it is answered.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::Duration;

use pgshard_tests::{TestCluster, run_pg_tool};

fn psql(port: &str, sql: &str) -> String {
    let args = ["-X", "-At", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-c", sql];
    let out = run_pg_tool("psql", &args, None, Duration::from_secs(60)).unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn explain_shows_the_distributed_plan_and_the_shards_plans() {
    let cluster = TestCluster::start(2).unwrap();
    let port = cluster.port().to_string();
    psql(&port, "CREATE TABLE ev (k int PRIMARY KEY, v text)");
    psql(&port, "INSERT INTO ev SELECT g, 'v' || g FROM generate_series(1, 500) g");
    psql(&port, "SELECT create_distributed_table('ev', 'k', shard_count => 8)");

    let pinned = psql(&port, "EXPLAIN (COSTS off) SELECT v FROM ev WHERE k = 42");
    let lines: Vec<&str> = pinned.lines().collect();
    assert_eq!(lines[0], "pgshard: one shard of 8 (colocation group 1), sent as written", "{pinned}");
    assert!(lines[1].starts_with("  Shard pgshard_g1_s") && lines[1].contains(" on dn"), "{pinned}");
    assert!(pinned.contains("k = 42"), "the shard's own plan follows:\n{pinned}");

    let grouped = psql(&port, "EXPLAIN (COSTS off) SELECT v, count(*) FROM ev GROUP BY v HAVING count(*) > 1");
    assert!(grouped.starts_with("pgshard: 8 shards of 8"), "{grouped}");
    assert!(grouped.contains("Final query on the default node: SELECT c1 AS \"v\""), "{grouped}");
    assert!(grouped.contains("HAVING"), "{grouped}");
    assert!(grouped.contains("Sent to each shard: SELECT v AS c1, count(*) AS c2 FROM pgshard_g1_s0.ev"), "{grouped}");

    // A window over every row of several shards is a read over copies.
    let windowed = psql(&port, "EXPLAIN SELECT v, row_number() OVER (ORDER BY v) FROM ev WHERE v > 3");
    assert!(windowed.contains("Copies: the default node answers over copies"), "{windowed}");
    assert!(windowed.contains("WHERE (v > 3)"), "only the rows the WHERE clause keeps move:\n{windowed}");

    let analyzed = psql(&port, "EXPLAIN ANALYZE SELECT count(*) FROM ev");
    assert_eq!(analyzed.matches("Execution Time").count(), 8, "one per shard:\n{analyzed}");

    let args = [
        "-X",
        "-At",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-U",
        "postgres",
        "-v",
        "VERBOSITY=verbose",
        "-c",
        "EXPLAIN SELECT * FROM ev a JOIN ev b ON a.v = b.v",
    ];
    // A read no shard answers alone: the way it is answered and what moves.
    let out = run_pg_tool("psql", &args, None, Duration::from_secs(60)).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Read no shard answers alone"), "{text}");
    assert!(text.contains("Copies: the default node answers over copies"), "{text}");
    assert!(text.contains("Then on the default node: SELECT * FROM pg_temp.ev a JOIN pg_temp.ev b ON a.v = b.v"), "{text}");
}
