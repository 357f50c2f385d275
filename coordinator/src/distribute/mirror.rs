//! The catalog as plain tables in schema `pgshard` on the default data node, so a client reads
//! it with ordinary SELECTs (the session sends statements that name no distributed table to
//! the default node): `pgshard.nodes`, `pgshard.tables`, `pgshard.shards` (and
//! `pgshard.mirror_version`, the catalog version shown). Rebuilt whole, in one transaction,
//! after every placement change; readers see the old or the new contents.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::join_all;
use pgshard_catalog::{CatalogSnapshot, MetadataStore, Node, NodeId, TableKind};
use tokio_postgres::Client;

use super::admin::{Admin, connect, run};
use crate::error::CoordError;

/// Lock key serializing mirror rebuilds on the default node (arbitrary, fixed forever).
const MIRROR_LOCK: i64 = 0x7067_7368_6172_6403;

const MIRROR_TABLES: &str = "
CREATE SCHEMA IF NOT EXISTS pgshard;
CREATE TABLE IF NOT EXISTS pgshard.nodes (
    node_id integer PRIMARY KEY, name text NOT NULL, host text NOT NULL, port integer NOT NULL,
    is_default boolean NOT NULL);
CREATE TABLE IF NOT EXISTS pgshard.tables (
    table_schema text NOT NULL, table_name text NOT NULL, kind text NOT NULL,
    distribution_column text, colocation_group integer, shard_count integer,
    PRIMARY KEY (table_schema, table_name));
CREATE TABLE IF NOT EXISTS pgshard.mirror_version (catalog_version bigint NOT NULL);
CREATE TABLE IF NOT EXISTS pgshard.shards (
    table_schema text NOT NULL, table_name text NOT NULL, shard_index integer NOT NULL,
    shard_schema text NOT NULL, hash_min numeric NOT NULL, hash_max numeric NOT NULL,
    node_name text NOT NULL, row_estimate bigint, size_bytes bigint,
    PRIMARY KEY (table_schema, table_name, shard_index));
";

/// After a committed change, while still holding the store: loads the new catalog and makes
/// it the coordinator's snapshot at once. A failure is logged, not returned (the change
/// stands; the catalog listener catches up).
pub(crate) async fn publish(admin: &Admin<'_>, store: &mut MetadataStore) {
    match store.load().await {
        Ok(snapshot) => admin.shared.set_catalog(Arc::new(snapshot)),
        Err(e) => tracing::warn!(error = %e, "could not reload the catalog after a committed change"),
    }
}

/// [`refresh_mirror`] after a committed change: a failure is logged, not returned.
pub(crate) async fn refresh_logged(admin: &Admin<'_>) {
    if let Err(e) = refresh_mirror(admin).await {
        tracing::warn!(error = %e, "could not refresh the catalog mirror on the default node");
    }
}

/// Rebuilds `pgshard.nodes`, `pgshard.tables` and `pgshard.shards` on the default node from
/// the coordinator's current catalog snapshot, with each shard table's `reltuples` (NULL until
/// analyzed) and `pg_total_relation_size` read from its node. Rebuilds are serialized on the
/// default node and never go back in catalog version (`pgshard.mirror_version`).
pub async fn refresh_mirror(admin: &Admin<'_>) -> Result<(), CoordError> {
    let catalog = admin.shared.catalog();
    let client = connect(admin, catalog.default_node()?).await?;
    run(&client, "BEGIN").await?;
    let result = rebuild(admin, &client, &catalog).await;
    run(&client, if result.is_ok() { "COMMIT" } else { "ROLLBACK" }).await?;
    result
}

async fn rebuild(admin: &Admin<'_>, client: &Client, catalog: &CatalogSnapshot) -> Result<(), CoordError> {
    client.execute("SELECT pg_advisory_xact_lock($1)", &[&MIRROR_LOCK]).await.map_err(CoordError::from_pg)?;
    run(client, MIRROR_TABLES).await?;
    let row = client
        .query_one("SELECT coalesce(max(catalog_version), -1) FROM pgshard.mirror_version", &[])
        .await
        .map_err(CoordError::from_pg)?;
    let mirrored: i64 = row.try_get(0).map_err(CoordError::from_pg)?;
    if mirrored > catalog.version() {
        return Ok(());
    }
    let sizes = shard_sizes(admin, catalog.nodes()).await?;
    run(client, "DELETE FROM pgshard.shards; DELETE FROM pgshard.tables; DELETE FROM pgshard.nodes; DELETE FROM pgshard.mirror_version")
        .await?;
    client
        .execute("INSERT INTO pgshard.mirror_version VALUES ($1)", &[&catalog.version()])
        .await
        .map_err(CoordError::from_pg)?;
    insert_nodes(client, catalog.nodes()).await?;
    insert_tables(client, catalog).await?;
    insert_shards(client, catalog, &sizes).await
}

