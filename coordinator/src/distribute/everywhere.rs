//! Running DDL on several data nodes so that it takes effect on all or on none.
//!
//! [`apply_everywhere`]: one transaction per node, run in parallel, then `PREPARE TRANSACTION`
//! on each, then a metadata-store commit (the commit point: it also bumps the catalog version,
//! so every coordinator re-reads the catalog after a schema change), then `COMMIT PREPARED`
//! on each. A failure before the commit point rolls every node back. Crash rule: a prepared
//! transaction left behind is decided by the metadata-store transaction its gid names
//! ([`crate::dtx::recover`]).
//!
//! [`apply_each_without_transaction`]: for `CREATE INDEX CONCURRENTLY`, which cannot run in a
//! transaction block: node after node; after a failure, the indexes already built are dropped
//! again (best effort), as is the invalid index the failed build leaves behind.

use futures::future::join_all;
use pgshard_catalog::{CatalogError, Node, NodeId};
use tokio_postgres::Client;

use super::admin::{Admin, Participant, TwoPhase, abandon, connect, metadata_xid, prepare_and_commit, run};
use crate::error::CoordError;

/// Runs each node's statements (in order) in one transaction per node, all nodes in parallel,
/// committed everywhere or nowhere by two-phase commit. A node's error is returned as the node
/// sent it (the first in `work` order when several fail). Takes the catalog lock: not to be
/// called while holding `shared.store`.
pub async fn apply_everywhere(admin: &Admin<'_>, work: Vec<(NodeId, Vec<String>)>) -> Result<(), CoordError> {
    apply_everywhere_dropping(admin, work, &[]).await
}

/// [`apply_everywhere`] for a statement that drops managed tables: `drops` (schema, name) leave
/// the catalog in the same metadata-store transaction, the commit point of the DDL.
pub async fn apply_everywhere_dropping(
    admin: &Admin<'_>,
    work: Vec<(NodeId, Vec<String>)>,
    drops: &[(String, String)],
) -> Result<(), CoordError> {
    let work = resolve_nodes(admin, work)?;
    if work.is_empty() {
        return Ok(());
    }
    let mut store = admin.shared.store.lock().await;
    let mut ctx = store.begin().await?;
    ctx.mark_changed();
    for (schema, name) in drops {
        if let Err(e) = ctx.remove_table(schema, name).await {
            let _ = ctx.rollback().await;
            return Err(e.into());
        }
    }
    let xid = metadata_xid(&ctx).await?;
    let mut tp = TwoPhase::new("ddl", xid);
    if let Err(e) = run_all(admin, &mut tp, &work).await {
        abandon(ctx, &mut tp).await;
        return Err(e);
    }
    prepare_and_commit(admin, ctx, &mut tp, xid).await?;
    super::mirror::publish(admin, &mut store).await;
    Ok(())
}

/// The catalog's node for each entry (unknown: 42704), statements of a node listed twice
/// merged in order.
fn resolve_nodes(admin: &Admin<'_>, work: Vec<(NodeId, Vec<String>)>) -> Result<Vec<(Node, Vec<String>)>, CoordError> {
    let catalog = admin.shared.catalog();
    let mut out: Vec<(Node, Vec<String>)> = Vec::new();
    for (id, statements) in work {
        let node = catalog.node(id).ok_or(CatalogError::UndefinedNode(id))?;
        match out.iter_mut().find(|(n, _)| n.id == id) {
            Some((_, list)) => list.extend(statements),
            None => out.push((node.clone(), statements)),
        }
    }
    Ok(out)
}

async fn run_all(admin: &Admin<'_>, tp: &mut TwoPhase, work: &[(Node, Vec<String>)]) -> Result<(), CoordError> {
    let opened = join_all(work.iter().map(|(node, _)| async move {
        let mut part = Participant::open(admin, node).await?;
        part.begin().await?;
        Ok::<_, CoordError>(part)
    }))
    .await;
    let mut first_error = None;
    for part in opened {
        match part {
            Ok(part) => tp.parts.push(part),
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let results = join_all(tp.parts.iter().zip(work).map(|(part, (_, statements))| async move {
        for statement in statements {
            run(&part.client, statement).await?;
        }
        Ok::<_, CoordError>(())
    }))
    .await;
    results.into_iter().collect()
}

/// One `CREATE INDEX CONCURRENTLY` statement and the index it builds.
#[derive(Debug, Clone)]
pub struct ConcurrentIndex {
    /// The statement.
    pub sql: String,
    /// The index's qualified, quoted name (`pgshard_g1_s0.orders_w_idx`), to drop it again.
    pub index: String,
}

/// Runs statements that cannot run in a transaction block, node after node, each on its own.
/// On a failure, drops (best effort, `DROP INDEX CONCURRENTLY IF EXISTS`) the indexes already
/// built on every node, and the failed build's index if it was left invalid; then returns the
/// node's error as it sent it.
pub async fn apply_each_without_transaction(
    admin: &Admin<'_>,
    work: Vec<(NodeId, Vec<ConcurrentIndex>)>,
) -> Result<(), CoordError> {
    let catalog = admin.shared.catalog();
    let mut built: Vec<(Node, String)> = Vec::new();
    for (id, items) in work {
        let Some(node) = catalog.node(id) else {
            undo(admin, &built).await;
            return Err(CatalogError::UndefinedNode(id).into());
        };
        let client = match connect(admin, node).await {
            Ok(c) => c,
            Err(e) => {
                undo(admin, &built).await;
                return Err(e);
            }
        };
        for item in items {
            if let Err(e) = run(&client, &item.sql).await {
                drop_if_invalid(&client, node, &item.index).await;
                undo(admin, &built).await;
                return Err(e);
            }
            built.push((node.clone(), item.index));
        }
    }
    Ok(())
}

async fn drop_index(client: &Client, node: &Node, index: &str) {
    if let Err(e) = run(client, &format!("DROP INDEX CONCURRENTLY IF EXISTS {index}")).await {
        tracing::warn!(node = %node.name, index, error = %e, "could not drop an index after a failed build");
    }
}

/// A failed concurrent build leaves its index behind, invalid; one that already existed (the
/// cause of the failure, say) is valid and stays.
async fn drop_if_invalid(client: &Client, node: &Node, index: &str) {
    let invalid = client
        .query_opt(
            "SELECT 1 FROM pg_catalog.pg_index WHERE indexrelid = pg_catalog.to_regclass($1) AND NOT indisvalid",
            &[&index],
        )
        .await;
    if matches!(invalid, Ok(Some(_))) {
        drop_index(client, node, index).await;
    }
}

async fn undo(admin: &Admin<'_>, built: &[(Node, String)]) {
    for (node, index) in built {
        match connect(admin, node).await {
            Ok(client) => drop_index(&client, node, index).await,
            Err(e) => {
                tracing::warn!(node = %node.name, index, error = %e, "could not drop an index after a failed build")
            }
        }
    }
}
