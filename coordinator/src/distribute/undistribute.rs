//! `undistribute_table`: brings a distributed table's rows back into its table on the default
//! node, or drops a reference table's other copies; the table becomes undistributed.
//!
//! Distributed table, one transaction per node, all prepared, decided by the catalog commit
//! (crash rule in the module docs of [`crate::distribute`]):
//!
//! 1. Every node locks its shard tables `IN EXCLUSIVE MODE` (writers planned with the old
//!    catalog wait, then fail once the shard is gone); the default node also locks the shell
//!    and drops its guard trigger.
//! 2. The rows of every shard are streamed into the shell on the default node (one COPY).
//! 3. Every node drops its shard tables (and, when the table was the last of its colocation
//!    group, the group's shard schemas); the other nodes drop their shells.
//! 4. `PREPARE TRANSACTION` everywhere; the catalog commit (the table becomes local, an
//!    emptied group is removed) is the commit point; `COMMIT PREPARED` everywhere.
//!
//! A reference table: every other node drops its copy in a prepared transaction; the catalog
//! commit decides.

use pgshard_catalog::{CatalogSnapshot, CatalogTransaction, ColocationId, NodeId, Shard, TableKind};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::admin::{Admin, Participant, TwoPhase, abandon, connect, metadata_xid, prepare_and_commit, run};
use super::checks::{self, Relation};
use super::copy::{finish, open_sink, pipe};
use super::ddl_gen::{TableDdl, table_ddl};
use super::placement::{drop_guard_trigger, shard_table_list};
use super::sql::{ident, qualified};
use crate::error::CoordError;

/// Makes `table` (as the user wrote it) undistributed again, its rows on the default node.
/// Refuses an unknown table (42P01), one that is not distributed or reference (55000), a
/// distributed table with foreign keys to or from other distributed tables, a reference table
/// referenced by distributed or reference tables (0A000).
pub async fn undistribute_table(admin: &Admin<'_>, table: &str) -> Result<(), CoordError> {
    let mut store = admin.shared.store.lock().await;
    let catalog = store.load().await?;
    let default = catalog.default_node()?.clone();
    let reader = connect(admin, &default).await?;
    let rel = checks::resolve(&reader, table).await?;
    let Some(kind) = catalog.table(&rel.schema, &rel.name).map(|t| t.kind.clone()).filter(TableKind::is_spread) else {
        return Err(CoordError::sql(
            SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("table \"{}\" is not distributed", rel.name),
        ));
    };
    let mut ctx = store.begin().await?;
    let xid = metadata_xid(&ctx).await?;
    let mut tp = TwoPhase::new("undist", xid);
    let work = match kind {
        TableKind::Distributed { group, .. } => gather(admin, &catalog, &mut ctx, &mut tp, &reader, &rel, group).await,
        _ => drop_copies(admin, &catalog, &mut ctx, &mut tp, &reader, &rel).await,
    };
    if let Err(e) = work {
        abandon(ctx, &mut tp).await;
        return Err(e);
    }
    prepare_and_commit(admin, ctx, &mut tp, xid).await?;
    super::mirror::publish(admin, &mut store).await;
    drop(store);
    super::mirror::refresh_logged(admin).await;
    Ok(())
}

fn refused(message: String) -> CoordError {
    CoordError::sql(SqlState::FEATURE_NOT_SUPPORTED, message)
}

/// A distributed table: every shard's rows back into the shell on the default node.
async fn gather(
    admin: &Admin<'_>,
    catalog: &CatalogSnapshot,
    ctx: &mut CatalogTransaction<'_>,
    tp: &mut TwoPhase,
    reader: &Client,
    rel: &Relation,
    group: ColocationId,
) -> Result<(), CoordError> {
    let ddl = table_ddl(reader, &rel.schema, &rel.name).await?;
    colocated_fks(catalog, reader, rel, &ddl).await?;
    let default = catalog.default_node()?;
    let last_in_group = catalog.tables_in_group(group).count() <= 1;
    ctx.set_table_kind(&rel.schema, &rel.name, TableKind::Local { node: default.id }).await?;
    if last_in_group {
        ctx.remove_colocation_group(group).await?;
    }
    let shards = catalog.shards_of(group);
    let table = qualified(&rel.schema, &rel.name);
    let locker = tp.add(Participant::open(admin, default).await?).await?;
    run(&locker.client, &format!("LOCK TABLE {table} IN EXCLUSIVE MODE; {}", drop_guard_trigger(&table))).await?;
    for node in catalog.nodes().iter().filter(|n| n.id != default.id) {
        tp.add(Participant::open(admin, node).await?).await?;
    }
    for part in &tp.parts {
        let mine: Vec<&Shard> = shards.iter().filter(|s| s.node == part.node.id).collect();
        if !mine.is_empty() {
            run(&part.client, &format!("LOCK TABLE {} IN EXCLUSIVE MODE", shard_table_list(&rel.name, &mine))).await?;
        }
    }
    let columns = ddl.copy_columns();
    let mut sink = vec![open_sink(&tp.parts[0].client, &format!("COPY {table} ({columns}) FROM STDIN")).await?];
    for shard in shards {
        let source = if shard.node == default.id {
            reader
        } else {
            &tp.parts.iter().find(|p| p.node.id == shard.node).ok_or_else(|| missing(shard))?.client
        };
        let from = qualified(&shard.schema_name(), &rel.name);
        pipe(source, &format!("COPY {from} ({columns}) TO STDOUT"), &mut sink).await?;
    }
    for sink in sink {
        finish(sink).await?;
    }
    for part in &tp.parts {
        let sql = retire(&rel.name, &table, shards, part.node.id, part.node.id == default.id, last_in_group);
        if !sql.is_empty() {
            run(&part.client, &sql).await?;
        }
    }
    Ok(())
}

