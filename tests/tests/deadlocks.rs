//! Distributed deadlocks: transactions that wait for each other's row locks on different data
//! nodes form a cycle no single PostgreSQL sees. The coordinator finds it and cancels exactly
//! one transaction, the youngest, with 40P01; the others complete. Plain lock contention (a
//! chain of waits without a cycle) makes no victim, however long it lasts.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::Duration;

use pgshard_tests::{TestCluster, connect, shard_values};
use tokio_postgres::Client;

async fn begin(dsn: &str) -> Client {
    let c = connect(dsn).await.unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    c
}

/// Runs `sql` on `c` in a task: the statement may block.
fn spawn_update(c: Client, sql: String) -> tokio::task::JoinHandle<(Client, Result<u64, tokio_postgres::Error>)> {
    tokio::spawn(async move {
        let r = c.execute(sql.as_str(), &[]).await;
        (c, r)
    })
}

fn code(r: &Result<u64, tokio_postgres::Error>) -> Option<String> {
    r.as_ref().err().and_then(|e| e.code()).map(|c| c.code().to_owned())
}

#[test]
fn cycles_across_nodes_lose_exactly_their_youngest_transaction() {
    let cluster = TestCluster::start_with(2, |c| c.transactions.deadlock_check_ms = 300).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dsn = cluster.dsn("postgres");
        let setup = connect(&dsn).await.unwrap();
        setup.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)").await.unwrap();
        setup.batch_execute("INSERT INTO t SELECT g, 0 FROM generate_series(1, 40) g").await.unwrap();
        setup.batch_execute("SELECT create_distributed_table('t', 'id', shard_count => 4)").await.unwrap();
        let (on1, on2) = (shard_values(cluster.node_port(2), "t", "id").await, shard_values(cluster.node_port(3), "t", "id").await);
        assert!(on1.len() >= 2 && on2.len() >= 2, "rows on both shard nodes: {on1:?} {on2:?}");
        let upd = |id: i32, v: i32| format!("UPDATE t SET v = {v} WHERE id = {id}");

        // Two transactions: T1 holds a (dn1) and wants b (dn2); T2 holds b and wants a.
        let (a, b) = (on1[0], on2[0]);
        let t1 = begin(&dsn).await;
        t1.batch_execute(&upd(a, 1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t2 = begin(&dsn).await;
        t2.batch_execute(&upd(b, 2)).await.unwrap();
        let w1 = spawn_update(t1, upd(b, 1));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let w2 = spawn_update(t2, upd(a, 2));
        let (t2, r2) = tokio::time::timeout(Duration::from_secs(10), w2).await.expect("the cycle was never broken").unwrap();
        assert_eq!(code(&r2).as_deref(), Some("40P01"), "the youngest is the victim: {r2:?}");
        t2.batch_execute("ROLLBACK").await.unwrap();
        let (t1, r1) = tokio::time::timeout(Duration::from_secs(10), w1).await.unwrap().unwrap();
        assert_eq!(r1.unwrap(), 1, "the older transaction proceeds");
        t1.batch_execute("COMMIT").await.unwrap();
        for id in [a, b] {
            let v: i32 = setup.query_one("SELECT v FROM t WHERE id = $1", &[&id]).await.unwrap().get(0);
            assert_eq!(v, 1, "T1's writes only");
        }

        // Three transactions around both nodes: T1 holds a (dn1) wants b (dn2); T2 holds b
        // wants c (dn1); T3 holds c wants a.
        let c = on1[1];
        let t1 = begin(&dsn).await;
        t1.batch_execute(&upd(a, 10)).await.unwrap();
        let t2 = begin(&dsn).await;
        t2.batch_execute(&upd(b, 20)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let t3 = begin(&dsn).await;
        t3.batch_execute(&upd(c, 30)).await.unwrap();
        let w1 = spawn_update(t1, upd(b, 10));
        let w2 = spawn_update(t2, upd(c, 20));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let w3 = spawn_update(t3, upd(a, 30));
        let (t3, r3) = tokio::time::timeout(Duration::from_secs(10), w3).await.expect("the cycle was never broken").unwrap();
        assert_eq!(code(&r3).as_deref(), Some("40P01"), "{r3:?}");
        t3.batch_execute("ROLLBACK").await.unwrap();
        let (t2, r2) = tokio::time::timeout(Duration::from_secs(10), w2).await.unwrap().unwrap();
        assert_eq!(r2.unwrap(), 1);
        t2.batch_execute("COMMIT").await.unwrap();
        let (t1, r1) = tokio::time::timeout(Duration::from_secs(10), w1).await.unwrap().unwrap();
        assert_eq!(r1.unwrap(), 1);
        t1.batch_execute("COMMIT").await.unwrap();

        // Contention without a cycle: T2 waits for T1 across several detection rounds, and
        // nobody is canceled.
        let t1 = begin(&dsn).await;
        t1.batch_execute(&upd(a, 100)).await.unwrap();
        t1.batch_execute(&upd(b, 100)).await.unwrap();
        let t2 = begin(&dsn).await;
        let w2 = spawn_update(t2, upd(a, 200));
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!w2.is_finished(), "T2 waits for T1's lock");
        t1.batch_execute("COMMIT").await.unwrap();
        let (t2, r2) = tokio::time::timeout(Duration::from_secs(10), w2).await.unwrap().unwrap();
        assert_eq!(r2.unwrap(), 1, "no victim without a cycle");
        t2.batch_execute("COMMIT").await.unwrap();
        let v: i32 = setup.query_one("SELECT v FROM t WHERE id = $1", &[&a]).await.unwrap().get(0);
        assert_eq!(v, 200);
    });
}
