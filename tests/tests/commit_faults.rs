//! Two-phase commit under faults: a proxy between the coordinator and data node dn2 cuts the
//! connection at each step of the commit, and a data node dies between PREPARE and COMMIT
//! PREPARED. Before the decision the client gets an error and nothing of the transaction
//! remains; after it the client learns the outcome is not confirmed (08007) and the effects
//! appear on every node once recovery has run. No prepared transaction is left behind, and the
//! decision records of finished transactions are deleted.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::{Duration, Instant};

use pgshard_tests::proxy::{Fault, FaultProxy};
use pgshard_tests::{TestCluster, connect, shard_values};
use tokio_postgres::Client;

const ACCOUNTS: i64 = 40;

/// A cluster whose coordinator reaches dn2 through a fault proxy, recovering every 300 ms.
fn cluster_with_proxy() -> (TestCluster, FaultProxy) {
    let mut proxy = None;
    let cluster = TestCluster::start_with(2, |c| {
        c.transactions.recovery_interval_ms = 300;
        let dn2 = c.data_nodes.iter_mut().find(|n| n.name == "dn2").unwrap();
        let p = FaultProxy::start(dn2.port).unwrap();
        // The proxy listens on TCP; the other nodes stay on their Unix-domain sockets.
        dn2.host = "127.0.0.1".into();
        dn2.port = p.port();
        proxy = Some(p);
    })
    .unwrap();
    (cluster, proxy.unwrap())
}

struct Nodes {
    dn1: Client,
    dn2: Client,
    meta: Client,
}

impl Nodes {
    async fn connect(cluster: &TestCluster) -> Self {
        let direct = |port: u16, db: &str| format!("host=127.0.0.1 port={port} user=postgres dbname={db}");
        Self {
            dn1: connect(&direct(cluster.node_port(2), "postgres")).await.unwrap(),
            dn2: connect(&direct(cluster.node_port(3), "postgres")).await.unwrap(),
            meta: connect(&direct(cluster.servers().meta.port(), "pgshard")).await.unwrap(),
        }
    }

