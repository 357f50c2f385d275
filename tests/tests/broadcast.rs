//! Reads across colocation groups are answered the way that moves fewer bytes: a big table
//! joined with small ones of other groups (or of the default node) runs on the big table's
//! shards with the small tables written in; two big tables are answered over copies. EXPLAIN
//! says which; the answers are PostgreSQL's either way, and a broadcast over its row limit
//! falls back to copies.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use pgshard_tests::{Broadcasts, PlainPg, TestCluster, connect};
use tokio_postgres::{Client, SimpleQueryMessage};

async fn rows(client: &Client, sql: &str) -> Vec<String> {
    let msgs = client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let mut out: Vec<String> = msgs
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).unwrap_or("NULL")).collect::<Vec<_>>().join("|")),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

#[test]
fn reads_across_groups_move_the_smaller_side() {
    let broadcasts = Broadcasts::install();
    let plain = PlainPg::start().unwrap();
    let cluster = TestCluster::start_with(2, |c| c.reads.broadcast_max_rows = 50).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let a = connect(&plain.dsn("postgres")).await.unwrap();
        let b = connect(&cluster.dsn("postgres")).await.unwrap();
        let setup = [
            "CREATE TABLE events (id int PRIMARY KEY, tenant int, kind int, amount numeric(10,2))",
            "CREATE TABLE sales (id int PRIMARY KEY, kind int, qty int)",
            "CREATE TABLE kinds (id int PRIMARY KEY, name text)",
            "CREATE TABLE many_kinds (id int PRIMARY KEY, name text)",
            "CREATE TABLE regions (id int PRIMARY KEY, name text)",
        ];
        let distribute = [
            "SELECT create_distributed_table('events', 'id', shard_count => 8)",
            "SELECT create_distributed_table('sales', 'id', shard_count => 4)",
            "SELECT create_distributed_table('kinds', 'id', shard_count => 2)",
            "SELECT create_distributed_table('many_kinds', 'id', shard_count => 2)",
        ];
        let load = [
            "INSERT INTO events SELECT g, g % 50, g % 12, (g % 1000) / 10.0 FROM generate_series(1, 20000) g",
            "INSERT INTO sales SELECT g, g % 12, g % 7 FROM generate_series(1, 20000) g",
            "INSERT INTO kinds SELECT g, 'k' || g FROM generate_series(0, 9) g",
            "INSERT INTO many_kinds SELECT g, 'm' || g FROM generate_series(0, 199) g",
            "INSERT INTO regions SELECT g, 'r' || g FROM generate_series(0, 4) g",
            "ANALYZE",
        ];
        for sql in setup.iter().chain(&load) {
            a.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        for sql in setup.iter().chain(&distribute).chain(&load) {
            b.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        }
        let explain = |sql: &str| format!("EXPLAIN {sql}");
        let big_small = "SELECT k.name, count(*), sum(e.amount) FROM events e JOIN kinds k ON k.id = e.kind JOIN regions r ON r.id = e.tenant % 5 WHERE k.name <> 'k3' AND r.name LIKE 'r%' GROUP BY k.name";
        let plan = rows(&b, &explain(big_small)).await.join("\n");
        assert!(plan.contains("Broadcast: on the 8 shards of colocation group"), "{plan}");
        assert!(plan.contains("Written in: kinds") && plan.contains("Written in: regions"), "{plan}");
        assert!(plan.contains("WHERE (k.name <> 'k3')"), "only the rows the WHERE clause keeps move: {plan}");
        let big_big = "SELECT s.kind, count(*) FROM events e JOIN sales s ON s.id = e.id WHERE s.qty > 2 GROUP BY s.kind";
        let plan = rows(&b, &explain(big_big)).await.join("\n");
        assert!(plan.contains("Copies: the default node answers over copies"), "{plan}");
        assert!(plan.contains("WHERE (s.qty > 2)"), "{plan}");
        // The answers are PostgreSQL's, whichever way: broadcast, copies, and a broadcast
        // whose written-in table has more rows than allowed (200 > 50: copies instead).
        let mut ran = Vec::new();
        for sql in [
            big_small,
            big_big,
            "SELECT m.name, count(*) FROM events e JOIN many_kinds m ON m.id = e.tenant GROUP BY m.name",
            "SELECT e.id, k.name FROM events e LEFT JOIN kinds k ON k.id = e.kind + 5 WHERE e.id < 40",
            "SELECT count(*) FROM events e WHERE e.kind IN (SELECT id FROM kinds WHERE name > 'k5') AND e.tenant NOT IN (SELECT id FROM regions)",
            "SELECT r.name, (SELECT count(*) FROM kinds) FROM regions r JOIN events e ON e.id = r.id",
        ] {
            let before = broadcasts.count();
            let got = rows(&b, sql).await;
            assert_eq!(got, rows(&a, sql).await, "{sql}");
            ran.push(broadcasts.count() > before);
        }
        // Which ran on the big table's shards (the log says so when one does): the first (the
        // plan above), not the one between two big tables, not the one over its row limit.
        assert_eq!(&ran[..3], [true, false, false]);
        assert!(ran[3..].iter().all(|b| *b), "{ran:?}");
    });
}
