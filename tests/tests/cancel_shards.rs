//! A client's cancel request stops a statement on every data node it runs on, not only on the
//! default node: the client gets 57014 at once, no shard backend keeps working, and the session
//! goes on.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::{Duration, Instant};

use pgshard_tests::{TestCluster, connect};

#[test]
fn a_cancel_reaches_every_shard_node() {
    let cluster = TestCluster::start(2).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let c = connect(&cluster.dsn("postgres")).await.unwrap();
        c.batch_execute("CREATE TABLE slow (id int PRIMARY KEY)").await.unwrap();
        c.batch_execute("INSERT INTO slow SELECT generate_series(1, 8)").await.unwrap();
        c.batch_execute("SELECT create_distributed_table('slow', 'id', shard_count => 4)").await.unwrap();
        let sleeping = |port: u16| async move {
            let direct = connect(&format!("host=127.0.0.1 port={port} user=postgres dbname=postgres")).await.unwrap();
            let n: i64 = direct
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            n
        };
        let token = c.cancel_token();
        let started = Instant::now();
        let run = tokio::spawn(async move {
            let r = c.simple_query("SELECT id, pg_sleep(2) FROM slow").await;
            (c, r)
        });
        // Wait until both shard nodes work on it.
        loop {
            if sleeping(cluster.node_port(2)).await > 0 && sleeping(cluster.node_port(3)).await > 0 {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(5), "the statement never reached both shard nodes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
        let (c, r) = tokio::time::timeout(Duration::from_secs(3), run).await.expect("the cancel took effect").unwrap();
        let err = r.expect_err("the statement was canceled");
        assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(8), "it did not run to its end (16 s of sleep per node)");
        assert_eq!((sleeping(cluster.node_port(2)).await, sleeping(cluster.node_port(3)).await), (0, 0), "no shard keeps sleeping");
        let rows = c.simple_query("SELECT count(*) FROM slow").await.unwrap();
        assert!(rows.iter().any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("8"))));
    });
}
