//! Placing tables on real data nodes: `create_distributed_table` (rows conserved, every row in
//! its hashed shard, the shell empty and guarded), colocation, every refusal with its SQLSTATE,
//! reference tables, `undistribute_table`, all-or-nothing DDL, recovery of prepared
//! transactions, and the catalog mirror. The coordinator's `Shared` is built in-process
//! (`Coordinator::start`, not served) and results are read directly on the data nodes.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

use std::future::Future;
use std::sync::Arc;

use pgshard::CoordError;
use pgshard::distribute::{self, Admin, ConcurrentIndex};
use pgshard::server::{Coordinator, Shared};
use pgshard::up::{LocalServers, UpOptions, ensure_metadata_db};
use pgshard_tests::{connect, temp_dir};
use tokio_postgres::Client;

/// A started cluster: servers, and the coordinator's shared state (not serving).
struct Env {
    shared: Arc<Shared>,
    ports: Vec<u16>,
    meta_port: u16,
}

impl Env {
    fn admin(&self) -> Admin<'_> {
        Admin { shared: &self.shared, user: "postgres", database: "postgres", password: None }
    }

    /// A direct connection to data node `i` (1-based).
    async fn node(&self, i: usize) -> Client {
        connect(&format!("host=127.0.0.1 port={} user=postgres dbname=postgres", self.ports[i - 1])).await.unwrap()
    }

    async fn meta(&self) -> Client {
        connect(&format!("host=127.0.0.1 port={} user=postgres dbname=pgshard", self.meta_port)).await.unwrap()
    }

    /// What the catalog says the table is: `distributed`, `reference`, `local`.
    fn kind(&self, schema: &str, name: &str) -> Option<&'static str> {
        self.shared.catalog().table(schema, name).map(|t| t.kind.name())
    }
}

/// Starts `nodes` data nodes, a metadata server and a coordinator, runs `body`, stops them.
fn with_cluster<F, Fut>(nodes: usize, body: F)
where
    F: FnOnce(Env) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = temp_dir().unwrap();
    let opts = UpOptions { data_nodes: nodes, port: 0, dir: dir.path().join("cluster"), fast: true, coordinators: 1 };
    let servers = LocalServers::start(&opts).unwrap();
    let config = servers.coordinator_config(0);
    let ports: Vec<u16> = servers.nodes.iter().map(|n| n.port()).collect();
    let meta_port = servers.meta.port();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        ensure_metadata_db(meta_port).await.unwrap();
        let coordinator = Coordinator::start(config).await.unwrap();
        body(Env { shared: coordinator.shared(), ports, meta_port }).await;
    });
    drop(runtime);
    servers.stop();
}

fn code<T: std::fmt::Debug>(result: Result<T, CoordError>) -> String {
    result.expect_err("expected an error").sqlstate().code().to_owned()
}

async fn count(client: &Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

async fn exists(client: &Client, relation: &str) -> bool {
    client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&relation]).await.unwrap().get(0)
}

/// Every row of `table` in shards of the catalog, as `row::text`, sorted.
async fn shard_rows(env: &Env, schema: &str, table: &str) -> Vec<String> {
    let catalog = env.shared.catalog();
    let group = catalog.table(schema, table).and_then(|t| t.kind.group()).expect("distributed");
    let mut rows = Vec::new();
    for shard in catalog.shards_of(group) {
        let i = catalog.nodes().iter().position(|n| n.id == shard.node).unwrap() + 1;
        let client = env.node(i).await;
        let sql = format!("SELECT t::text FROM {}.\"{table}\" t", shard.schema_name());
        rows.extend(client.query(&sql, &[]).await.unwrap().iter().map(|r| r.get::<_, String>(0)));
    }
    rows.sort();
    rows
}

