//! Graceful shutdown: a statement in flight finishes and its answer reaches the client; idle
//! sessions are closed with 57P01 (admin shutdown) at once, as PostgreSQL's smart shutdown
//! would tell them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::{Duration, Instant};

use pgshard_tests::TestCluster;

#[test]
fn shutdown_lets_running_statements_finish_and_closes_idle_sessions() {
    let mut cluster = TestCluster::start(1).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dsn = cluster.dsn("postgres");
    let (idle, idle_conn) = runtime.block_on(tokio_postgres::connect(&dsn, tokio_postgres::NoTls)).unwrap();
    let idle_task = runtime.spawn(idle_conn);
    let busy = runtime.block_on(pgshard_tests::connect(&dsn)).unwrap();
    let running = runtime.spawn(async move { busy.query_one("SELECT pg_sleep(1.5)::text || 'done'", &[]).await });
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    cluster.stop();
    let stopped_after = started.elapsed();

    let row = runtime.block_on(running).unwrap().expect("the running statement was cut off");
    assert_eq!(row.get::<_, String>(0), "done");
    assert!(stopped_after >= Duration::from_millis(1000), "stop did not wait for the statement: {stopped_after:?}");
    assert!(stopped_after < Duration::from_secs(9), "stop waited for the whole grace period: {stopped_after:?}");
    // The idle session was told why it was closed.
    let end = runtime.block_on(async { tokio::time::timeout(Duration::from_secs(5), idle_task).await });
    let err = end.expect("idle session still open").unwrap().expect_err("idle session ended without an error");
    assert_eq!(err.code().map(|c| c.code()), Some("57P01"), "{err}");
    assert!(runtime.block_on(idle.simple_query("SELECT 1")).is_err());
}
