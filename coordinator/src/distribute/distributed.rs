//! `create_distributed_table`: hashes an undistributed table's rows into the shards of a
//! colocation group and leaves the original as the empty, guarded shell.
//!
//! Phases (crash rules in the module docs of [`crate::distribute`] and [`super::placement`]):
//!
//! 0. Checks, then `LOCK TABLE ... IN EXCLUSIVE MODE` on the default node in the transaction
//!    that will be prepared (readers go on; writers wait and, once the table is distributed,
//!    fail on the guard). The catalog change (new group, table kind) is written now in the
//!    metadata transaction but is not visible until its commit.
//! 1. Create-before, committed per node: the guard function; on every other node the shell
//!    (with its guard trigger); on every node the schemas and empty tables of its shards.
//! 2. Prepare, one transaction per node: TRUNCATE the node's shard tables (their lock is held
//!    until COMMIT PREPARED, so a reader with the new catalog waits for the rows), COPY the
//!    rows into them in chunks of about 1 MiB per shard; on the default node also TRUNCATE
//!    the original and put the guard trigger on it. `PREPARE TRANSACTION` everywhere.
//! 3. The catalog commit: the commit point. A crash before it rolls every prepared part back
//!    (the original keeps its rows); after it, every prepared part commits.
//! 4. `COMMIT PREPARED` everywhere, then the new catalog snapshot and the mirror.

use futures::StreamExt;
use futures::future::join_all;
use pgshard_catalog::hash::DistType;
use pgshard_catalog::{
    CatalogSnapshot, CatalogTransaction, ColocationGroup, MAX_SHARD_COUNT, Node, Shard, Table, TableKind,
};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::admin::{Admin, Participant, TwoPhase, abandon, connect, metadata_xid, prepare_and_commit, run};
use super::checks::{self, FkTarget, Relation};
use super::copy::{ShardRouter, write_chunk};
use super::ddl_gen::{TableDdl, table_ddl};
use super::placement::{
    GUARD_FUNCTION, clear_shard_tables, create_shard_tables, ensure_empty_copy, guard_trigger, shard_table_list,
};
use super::sql::qualified;
use crate::error::CoordError;

/// Shards of a new colocation group when the caller does not say (Citus's default).
pub const DEFAULT_SHARD_COUNT: i64 = 32;

/// Distributes `table` (as the user wrote it) on `column` into `shard_count` shards (default
/// [`DEFAULT_SHARD_COUNT`]), colocated per `colocate_with`: `default` (or `None`: the oldest
/// group with the same shard count and column type, else a new one), `none` (a new group), or
/// a distributed table's name (its group). See the module docs for the phases and refusals.
pub async fn create_distributed_table(
    admin: &Admin<'_>,
    table: &str,
    column: &str,
    shard_count: Option<i64>,
    colocate_with: Option<&str>,
) -> Result<(), CoordError> {
    let count = shard_count_arg(shard_count)?;
    let column = super::sql::unquote_column(column);
    let mut store = admin.shared.store.lock().await;
    let catalog = store.load().await?;
    let default = catalog.default_node()?.clone();
    let reader = connect(admin, &default).await?;
    let rel = checks::resolve(&reader, table).await?;
    let mut ctx = store.begin().await?;
    let xid = metadata_xid(&ctx).await?;
    let mut tp = TwoPhase::new("dist", xid);
    let args = Args { rel: &rel, column: &column, count, shard_count, colocate_with };
    if let Err(e) = distribute(admin, &catalog, &mut ctx, &mut tp, &reader, args).await {
        abandon(ctx, &mut tp).await;
        return Err(e);
    }
    prepare_and_commit(admin, ctx, &mut tp, xid).await?;
    super::mirror::publish(admin, &mut store).await;
    drop(store);
    super::mirror::refresh_logged(admin).await;
    Ok(())
}

struct Args<'a> {
    rel: &'a Relation,
    column: &'a str,
    count: u32,
    shard_count: Option<i64>,
    colocate_with: Option<&'a str>,
}

/// 1..=64000 (22023 otherwise).
fn shard_count_arg(shard_count: Option<i64>) -> Result<u32, CoordError> {
    let count = shard_count.unwrap_or(DEFAULT_SHARD_COUNT);
    u32::try_from(count).ok().filter(|c| (1..=MAX_SHARD_COUNT).contains(c)).ok_or_else(|| {
        CoordError::sql(
            SqlState::INVALID_PARAMETER_VALUE,
            format!("shard_count must be between 1 and {MAX_SHARD_COUNT}, not {count}"),
        )
    })
}

