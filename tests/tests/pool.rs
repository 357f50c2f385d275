//! The data-node connection pool: a connection comes back to the pool reset (no session state
//! leaks to the next client), is reused, idle sessions give their connections back when others
//! wait (so many more sessions than connections stay open), and the per-node limit makes a
//! session that cannot get one wait and then fail with 53300 instead of overloading the node.

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
        // Sessions inside a transaction block keep their connections.
        a.batch_execute("BEGIN").await.unwrap();
        b.batch_execute("BEGIN").await.unwrap();
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
        a.batch_execute("COMMIT").await.unwrap();
        let c = waiter.await.unwrap().unwrap();
        assert_eq!(c.query_one("SELECT 2", &[]).await.unwrap().get::<_, i32>(0), 2);
        // `a`, idle, gave its connection to `c`; it takes one back from idle `c` for its next
        // statement, while `b` keeps its block.
        assert_eq!(a.query_one("SELECT 3", &[]).await.unwrap().get::<_, i32>(0), 3);
        b.batch_execute("COMMIT").await.unwrap();
    });
}

/// Counts the default node's backends serving clients named `app`.
async fn backends_of(cluster: &TestCluster, app: &str) -> i64 {
    let node = connect(&format!("host=127.0.0.1 port={} user=postgres dbname=postgres", cluster.node_port(1))).await.unwrap();
    node.query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", &[&app]).await.unwrap().get(0)
}

async fn one_value(client: &tokio_postgres::Client, sql: &str) -> String {
    match client.simple_query(sql).await.unwrap().into_iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_owned()),
        _ => None,
    }) {
        Some(v) => v,
        None => panic!("{sql}: no row"),
    }
}

#[test]
fn idle_sessions_give_connections_back_so_many_stay_open() {
    const SESSIONS: usize = 40;
    const LIMIT: usize = 4;
    let cluster = TestCluster::start_with(2, |c| c.pool.max_per_node = LIMIT).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dsn = format!("{} application_name=parktest", cluster.dsn("postgres"));
        let admin = connect(&cluster.dsn("postgres")).await.unwrap();
        for sql in [
            "CREATE TABLE kv (k int PRIMARY KEY, v text)",
            "INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 200) g",
            "SELECT create_distributed_table('kv', 'k')",
            "CREATE TABLE plain_t (a int)",
            "INSERT INTO plain_t VALUES (1), (2)",
        ] {
            admin.batch_execute(sql).await.unwrap();
        }
        drop(admin);
        // Two sessions with state the coordinator cannot move: an SQL prepared statement and a
        // protocol-level one on home.
        let pinned_sql = connect(&dsn).await.unwrap();
        pinned_sql.batch_execute("PREPARE q AS SELECT count(*) FROM plain_t").await.unwrap();
        let pinned_proto = connect(&dsn).await.unwrap();
        let stmt = pinned_proto.prepare("SELECT $1::int + a FROM plain_t ORDER BY a").await.unwrap();

        let mut sessions = Vec::new();
        for i in 0..SESSIONS {
            let c = tokio::time::timeout(Duration::from_secs(30), connect(&dsn)).await.expect("connect in time").unwrap();
            if i % 2 == 1 {
                c.batch_execute("SET statement_timeout = '1234ms'").await.unwrap();
            }
            sessions.push(c);
        }
        for round in 0..3 {
            let work = sessions.iter().enumerate().map(|(i, c)| async move {
                let k = (i * 7 + round) % 200 + 1;
                assert_eq!(one_value(c, &format!("SELECT v FROM kv WHERE k = {k}")).await, format!("v{k}"));
                assert_eq!(one_value(c, "SELECT count(*) FROM kv").await, "200");
                assert_eq!(one_value(c, "SELECT sum(a) FROM plain_t").await, "3");
                // Settings follow the session to each new connection, and none leaks to another.
                let expected = if i % 2 == 1 { "1234ms" } else { "0" };
                assert_eq!(one_value(c, "SHOW statement_timeout").await, expected, "session {i}, round {round}");
            });
            futures::future::join_all(work).await;
        }
        let held = backends_of(&cluster, "parktest").await;
        assert!(held <= LIMIT as i64, "{SESSIONS} open sessions use {held} default-node connections (limit {LIMIT})");
        // Every session is still open and answers.
        for c in &sessions {
            assert_eq!(one_value(c, "SELECT 1").await, "1");
        }
        // The pinned sessions kept their state.
        assert_eq!(one_value(&pinned_sql, "EXECUTE q").await, "2");
        let rows = pinned_proto.query(&stmt, &[&10]).await.unwrap();
        assert_eq!(rows.iter().map(|r| r.get::<_, i32>(0)).collect::<Vec<_>>(), [11, 12]);
    });
}
