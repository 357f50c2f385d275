//! What must hold before a table is placed, each refusal with the SQLSTATE PostgreSQL (or
//! Citus, for the same situation) uses: the table exists and is an ordinary table, the
//! distribution column exists and can be hashed, unique constraints include it, foreign keys
//! can be enforced shard by shard, no view reads the table's shell.

use pgshard_catalog::hash::DistType;
use pgshard_catalog::{CatalogError, CatalogSnapshot, ColocationId, Node, Table, TableKind};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::ddl_gen::{Column, ForeignKey, TableDdl};
use crate::error::CoordError;

/// A table as the default node resolved the user's name for it.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    relkind: String,
    persistence: String,
    is_partition: bool,
    inherits: bool,
}

/// Resolves `table` as the user wrote it (maybe qualified, maybe quoted) with the default
/// node's rules (its `search_path`); unknown is 42P01.
pub(crate) async fn resolve(client: &Client, table: &str) -> Result<Relation, CoordError> {
    let row = client
        .query_opt(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relpersistence::text,
                    c.relispartition,
                    EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid OR i.inhparent = c.oid)
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = pg_catalog.to_regclass($1)",
            &[&table],
        )
        .await
        .map_err(CoordError::from_pg)?;
    let Some(row) = row else {
        return Err(CoordError::sql(SqlState::UNDEFINED_TABLE, format!("relation \"{table}\" does not exist")));
    };
    let get = || -> Result<Relation, tokio_postgres::Error> {
        Ok(Relation {
            oid: row.try_get(0)?,
            schema: row.try_get(1)?,
            name: row.try_get(2)?,
            relkind: row.try_get(3)?,
            persistence: row.try_get(4)?,
            is_partition: row.try_get(5)?,
            inherits: row.try_get(6)?,
        })
    };
    get().map_err(CoordError::from_pg)
}

fn unsupported(message: String) -> CoordError {
    CoordError::sql(SqlState::FEATURE_NOT_SUPPORTED, message)
}

/// Only ordinary, permanent tables outside pgshard's and the system's schemas (0A000).
pub(crate) fn ordinary(rel: &Relation, verb: &str) -> Result<(), CoordError> {
    let what = match rel.relkind.as_str() {
        "r" => None,
        "p" => Some("it is a partitioned table"),
        "v" => Some("it is a view"),
        "m" => Some("it is a materialized view"),
        "f" => Some("it is a foreign table"),
        "S" => Some("it is a sequence"),
        _ => Some("it is not a table"),
    };
    let what = what
        .or(rel.is_partition.then_some("it is a partition"))
        .or(rel.inherits.then_some("it takes part in table inheritance"))
        .or((rel.persistence == "t").then_some("it is a temporary table"))
        .or(reserved_schema(&rel.schema).then_some("its schema belongs to pgshard or the system"));
    match what {
        Some(what) => Err(unsupported(format!("cannot {verb} \"{}\": {what}", rel.name))),
        None => Ok(()),
    }
}

/// The catalog must not place the table yet (42P07), or hold it undistributed on the default
/// node, where the rows are read from (0A000 for another node).
pub(crate) fn placeable(
    existing: Option<&Table>,
    default: &Node,
    rel: &Relation,
    verb: &str,
) -> Result<(), CoordError> {
    match existing.map(|t| (t, &t.kind)) {
        Some((t, kind)) if kind.is_spread() => {
            Err(CatalogError::DuplicateTable { table: t.display_name(), kind: kind.described() }.into())
        }
        Some((_, TableKind::Local { node })) if *node != default.id => Err(unsupported(format!(
            "cannot {verb} \"{}\": its rows are on data node {node}, not on the default node",
            rel.name
        ))),
        _ => Ok(()),
    }
}

fn reserved_schema(schema: &str) -> bool {
    schema == "pgshard"
        || schema.starts_with(pgshard_catalog::SHARD_SCHEMA_PREFIX)
        || schema.starts_with("pg_")
        || schema == "information_schema"
}

