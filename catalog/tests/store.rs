//! The metadata store against a real PostgreSQL: migrations, colocation groups and their shards,
//! tables of every kind, the errors users see, version bumps and change notifications.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

mod support;

use std::time::Duration;

use pgshard_catalog::hash::{self, DistType};
use pgshard_catalog::{
    CatalogError, ColocationId, MetadataStore, NOTIFY_CHANNEL, NodeId, NodeRegistration, SCHEMA_VERSION, Table,
    TableKind,
};
use support::PgServer;

/// The schema `migrate()` created before schema versioning (nodes only), verbatim.
const NODES_ONLY_SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS pgshard;
CREATE TABLE IF NOT EXISTS pgshard.nodes (
    node_id    serial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    host       text NOT NULL,
    port       integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    is_default boolean NOT NULL DEFAULT false,
    added_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS nodes_one_default ON pgshard.nodes (is_default) WHERE is_default;
";

fn registration(name: &str, port: u16) -> NodeRegistration {
    NodeRegistration { name: name.into(), host: "127.0.0.1".into(), port }
}

/// A migrated store in a fresh database with nodes dn1 (id 1) and dn2 (id 2).
async fn store_with_two_nodes(server: &PgServer, db: &str) -> MetadataStore {
    let mut store = MetadataStore::new(server.database(db).await);
    store.migrate().await.unwrap();
    store.register_nodes(&[registration("dn1", 5433), registration("dn2", 5434)]).await.unwrap();
    store
}

fn distributed(schema: &str, name: &str, column: &str, dist_type: DistType, group: ColocationId) -> Table {
    Table {
        schema: schema.into(),
        name: name.into(),
        kind: TableKind::Distributed { column: column.into(), dist_type, group },
    }
}

fn table(schema: &str, name: &str, kind: TableKind) -> Table {
    Table { schema: schema.into(), name: name.into(), kind }
}

async fn schema_version(store: &MetadataStore) -> i32 {
    store.client().query_one("SELECT version FROM pgshard.schema_version", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn migrate_twice_is_idempotent() {
    let server = PgServer::shared();
    let mut store = store_with_two_nodes(&server, "migrate_twice").await;
    let before = store.load().await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    let after = store.load().await.unwrap();
    assert_eq!(schema_version(&store).await, SCHEMA_VERSION);
    assert_eq!(after.version(), before.version());
    assert_eq!(after.nodes(), before.nodes());
    let rows = store.client().query("SELECT * FROM pgshard.catalog_version", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn concurrent_migrations_wait_for_each_other() {
    let server = PgServer::shared();
    let mut a = MetadataStore::new(server.database("migrate_race").await);
    let mut b = MetadataStore::new(server.connect("migrate_race").await);
    let (ra, rb) = tokio::join!(a.migrate(), b.migrate());
    ra.unwrap();
    rb.unwrap();
    assert_eq!(schema_version(&a).await, SCHEMA_VERSION);
}

#[tokio::test]
async fn a_nodes_only_store_upgrades() {
    let server = PgServer::shared();
    let client = server.database("upgrade").await;
    client.batch_execute(NODES_ONLY_SCHEMA).await.unwrap();
    let old_nodes = "INSERT INTO pgshard.nodes (name, host, port, is_default)
                     VALUES ('old1', 'h1', 6001, true), ('old2', 'h2', 6002, false)";
    client.batch_execute(old_nodes).await.unwrap();
    let mut store = MetadataStore::new(client);
    store.migrate().await.unwrap();
    assert_eq!(schema_version(&store).await, SCHEMA_VERSION);
    let snap = store.load().await.unwrap();
    assert_eq!(snap.version(), 1);
    let names: Vec<&str> = snap.nodes().iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["old1", "old2"]);
    assert_eq!(snap.default_node().unwrap().name, "old1");

    let mut tx = store.begin().await.unwrap();
    let group = tx.create_colocation_group(4, DistType::Int4, &[NodeId(1), NodeId(2)]).await.unwrap();
    tx.add_table(&distributed("public", "t", "id", DistType::Int4, group.id)).await.unwrap();
    assert_eq!(tx.commit().await.unwrap(), 2);
    assert_eq!(store.load().await.unwrap().shards_of(group.id).len(), 4);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let server = PgServer::shared();
    let mut store = MetadataStore::new(server.database("too_new").await);
    store.migrate().await.unwrap();
    store.client().execute("UPDATE pgshard.schema_version SET version = version + 1", &[]).await.unwrap();
    let err = store.migrate().await.unwrap_err();
    assert!(matches!(err, CatalogError::SchemaTooNew { .. }), "{err}");
}

#[tokio::test]
async fn a_group_of_32_shards_covers_the_hash_space_on_alternating_nodes() {
    let server = PgServer::shared();
    let mut store = store_with_two_nodes(&server, "group32").await;
    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.find_colocation_group(32, DistType::Int8).await.unwrap(), None);
    let group = tx.create_colocation_group(32, DistType::Int8, &[NodeId(2), NodeId(1)]).await.unwrap();
    assert_eq!((group.shard_count, group.dist_type), (32, DistType::Int8));
    assert_eq!(tx.shards(group.id).await.unwrap().len(), 32);
    tx.commit().await.unwrap();

    let snap = store.load().await.unwrap();
    let shards = snap.shards_of(group.id);
    assert_eq!(shards.len(), 32);
    assert_eq!(shards[0].hash_min, 0);
    assert_eq!(shards[31].hash_max, u64::MAX);
    for (i, shard) in shards.iter().enumerate() {
        assert_eq!(shard.index as usize, i);
        assert_eq!(shard.node, NodeId(1 + (i as i32 % 2)), "shard {i}");
        assert_eq!((shard.hash_min, shard.hash_max), hash::shard_range(shard.index, 32));
        if let Some(next) = shards.get(i + 1) {
            assert_eq!(shard.hash_max + 1, next.hash_min, "gap after shard {i}");
        }
    }
    assert_eq!(snap.nodes_of_group(group.id).len(), 2);
    for h in [0, 1 << 59, u64::MAX / 3, u64::MAX] {
        assert!(snap.shard_for_hash(group.id, h).unwrap().contains(h));
    }

    // The users' view says the same, with the hash bounds as unsigned numbers.
    let rows = store
        .client()
        .query(
            "SELECT shard_index, schema_name, node_name, node_port, hash_min::text, hash_max::text
             FROM pgshard.shard_placements WHERE group_id = $1 ORDER BY shard_index",
            &[&group.id.0],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 32);
    for (row, shard) in rows.iter().zip(shards) {
        assert_eq!(row.get::<_, String>(1), shard.schema_name());
        assert_eq!(row.get::<_, String>(2), snap.node(shard.node).unwrap().name);
        assert_eq!(row.get::<_, i32>(3), i32::from(snap.node(shard.node).unwrap().port));
        assert_eq!(row.get::<_, String>(4), shard.hash_min.to_string());
        assert_eq!(row.get::<_, String>(5), shard.hash_max.to_string());
    }
}

#[tokio::test]
async fn the_default_group_is_the_oldest_of_its_shape() {
    let server = PgServer::shared();
    let mut store = store_with_two_nodes(&server, "default_group").await;
    let mut tx = store.begin().await.unwrap();
    let first = tx.create_colocation_group(8, DistType::Int4, &[NodeId(1), NodeId(2)]).await.unwrap();
    let second = tx.create_colocation_group(8, DistType::Int4, &[NodeId(2)]).await.unwrap();
    let text = tx.create_colocation_group(8, DistType::Text, &[NodeId(1)]).await.unwrap();
    assert!(first.id < second.id);
    assert_eq!(tx.find_colocation_group(8, DistType::Int4).await.unwrap(), Some(first.id));
    assert_eq!(tx.find_colocation_group(8, DistType::Text).await.unwrap(), Some(text.id));
    assert_eq!(tx.find_colocation_group(16, DistType::Int4).await.unwrap(), None);

    let err = tx.create_colocation_group(0, DistType::Int4, &[NodeId(1)]).await.unwrap_err();
    assert_eq!(err.sqlstate().code(), "22023");
    let err = tx.create_colocation_group(4, DistType::Int4, &[NodeId(1), NodeId(9)]).await.unwrap_err();
    assert!(matches!(err, CatalogError::UndefinedNode(NodeId(9))), "{err}");
    let err = tx.create_colocation_group(4, DistType::Int4, &[]).await.unwrap_err();
    assert!(matches!(err, CatalogError::NoDataNode), "{err}");
    tx.commit().await.unwrap();
    assert!(store.load().await.unwrap().shards_of(second.id).iter().all(|s| s.node == NodeId(2)));
}

#[tokio::test]
async fn tables_of_every_kind_load_and_look_up() {
    let server = PgServer::shared();
    let mut store = store_with_two_nodes(&server, "tables").await;
    let mut tx = store.begin().await.unwrap();
    let group = tx.create_colocation_group(32, DistType::Int4, &[NodeId(1), NodeId(2)]).await.unwrap();
    let orders = distributed("public", "orders", "o_w_id", DistType::Int4, group.id);
    let order_line = distributed("public", "order_line", "ol_w_id", DistType::Int4, group.id);
    let item = table("public", "item", TableKind::Reference);
    let history = table("app", "history", TableKind::Local { node: NodeId(2) });
    for t in [&orders, &order_line, &item, &history] {
        tx.add_table(t).await.unwrap();
    }
    assert_eq!(tx.table("public", "orders").await.unwrap().as_ref(), Some(&orders));
    tx.commit().await.unwrap();

    let snap = store.load().await.unwrap();
    assert_eq!(snap.table("public", "orders"), Some(&orders));
    assert_eq!(snap.table("public", "order_line"), Some(&order_line));
    assert_eq!(snap.table("public", "item"), Some(&item));
    assert_eq!(snap.table("app", "history"), Some(&history));
    assert_eq!(snap.table("public", "history"), None);
    assert_eq!(snap.tables_in_group(group.id).count(), 2);
    assert_eq!(snap.group(group.id), Some(&group));

    let counts = store
        .client()
        .query("SELECT table_name, count(*) FROM pgshard.table_placements GROUP BY 1 ORDER BY 1", &[])
        .await
        .unwrap();
    let counts: Vec<(String, i64)> = counts.iter().map(|r| (r.get(0), r.get(1))).collect();
    let expected = [("history", 1), ("item", 2), ("order_line", 32), ("orders", 32)];
    assert_eq!(counts, expected.map(|(n, c)| (n.to_owned(), c)));
}

#[tokio::test]
async fn errors_carry_postgres_sqlstates() {
    let server = PgServer::shared();
    let mut store = store_with_two_nodes(&server, "errors").await;
    let mut tx = store.begin().await.unwrap();
    let int_group = tx.create_colocation_group(4, DistType::Int4, &[NodeId(1), NodeId(2)]).await.unwrap();
    let orders = distributed("public", "orders", "o_w_id", DistType::Int4, int_group.id);
    tx.add_table(&orders).await.unwrap();
    tx.add_table(&table("public", "item", TableKind::Reference)).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let err = tx.add_table(&orders).await.unwrap_err();
    assert_eq!(err.sqlstate().code(), "42P07");
    assert_eq!(err.to_string(), "table \"public.orders\" is already distributed");
    let err = tx.set_table_kind("public", "orders", TableKind::Reference).await.unwrap_err();
    assert_eq!(err.sqlstate().code(), "42P07");
    let err = tx.set_table_kind("public", "item", orders.kind.clone()).await.unwrap_err();
    assert_eq!(err.to_string(), "table \"public.item\" is already a reference table");
    let err = tx.remove_table("public", "missing").await.unwrap_err();
    assert_eq!(err.sqlstate().code(), "42P01");
    let err = tx.set_table_kind("public", "missing", TableKind::Reference).await.unwrap_err();
    assert_eq!(err.sqlstate().code(), "42P01");
    let err = tx.add_table(&distributed("public", "c", "id", DistType::Text, int_group.id)).await.unwrap_err();
    assert_eq!(err.sqlstate().code(), "42804");
    let err = tx.add_table(&distributed("public", "c", "id", DistType::Int4, ColocationId(99))).await.unwrap_err();
    assert_eq!(err.sqlstate().code(), "42704");
    let err = tx.add_table(&table("public", "c", TableKind::Local { node: NodeId(99) })).await.unwrap_err();
    assert_eq!(err.sqlstate().code(), "42704");
    let err = tx.remove_colocation_group(int_group.id).await.unwrap_err();
    assert_eq!(err.sqlstate().code(), "2BP01");
    // None of that changed anything: the transaction commits without a new version.
    let version = store_version(&tx).await;
    assert_eq!(tx.commit().await.unwrap(), version);
}

async fn store_version(tx: &pgshard_catalog::CatalogTransaction<'_>) -> i64 {
    tx.transaction().query_one("SELECT version FROM pgshard.catalog_version", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn changes_bump_the_version_and_notify_listeners() {
    let server = PgServer::shared();
    let mut store = store_with_two_nodes(&server, "notify").await;
    let (listener, mut notifications) = server.connect_listening("notify").await;
    listener.batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}")).await.unwrap();
    let v0 = store.current_version().await.unwrap();
    assert_eq!(store.load().await.unwrap().version(), v0);

    let mut tx = store.begin().await.unwrap();
    tx.add_table(&table("public", "item", TableKind::Reference)).await.unwrap();
    let v1 = tx.commit().await.unwrap();
    assert_eq!(v1, v0 + 1);
    let note = tokio::time::timeout(Duration::from_secs(10), notifications.recv()).await.unwrap().unwrap();
    assert_eq!((note.channel(), note.payload()), (NOTIFY_CHANNEL, v1.to_string().as_str()));
    assert_eq!(store.load().await.unwrap().version(), v1);

    // No change, a rollback, a dropped transaction, a re-registration of the same nodes: no new
    // version and no notification.
    assert_eq!(store.begin().await.unwrap().commit().await.unwrap(), v1);
    let mut tx = store.begin().await.unwrap();
    tx.add_table(&table("public", "warehouse", TableKind::Reference)).await.unwrap();
    tx.rollback().await.unwrap();
    {
        let mut tx = store.begin().await.unwrap();
        tx.add_table(&table("public", "district", TableKind::Reference)).await.unwrap();
    }
    store.register_nodes(&[registration("dn1", 5433), registration("dn2", 5434)]).await.unwrap();
    assert_eq!(store.current_version().await.unwrap(), v1);
    assert!(store.load().await.unwrap().table("public", "warehouse").is_none());
    assert!(store.load().await.unwrap().table("public", "district").is_none());

    // A moved node is a change.
    store.register_nodes(&[registration("dn2", 6434)]).await.unwrap();
    let note = tokio::time::timeout(Duration::from_secs(10), notifications.recv()).await.unwrap().unwrap();
    assert_eq!(note.payload(), (v1 + 1).to_string());
    assert_eq!(store.load().await.unwrap().node(NodeId(2)).unwrap().port, 6434);
    assert!(notifications.try_recv().is_err(), "one notification per change");
}

#[tokio::test]
async fn tables_are_undistributed_redistributed_and_removed() {
    let server = PgServer::shared();
    let mut store = store_with_two_nodes(&server, "remove").await;
    let mut tx = store.begin().await.unwrap();
    let group = tx.create_colocation_group(4, DistType::Text, &[NodeId(1), NodeId(2)]).await.unwrap();
    let customer = distributed("public", "customer", "c_id", DistType::Text, group.id);
    tx.add_table(&customer).await.unwrap();
    tx.commit().await.unwrap();

    let mut tx = store.begin().await.unwrap();
    let old = tx.set_table_kind("public", "customer", TableKind::Local { node: NodeId(1) }).await.unwrap();
    assert_eq!(old, customer);
    tx.commit().await.unwrap();
    let snap = store.load().await.unwrap();
    assert_eq!(snap.table("public", "customer").unwrap().kind, TableKind::Local { node: NodeId(1) });
    assert_eq!(snap.tables_in_group(group.id).count(), 0);

    let mut tx = store.begin().await.unwrap();
    tx.set_table_kind("public", "customer", customer.kind.clone()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.load().await.unwrap().table("public", "customer"), Some(&customer));

    let mut tx = store.begin().await.unwrap();
    assert_eq!(tx.remove_table("public", "customer").await.unwrap(), customer);
    tx.remove_colocation_group(group.id).await.unwrap();
    let err = tx.remove_colocation_group(group.id).await.unwrap_err();
    assert!(matches!(err, CatalogError::UndefinedGroup(_)), "{err}");
    tx.commit().await.unwrap();
    let snap = store.load().await.unwrap();
    assert!(snap.table("public", "customer").is_none());
    assert!(snap.group(group.id).is_none());
    assert!(snap.shards_of(group.id).is_empty());
}
