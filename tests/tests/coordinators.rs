//! Primary and follower coordinators on one metadata store: the follower serves queries and
//! DML, refuses DDL and catalog functions naming the primary (25006), and sees the primary's
//! catalog changes within a second; it becomes primary on request (the old primary then
//! refuses DDL) and by itself when the primary goes away.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::{Duration, Instant};

use pgshard::config::Config;
use pgshard_tests::{TestCluster, connect};
use tokio_postgres::{Client, SimpleQueryMessage};

fn quick_lease(c: &mut Config) {
    c.primary.lease_ms = 1_500;
    c.primary.renew_ms = 200;
}

async fn rows(c: &Client, sql: &str) -> Vec<Vec<String>> {
    c.simple_query(sql)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).unwrap_or("").to_owned()).collect()),
            _ => None,
        })
        .collect()
}

fn assert_follower_refusal(e: &tokio_postgres::Error, primary: &str) {
    let db = e.as_db_error().unwrap_or_else(|| panic!("not a server error: {e:?}"));
    assert_eq!(db.code().code(), "25006", "{db:?}");
    assert!(db.message().contains("follower"), "{}", db.message());
    assert!(db.hint().unwrap_or_default().contains(primary), "the hint names the primary: {:?}", db.hint());
}

#[test]
fn a_follower_serves_dml_refuses_ddl_and_becomes_primary() {
    let mut cluster = TestCluster::start_with(2, quick_lease).unwrap();
    let mut follower = cluster.add_coordinator("c1", quick_lease).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let p = connect(&cluster.dsn("postgres")).await.unwrap();
        let f = connect(&follower.dsn("postgres")).await.unwrap();

        // DDL and catalog functions through the follower are refused, naming the primary.
        let e = f.batch_execute("CREATE TABLE x (id int PRIMARY KEY, v int)").await.unwrap_err();
        assert_follower_refusal(&e, "c0");
        p.batch_execute("CREATE TABLE x (id int PRIMARY KEY, v int)").await.unwrap();
        p.batch_execute("INSERT INTO x SELECT g, g FROM generate_series(1, 20) g").await.unwrap();
        let e = f.batch_execute("SELECT create_distributed_table('x', 'id')").await.unwrap_err();
        assert_follower_refusal(&e, "c0");

        // A catalog change on the primary reaches the follower within a second.
        p.batch_execute("SELECT create_distributed_table('x', 'id', shard_count => 4)").await.unwrap();
        let changed = Instant::now();
        loop {
            let plan = rows(&f, "EXPLAIN SELECT * FROM x WHERE id = 3").await;
            if plan.iter().any(|r| r[0].starts_with("pgshard:")) {
                break;
            }
            assert!(changed.elapsed() < Duration::from_secs(1), "the follower still plans x as an ordinary table");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // The follower serves DML on the distributed table, in blocks over several nodes too.
        f.batch_execute("INSERT INTO x VALUES (100, 100)").await.unwrap();
        f.batch_execute("BEGIN").await.unwrap();
        f.batch_execute("UPDATE x SET v = v + 1").await.unwrap();
        f.batch_execute("COMMIT").await.unwrap();
        assert_eq!(rows(&p, "SELECT count(*), sum(v) FROM x").await, vec![vec!["21".to_owned(), "331".to_owned()]]);
        assert_eq!(rows(&p, "SELECT verify_placement('x')").await, vec![vec!["21".to_owned(), "0".to_owned()]]);

        // On request the follower becomes primary; the old primary then refuses DDL.
        assert_eq!(rows(&f, "SELECT become_primary()").await, vec![vec!["c0".to_owned()]]);
        f.batch_execute("CREATE TABLE y (a int)").await.unwrap();
        let e = p.batch_execute("CREATE TABLE z (a int)").await.unwrap_err();
        assert_follower_refusal(&e, "c1");
        let e = p.batch_execute("SELECT create_reference_table('y')").await.unwrap_err();
        assert_follower_refusal(&e, "c1");
        // ... and still serves queries and DML.
        p.batch_execute("UPDATE x SET v = 0 WHERE id = 100").await.unwrap();

        // When the primary goes away, the follower takes the lease by itself.
        drop(f);
        follower.stop();
        let gone = Instant::now();
        loop {
            match p.batch_execute("CREATE TABLE z (a int)").await {
                Ok(()) => break,
                Err(e) => assert_follower_refusal(&e, ""),
            }
            assert!(gone.elapsed() < Duration::from_secs(5), "c0 never took the lease back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        p.batch_execute("SELECT create_reference_table('y')").await.unwrap();
    });
    cluster.stop();
}