/// The distribution column: exists (42703), is stored (0A000), has a hashable type (the hash
/// module's code), compares bytewise (0A000).
pub(crate) fn dist_column<'a>(
    ddl: &'a TableDdl,
    rel: &Relation,
    name: &str,
) -> Result<(&'a Column, DistType), CoordError> {
    let column = ddl.column(name).ok_or_else(|| {
        CoordError::sql(
            SqlState::UNDEFINED_COLUMN,
            format!("column \"{name}\" of relation \"{}\" does not exist", rel.name),
        )
    })?;
    if column.generated {
        return Err(unsupported(format!("cannot distribute \"{}\" on generated column \"{name}\"", rel.name)));
    }
    let ty = DistType::from_type_name(&column.type_name).map_err(|e| CoordError::sql(e.code(), e.to_string()))?;
    if !column.deterministic {
        return Err(unsupported(format!(
            "cannot distribute \"{}\" on column \"{name}\": its collation is nondeterministic",
            rel.name
        )));
    }
    Ok((column, ty))
}

/// PRIMARY KEY, UNIQUE and EXCLUDE constraints and unique indexes must include the
/// distribution column (EXCLUDE with `=` on it), or rows with equal keys in different shards
/// would escape them (0A000, Citus's wording; the hint names the constraint).
pub(crate) fn unique_keys(ddl: &TableDdl, rel: &Relation, dist: &Column) -> Result<(), CoordError> {
    let attnum = dist.attnum;
    let constraint = ddl.constraints.iter().find(|c| match c.kind.as_str() {
        "p" | "u" => !c.columns.contains(&attnum),
        "x" => !c.columns.iter().zip(&c.operators).any(|(col, op)| *col == attnum && op == "="),
        _ => false,
    });
    let index = ddl.indexes.iter().find(|i| i.unique && !i.key_columns.contains(&attnum));
    let culprit = match (constraint, index) {
        (Some(c), _) => format!("constraint \"{}\"", c.name),
        (None, Some(i)) => format!("unique index \"{}\"", i.name),
        (None, None) => return Ok(()),
    };
    Err(unsupported(format!("cannot create constraint on \"{}\"", rel.name))
        .with_detail(
            "Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY constraints that do not include \
             the partition column (with an equality operator if EXCLUDE).",
        )
        .with_hint(format!("{culprit} does not include the distribution column \"{}\".", dist.name)))
}

/// Where a foreign key of a placed table points on the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FkTarget {
    /// A colocated table (or the table itself): the table of the same name in the same shard.
    SameShard,
    /// A reference table: its copy on the same node, under its own name.
    Reference,
}

fn fk_refused(fk: &ForeignKey, rel: &Relation, why: String) -> CoordError {
    unsupported("cannot create foreign key constraint since relations are not colocated or not referencing a reference table".into())
        .with_detail(format!(
            "Foreign key \"{}\" of \"{}\" references \"{}\", {why}.",
            fk.name, rel.name, fk.referenced_name
        ))
        .with_hint("A distributed table can reference only reference tables and colocated distributed tables, on the distribution column.")
}

/// Foreign keys of a table about to be distributed in `group` on `dist`: each must point at a
/// reference table, or at a table of the same group (or itself) with the distribution columns
/// matched (0A000 otherwise).
pub(crate) async fn distributed_fks(
    client: &Client,
    catalog: &CatalogSnapshot,
    ddl: &TableDdl,
    rel: &Relation,
    dist: &Column,
    group: Option<ColocationId>,
) -> Result<Vec<FkTarget>, CoordError> {
    let mut targets = Vec::with_capacity(ddl.foreign_keys.len());
    for fk in &ddl.foreign_keys {
        let matched =
            |their: i16| fk.columns.iter().zip(&fk.referenced_columns).any(|(a, b)| *a == dist.attnum && *b == their);
        if fk.referenced_oid == ddl.oid {
            if !matched(dist.attnum) {
                return Err(fk_refused(fk, rel, "itself, not on the distribution column".into()));
            }
            targets.push(FkTarget::SameShard);
            continue;
        }
        match catalog.table(&fk.referenced_schema, &fk.referenced_name).map(|t| &t.kind) {
            Some(TableKind::Reference) => targets.push(FkTarget::Reference),
            Some(TableKind::Distributed { column, group: theirs, .. }) => {
                if group != Some(*theirs) {
                    return Err(fk_refused(fk, rel, "which is not colocated with it".into()));
                }
                if !matched(attnum(client, fk.referenced_oid, column).await?) {
                    return Err(fk_refused(fk, rel, format!("not on its distribution column \"{column}\"")));
                }
                targets.push(FkTarget::SameShard);
            }
            Some(TableKind::Local { .. }) | None => {
                return Err(fk_refused(fk, rel, "which is not distributed".into()));
            }
        }
    }
    Ok(targets)
}

