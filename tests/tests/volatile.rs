//! Values that must not differ by node: `now()` and its kin in writes are the coordinator's
//! transaction start on every node (inside a block, its BEGIN); distribution values computed
//! by an expression or a default are computed once, on the default node, and the row goes to
//! the shard they hash to.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::{Duration, SystemTime};

use pgshard_tests::{TestCluster, connect};
use tokio_postgres::SimpleQueryMessage;

async fn row(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let msgs = client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    msgs.iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_owned()).collect()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

#[test]
fn transaction_time_is_the_same_on_every_node() {
    let cluster = TestCluster::start(2).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = connect(&cluster.dsn("postgres")).await.unwrap();
        for sql in [
            "CREATE TABLE events (tenant int, ts timestamptz, d date, local timestamp, later timestamptz, note text)",
            "SELECT create_distributed_table('events', 'tenant', shard_count => 8)",
            "CREATE TABLE settings (k text PRIMARY KEY, at timestamptz)",
            "SELECT create_reference_table('settings')",
        ] {
            client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        }
        // One statement over every shard (both nodes): one time.
        let values: Vec<String> = (1..=16).map(|t| format!("({t}, now(), current_date, localtimestamp, NULL, 'one')")).collect();
        client.batch_execute(&format!("INSERT INTO events VALUES {}", values.join(", "))).await.unwrap();
        assert_eq!(row(&client, "SELECT count(*), count(DISTINCT ts), count(DISTINCT local) FROM events").await, ["16", "1", "1"]);
        assert_eq!(row(&client, "SELECT count(*) FROM events WHERE d = ts::date AND local = ts::timestamp").await, ["16"]);

        // A block: every statement's now() is the BEGIN's time, on whichever node it runs,
        // however long the block has been open when the node joins.
        let before = SystemTime::now();
        client.batch_execute("BEGIN").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.batch_execute("INSERT INTO events (tenant, ts, note) VALUES (1, now(), 'block')").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.batch_execute("INSERT INTO events (tenant, ts, note) VALUES (2, transaction_timestamp(), 'block'), (3, CURRENT_TIMESTAMP, 'block')").await.unwrap();
        client.batch_execute("UPDATE events SET later = now(), ts = statement_timestamp() WHERE note = 'one'").await.unwrap();
        client.batch_execute("COMMIT").await.unwrap();
        let after = SystemTime::now();
        let got = row(&client, "SELECT count(*), count(DISTINCT ts) FROM events WHERE note = 'block'").await;
        assert_eq!(got, ["3", "1"], "one transaction time across statements and nodes");
        let got = row(&client, "SELECT count(DISTINCT later), min(later) = (SELECT min(ts) FROM events WHERE note = 'block') FROM events WHERE note = 'one'").await;
        assert_eq!(got, ["1", "t"], "the UPDATE over every shard saw the same now()");
        // statement_timestamp() is the statement's own time: later than the BEGIN by the sleeps.
        let got = row(&client, "SELECT count(DISTINCT ts), min(ts) - min(later) >= interval '0.5 seconds' FROM events WHERE note = 'one'").await;
        assert_eq!(got, ["1", "t"]);
        let epoch = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64();
        let at: f64 = row(&client, "SELECT extract(epoch FROM min(ts)) FROM events WHERE note = 'block'").await[0].parse().unwrap();
        assert!(at >= epoch(before) - 0.001 && at <= epoch(before) + 0.25, "now() is the BEGIN's time: {at} vs {:?}", epoch(before));
        assert!(at <= epoch(after));

        // Prepared statements too: bound at each execution with the block's time written in,
        // rows returned in binary as drivers ask.
        let insert = client.prepare("INSERT INTO events (tenant, ts, note) VALUES ($1, now(), 'prep')").await.unwrap();
        client.batch_execute("BEGIN").await.unwrap();
        for tenant in 1..=8i32 {
            client.execute(&insert, &[&tenant]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let returned = client.query("UPDATE events SET later = current_timestamp WHERE note = 'prep' RETURNING later, tenant", &[]).await.unwrap();
        client.batch_execute("COMMIT").await.unwrap();
        assert_eq!(returned.len(), 8);
        let times: Vec<SystemTime> = returned.iter().map(|r| r.get(0)).collect();
        assert!(times.iter().all(|t| *t == times[0]), "{times:?}");
        assert_eq!(row(&client, "SELECT count(*), count(DISTINCT ts), count(DISTINCT later), bool_and(ts = later) FROM events WHERE note = 'prep'").await, ["8", "1", "1", "t"]);

        // Columns left to a default that calls now(): the coordinator writes the default in,
        // so rows on every node of one block carry the block's time too.
        client.batch_execute("CREATE TABLE audit (tenant int, what text, at timestamptz DEFAULT now(), day date DEFAULT (current_date + 1))").await.unwrap();
        client.batch_execute("SELECT create_distributed_table('audit', 'tenant', shard_count => 8)").await.unwrap();
        let prepared = client.prepare("INSERT INTO audit (tenant, what) VALUES ($1, 'prepared')").await.unwrap();
        assert_eq!(prepared.params().len(), 1, "the time parameters stay the coordinator's");
        client.batch_execute("BEGIN").await.unwrap();
        for tenant in 1..=8 {
            client.batch_execute(&format!("INSERT INTO audit (tenant, what) VALUES ({tenant}, 'simple')")).await.unwrap();
            client.execute(&prepared, &[&(tenant + 8)]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        client.batch_execute("INSERT INTO audit (tenant, what, at) VALUES (99, 'stamp', now())").await.unwrap();
        client.batch_execute("COMMIT").await.unwrap();
        let got = row(&client, "SELECT count(*), count(DISTINCT at), count(DISTINCT day), bool_and(day = (at::date + 1)) FROM audit").await;
        assert_eq!(got, ["17", "1", "1", "t"], "one time for every row of the block, defaults included");

        // A reference table written with now() (refused before): every copy holds one value.
        client.batch_execute("INSERT INTO settings VALUES ('a', now())").await.unwrap();
        let mut seen = Vec::new();
        for i in 1..=cluster.servers().nodes.len() {
            let node = connect(&format!("host=127.0.0.1 port={} user=postgres dbname=postgres", cluster.node_port(i))).await.unwrap();
            seen.push(row(&node, "SELECT at::text FROM settings WHERE k = 'a'").await.remove(0));
        }
        assert!(seen.len() >= 2 && seen.iter().all(|s| *s == seen[0]), "{seen:?}");
    });
}

#[test]
fn computed_distribution_values_are_computed_once() {
    let cluster = TestCluster::start(2).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = connect(&cluster.dsn("postgres")).await.unwrap();
        for sql in [
            "CREATE TABLE tickets (id bigserial PRIMARY KEY, note text, made timestamptz DEFAULT now())",
            "SELECT create_distributed_table('tickets', 'id', shard_count => 6)",
        ] {
            client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        }
        // The distribution column left to its default, in the extended protocol with RETURNING.
        let mut ids = Vec::new();
        for n in 0..12 {
            let rows = client.query("INSERT INTO tickets (note) VALUES ($1) RETURNING id, note", &[&format!("t{n}")]).await.unwrap();
            assert_eq!(rows.len(), 1);
            assert_eq!(rows[0].get::<_, String>(1), format!("t{n}"));
            ids.push(rows[0].get::<_, i64>(0));
        }
        let mut distinct = ids.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 12, "{ids:?}");
        // Each row is in the shard its id hashes to, and reads by id find it.
        assert_eq!(row(&client, "SELECT verify_placement('tickets')").await, ["12", "0"]);
        for id in &ids {
            let got = row(&client, &format!("SELECT count(*) FROM tickets WHERE id = {id}")).await;
            assert_eq!(got, ["1"], "id {id}");
        }
        // With now() too, prepared: one parameter for the client, the row's time the block's.
        let stamped = client.prepare("INSERT INTO tickets (note, made) VALUES ($1, now()) RETURNING made").await.unwrap();
        assert_eq!(stamped.params().len(), 1);
        client.batch_execute("BEGIN").await.unwrap();
        let mut made = Vec::new();
        for n in 0..3 {
            let rows = client.query(&stamped, &[&format!("s{n}")]).await.unwrap();
            made.push(rows[0].get::<_, std::time::SystemTime>(0));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        client.batch_execute("COMMIT").await.unwrap();
        assert!(made.iter().all(|m| *m == made[0]), "{made:?}");
        client.batch_execute("DELETE FROM tickets WHERE note LIKE 's_'").await.unwrap();
        // Several rows, an expression and DEFAULT in one statement, the simple protocol.
        client.batch_execute("INSERT INTO tickets (id, note) VALUES (DEFAULT, 'd'), (nextval('tickets_id_seq'), 'n'), (1000 + 7, 'e')").await.unwrap();
        assert_eq!(row(&client, "SELECT count(*), count(DISTINCT id), count(*) FILTER (WHERE id = 1007) FROM tickets").await, ["15", "15", "1"]);
        assert_eq!(row(&client, "SELECT verify_placement('tickets')").await, ["15", "0"]);
        // A failure leaves nothing behind: the duplicate key fails the whole statement.
        let err = client.batch_execute("INSERT INTO tickets (id, note) VALUES (DEFAULT, 'x'), (1000 + 7, 'dup')").await.unwrap_err();
        assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION), "{err}");
        assert_eq!(row(&client, "SELECT count(*) FROM tickets").await, ["15"]);
    });
}