/// Phases 0 to 2; the caller prepares and commits.
async fn distribute(
    admin: &Admin<'_>,
    catalog: &CatalogSnapshot,
    ctx: &mut CatalogTransaction<'_>,
    tp: &mut TwoPhase,
    reader: &Client,
    args: Args<'_>,
) -> Result<(), CoordError> {
    let rel = args.rel;
    let existing = catalog.table(&rel.schema, &rel.name);
    let default = catalog.default_node()?;
    checks::placeable(existing, default, rel, "distribute")?;
    checks::ordinary(rel, "distribute")?;
    let table = qualified(&rel.schema, &rel.name);
    let locker = tp.add(Participant::open(admin, default).await?).await?;
    run(&locker.client, &format!("LOCK TABLE {table} IN EXCLUSIVE MODE")).await?;

    let ddl = table_ddl(reader, &rel.schema, &rel.name).await?;
    let (dist, dist_type) = checks::dist_column(&ddl, rel, args.column)?;
    checks::unique_keys(&ddl, rel, dist)?;
    let group = choose_group(reader, catalog, ctx, &args, dist_type).await?;
    let fk_targets = checks::distributed_fks(reader, catalog, &ddl, rel, dist, group.as_ref().map(|g| g.id)).await?;
    checks::not_referenced(reader, rel).await?;
    checks::no_views(reader, rel).await?;

    let group = match group {
        Some(g) => g,
        None => {
            // The default node answers for the schema (psql's \d, drivers' catalog queries):
            // shards go to the other nodes, so no shard schema shows there; a one-node
            // cluster has no choice.
            let nodes: Vec<_> = catalog.nodes().iter().filter(|n| !n.is_default).map(|n| n.id).collect();
            let nodes = if nodes.is_empty() { catalog.nodes().iter().map(|n| n.id).collect() } else { nodes };
            ctx.create_colocation_group(args.count, dist_type, &nodes).await?
        }
    };
    let shards = ctx.shards(group.id).await?;
    let kind = TableKind::Distributed { column: dist.name.clone(), dist_type, group: group.id };
    match existing {
        Some(_) => drop(ctx.set_table_kind(&rel.schema, &rel.name, kind).await?),
        None => ctx.add_table(&Table { schema: rel.schema.clone(), name: rel.name.clone(), kind }).await?,
    }

    create_before(admin, catalog.nodes(), default, reader, &ddl, &shards, &fk_targets).await?;
    for node in catalog.nodes().iter().filter(|n| n.id != default.id) {
        tp.add(Participant::open(admin, node).await?).await?;
    }
    for part in &tp.parts {
        let mine: Vec<&Shard> = shards.iter().filter(|s| s.node == part.node.id).collect();
        if !mine.is_empty() {
            run(&part.client, &format!("TRUNCATE {}", shard_table_list(&rel.name, &mine))).await?;
            run(&part.client, super::sequences::RANGES_SQL).await?;
        }
    }
    let position = ddl.copy_position(dist.attnum).ok_or_else(|| internal("distribution column not copied"))?;
    copy_rows(tp, reader, &ddl, &shards, dist_type, position).await?;
    let locker = tp.get(default.id).map(|p| &p.client).ok_or_else(|| internal("no default-node participant"))?;
    run(locker, &format!("TRUNCATE {table}; {}", guard_trigger(&table))).await
}

fn internal(what: &str) -> CoordError {
    CoordError::sql(SqlState::INTERNAL_ERROR, what.to_owned())
}

/// The group the table joins (`None`: a new one).
async fn choose_group(
    reader: &Client,
    catalog: &CatalogSnapshot,
    ctx: &CatalogTransaction<'_>,
    args: &Args<'_>,
    dist_type: DistType,
) -> Result<Option<ColocationGroup>, CoordError> {
    let rel = args.rel;
    let with = args.colocate_with.unwrap_or("default");
    let group = if with.eq_ignore_ascii_case("none") {
        None
    } else if with.eq_ignore_ascii_case("default") {
        match ctx.find_colocation_group(args.count, dist_type).await? {
            Some(id) => ctx.group(id).await?,
            None => None,
        }
    } else {
        Some(colocated_group(reader, catalog, rel, with, dist_type, args.shard_count).await?)
    };
    if let Some(group) = &group {
        let clash = catalog.tables_in_group(group.id).find(|t| t.name == rel.name);
        if let Some(clash) = clash {
            return Err(CoordError::sql(
                SqlState::DUPLICATE_TABLE,
                format!(
                    "cannot colocate \"{}.{}\" with \"{}\": shards keep the tables of a colocation group under their own names",
                    rel.schema,
                    rel.name,
                    clash.display_name()
                ),
            )
            .with_hint("Use colocate_with => 'none' or rename the table."));
        }
    }
    Ok(group)
}