/// Foreign keys of a table about to become a reference table: each must point at a reference
/// table or at itself (0A000).
pub(crate) fn reference_fks(catalog: &CatalogSnapshot, ddl: &TableDdl, rel: &Relation) -> Result<(), CoordError> {
    for fk in &ddl.foreign_keys {
        let to_reference = fk.referenced_oid == ddl.oid
            || matches!(
                catalog.table(&fk.referenced_schema, &fk.referenced_name).map(|t| &t.kind),
                Some(TableKind::Reference)
            );
        if !to_reference {
            return Err(unsupported(format!(
                "cannot create foreign key constraint \"{}\" on reference table \"{}\"",
                fk.name, rel.name
            ))
            .with_detail(format!(
                "\"{}\" is not a reference table; a reference table can reference only reference tables.",
                fk.referenced_name
            )));
        }
    }
    Ok(())
}

async fn attnum(client: &Client, table: u32, column: &str) -> Result<i16, CoordError> {
    let row = client
        .query_one(
            "SELECT coalesce((SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = $1 AND attname = $2
                              AND NOT attisdropped), 0::int2)",
            &[&table, &column],
        )
        .await
        .map_err(CoordError::from_pg)?;
    row.try_get(0).map_err(CoordError::from_pg)
}

/// A foreign key of another table pointing at `oid`.
#[derive(Debug, Clone)]
pub(crate) struct Referencing {
    pub constraint: String,
    pub schema: String,
    pub name: String,
}

/// The foreign keys of other tables that reference `oid`.
pub(crate) async fn referencing(client: &Client, oid: u32) -> Result<Vec<Referencing>, CoordError> {
    let rows = client
        .query(
            "SELECT con.conname::text, n.nspname::text, c.relname::text
             FROM pg_catalog.pg_constraint con
             JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE con.contype = 'f' AND con.confrelid = $1 AND con.conrelid <> $1
             ORDER BY 2, 3, 1",
            &[&oid],
        )
        .await
        .map_err(CoordError::from_pg)?;
    rows.iter()
        .map(|r| Ok(Referencing { constraint: r.try_get(0)?, schema: r.try_get(1)?, name: r.try_get(2)? }))
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(CoordError::from_pg)
}

/// No other table may reference a table about to be distributed: it is undistributed (its
/// rows stay on the default node, where the distributed table's shell is empty) or a
/// reference table (which may reference only reference tables) (0A000).
pub(crate) async fn not_referenced(client: &Client, rel: &Relation) -> Result<(), CoordError> {
    if let Some(r) = referencing(client, rel.oid).await?.first() {
        return Err(unsupported(format!(
            "cannot distribute \"{}\": table \"{}\" references it through foreign key \"{}\"",
            rel.name, r.name, r.constraint
        ))
        .with_detail("Undistributed tables and reference tables cannot reference a distributed table.")
        .with_hint("Drop the foreign key, distribute both tables (colocated), then add it again."));
    }
    Ok(())
}

/// No view may read a table about to be distributed: it would read the empty shell (0A000).
pub(crate) async fn no_views(client: &Client, rel: &Relation) -> Result<(), CoordError> {
    let row = client
        .query_opt(
            "SELECT DISTINCT n.nspname::text, v.relname::text
             FROM pg_catalog.pg_depend d
             JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
             JOIN pg_catalog.pg_class v ON v.oid = r.ev_class
             JOIN pg_catalog.pg_namespace n ON n.oid = v.relnamespace
             WHERE d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
               AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
               AND d.refobjid = $1 AND r.ev_class <> $1
             ORDER BY 1, 2 LIMIT 1",
            &[&rel.oid],
        )
        .await
        .map_err(CoordError::from_pg)?;
    if let Some(row) = row {
        let view: String = row.try_get(1).map_err(CoordError::from_pg)?;
        return Err(unsupported(format!("cannot distribute \"{}\": view \"{view}\" depends on it", rel.name))
            .with_detail("A view over a distributed table would read its empty shell on the default node.")
            .with_hint("Drop the view before distributing the table."));
    }
    Ok(())
}
