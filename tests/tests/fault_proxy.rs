//! The fault-injecting proxy the distributed-transaction fault tests build on: a cut before the
//! client's bytes reach the server leaves no trace there; a cut right after leaves their effect
//! (here a prepared transaction); the client sees its connection die either way.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use pgshard_tests::proxy::{Fault, FaultProxy};
use pgshard_tests::{PlainPg, connect};

#[test]
fn cuts_before_or_after_the_client_sends_a_pattern() {
    let pg = PlainPg::start().unwrap();
    let proxy = FaultProxy::start(pg.port()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let direct = connect(&pg.dsn("postgres")).await.unwrap();
        let via = format!("host=127.0.0.1 port={} user=postgres dbname=postgres", proxy.port());
        let prepared = |gid: &'static str| {
            let direct = &direct;
            async move {
                direct
                    .query_one("SELECT count(*) FROM pg_prepared_xacts WHERE gid = $1", &[&gid])
                    .await
                    .unwrap()
                    .get::<_, i64>(0)
            }
        };

        let c = connect(&via).await.unwrap();
        assert_eq!(c.query_one("SELECT 41 + 1", &[]).await.unwrap().get::<_, i32>(0), 42, "forwards untouched");

        proxy.arm(Fault::BeforeClientSends(b"PREPARE TRANSACTION".to_vec()));
        c.batch_execute("BEGIN; CREATE TABLE before_cut (x int)").await.unwrap();
        assert!(c.batch_execute("PREPARE TRANSACTION 'cut_before'").await.is_err());
        assert_eq!(proxy.cuts(), 1);
        assert_eq!(prepared("cut_before").await, 0, "the server never saw PREPARE");

        let c = connect(&via).await.unwrap();
        proxy.arm(Fault::AfterClientSends(b"PREPARE TRANSACTION".to_vec()));
        c.batch_execute("BEGIN; CREATE TABLE after_cut (x int)").await.unwrap();
        assert!(c.batch_execute("PREPARE TRANSACTION 'cut_after'").await.is_err());
        assert_eq!(proxy.cuts(), 2);
        assert_eq!(prepared("cut_after").await, 1, "the server ran PREPARE before the cut");
        direct.batch_execute("ROLLBACK PREPARED 'cut_after'").await.unwrap();

        // A fired fault is spent: new connections pass.
        let c = connect(&via).await.unwrap();
        c.batch_execute("BEGIN; PREPARE TRANSACTION 'passes'").await.unwrap();
        assert_eq!(prepared("passes").await, 1);
        direct.batch_execute("ROLLBACK PREPARED 'passes'").await.unwrap();
        proxy.disarm();
    });
    drop(proxy);
}
