//! The catalog as the planner sees it, and the planner's shard keys made concrete: which
//! shards (and so which nodes and schemas) a statement's distribution values hash to.

use std::collections::HashMap;

use pgshard_catalog::hash::{DistValue, HashError};
use pgshard_catalog::{CatalogSnapshot, ColocationId, Shard, TableKind};
use pgshard_planner::{DistKey, MultiShard, RelationKind, Relations, ShardPlan, StmtKind, Targets};
use tokio_postgres::error::SqlState;

use crate::error::CoordError;

/// The planner's view of a catalog snapshot.
pub struct Rels<'a> {
    /// The catalog.
    pub catalog: &'a CatalogSnapshot,
    /// Column names of managed tables.
    pub columns: &'a HashMap<(String, String), Vec<String>>,
}

impl Rels<'_> {
    /// The managed table a name refers to: `public` first for an unqualified name, then the
    /// only managed table of that name in any schema.
    pub fn lookup(&self, schema: Option<&str>, name: &str) -> Option<&pgshard_catalog::Table> {
        match schema {
            Some(s) => self.catalog.table(s, name),
            None => self.catalog.table("public", name).or_else(|| {
                let mut found = self.catalog.tables().filter(|t| t.name == name);
                let first = found.next()?;
                found.next().is_none().then_some(first)
            }),
        }
    }
}

impl Relations for Rels<'_> {
    fn kind_of(&self, schema: Option<&str>, name: &str) -> Option<RelationKind> {
        match &self.lookup(schema, name)?.kind {
            TableKind::Distributed { column, group, .. } => {
                Some(RelationKind::Distributed { column: column.clone(), group: group.0 })
            }
            TableKind::Reference => Some(RelationKind::Reference),
            TableKind::Local { .. } => None,
        }
    }

    fn columns_of(&self, schema: Option<&str>, name: &str) -> Option<Vec<String>> {
        let t = self.lookup(schema, name)?;
        self.columns.get(&(t.schema.clone(), t.name.clone())).cloned()
    }
}

/// A Bind parameter's value as the client sent it.
#[derive(Debug, Clone, Copy)]
pub struct ParamValue<'a> {
    /// The bytes (`None` is NULL).
    pub value: Option<&'a [u8]>,
    /// Binary format.
    pub binary: bool,
}

/// Where one distribution value goes: a shard, or nowhere (NULL matches no row).
fn shard_of<'c>(
    catalog: &'c CatalogSnapshot,
    group: ColocationId,
    key: &DistKey,
    params: &[ParamValue<'_>],
) -> Result<Option<&'c Shard>, CoordError> {
    let g = catalog.group(group).ok_or_else(|| stale(group))?;
    let value = match key {
        DistKey::Literal(text) => DistValue::from_text(g.dist_type, text),
        DistKey::Param(n) => {
            let p = params.get(n.wrapping_sub(1)).ok_or_else(|| {
                CoordError::sql(SqlState::PROTOCOL_VIOLATION, format!("there is no parameter ${n}"))
            })?;
            match p.value {
                None => return Ok(None),
                Some(bytes) if p.binary => DistValue::from_binary(g.dist_type, bytes),
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => DistValue::from_text(g.dist_type, text),
                    Err(_) => return Err(CoordError::sql(SqlState::CHARACTER_NOT_IN_REPERTOIRE, "invalid UTF-8 in a parameter")),
                },
            }
        }
    }
    .map_err(hash_error)?;
    catalog.shard_for_hash(group, value.hash()).map(Some).ok_or_else(|| stale(group))
}

fn stale(group: ColocationId) -> CoordError {
    CoordError::sql(SqlState::INTERNAL_ERROR, format!("colocation group {group} has no shards in the catalog"))
}

/// A distribution value that cannot be hashed, with the SQLSTATE PostgreSQL would give.
fn hash_error(e: HashError) -> CoordError {
    let code = match &e {
        HashError::InvalidInput { .. } => SqlState::INVALID_TEXT_REPRESENTATION,
        HashError::OutOfRange { .. } => SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        _ => SqlState::FEATURE_NOT_SUPPORTED,
    };
    CoordError::sql(code, e.to_string())
}

/// The shards a statement runs on, each once, in shard order; for an INSERT also the shard
/// of every VALUES row (by position in the returned list).
pub struct Routed<'c> {
    /// The target shards.
    pub shards: Vec<&'c Shard>,
    /// For each VALUES row of an INSERT, the index into `shards`.
    pub rows: Vec<usize>,
}

/// Resolves a shard plan's targets under `catalog` with the given Bind parameters.
pub fn route<'c>(plan: &ShardPlan, catalog: &'c CatalogSnapshot, params: &[ParamValue<'_>]) -> Result<Routed<'c>, CoordError> {
    let group = ColocationId(plan.group);
    let keys = match &plan.targets {
        Targets::All => return Ok(Routed { shards: catalog.shards_of(group).iter().collect(), rows: Vec::new() }),
        Targets::Keys(keys) => keys,
    };
    let mut shards: Vec<&Shard> = Vec::new();
    let mut rows = Vec::new();
    for key in keys {
        let shard = match shard_of(catalog, group, key, params)? {
            Some(s) => s,
            None if plan.insert.is_some() => {
                return Err(CoordError::sql(
                    SqlState::NOT_NULL_VIOLATION,
                    "the distribution column of a distributed table cannot be NULL",
                ));
            }
            // `col = NULL` matches nothing: any one shard answers (with no rows).
            None => catalog.shards_of(group).first().ok_or_else(|| stale(group))?,
        };
        let at = match shards.iter().position(|s| s.index == shard.index) {
            Some(at) => at,
            None => {
                shards.push(shard);
                shards.len() - 1
            }
        };
        rows.push(at);
    }
    Ok(Routed { shards, rows })
}

/// The statement shard number `at` of `routed` runs: its rows of a split INSERT, else the
/// multi-shard fragment, qualified with the shard's schema.
pub fn shard_statement(sp: &ShardPlan, multi: &MultiShard, routed: &Routed<'_>, at: usize) -> String {
    let schema = routed.shards[at].schema_name();
    match &sp.insert {
        Some(split) if sp.kind == StmtKind::Insert => {
            let rows: Vec<usize> = routed.rows.iter().enumerate().filter(|(_, s)| **s == at).map(|(r, _)| r).collect();
            split.render(&rows, &schema)
        }
        _ => multi.fragment.render(Some(&schema)),
    }
}