/// The group of the table named by `colocate_with`: it must be distributed (55000) on the
/// same type (42804), with the same shard count if one was given (22023).
async fn colocated_group(
    reader: &Client,
    catalog: &CatalogSnapshot,
    rel: &Relation,
    with: &str,
    dist_type: DistType,
    shard_count: Option<i64>,
) -> Result<ColocationGroup, CoordError> {
    let other = checks::resolve(reader, with).await?;
    let Some(TableKind::Distributed { group, dist_type: theirs, .. }) =
        catalog.table(&other.schema, &other.name).map(|t| &t.kind)
    else {
        return Err(CoordError::sql(
            SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("cannot colocate \"{}\" with \"{}\": it is not distributed", rel.name, other.name),
        ));
    };
    let group = catalog.group(*group).cloned().ok_or_else(|| internal("colocation group missing from the catalog"))?;
    if *theirs != dist_type {
        return Err(CoordError::sql(
            SqlState::DATATYPE_MISMATCH,
            format!("cannot colocate tables {} and {}", other.name, rel.name),
        )
        .with_detail(format!(
            "Distribution column types don't match for {} ({theirs}) and {} ({dist_type}).",
            other.name, rel.name
        )));
    }
    if let Some(count) = shard_count.filter(|c| *c != i64::from(group.shard_count)) {
        return Err(CoordError::sql(
            SqlState::INVALID_PARAMETER_VALUE,
            format!(
                "cannot colocate \"{}\" with \"{}\" in {count} shards: it has {}",
                rel.name, other.name, group.shard_count
            ),
        ));
    }
    Ok(group)
}

/// Phase 1 on every node, in parallel: guard function, shell (other nodes), shard tables.
async fn create_before(
    admin: &Admin<'_>,
    nodes: &[Node],
    default: &Node,
    reader: &Client,
    ddl: &TableDdl,
    shards: &[Shard],
    fk_targets: &[FkTarget],
) -> Result<(), CoordError> {
    let mut others = Vec::new();
    for node in nodes.iter().filter(|n| n.id != default.id) {
        others.push((node, connect(admin, node).await?));
    }
    let work = std::iter::once((default, reader)).chain(others.iter().map(|(n, c)| (*n, c))).map(
        |(node, client)| async move {
            run(client, "BEGIN").await?;
            let result = create_on_node(client, node, node.id == default.id, ddl, shards, fk_targets).await;
            run(client, if result.is_ok() { "COMMIT" } else { "ROLLBACK" }).await?;
            result
        },
    );
    join_all(work).await.into_iter().collect()
}

async fn create_on_node(
    client: &Client,
    node: &Node,
    is_default: bool,
    ddl: &TableDdl,
    shards: &[Shard],
    fk_targets: &[FkTarget],
) -> Result<(), CoordError> {
    run(client, GUARD_FUNCTION).await?;
    let mine: Vec<&Shard> = shards.iter().filter(|s| s.node == node.id).collect();
    run(client, &clear_shard_tables(ddl, &mine).join("; ")).await?;
    if !is_default {
        ensure_empty_copy(client, node, ddl).await?;
        run(client, &guard_trigger(&ddl.qualified())).await?;
    }
    for statement in create_shard_tables(ddl, &mine, fk_targets)? {
        run(client, &statement).await?;
    }
    Ok(())
}

/// Streams the original's rows from the default node into their shards, each shard's rows
/// written in chunks of about 1 MiB, one COPY per chunk, in the node's prepared transaction.
async fn copy_rows(
    tp: &TwoPhase,
    reader: &Client,
    ddl: &TableDdl,
    shards: &[Shard],
    dist_type: DistType,
    position: usize,
) -> Result<u64, CoordError> {
    let columns = ddl.copy_columns();
    let targets: Vec<(&Client, String)> = shards
        .iter()
        .map(|s| {
            let part =
                tp.parts.iter().find(|p| p.node.id == s.node).ok_or_else(|| internal("no participant for a shard"))?;
            Ok((&part.client, format!("COPY {} ({columns}) FROM STDIN", qualified(&s.schema_name(), &ddl.name))))
        })
        .collect::<Result<_, CoordError>>()?;
    let stream = reader
        .copy_out(&format!("COPY {} ({columns}) TO STDOUT", ddl.qualified()))
        .await
        .map_err(CoordError::from_pg)?;
    let mut stream = std::pin::pin!(stream);
    let mut router = ShardRouter::new(shards, dist_type, position);
    while let Some(chunk) = stream.next().await {
        router.route(&chunk.map_err(CoordError::from_pg)?)?;
        for i in router.ready() {
            write_chunk(targets[i].0, &targets[i].1, router.take(i)).await?;
        }
    }
    for i in router.finish()? {
        write_chunk(targets[i].0, &targets[i].1, router.take(i)).await?;
    }
    Ok(router.rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_must_be_in_range() {
        assert_eq!(shard_count_arg(None).unwrap(), 32);
        assert_eq!(shard_count_arg(Some(64_000)).unwrap(), 64_000);
        for bad in [0, -1, 64_001, i64::MAX] {
            assert_eq!(shard_count_arg(Some(bad)).unwrap_err().sqlstate().code(), "22023");
        }
    }
}