/// A distributed table with foreign keys to or from other distributed tables (colocated) is
/// refused (0A000): undistributed, it would break them.
async fn colocated_fks(
    catalog: &CatalogSnapshot,
    reader: &Client,
    rel: &Relation,
    ddl: &TableDdl,
) -> Result<(), CoordError> {
    if let Some(r) = checks::referencing(reader, rel.oid).await?.first() {
        return Err(refused(format!(
            "cannot undistribute \"{}\": table \"{}\" references it through foreign key \"{}\"",
            rel.name, r.name, r.constraint
        ))
        .with_hint("Drop the foreign key first."));
    }
    for fk in ddl.foreign_keys.iter().filter(|fk| fk.referenced_oid != rel.oid) {
        let kind = catalog.table(&fk.referenced_schema, &fk.referenced_name).map(|t| &t.kind);
        if matches!(kind, Some(TableKind::Distributed { .. })) {
            return Err(refused(format!(
                "cannot undistribute \"{}\": its foreign key \"{}\" references distributed table \"{}\"",
                rel.name, fk.name, fk.referenced_name
            ))
            .with_hint("Drop the foreign key first."));
        }
    }
    Ok(())
}

/// What one node drops once the rows are gathered: its shard tables, its shell (not on the
/// default node) and, when the group is going away, its shard schemas.
fn retire(name: &str, shell: &str, shards: &[Shard], node: NodeId, is_default: bool, last_in_group: bool) -> String {
    let mine: Vec<&Shard> = shards.iter().filter(|s| s.node == node).collect();
    let mut sql = Vec::new();
    if !mine.is_empty() {
        sql.push(format!("DROP TABLE {}", shard_table_list(name, &mine)));
    }
    if !is_default {
        sql.push(format!("DROP TABLE IF EXISTS {shell}"));
    }
    if last_in_group {
        sql.extend(mine.iter().map(|s| format!("DROP SCHEMA IF EXISTS {} CASCADE", ident(&s.schema_name()))));
    }
    sql.join("; ")
}

fn missing(shard: &Shard) -> CoordError {
    CoordError::sql(
        SqlState::INTERNAL_ERROR,
        format!("shard {} is on a node without a participant", shard.schema_name()),
    )
}

/// A reference table: every copy but the default node's is dropped.
async fn drop_copies(
    admin: &Admin<'_>,
    catalog: &CatalogSnapshot,
    ctx: &mut CatalogTransaction<'_>,
    tp: &mut TwoPhase,
    reader: &Client,
    rel: &Relation,
) -> Result<(), CoordError> {
    for r in checks::referencing(reader, rel.oid).await? {
        if catalog.table(&r.schema, &r.name).is_some_and(|t| t.kind.is_spread()) {
            return Err(refused(format!(
                "cannot undistribute \"{}\": table \"{}\" references it through foreign key \"{}\"",
                rel.name, r.name, r.constraint
            ))
            .with_detail("Distributed and reference tables can reference only reference tables.")
            .with_hint("Drop the foreign key first."));
        }
    }
    let default = catalog.default_node()?;
    ctx.set_table_kind(&rel.schema, &rel.name, TableKind::Local { node: default.id }).await?;
    let table = qualified(&rel.schema, &rel.name);
    for node in catalog.nodes().iter().filter(|n| n.id != default.id) {
        let part = tp.add(Participant::open(admin, node).await?).await?;
        run(&part.client, &format!("DROP TABLE IF EXISTS {table}")).await?;
    }
    Ok(())
}