async fn local_rows(client: &Client, table: &str) -> Vec<String> {
    let mut rows: Vec<String> =
        client.query(&format!("SELECT t::text FROM {table} t"), &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    rows.sort();
    rows
}

async fn prepared_xacts(client: &Client) -> i64 {
    count(client, "SELECT count(*) FROM pg_prepared_xacts").await
}

const ORDERS: &str = "
    CREATE TABLE orders (
        w_id int NOT NULL, o_id int NOT NULL, note text, amount numeric(10,2) DEFAULT 0,
        doubled int GENERATED ALWAYS AS (o_id * 2) STORED,
        PRIMARY KEY (w_id, o_id), CONSTRAINT amount_positive CHECK (amount >= 0));
    CREATE INDEX orders_note_idx ON orders (note);
    INSERT INTO orders (w_id, o_id, note, amount)
    SELECT i % 37, i, CASE WHEN i % 10 = 0 THEN NULL ELSE E'n\\t' || i || E'\\\\x\\n' END, i / 7.0
    FROM generate_series(1, 1000) i;";

#[test]
fn distributes_verifies_and_undistributes() {
    with_cluster(2, |env| async move {
        let admin = env.admin();
        let (dn1, dn2) = (env.node(1).await, env.node(2).await);
        dn1.batch_execute(ORDERS).await.unwrap();
        let before = local_rows(&dn1, "orders").await;
        assert_eq!(before.len(), 1000);

        distribute::create_distributed_table(&admin, "orders", "w_id", Some(4), None).await.unwrap();
        assert_eq!(env.kind("public", "orders"), Some("distributed"));
        let catalog = env.shared.catalog();
        let group = catalog.table("public", "orders").and_then(|t| t.kind.group()).unwrap();
        assert_eq!(catalog.shards_of(group).len(), 4);
        assert_eq!(catalog.nodes_of_group(group).len(), 2, "shards on both nodes");
        assert_eq!(shard_rows(&env, "public", "orders").await, before, "every row once, unchanged");
        assert_eq!(distribute::verify_placement(&admin, "orders").await.unwrap(), (1000, 0));

        // The shells are empty and guarded on both nodes.
        for client in [&dn1, &dn2] {
            assert_eq!(count(client, "SELECT count(*) FROM orders").await, 0);
            let err = client.execute("INSERT INTO orders (w_id, o_id) VALUES (1, 1)", &[]).await.unwrap_err();
            assert_eq!(err.code().unwrap().code(), "0A000");
            assert_eq!(
                err.as_db_error().unwrap().message(),
                "table \"orders\" is distributed: its rows live in shards"
            );
        }
        // Shards keep the user's constraint and index names, and their checks.
        // (Node ids follow the servers' order; the default node holds no shard.)
        let first = &catalog.shards_of(group)[0];
        assert!(!catalog.node(first.node).unwrap().is_default, "shards stay off the default node");
        let holder = env.node(first.node.0 as usize).await;
        let shard = first.schema_name();
        let names = format!(
            "SELECT string_agg(conname::text, ',' ORDER BY conname) FROM pg_constraint WHERE conrelid = '{shard}.orders'::regclass"
        );
        assert_eq!(holder.query_one(&names, &[]).await.unwrap().get::<_, String>(0), "amount_positive,orders_pkey");
        assert!(exists(&holder, &format!("{shard}.orders_note_idx")).await);
        assert_eq!(count(&dn1, "SELECT count(*) FROM pg_prepared_xacts").await, 0);
        assert_eq!(prepared_xacts(&dn2).await, 0);

        // The mirror on the default node.
        let row = dn1
            .query_one(
                "SELECT kind, distribution_column, shard_count FROM pgshard.tables WHERE table_name = 'orders'",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            (row.get::<_, String>(0), row.get::<_, String>(1), row.get::<_, i32>(2)),
            ("distributed".into(), "w_id".into(), 4)
        );
        assert_eq!(count(&dn1, "SELECT count(*) FROM pgshard.shards WHERE table_name = 'orders'").await, 4);
        assert_eq!(count(&dn1, "SELECT count(*) FROM pgshard.shards WHERE size_bytes > 0").await, 4);
        assert_eq!(count(&dn1, "SELECT count(*) FROM pgshard.nodes").await, 3, "the default node and two shard nodes");
        assert_eq!(
            count(&dn1, "SELECT catalog_version FROM pgshard.mirror_version").await,
            env.shared.catalog().version()
        );
        assert_eq!(
            count(&dn1, "SELECT count(*) FROM pgshard.shards WHERE hash_min = 0 OR hash_max = 18446744073709551615")
                .await,
            2
        );

        // A second time is refused, as is a placement the catalog already has.
        assert_eq!(code(distribute::create_distributed_table(&admin, "orders", "w_id", None, None).await), "42P07");
        assert_eq!(code(distribute::create_reference_table(&admin, "orders").await), "42P07");

        // Back to one table on the default node.
        distribute::undistribute_table(&admin, "orders").await.unwrap();
        assert_eq!(env.kind("public", "orders"), Some("local"));
        assert_eq!(local_rows(&dn1, "orders").await, before);
        assert!(!exists(&dn2, "public.orders").await, "the other node's shell is dropped");
        for shard in catalog.shards_of(group) {
            assert!(!exists(&dn1, &format!("{}.orders", shard.schema_name())).await);
            assert!(!exists(&dn2, &format!("{}.orders", shard.schema_name())).await);
        }
        assert!(env.shared.catalog().group(group).is_none(), "the emptied group is removed");
        dn1.execute("INSERT INTO orders (w_id, o_id) VALUES (1, 100000)", &[]).await.unwrap();
        dn1.execute("DELETE FROM orders WHERE o_id = 100000", &[]).await.unwrap();
        assert_eq!(count(&dn1, "SELECT count(*) FROM pgshard.shards").await, 0);
        assert_eq!(code(distribute::undistribute_table(&admin, "orders").await), "55000");
        assert_eq!(code(distribute::verify_placement(&admin, "orders").await), "55000");

        // And out again (the catalog already knows it, as local).
        distribute::create_distributed_table(&admin, "orders", "o_id", Some(3), Some("none")).await.unwrap();
        assert_eq!(distribute::verify_placement(&admin, "orders").await.unwrap(), (1000, 0));
        assert_eq!(shard_rows(&env, "public", "orders").await, before);
    });
}

#[test]
fn names_that_need_quoting_and_awkward_values() {
    with_cluster(2, |env| async move {
        let admin = env.admin();
        let dn1 = env.node(1).await;
        dn1.batch_execute(
            r#"CREATE SCHEMA "App";
               CREATE TABLE "App"."Mixed Case" ("Key" text, v bigserial, b bytea, PRIMARY KEY ("Key"));
               INSERT INTO "App"."Mixed Case" ("Key", b)
               SELECT CASE i % 4 WHEN 0 THEN E'tab\there' WHEN 1 THEN E'back\\slash' WHEN 2 THEN 'ünï ' || i ELSE '' END || i,
                      decode(md5(i::text), 'hex')
               FROM generate_series(1, 300) i;
               CREATE TABLE stamps (at timestamptz PRIMARY KEY, d date, u uuid);
               INSERT INTO stamps SELECT '2024-01-01 00:00+05'::timestamptz + i * interval '1 hour 1 second',
                      date '2024-01-01' + i, md5(i::text)::uuid FROM generate_series(1, 200) i;
               CREATE TABLE blobs (b bytea PRIMARY KEY); INSERT INTO blobs SELECT decode(md5(i::text), 'hex') FROM generate_series(1, 100) i;"#,
        )
        .await
        .unwrap();
        distribute::create_distributed_table(&admin, r#""App"."Mixed Case""#, "Key", Some(5), None).await.unwrap();
        assert_eq!(env.kind("App", "Mixed Case"), Some("distributed"));
        assert_eq!(distribute::verify_placement(&admin, r#""App"."Mixed Case""#).await.unwrap(), (300, 0));
        distribute::create_distributed_table(&admin, "stamps", "at", Some(4), None).await.unwrap();
        assert_eq!(distribute::verify_placement(&admin, "stamps").await.unwrap(), (200, 0));
        distribute::create_distributed_table(&admin, "blobs", r#""b""#, Some(4), None).await.unwrap();
        assert_eq!(distribute::verify_placement(&admin, "blobs").await.unwrap(), (100, 0));

        // Back and out again: the other node's shell and its sequence go, then come back.
        let before = shard_rows(&env, "App", "Mixed Case").await;
        assert_eq!(before.len(), 300);
        distribute::undistribute_table(&admin, r#""App"."Mixed Case""#).await.unwrap();
        assert_eq!(local_rows(&dn1, r#""App"."Mixed Case""#).await, before);
        assert!(!exists(&env.node(2).await, r#""App"."Mixed Case_v_seq""#).await);
        distribute::create_distributed_table(&admin, r#""App"."Mixed Case""#, r#""Key""#, Some(5), None).await.unwrap();
        assert_eq!(distribute::verify_placement(&admin, r#""App"."Mixed Case""#).await.unwrap(), (300, 0));
        assert!(exists(&env.node(2).await, r#""App"."Mixed Case_v_seq""#).await);
    });
}

#[test]
fn a_write_queued_behind_the_lock_fails_on_the_guard() {
    with_cluster(2, |env| async move {
        let dn1 = env.node(1).await;
        dn1.batch_execute(
            "CREATE TABLE big (k int, pad text); INSERT INTO big SELECT i, repeat('x', 200) FROM generate_series(1, 200000) i;",
        )
        .await
        .unwrap();
        let shared = env.shared.clone();
        let distributing = tokio::spawn(async move {
            let admin = Admin { shared: &shared, user: "postgres", database: "postgres", password: None };
            distribute::create_distributed_table(&admin, "big", "k", Some(4), None).await
        });
        let locked = "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
                      WHERE l.relation = 'big'::regclass AND l.mode = 'ExclusiveLock' AND l.granted
                        AND a.application_name = 'pgshard_admin'";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while count(&dn1, locked).await == 0 && !distributing.is_finished() {
            assert!(std::time::Instant::now() < deadline, "the table was never locked");
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        let writer = env.node(1).await;
        let late = tokio::spawn(async move { writer.execute("INSERT INTO big VALUES (0, 'late')", &[]).await });
        let waiting =
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'INSERT INTO big%' AND wait_event_type = 'Lock'";
        let mut queued = false;
        while !queued && !distributing.is_finished() {
            queued = count(&dn1, waiting).await > 0;
        }
        distributing.await.unwrap().unwrap();
        assert!(queued, "the INSERT should have waited for the distribution's lock");
        let err = late.await.unwrap().unwrap_err();
        assert_eq!(err.code().unwrap().code(), "0A000", "{err}");
        assert_eq!(distribute::verify_placement(&env.admin(), "big").await.unwrap(), (200_000, 0));
    });
}

#[test]
fn colocation_and_foreign_keys() {
    with_cluster(2, |env| async move {
        let admin = env.admin();
        let dn1 = env.node(1).await;
        dn1.batch_execute(
            "CREATE TABLE a (k int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 50);
             CREATE TABLE b (k int, v text); CREATE TABLE c (k bigint); CREATE TABLE d (k int);
             CREATE TABLE e (k int); CREATE TABLE f (k bigint); CREATE TABLE g (k int); CREATE TABLE h (k int);
             CREATE TABLE countries (code text PRIMARY KEY); INSERT INTO countries VALUES ('fr'), ('de');
             CREATE TABLE plain (id int PRIMARY KEY);",
        )
        .await
        .unwrap();
        let group_of = |t: &str| env.shared.catalog().table("public", t).and_then(|t| t.kind.group()).expect(t);
        distribute::create_distributed_table(&admin, "a", "k", Some(4), None).await.unwrap();
        distribute::create_distributed_table(&admin, "b", "k", Some(4), Some("default")).await.unwrap();
        distribute::create_distributed_table(&admin, "c", "k", Some(4), None).await.unwrap();
        distribute::create_distributed_table(&admin, "d", "k", Some(4), Some("none")).await.unwrap();
        distribute::create_distributed_table(&admin, "e", "k", None, Some("a")).await.unwrap();
        assert_eq!(group_of("a"), group_of("b"), "same shard count and type: colocated by default");
        assert_ne!(group_of("a"), group_of("c"), "bigint is another group");
        assert_ne!(group_of("a"), group_of("d"), "none: a new group");
        assert_eq!(group_of("a"), group_of("e"), "by name");
        assert_eq!(code(distribute::create_distributed_table(&admin, "f", "k", None, Some("a")).await), "42804");
        assert_eq!(code(distribute::create_distributed_table(&admin, "g", "k", None, Some("plain")).await), "55000");
        assert_eq!(code(distribute::create_distributed_table(&admin, "g", "k", None, Some("nope")).await), "42P01");
        assert_eq!(code(distribute::create_distributed_table(&admin, "g", "k", Some(8), Some("a")).await), "22023");

        // Foreign keys: to a reference table and to a colocated table on the distribution
        // column are recreated on the shards; anything else is refused.
        distribute::create_reference_table(&admin, "countries").await.unwrap();
        dn1.batch_execute(
            "CREATE TABLE lines (k int REFERENCES a (k), n int, country text REFERENCES countries);
             CREATE TABLE bad_local (k int REFERENCES plain (id));
             CREATE TABLE bad_column (k int, other int REFERENCES a (k));
             CREATE TABLE bad_group (k int REFERENCES a (k));
             CREATE TABLE referenced (k int PRIMARY KEY); CREATE TABLE referencing (k int REFERENCES referenced);
             CREATE TABLE viewed (k int); CREATE VIEW v AS SELECT * FROM viewed;",
        )
        .await
        .unwrap();
        distribute::create_distributed_table(&admin, "lines", "k", Some(4), None).await.unwrap();
        assert_eq!(group_of("lines"), group_of("a"));
        // The shard holding k = 7, found by looking.
        let catalog = env.shared.catalog();
        let mut found = None;
        for shard in catalog.shards_of(group_of("a")) {
            let node = catalog.nodes().iter().position(|n| n.id == shard.node).unwrap() + 1;
            let client = env.node(node).await;
            let sql = format!("SELECT count(*) FROM {}.a WHERE k = 7", shard.schema_name());
            if count(&client, &sql).await == 1 {
                found = Some((client, shard.schema_name()));
            }
        }
        let (on_shard, schema) = found.expect("k = 7 is in one shard");
        on_shard.execute(&format!("INSERT INTO {schema}.lines VALUES (7, 1, 'fr')"), &[]).await.unwrap();
        let err = on_shard.execute(&format!("INSERT INTO {schema}.lines VALUES (7, 2, 'xx')"), &[]).await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "23503", "the reference table's copy is enforced");
        on_shard.execute(&format!("DELETE FROM {schema}.a WHERE k = 7"), &[]).await.unwrap_err();

        for (table, column) in [("bad_local", "k"), ("bad_column", "k"), ("referenced", "k"), ("viewed", "k")] {
            assert_eq!(
                code(distribute::create_distributed_table(&admin, table, column, Some(4), None).await),
                "0A000",
                "{table}"
            );
        }
        assert_eq!(
            code(distribute::create_distributed_table(&admin, "bad_group", "k", Some(4), Some("none")).await),
            "0A000"
        );
        assert_eq!(code(distribute::create_reference_table(&admin, "bad_local").await), "0A000");

        // Undistributing a table in a colocated foreign key is refused, both ends.
        assert_eq!(code(distribute::undistribute_table(&admin, "a").await), "0A000");
        assert_eq!(code(distribute::undistribute_table(&admin, "lines").await), "0A000");
        assert_eq!(code(distribute::undistribute_table(&admin, "countries").await), "0A000");
        distribute::undistribute_table(&admin, "b").await.unwrap();
        assert_eq!(env.kind("public", "b"), Some("local"));
    });
}

#[test]
fn refusals_carry_postgres_sqlstates_and_change_nothing() {
    with_cluster(2, |env| async move {
        let admin = env.admin();
        let dn1 = env.node(1).await;
        dn1.batch_execute(
            "CREATE TABLE t (id int, f float8, j jsonb, u text UNIQUE, n int);
             INSERT INTO t VALUES (1, 1, '{}', 'a', 1), (NULL, 2, '{}', 'b', 2);
             CREATE TABLE uidx (id int, x int); CREATE UNIQUE INDEX uidx_x ON uidx (x);
             CREATE TABLE pk (id int, x int PRIMARY KEY);
             CREATE TABLE parted (id int) PARTITION BY RANGE (id);
             CREATE VIEW tv AS SELECT 1 AS id;
             CREATE TABLE withnull (id int); INSERT INTO withnull SELECT generate_series(1, 10); INSERT INTO withnull VALUES (NULL);",
        )
        .await
        .unwrap();
        let dist = |table: &'static str, column: &'static str, count: Option<i64>| {
            let admin = env.admin();
            async move { code(distribute::create_distributed_table(&admin, table, column, count, None).await) }
        };
        assert_eq!(dist("missing", "id", None).await, "42P01");
        assert_eq!(dist("t", "nope", None).await, "42703");
        assert_eq!(dist("t", "f", None).await, "0A000");
        assert_eq!(dist("t", "j", None).await, "0A000");
        assert_eq!(dist("t", "id", Some(0)).await, "22023");
        assert_eq!(dist("t", "id", Some(64_001)).await, "22023");
        assert_eq!(dist("t", "n", None).await, "0A000", "UNIQUE (u) lacks n");
        assert_eq!(dist("uidx", "id", None).await, "0A000");
        assert_eq!(dist("pk", "id", None).await, "0A000");
        assert_eq!(dist("parted", "id", None).await, "0A000");
        assert_eq!(dist("tv", "id", None).await, "0A000");
        assert_eq!(code(distribute::create_reference_table(&admin, "missing").await), "42P01");
        assert_eq!(code(distribute::undistribute_table(&admin, "missing").await), "42P01");
        assert_eq!(code(distribute::undistribute_table(&admin, "t").await), "55000");

        let err = distribute::create_distributed_table(&admin, "pk", "id", None, None).await.unwrap_err();
        assert_eq!(err.to_string(), "cannot create constraint on \"pk\"");
        let CoordError::Sql { detail, hint, .. } = err else { panic!() };
        assert!(detail.unwrap().starts_with("Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY"));
        assert!(hint.unwrap().contains("\"pk_pkey\""));

        // A NULL distribution value fails the copy: nothing anywhere changes.
        let err = distribute::create_distributed_table(&admin, "withnull", "id", Some(4), None).await.unwrap_err();
        assert_eq!(err.sqlstate().code(), "23502");
        assert_eq!(err.to_string(), "cannot perform an INSERT with NULL in the partition column");
        assert_eq!(env.kind("public", "withnull"), None);
        assert_eq!(env.shared.catalog().groups().count(), 0);
        assert_eq!(count(&dn1, "SELECT count(*) FROM withnull").await, 11);
        dn1.execute("INSERT INTO withnull VALUES (12)", &[]).await.unwrap();

        // A type only the default node has: node 2's CREATE fails, its error comes back as sent.
        dn1.batch_execute("CREATE TYPE mood AS ENUM ('sad', 'ok'); CREATE TABLE typed (id int, m mood); INSERT INTO typed VALUES (1, 'ok')")
            .await
            .unwrap();
        let err = distribute::create_distributed_table(&admin, "typed", "id", Some(4), None).await.unwrap_err();
        assert_eq!(err.sqlstate().code(), "42704");
        assert_eq!(err.to_string(), "type \"public.mood\" does not exist");
        assert_eq!(env.kind("public", "typed"), None);
        assert_eq!(count(&dn1, "SELECT count(*) FROM typed").await, 1);
        dn1.execute("INSERT INTO typed VALUES (2, 'sad')", &[]).await.unwrap();
        for i in 1..=2 {
            assert_eq!(prepared_xacts(&env.node(i).await).await, 0);
        }
    });
}

#[test]
fn reference_tables_are_copied_whole() {
    with_cluster(2, |env| async move {
        let admin = env.admin();
        let (dn1, dn2) = (env.node(1).await, env.node(2).await);
        dn1.batch_execute(
            "CREATE SCHEMA shop;
             CREATE TABLE shop.item (id serial PRIMARY KEY, seen int GENERATED ALWAYS AS IDENTITY (START WITH 50), name text NOT NULL COLLATE \"C\", price numeric(8,2) CHECK (price > 0),
                                     tags text[], added date DEFAULT current_date);
             INSERT INTO shop.item (name, price, tags) SELECT 'item ' || i, i, ARRAY['a', E'b\\tc'] FROM generate_series(1, 100) i;
             CREATE TABLE shop.sku (item int REFERENCES shop.item, code text);
             INSERT INTO shop.sku SELECT i, 'c' || i FROM generate_series(1, 100) i;",
        )
        .await
        .unwrap();
        assert_eq!(
            code(distribute::create_reference_table(&admin, "shop.sku").await),
            "0A000",
            "references a local table"
        );
        distribute::create_reference_table(&admin, "shop.item").await.unwrap();
        distribute::create_reference_table(&admin, "shop.sku").await.unwrap();
        assert_eq!(env.kind("shop", "item"), Some("reference"));
        for table in ["shop.item", "shop.sku"] {
            assert_eq!(local_rows(&dn1, table).await, local_rows(&dn2, table).await, "{table}");
        }
        assert_eq!(local_rows(&dn2, "shop.item").await.len(), 100);
        let err = dn2.execute("INSERT INTO shop.sku VALUES (1000, 'x')", &[]).await.unwrap_err();
        assert_eq!(err.code().unwrap().code(), "23503", "the copy keeps its foreign key");
        let row = dn1.query_one("SELECT kind FROM pgshard.tables WHERE table_name = 'item'", &[]).await.unwrap();
        assert_eq!(row.get::<_, String>(0), "reference");

        assert_eq!(code(distribute::undistribute_table(&admin, "shop.item").await), "0A000", "sku references it");
        distribute::undistribute_table(&admin, "shop.sku").await.unwrap();
        assert!(!exists(&dn2, "shop.sku").await);
        assert_eq!(local_rows(&dn1, "shop.sku").await.len(), 100);
        distribute::undistribute_table(&admin, "shop.item").await.unwrap();
        assert!(!exists(&dn2, "shop.item").await);
        assert_eq!(count(&dn1, "SELECT count(*) FROM pgshard.tables WHERE kind = 'reference'").await, 0);
    });
}

#[test]
fn ddl_takes_effect_everywhere_or_nowhere() {
    with_cluster(2, |env| async move {
        let admin = env.admin();
        let (dn1, dn2) = (env.node(1).await, env.node(2).await);
        let ids: Vec<_> = env.shared.catalog().nodes().iter().map(|n| n.id).collect();
        dn2.batch_execute("CREATE TABLE only_two (x int)").await.unwrap();

        // Valid on node 1, failing on node 2: node 1 is left unchanged.
        let work = vec![
            (ids[0], vec!["CREATE TABLE made (x int)".to_owned()]),
            (ids[1], vec!["CREATE TABLE made (x int)".to_owned(), "ALTER TABLE missing ADD COLUMN y int".to_owned()]),
        ];
        let err = distribute::apply_everywhere(&admin, work).await.unwrap_err();
        assert_eq!(err.sqlstate().code(), "42P01");
        assert_eq!(err.to_string(), "relation \"missing\" does not exist", "the node's error, as it sent it");
        assert!(!exists(&dn1, "made").await && !exists(&dn2, "made").await);
        // Failing at PREPARE time (node 2 cannot prepare: a temporary table was used).
        let work = vec![
            (ids[0], vec!["CREATE TABLE made (x int)".to_owned()]),
            (ids[1], vec!["CREATE TEMP TABLE tmp (x int)".to_owned()]),
        ];
        assert_eq!(code(distribute::apply_everywhere(&admin, work).await), "0A000");
        assert!(!exists(&dn1, "made").await);
        assert_eq!(prepared_xacts(&dn1).await + prepared_xacts(&dn2).await, 0);

        let version = env.shared.catalog().version();
        let work = ids.iter().map(|id| (*id, vec!["CREATE TABLE made (x int)".to_owned()])).collect();
        distribute::apply_everywhere(&admin, work).await.unwrap();
        assert!(exists(&dn1, "made").await && exists(&dn2, "made").await);
        assert!(env.shared.catalog().version() > version, "DDL bumps the catalog version");
        assert_eq!(prepared_xacts(&dn1).await + prepared_xacts(&dn2).await, 0);

        // CREATE INDEX CONCURRENTLY: node 1 builds, node 2 fails, node 1's index is dropped.
        let index = |sql: &str| ConcurrentIndex { sql: sql.to_owned(), index: "public.made_x".to_owned() };
        let work = vec![
            (ids[0], vec![index("CREATE INDEX CONCURRENTLY made_x ON made (x)")]),
            (ids[1], vec![index("CREATE INDEX CONCURRENTLY made_x ON made (nope)")]),
        ];
        assert_eq!(code(distribute::apply_each_without_transaction(&admin, work).await), "42703");
        assert!(!exists(&dn1, "made_x").await && !exists(&dn2, "made_x").await);
        let work = ids.iter().map(|id| (*id, vec![index("CREATE INDEX CONCURRENTLY made_x ON made (x)")])).collect();
        distribute::apply_each_without_transaction(&admin, work).await.unwrap();
        assert!(exists(&dn1, "made_x").await && exists(&dn2, "made_x").await);
    });
}

#[test]
fn recovery_settles_prepared_transactions_by_the_metadata_verdict() {
    with_cluster(1, |env| async move {
        let admin = env.admin();
        let (dn1, meta) = (env.node(1).await, env.meta().await);
        let xid = |committed: bool| {
            let meta = &meta;
            async move {
                let sql = if committed { "COMMIT" } else { "ROLLBACK" };
                meta.batch_execute("BEGIN").await.unwrap();
                let xid: String = meta.query_one("SELECT pg_current_xact_id()::text", &[]).await.unwrap().get(0);
                meta.batch_execute(sql).await.unwrap();
                xid
            }
        };
        let (yes, no) = (xid(true).await, xid(false).await);
        dn1.batch_execute(&format!(
            "BEGIN; CREATE TABLE kept (x int); PREPARE TRANSACTION 'pgshard_dist_{yes}_0abc';
             BEGIN; CREATE TABLE gone (x int); PREPARE TRANSACTION 'pgshard_ddl_{no}_0abc';
             BEGIN; CREATE TABLE theirs (x int); PREPARE TRANSACTION 'someone_else';"
        ))
        .await
        .unwrap();
        let settled = pgshard::dtx::recover::recover(admin.shared).await.unwrap();
        let outcomes: Vec<(&str, bool)> = settled.iter().map(|r| (r.gid.as_str(), r.committed)).collect();
        assert_eq!(outcomes.len(), 2, "{outcomes:?}");
        assert!(outcomes.contains(&(format!("pgshard_dist_{yes}_0abc").as_str(), true)), "{outcomes:?}");
        assert!(outcomes.contains(&(format!("pgshard_ddl_{no}_0abc").as_str(), false)), "{outcomes:?}");
        assert!(exists(&dn1, "kept").await);
        assert!(!exists(&dn1, "gone").await);
        assert_eq!(prepared_xacts(&dn1).await, 1, "a gid that is not ours is left alone");
        dn1.batch_execute("ROLLBACK PREPARED 'someone_else'").await.unwrap();
    });
}

#[test]
fn one_node_cluster_works_too() {
    with_cluster(1, |env| async move {
        let admin = env.admin();
        let dn1 = env.node(1).await;
        dn1.batch_execute("CREATE TABLE t (k int PRIMARY KEY, v text); INSERT INTO t SELECT i, 'v' || i FROM generate_series(1, 100) i;
                           CREATE TABLE r (k int); INSERT INTO r VALUES (1);")
            .await
            .unwrap();
        distribute::create_distributed_table(&admin, "t", "k", Some(2), None).await.unwrap();
        assert_eq!(distribute::verify_placement(&admin, "t").await.unwrap(), (100, 0));
        distribute::create_reference_table(&admin, "r").await.unwrap();
        distribute::undistribute_table(&admin, "t").await.unwrap();
        distribute::undistribute_table(&admin, "r").await.unwrap();
        assert_eq!(count(&dn1, "SELECT count(*) FROM t").await, 100);
    });
}
