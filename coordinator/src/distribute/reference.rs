//! `create_reference_table`: copies an undistributed table whole to every other data node,
//! under its own schema and name; every copy is live afterwards (no guard).
//!
//! Phases (crash rules in the module docs of [`crate::distribute`] and [`super::placement`]):
//!
//! 0. Checks, then `LOCK TABLE ... IN EXCLUSIVE MODE` on the default node in a transaction
//!    prepared with the others (it holds the lock to the end). The catalog change is written
//!    in the metadata transaction.
//! 1. Create-before, committed per node: an empty copy on every other node (schema,
//!    sequences, table, constraints, indexes, foreign keys to other reference tables).
//! 2. Prepare, one transaction per other node: TRUNCATE the copy (its lock held until COMMIT
//!    PREPARED), COPY every row into it, streamed from the default node.
//! 3. The catalog commit: the commit point.
//! 4. `COMMIT PREPARED` everywhere, then the new catalog snapshot and the mirror.

use futures::future::join_all;
use pgshard_catalog::{CatalogSnapshot, CatalogTransaction, Node, Table, TableKind};
use tokio_postgres::Client;

use super::admin::{Admin, Participant, TwoPhase, abandon, connect, metadata_xid, prepare_and_commit, run};
use super::checks::{self, Relation};
use super::copy::{finish, open_sink, pipe};
use super::ddl_gen::{TableDdl, table_ddl};
use super::placement::ensure_empty_copy;
use crate::error::CoordError;

/// Makes `table` (as the user wrote it) a reference table. Refuses an unknown table (42P01),
/// one already placed (42P07), anything but an ordinary permanent table (0A000), a foreign key
/// to anything but a reference table (0A000).
pub async fn create_reference_table(admin: &Admin<'_>, table: &str) -> Result<(), CoordError> {
    let mut store = admin.shared.store.lock().await;
    let catalog = store.load().await?;
    let default = catalog.default_node()?.clone();
    let reader = connect(admin, &default).await?;
    let rel = checks::resolve(&reader, table).await?;
    let mut ctx = store.begin().await?;
    let xid = metadata_xid(&ctx).await?;
    let mut tp = TwoPhase::new("ref", xid);
    if let Err(e) = replicate(admin, &catalog, &mut ctx, &mut tp, &reader, &rel).await {
        abandon(ctx, &mut tp).await;
        return Err(e);
    }
    prepare_and_commit(admin, ctx, &mut tp, xid).await?;
    super::mirror::publish(admin, &mut store).await;
    drop(store);
    super::mirror::refresh_logged(admin).await;
    Ok(())
}

/// Phases 0 to 2; the caller prepares and commits.
async fn replicate(
    admin: &Admin<'_>,
    catalog: &CatalogSnapshot,
    ctx: &mut CatalogTransaction<'_>,
    tp: &mut TwoPhase,
    reader: &Client,
    rel: &Relation,
) -> Result<(), CoordError> {
    let existing = catalog.table(&rel.schema, &rel.name);
    let default = catalog.default_node()?;
    checks::placeable(existing, default, rel, "make a reference table of")?;
    checks::ordinary(rel, "make a reference table of")?;
    let locker = tp.add(Participant::open(admin, default).await?).await?;
    let table = super::sql::qualified(&rel.schema, &rel.name);
    run(&locker.client, &format!("LOCK TABLE {table} IN EXCLUSIVE MODE")).await?;
    let ddl = table_ddl(reader, &rel.schema, &rel.name).await?;
    checks::reference_fks(catalog, &ddl, rel)?;
    match existing {
        Some(_) => drop(ctx.set_table_kind(&rel.schema, &rel.name, TableKind::Reference).await?),
        None => {
            ctx.add_table(&Table { schema: rel.schema.clone(), name: rel.name.clone(), kind: TableKind::Reference })
                .await?
        }
    }
    let others: Vec<&Node> = catalog.nodes().iter().filter(|n| n.id != default.id).collect();
    if others.is_empty() {
        return Ok(());
    }
    create_copies(admin, &others, &ddl).await?;
    let mut sinks = Vec::with_capacity(others.len());
    let copy_in = format!("COPY {table} ({}) FROM STDIN", ddl.copy_columns());
    for node in others {
        let part = tp.add(Participant::open(admin, node).await?).await?;
        run(&part.client, &format!("TRUNCATE {table}")).await?;
        sinks.push(open_sink(&part.client, &copy_in).await?);
    }
    pipe(reader, &format!("COPY {table} ({}) TO STDOUT", ddl.copy_columns()), &mut sinks).await?;
    for sink in sinks {
        finish(sink).await?;
    }
    Ok(())
}

/// Phase 1: an empty copy on each node, in parallel, each committed on its own.
async fn create_copies(admin: &Admin<'_>, nodes: &[&Node], ddl: &TableDdl) -> Result<(), CoordError> {
    let work = nodes.iter().map(|node| async move {
        let client = connect(admin, node).await?;
        run(&client, "BEGIN").await?;
        let result = ensure_empty_copy(&client, node, ddl).await;
        run(&client, if result.is_ok() { "COMMIT" } else { "ROLLBACK" }).await?;
        result
    });
    join_all(work).await.into_iter().collect()
}
