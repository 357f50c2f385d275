//! How a SELECT runs on several shards: the fragment each shard runs and the merge step that
//! combines their rows. Concatenation when row order and duplicates do not matter; a sorted
//! merge with the sort keys added as trailing junk columns and LIMIT pushed down when the query
//! orders or limits; a final query run by PostgreSQL over all shards' partial rows when it
//! aggregates, groups or removes duplicates.

use std::fmt;

use sqlparser::ast::{Query, SetExpr, SetOperator, SetQuantifier};

use crate::aggregate::{self, FinalQuery};
use crate::clauses;
use crate::funcs::uses;
use crate::sort;
use crate::template::{ShardTemplate, Splicer};
use crate::text::Source;

/// How to run a statement on several shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiShard {
    /// What each shard runs (render it with the shard's schema).
    pub fragment: ShardTemplate,
    /// How the shards' results combine.
    pub merge: MergeStep,
}

/// How the shards' results combine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MergeStep {
    /// Rows of all shards in any order; for writes, the sum of the row counts and the
    /// concatenation of RETURNING rows.
    Concat,
    /// A sorted merge of the shards' sorted streams. The fragment's rows end with `junk` extra
    /// columns (`pgshard_sort_1` ...) holding the sort keys; strip them from RowDescription and
    /// DataRows before sending rows on. Skip `offset` rows, then stop after `limit`.
    Sort {
        /// Sort keys, most significant first.
        keys: Vec<SortKey>,
        /// Rows to return after the offset (`None`: all).
        limit: Option<Limit>,
        /// Rows to skip.
        offset: Limit,
        /// How many junk columns end each fragment row.
        junk: usize,
    },
    /// Copy every fragment row into a temporary table (columns `c1..cn`) and answer with the
    /// final query over it.
    Final(FinalQuery),
}

/// One sort key of a sorted merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// Index among the junk columns (0 = the first junk column, `pgshard_sort_1`).
    pub junk_index: usize,
    /// `DESC`.
    pub descending: bool,
    /// Whether NULLs sort first (PostgreSQL's default: last ascending, first descending).
    pub nulls_first: bool,
}

/// A LIMIT or OFFSET count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// A constant.
    Value(u64),
    /// Bind parameter `$n` (1-based), whose value the coordinator reads at Bind.
    Param(usize),
}

/// Plans a SELECT (`query` is the statement's query) for several shards.
/// `dist`: the distributed tables of its FROM clause and their distribution columns.
pub(crate) fn plan_select(query: &Query, src: &Source<'_>, sp: &Splicer<'_>, dist: &[(String, String)]) -> Result<MultiShard, String> {
    let limited = query.limit_clause.is_some() || query.fetch.is_some();
    match query.body.as_ref() {
        SetExpr::Select(select) => {
            let mut used = uses(&select.projection).or(uses(&select.having));
            let sorted_by_window = query.order_by.as_ref().is_some_and(|ob| uses(ob).window);
            if let Some(ob) = &query.order_by {
                used = used.or(uses(ob));
            }
            let grouped = match &select.group_by {
                sqlparser::ast::GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
                sqlparser::ast::GroupByExpr::All(_) => true,
            };
            if used.window || !select.named_window.is_empty() {
                // Windows partitioned by the distribution column are whole in each shard.
                let whole = !used.aggregate
                    && !grouped
                    && select.having.is_none()
                    && select.distinct.is_none()
                    && !sorted_by_window
                    && crate::windows::partitioned_by_distribution(select, query.order_by.as_ref(), dist);
                if !whole {
                    return Err("window functions over several shards".into());
                }
            }
            if used.aggregate || grouped || select.having.is_some() || select.distinct.is_some() {
                let c = clauses::find(src, query, select)?;
                return aggregate::plan(query, select, &c, src, sp);
            }
            if query.order_by.is_some() || limited {
                let c = clauses::find(src, query, select)?;
                return sort::plan(query, select, &c, src, sp);
            }
            Ok(MultiShard { fragment: sp.whole(), merge: MergeStep::Concat })
        }
        SetExpr::SetOperation { .. } if union_all(query.body.as_ref()) => {
            if query.order_by.is_some() || limited {
                return Err("ORDER BY or LIMIT over a UNION ALL over several shards".into());
            }
            if !plain_branches(query.body.as_ref()) {
                return Err("a UNION ALL branch that aggregates or uses DISTINCT over several shards".into());
            }
            Ok(MultiShard { fragment: sp.whole(), merge: MergeStep::Concat })
        }
        SetExpr::SetOperation { .. } => Err("UNION, INTERSECT or EXCEPT without ALL over several shards".into()),
        _ => Err("a parenthesized or VALUES query over several shards".into()),
    }
}

/// Whether every branch of a set operation is a SELECT whose rows shards can simply
/// concatenate (no aggregate, grouping, DISTINCT or window function).
fn plain_branches(body: &SetExpr) -> bool {
    match body {
        SetExpr::SetOperation { left, right, .. } => plain_branches(left) && plain_branches(right),
        SetExpr::Select(s) => {
            let used = uses(&s.projection).or(uses(&s.having));
            let grouped = match &s.group_by {
                sqlparser::ast::GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
                sqlparser::ast::GroupByExpr::All(_) => true,
            };
            !used.aggregate && !used.window && !grouped && s.having.is_none() && s.distinct.is_none()
        }
        SetExpr::Values(_) => true,
        _ => false,
    }
}

fn union_all(body: &SetExpr) -> bool {
    match body {
        SetExpr::SetOperation { left, op: SetOperator::Union, set_quantifier: SetQuantifier::All, right } => {
            union_all(left) && union_all(right)
        }
        SetExpr::SetOperation { .. } => false,
        _ => true,
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Value(n) => write!(f, "{n}"),
            Limit::Param(n) => write!(f, "${n}"),
        }
    }
}

impl fmt::Display for MergeStep {
    /// One line: `concat`, `sort [...] limit .. offset .. junk ..`, or `final`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeStep::Concat => write!(f, "concat"),
            MergeStep::Sort { keys, limit, offset, junk } => {
                let keys: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let dir = if k.descending { "desc" } else { "asc" };
                        let nulls = if k.nulls_first { "first" } else { "last" };
                        format!("junk {} {dir} nulls {nulls}", k.junk_index + 1)
                    })
                    .collect();
                let limit = limit.map_or_else(|| "all".to_owned(), |l| l.to_string());
                write!(f, "sort [{}] limit {limit} offset {offset} junk {junk}", keys.join(", "))
            }
            MergeStep::Final(_) => write!(f, "final"),
        }
    }
}

impl MultiShard {
    /// EXPLAIN lines: the merge step, then the fragment rendered for `schema` and the final
    /// query, each on its own line indented by four spaces.
    pub fn explain(&self, schema: &str) -> String {
        let mut out = format!("{}\n    fragment: {}", self.merge, self.fragment.render(Some(schema)));
        if let MergeStep::Final(q) = &self.merge {
            out.push_str(&format!("\n    final: {q}"));
        }
        out
    }
}

impl fmt::Display for MultiShard {
    /// [`MultiShard::explain`] for the placeholder schema `<shard>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain("<shard>"))
    }
}