async fn insert_nodes(client: &Client, nodes: &[Node]) -> Result<(), CoordError> {
    let ids: Vec<i32> = nodes.iter().map(|n| n.id.0).collect();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    let hosts: Vec<&str> = nodes.iter().map(|n| n.host.as_str()).collect();
    let ports: Vec<i32> = nodes.iter().map(|n| i32::from(n.port)).collect();
    let defaults: Vec<bool> = nodes.iter().map(|n| n.is_default).collect();
    client
        .execute(
            "INSERT INTO pgshard.nodes SELECT * FROM unnest($1::int4[], $2::text[], $3::text[], $4::int4[], $5::bool[])",
            &[&ids, &names, &hosts, &ports, &defaults],
        )
        .await
        .map_err(CoordError::from_pg)?;
    Ok(())
}

async fn insert_tables(client: &Client, catalog: &CatalogSnapshot) -> Result<(), CoordError> {
    let (mut schemas, mut names, mut kinds, mut columns, mut groups, mut counts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for t in catalog.tables() {
        schemas.push(t.schema.as_str());
        names.push(t.name.as_str());
        kinds.push(t.kind.name());
        let (column, group) = match &t.kind {
            TableKind::Distributed { column, group, .. } => (Some(column.as_str()), Some(*group)),
            TableKind::Reference | TableKind::Local { .. } => (None, None),
        };
        columns.push(column);
        groups.push(group.map(|g| g.0));
        counts.push(group.and_then(|g| catalog.group(g)).and_then(|g| i32::try_from(g.shard_count).ok()));
    }
    client
        .execute(
            "INSERT INTO pgshard.tables
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::int4[])",
            &[&schemas, &names, &kinds, &columns, &groups, &counts],
        )
        .await
        .map_err(CoordError::from_pg)?;
    Ok(())
}

type Sizes = HashMap<(NodeId, String, String), (Option<i64>, i64)>;

/// The columns of `pgshard.shards`, one vector each, for one `unnest` insert.
#[derive(Default)]
struct ShardRows<'a> {
    schemas: Vec<&'a str>,
    names: Vec<&'a str>,
    indexes: Vec<i32>,
    shard_schemas: Vec<String>,
    mins: Vec<String>,
    maxs: Vec<String>,
    nodes: Vec<&'a str>,
    estimates: Vec<Option<i64>>,
    bytes: Vec<Option<i64>>,
}

async fn insert_shards(client: &Client, catalog: &CatalogSnapshot, sizes: &Sizes) -> Result<(), CoordError> {
    let mut rows = ShardRows::default();
    for t in catalog.tables() {
        let TableKind::Distributed { group, .. } = &t.kind else { continue };
        for shard in catalog.shards_of(*group) {
            let schema = shard.schema_name();
            let size = sizes.get(&(shard.node, schema.clone(), t.name.clone()));
            rows.schemas.push(&t.schema);
            rows.names.push(&t.name);
            rows.indexes.push(i32::try_from(shard.index).unwrap_or(i32::MAX));
            rows.shard_schemas.push(schema);
            rows.mins.push(shard.hash_min.to_string());
            rows.maxs.push(shard.hash_max.to_string());
            rows.nodes.push(catalog.node(shard.node).map_or("", |n| n.name.as_str()));
            rows.estimates.push(size.and_then(|s| s.0));
            rows.bytes.push(size.map(|s| s.1));
        }
    }
    let r = &rows;
    client
        .execute(
            "INSERT INTO pgshard.shards
             SELECT s, n, i, ss, lo::numeric, hi::numeric, node, est, sz
             FROM unnest($1::text[], $2::text[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::int8[], $9::int8[]) AS u(s, n, i, ss, lo, hi, node, est, sz)",
            &[&r.schemas, &r.names, &r.indexes, &r.shard_schemas, &r.mins, &r.maxs, &r.nodes, &r.estimates, &r.bytes],
        )
        .await
        .map_err(CoordError::from_pg)?;
    Ok(())
}

/// `(node, shard schema, table) -> (reltuples or NULL, total bytes)` for every shard table,
/// one catalog query per node, in parallel.
async fn shard_sizes(admin: &Admin<'_>, nodes: &[Node]) -> Result<Sizes, CoordError> {
    let per_node = join_all(nodes.iter().map(|node| async move {
        let client = connect(admin, node).await?;
        let rows = client
            .query(
                "SELECT n.nspname::text, c.relname::text,
                        CASE WHEN c.reltuples >= 0 THEN c.reltuples::int8 END, pg_total_relation_size(c.oid)
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname LIKE 'pgshard\\_g%' AND c.relkind = 'r'",
                &[],
            )
            .await
            .map_err(CoordError::from_pg)?;
        rows.iter()
            .map(|r| Ok(((node.id, r.try_get(0)?, r.try_get(1)?), (r.try_get(2)?, r.try_get(3)?))))
            .collect::<Result<Vec<_>, tokio_postgres::Error>>()
            .map_err(CoordError::from_pg)
    }))
    .await;
    let mut sizes = Sizes::new();
    for node in per_node {
        sizes.extend(node?);
    }
    Ok(sizes)
}
