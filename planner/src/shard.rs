//! Shard plans: SELECT, INSERT, UPDATE and DELETE over the distributed tables of one colocation
//! group (with any reference tables). The statement as written, qualified, runs on one shard
//! when every key it is pinned to lands there (`single`); `multi` says how to run it on several
//! shards, or why that is not supported.

use std::fmt;

use sqlparser::ast::{AssignmentTarget, Statement, TableFactor, TableObject};

use crate::colocate::prove;
use crate::insert::{self, InsertSplit};
use crate::merge::{MergeStep, MultiShard, plan_select};
use crate::refs::{Refs, resolve};
use crate::route::{DistKey, RelationKind, Relations, key_of, split_name};
use crate::pull::PullPlan;
use crate::template::{ShardTemplate, Splicer};
use crate::text::Source;

/// A statement over distributed tables of one colocation group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlan {
    /// The colocation group.
    pub group: i32,
    /// Which shards can hold rows the statement reads or writes.
    pub targets: Targets,
    /// What the statement does.
    pub kind: StmtKind,
    /// The statement as written, qualified: run it alone when every target key lands on one
    /// shard (or the group has one shard).
    pub single: ShardTemplate,
    /// How to run it on several shards, or the 0A000 sentence saying why that is unsupported.
    /// For an INSERT, send each shard `insert.render(rows of that shard, schema)` instead of
    /// the fragment.
    pub multi: Result<MultiShard, String>,
    /// For INSERT ... VALUES: how to split the rows by shard.
    pub insert: Option<InsertSplit>,
    /// For a SELECT whose `multi` is an error: how the default node answers it over copies of
    /// the tables when it reaches several shards.
    pub pull: Option<PullPlan>,
}

/// Which shards of the group a statement needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    /// Every shard.
    All,
    /// The shards these distribution values hash to (for INSERT, one key per VALUES row, in
    /// row order).
    Keys(Vec<DistKey>),
}

/// The kind of statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StmtKind {
    /// SELECT (or another query).
    Select,
    /// INSERT ... VALUES.
    Insert,
    /// UPDATE.
    Update,
    /// DELETE.
    Delete,
}

/// Plans a SELECT, INSERT, UPDATE or DELETE over the distributed tables of `group`.
pub(crate) fn plan(
    stmt: &Statement,
    group: i32,
    src: &Source<'_>,
    refs: &Refs,
    rels: &impl Relations,
) -> Result<ShardPlan, String> {
    let sp = Splicer::new(src.sql, refs.qualifiers());
    let single = sp.whole();
    let concat = || Ok(MultiShard { fragment: single.clone(), merge: MergeStep::Concat });
    let (kind, targets, multi, insert) = match stmt {
        Statement::Query(q) => {
            let proof = prove(stmt, rels)?;
            let multi = match proof.single_only {
                Some(why) => Err(why),
                None => plan_select(q, src, &sp, &crate::windows::dist_columns(q, rels)),
            };
            (StmtKind::Select, proof.pins, multi, None)
        }
        Statement::Insert(i) => {
            let TableObject::TableName(name) = &i.table else { return Err("INSERT into a table function".into()) };
            let target = resolve(name, src, rels)?;
            let Some(RelationKind::Distributed { column, .. }) = &target.kind else {
                return Err("internal: INSERT target is not distributed".into());
            };
            if refs.tables.iter().filter(|r| r.is_distributed()).count() > 1 {
                return Err(format!("INSERT into \"{}\" that reads a distributed table", target.name));
            }
            let split = insert::plan(i, &target, column, src, &sp, rels)?;
            let keys = split.rows.iter().map(|r| r.key.clone()).collect();
            (StmtKind::Insert, Some(keys), concat(), Some(split))
        }
        Statement::Update(u) => {
            let proof = prove(stmt, rels)?;
            if let TableFactor::Table { name, .. } = &u.table.relation
                && let Some((schema, table)) = split_name(name)
                && let Some(RelationKind::Distributed { column, .. }) = rels.kind_of(schema.as_deref(), &table)
            {
                check_moves(u, &column, &table, proof.pins.as_deref())?;
            }
            let multi = proof.single_only.map_or_else(concat, Err);
            (StmtKind::Update, proof.pins, multi, None)
        }
        Statement::Delete(_) => {
            let proof = prove(stmt, rels)?;
            (StmtKind::Delete, proof.pins, proof.single_only.map_or_else(concat, Err), None)
        }
        _ => return Err("internal: not a query or DML statement".into()),
    };
    let targets = targets.map_or(Targets::All, Targets::Keys);
    Ok(ShardPlan { group, targets, kind, single, multi, insert, pull: None })
}

/// An UPDATE may assign the distribution column only the value its WHERE pins it to, so the
/// row stays in its shard.
fn check_moves(u: &sqlparser::ast::Update, column: &str, table: &str, pins: Option<&[DistKey]>) -> Result<(), String> {
    for a in &u.assignments {
        let names: Vec<_> = match &a.target {
            AssignmentTarget::ColumnName(n) => vec![n],
            AssignmentTarget::Tuple(ns) => ns.iter().collect(),
        };
        if !names.iter().any(|n| split_name(n).is_some_and(|(_, c)| c == column)) {
            continue;
        }
        let stays = matches!(&a.target, AssignmentTarget::ColumnName(_))
            && matches!((pins, key_of(&a.value)), (Some([pin]), Some(v)) if *pin == v);
        if !stays {
            return Err(format!(
                "updating the distribution column \"{column}\" of \"{table}\" to a value other than the one its WHERE clause fixes"
            ));
        }
    }
    Ok(())
}

impl fmt::Display for Targets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Targets::All => write!(f, "all shards"),
            Targets::Keys(keys) => {
                let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
                write!(f, "keys [{}]", keys.join(", "))
            }
        }
    }
}

impl fmt::Display for StmtKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StmtKind::Select => "select",
            StmtKind::Insert => "insert",
            StmtKind::Update => "update",
            StmtKind::Delete => "delete",
        })
    }
}

impl fmt::Display for ShardPlan {
    /// EXPLAIN text: targets, the single-shard SQL and the multi-shard fragment rendered for
    /// schema `pgshard_g<group>_sN`, the merge step and final query, the INSERT rows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let schema = format!("pgshard_g{}_sN", self.group);
        write!(f, "{} on group {} {}", self.kind, self.group, self.targets)?;
        write!(f, "\n  single: {}", self.single.render(Some(&schema)))?;
        match &self.multi {
            Ok(_) if self.insert.is_some() => write!(f, "\n  multi: concat, each shard its own rows")?,
            Ok(m) => write!(f, "\n  multi: {}", m.explain(&schema))?,
            Err(why) => write!(f, "\n  multi: unsupported: {why}")?,
        }
        if let Some(split) = &self.insert {
            write!(f, "\n  insert: {split}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
