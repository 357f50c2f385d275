//! The data-node connection pool: a connection comes back to the pool reset (no session state
//! leaks to the next client), is reused, and the per-node limit makes a session wait and then
//! fail with 53300 instead of overloading the node.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::{Duration, Instant};

use pgshard_tests::{TestCluster, connect};
use tokio_postgres::error::SqlState;

async fn backend_pid(client: &tokio_postgres::Client) -> i32 {
    client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0)
}

#[test]
fn pooled_connections_are_reset_and_reused() {
    let cluster = TestCluster::start(1).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dsn = cluster.dsn("postgres");
        let first = connect(&dsn).await.unwrap();
        let pid = backend_pid(&first).await;
        first
            .batch_execute(
                "SET work_mem = '7MB'; CREATE TEMP TABLE leftover (x int); PREPARE leaked AS SELECT 1;
                 SELECT pg_advisory_lock(42); BEGIN; SELECT 1",
            )
            .await
            .unwrap();
        drop(first);

        // The reset runs in the background: until it is done, new sessions get new
        // connections (kept open here so that they do not go back to the pool themselves).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut others = Vec::new();
        let second = loop {
            let c = connect(&dsn).await.unwrap();
            if backend_pid(&c).await == pid {
                break c;
            }
            assert!(Instant::now() < deadline, "the pooled connection was never reused");
            others.push(c);
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let work_mem: String = second.query_one("SHOW work_mem", &[]).await.unwrap().get(0);
        assert_eq!(work_mem, "4MB");
        let err = second.batch_execute("SELECT * FROM leftover").await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE));
        let err = second.batch_execute("EXECUTE leaked").await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::UNDEFINED_PSTATEMENT));
        let locks: i64 = second
            .query_one("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(locks, 0);
        // Not inside the transaction the first client left open.
        let rows = second
            .simple_query("SELECT xact_start = query_start FROM pg_stat_activity WHERE pid = pg_backend_pid()")
            .await
            .unwrap();
        let fresh = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        });
        assert_eq!(fresh.as_deref(), Some("t"), "a new session must not start inside an old transaction");
    });
}

#[test]
fn pool_limit_makes_sessions_wait_then_fail_with_53300() {
    let cluster = TestCluster::start_with(1, |c| {
        c.pool.max_per_node = 2;
        c.pool.checkout_timeout_ms = 300;
    })
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dsn = cluster.dsn("postgres");
        let a = connect(&dsn).await.unwrap();
        let b = connect(&dsn).await.unwrap();
        let started = Instant::now();
        let err = match tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await {
            Ok(_) => panic!("a third session got a connection beyond the limit"),
            Err(e) => e,
        };
        assert_eq!(err.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(250), "it did not wait for a free connection");
        // A session that waits gets the connection another one gives back.
        let waiter = tokio::spawn({
            let dsn = dsn.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                connect(&dsn).await
            }
        });
        a.batch_execute("SELECT 1").await.unwrap();
        drop(a);
        let c = waiter.await.unwrap().unwrap();
        assert_eq!(c.query_one("SELECT 2", &[]).await.unwrap().get::<_, i32>(0), 2);
        drop(b);
    });
}
