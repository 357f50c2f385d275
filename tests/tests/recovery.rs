//! A running coordinator settles, by itself and within seconds, the prepared transactions a
//! placement or DDL left on the data nodes when it was cut short: committed when the metadata
//! store committed the deciding transaction, rolled back when it aborted; other gids untouched.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::{Duration, Instant};

use pgshard_tests::{TestCluster, connect};

#[test]
fn the_coordinator_settles_leftover_prepared_transactions() {
    let cluster = TestCluster::start(2).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let meta =
            connect(&format!("host=127.0.0.1 port={} user=postgres dbname=pgshard", cluster.servers().meta.port()))
                .await
                .unwrap();
        let dn2 = connect(&format!("host=127.0.0.1 port={} user=postgres dbname=postgres", cluster.node_port(2)))
            .await
            .unwrap();
        let mut xids = Vec::new();
        for end in ["COMMIT", "ROLLBACK"] {
            meta.batch_execute("BEGIN").await.unwrap();
            let xid: String = meta.query_one("SELECT pg_current_xact_id()::text", &[]).await.unwrap().get(0);
            meta.batch_execute(end).await.unwrap();
            xids.push(xid);
        }
        dn2.batch_execute(&format!(
            "BEGIN; CREATE TABLE kept (x int); PREPARE TRANSACTION 'pgshard_ddl_{}_0abc';
             BEGIN; CREATE TABLE gone (x int); PREPARE TRANSACTION 'pgshard_dist_{}_0abc';
             BEGIN; CREATE TABLE theirs (x int); PREPARE TRANSACTION 'someone_else';",
            xids[0], xids[1]
        ))
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left: i64 = dn2
                .query_one("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'pgshard%'", &[])
                .await
                .unwrap()
                .get(0);
            if left == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{left} prepared transactions of ours were never settled");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let exists = |t: &'static str| {
            let dn2 = &dn2;
            async move { dn2.query_one("SELECT to_regclass($1) IS NOT NULL", &[&t]).await.unwrap().get::<_, bool>(0) }
        };
        assert!(exists("kept").await, "committed by the metadata verdict");
        assert!(!exists("gone").await, "rolled back by the metadata verdict");
        let theirs: i64 =
            dn2.query_one("SELECT count(*) FROM pg_prepared_xacts WHERE gid = 'someone_else'", &[]).await.unwrap().get(0);
        assert_eq!(theirs, 1, "a gid that is not ours is left alone");
        dn2.batch_execute("ROLLBACK PREPARED 'someone_else'").await.unwrap();
    });
}