    /// Sum of balances and number of accounts on one node's shards, read directly.
    async fn on_node(node: &Client) -> (i64, i64) {
        let schemas: Vec<String> = node
            .query("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'pgshard\\_g%'", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let (mut sum, mut count) = (0, 0);
        for s in schemas {
            let row = node
                .query_one(&format!("SELECT coalesce(sum(balance), 0)::int8, count(*) FROM {s}.accounts"), &[])
                .await
                .unwrap();
            sum += row.get::<_, i64>(0);
            count += row.get::<_, i64>(1);
        }
        (sum, count)
    }

    async fn prepared(&self) -> i64 {
        let mut n = 0;
        for node in [&self.dn1, &self.dn2] {
            let row = node
                .query_one("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'pgshard\\_tx\\_%'", &[])
                .await
                .unwrap();
            n += row.get::<_, i64>(0);
        }
        n
    }

    /// Waits until every account holds `balance` on both nodes and nothing is left prepared.
    async fn settle(&self, balance: i64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (s1, c1) = Self::on_node(&self.dn1).await;
            let (s2, c2) = Self::on_node(&self.dn2).await;
            let prepared = self.prepared().await;
            assert!(c1 > 0 && c2 > 0 && c1 + c2 == ACCOUNTS, "{what}: accounts are on both nodes ({c1} + {c2})");
            if s1 == c1 * balance && s2 == c2 * balance && prepared == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: never settled at {balance} per account: dn1 sum {s1} over {c1}, dn2 sum {s2} over {c2}, {prepared} prepared"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An autocommit update of every account whose COMMIT PREPARED never reaches dn2: 08007.
async fn autocommit_cut_after_decision(client: &Client, proxy: &FaultProxy) {
    proxy.arm(Fault::BeforeClientSends(b"COMMIT PREPARED".to_vec()));
    let err = client.batch_execute("UPDATE accounts SET balance = balance + 1").await.unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("08007"), "{err:?}");
}

/// Runs the two-node transaction once with `fault` armed and checks the client's error.
async fn commit_with_fault(client: &Client, proxy: &FaultProxy, fault: Fault, sqlstate: &str, what: &str) {
    eprintln!("scenario: {what}");
    let cuts = proxy.cuts();
    proxy.arm(fault);
    client.batch_execute("BEGIN").await.unwrap();
    client.batch_execute("UPDATE accounts SET balance = balance + 1").await.unwrap();
    let err = client.batch_execute("COMMIT").await.expect_err(&format!("{what}: the commit must fail"));
    proxy.disarm();
    assert_eq!(proxy.cuts(), cuts + 1, "{what}: the fault fired");
    let code = err.code().map(|c| c.code().to_owned());
    assert_eq!(code.as_deref(), Some(sqlstate), "{what}: {err:?}");
    // The session survives a lost data-node connection.
    let n = scalar(client, "SELECT count(*) FROM accounts").await;
    assert_eq!(n, ACCOUNTS, "{what}: the session goes on");
}

#[test]
fn a_cut_at_each_commit_step_leaves_all_or_nothing() {
    let (mut cluster, proxy) = cluster_with_proxy();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = connect(&cluster.dsn("postgres")).await.unwrap();
        client.batch_execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int8 NOT NULL)").await.unwrap();
        client
            .batch_execute(&format!("INSERT INTO accounts SELECT g, 100 FROM generate_series(1, {ACCOUNTS}) g"))
            .await
            .unwrap();
        client.batch_execute("SELECT create_distributed_table('accounts', 'id', shard_count => 4)").await.unwrap();
        let nodes = Nodes::connect(&cluster).await;
        nodes.settle(100, "setup").await;

        // One writer commits with a plain COMMIT and read-only members are not prepared: a
        // PREPARE reaching dn2 would fire the armed fault.
        proxy.arm(Fault::BeforeClientSends(b"PREPARE TRANSACTION".to_vec()));
        let on = |n: usize| shard_values(cluster.node_port(n), "accounts", "id");
        let (id1, id2) = (on(2).await[0], on(3).await[0]);
        for (writer, id) in [("dn1", id1), ("dn2", id2)] {
            client.batch_execute("BEGIN").await.unwrap();
            assert_eq!(scalar(&client, "SELECT count(*) FROM accounts").await, ACCOUNTS, "reads every node");
            client.batch_execute(&format!("UPDATE accounts SET balance = balance + 5 WHERE id = {id}")).await.unwrap();
            client.batch_execute("COMMIT").await.unwrap_or_else(|e| panic!("one writer ({writer}): {e:?}"));
        }
        assert_eq!(proxy.cuts(), 0, "no PREPARE TRANSACTION was sent to dn2");
        proxy.disarm();
        client.batch_execute(&format!("UPDATE accounts SET balance = 100 WHERE id IN ({id1}, {id2})")).await.unwrap();
        nodes.settle(100, "one-phase commits").await;

        // A fault-free two-node commit, for reference.
        client.batch_execute("BEGIN").await.unwrap();
        client.batch_execute("UPDATE accounts SET balance = balance + 1").await.unwrap();
        client.batch_execute("COMMIT").await.unwrap();
        nodes.settle(101, "no fault").await;

        // Before the decision: the transaction is rolled back on every node.
        let before_prepare = Fault::BeforeClientSends(b"PREPARE TRANSACTION".to_vec());
        commit_with_fault(&client, &proxy, before_prepare, "08006", "cut before PREPARE").await;
        nodes.settle(101, "cut before PREPARE").await;

        let after_prepare = Fault::AfterClientSends(b"PREPARE TRANSACTION".to_vec());
        commit_with_fault(&client, &proxy, after_prepare, "08006", "cut after PREPARE").await;
        nodes.settle(101, "cut after PREPARE (recovery rolls dn2 back)").await;

        // After the decision: committed everywhere, the client told the outcome is unconfirmed.
        let before_commit = Fault::BeforeClientSends(b"COMMIT PREPARED".to_vec());
        commit_with_fault(&client, &proxy, before_commit, "08007", "cut after the decision").await;
        nodes.settle(102, "cut after the decision (recovery commits dn2)").await;

        let during_commit = Fault::AfterClientSends(b"COMMIT PREPARED".to_vec());
        commit_with_fault(&client, &proxy, during_commit, "08007", "cut during COMMIT PREPARED").await;
        nodes.settle(103, "cut during COMMIT PREPARED").await;

        // The same for an autocommit statement over every shard (an implicit block).
        autocommit_cut_after_decision(&client, &proxy).await;
        nodes.settle(104, "autocommit, cut after the decision").await;

        // A data node that dies between PREPARE and COMMIT PREPARED: once it is back, recovery
        // completes the transaction there.
        autocommit_cut_after_decision(&client, &proxy).await;
        cluster.servers_mut().kill_node(2);
        let (s1, c1) = Nodes::on_node(&nodes.dn1).await;
        assert_eq!(s1, c1 * 105, "dn1 committed at the decision");
        tokio::time::sleep(Duration::from_secs(1)).await;
        cluster.servers_mut().restart_node(2).unwrap();
        let nodes = Nodes::connect(&cluster).await;
        nodes.settle(105, "dn2 killed between PREPARE and COMMIT PREPARED").await;
        let total = scalar(&client, "SELECT sum(balance)::int8 FROM accounts").await;
        assert_eq!(total, ACCOUNTS * 105);

        // Finished transactions leave no decision record behind.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left: i64 = nodes.meta.query_one("SELECT count(*) FROM pgshard.decisions", &[]).await.unwrap().get(0);
            if left == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "{left} decision records were never cleaned up");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

#[test]
fn recovery_on_demand_settles_our_transactions_by_their_decision_records() {
    // Recovery runs at start and then not for an hour: the function does the work here.
    let cluster = TestCluster::start_with(2, |c| c.transactions.recovery_interval_ms = 3_600_000).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = connect(&cluster.dsn("postgres")).await.unwrap();
        let nodes = Nodes::connect(&cluster).await;
        // The round the coordinator runs at start is over once this one returns (rounds run
        // one at a time), so what follows is settled by the function alone.
        assert!(recover(&client).await.is_empty());
        let (decided, undecided) = ("pgshard_tx_c0_1_1", "pgshard_tx_c0_1_2");
        nodes.meta.execute("INSERT INTO pgshard.decisions (gid, coordinator) VALUES ($1, 'c0')", &[&decided]).await.unwrap();
        nodes.dn1.batch_execute("CREATE TABLE a (x int)").await.unwrap();
        nodes.dn1.batch_execute("CREATE TABLE b (x int)").await.unwrap();
        for (table, gid) in [("a", format!("{decided}_2")), ("b", format!("{undecided}_2")), ("b", "pgshard_tx_other_1_1_2".into())] {
            nodes.dn1.batch_execute("BEGIN").await.unwrap();
            nodes.dn1.batch_execute(&format!("INSERT INTO {table} VALUES (1)")).await.unwrap();
            nodes.dn1.batch_execute(&format!("PREPARE TRANSACTION '{gid}'")).await.unwrap();
        }
        let mut got: Vec<(String, String, String)> = recover(&client)
            .await
            .iter()
            .map(|r| (r.get("node").unwrap().into(), r.get("gid").unwrap().into(), r.get("outcome").unwrap().into()))
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("dn1".into(), format!("{decided}_2"), "committed".into()),
                ("dn1".into(), format!("{undecided}_2"), "rolled back".into()),
            ]
        );
        let count = |t: &'static str| {
            let dn1 = &nodes.dn1;
            async move { dn1.query_one(&format!("SELECT count(*) FROM {t}"), &[]).await.unwrap().get::<_, i64>(0) }
        };
        assert_eq!((count("a").await, count("b").await), (1, 0));
        let theirs: i64 =
            nodes.dn1.query_one("SELECT count(*) FROM pg_prepared_xacts", &[]).await.unwrap().get(0);
        assert_eq!(theirs, 1, "another coordinator's transaction is left to it");
        nodes.dn1.batch_execute("ROLLBACK PREPARED 'pgshard_tx_other_1_1_2'").await.unwrap();
        // The decided record is finished now: the next round deletes it.
        assert!(recover(&client).await.is_empty());
        let left: i64 = nodes.meta.query_one("SELECT count(*) FROM pgshard.decisions", &[]).await.unwrap().get(0);
        assert_eq!(left, 0);
    });
}

async fn recover(client: &Client) -> Vec<tokio_postgres::SimpleQueryRow> {
    let messages = client.simple_query("SELECT recover_prepared_transactions()").await.unwrap();
    messages
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .collect()
}

/// One integer, read with the simple protocol.
async fn scalar(client: &Client, sql: &str) -> i64 {
    for m in client.simple_query(sql).await.unwrap() {
        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
            return r.get(0).unwrap().parse().unwrap();
        }
    }
    panic!("{sql}: no row");
}
