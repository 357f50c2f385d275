//! `INSERT INTO <distributed table> ... SELECT ...`, and INSERT ... VALUES whose distribution
//! value the coordinator cannot read from the text (an expression such as `nextval(...)` or
//! `DEFAULT`, or a column left to its default): the coordinator computes the rows on the
//! default node (over copies of the distributed tables the query reads, like a read over
//! copies), into a temporary table shaped like the target so that PostgreSQL applies its own
//! assignment casts and defaults, once, then streams that table's rows as text COPY, splits
//! them by the shard of their distribution value and copies them into the shards (the columns
//! left out take their defaults there). With ON CONFLICT or RETURNING the rows go into a table
//! of the transaction's own next to each shard, which then runs `INSERT ... SELECT` from it with the
//! statement's own ON CONFLICT and RETURNING. Atomic across nodes like any multi-node write.

use sqlparser::ast::{Expr, GroupByExpr, Insert, SelectItem, SetExpr, Statement, TableFactor};
use sqlparser::tokenizer::Token;

use crate::colocate::prove;
use crate::funcs::uses;
use crate::merge::{MergeStep, MultiShard};
use crate::names::quote_ident;
use crate::route::{RelationKind, fold};
use crate::shard::{ShardPlan, StmtKind, Targets};
use crate::plan::{CopyFormat, CopyIn};
use crate::pull::{PullTable, pull_tables};
use crate::refs::{RelRef, Refs};
use crate::route::{Relations, split_name};
use crate::template::{ShardTemplate, Splicer};
use crate::text::Source;

/// An INSERT ... SELECT into a distributed table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertSelect {
    /// How the rows go into the target's shards (text COPY with the insert's columns).
    pub target: CopyIn,
    /// The target table as the default node names it (its shell).
    pub shell: String,
    /// Whether the INSERT lists its columns; without a list the query fills the table's first
    /// columns (as many as it returns) and `target.columns` holds them all.
    pub listed: bool,
    /// The distributed tables the query reads, copied to the default node first.
    pub sources: Vec<PullTable>,
    /// The query; render it with `Some(PULL_SCHEMA)`.
    pub query: ShardTemplate,
    /// How many of `target.columns` the query fills; the rest (the distribution column, when
    /// the INSERT leaves it out) take their defaults on the default node.
    pub filled: usize,
    /// The staging table is made `LIKE` the target `INCLUDING DEFAULTS`, so that `DEFAULT` in
    /// VALUES and the columns left out are filled there.
    pub defaults: bool,
    /// With ON CONFLICT or RETURNING: what each shard runs over the rows delivered to it.
    pub per_shard: Option<PerShard>,
}

/// The statement each shard runs when the rows must meet the shard's own ON CONFLICT or
/// RETURNING: `<head> (<columns>) SELECT <columns> FROM pg_temp.<rows of the shard> <tail>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerShard {
    /// `INSERT INTO <shard>.<table> AS <alias> `; the column list follows.
    pub head: ShardTemplate,
    /// The ON CONFLICT and RETURNING clauses as written.
    pub tail: ShardTemplate,
}

impl InsertSelect {
    /// The first `n` insert columns (all when `None`), quoted and comma-separated.
    pub fn column_list(&self, n: Option<usize>) -> String {
        let all = self.target.columns.as_deref().unwrap_or_default();
        all.iter().take(n.unwrap_or(all.len())).map(|c| quote_ident(c)).collect::<Vec<_>>().join(", ")
    }
}

/// Whether an INSERT's source is a query other than plain VALUES.
pub(crate) fn is_insert_select(insert: &Insert) -> bool {
    insert.source.as_deref().is_some_and(|q| {
        !matches!(q.body.as_ref(), SetExpr::Values(_)) || q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some()
    })
}

/// Whether an INSERT ... VALUES into a table distributed on `column` has a row whose
/// distribution value is not a constant or a parameter, or leaves that column out.
pub(crate) fn needs_staging(insert: &Insert, target: &RelRef, column: &str, rels: &impl Relations) -> bool {
    let Some(SetExpr::Values(values)) = insert.source.as_deref().map(|q| q.body.as_ref()) else { return false };
    let position = if insert.columns.is_empty() {
        rels.columns_of(target.schema.as_deref(), &target.name).and_then(|c| c.iter().position(|c| c == column))
    } else {
        match insert.columns.iter().position(|c| split_name(c).is_some_and(|(_, n)| n == column)) {
            Some(p) => Some(p),
            None => return true,
        }
    };
    position.is_some_and(|p| values.rows.iter().any(|r| r.content.get(p).and_then(crate::route::key_of).is_none()))
}

/// Plans an INSERT ... SELECT into `target`, distributed on `column` in `group`.
pub(crate) fn plan(
    insert: &Insert,
    target: &RelRef,
    column: &str,
    group: i32,
    src: &Source<'_>,
    refs: &Refs,
    rels: &impl Relations,
) -> Result<InsertSelect, String> {
    let table = &target.name;
    crate::insert::check_on_conflict(insert, column)?;
    let mut columns: Vec<String> = if insert.columns.is_empty() {
        rels.columns_of(target.schema.as_deref(), table)
            .ok_or_else(|| format!("INSERT ... SELECT without a column list into \"{table}\", whose columns the planner does not know"))?
    } else {
        insert
            .columns
            .iter()
            .map(|c| split_name(c).map(|(_, n)| n).ok_or_else(|| format!("INSERT into \"{table}\" naming a column with a qualifier")))
            .collect::<Result<_, _>>()?
    };
    let filled = columns.len();
    // Left out, the distribution column takes its default on the default node.
    let dist_index = match columns.iter().position(|c| c == column) {
        Some(p) => p,
        None => {
            columns.push(column.to_owned());
            filled
        }
    };
    let values = matches!(insert.source.as_deref().map(|q| q.body.as_ref()), Some(SetExpr::Values(_)));
    let start = query_start(src, target).ok_or_else(|| format!("internal: the query of the INSERT into \"{table}\" was not found"))?;
    let end = src.sql.trim_end().trim_end_matches(';').trim_end().len();
    let tail_start = tail_start(src, start).map_or(end, |i| src.pos(i));
    if refs.tables.iter().any(|r| r.qualifier.start >= tail_start) {
        return Err(format!("ON CONFLICT or RETURNING that reads a table, in an INSERT into the distributed table \"{table}\""));
    }
    let sp = Splicer::new(src.sql, refs.qualifiers().into_iter().filter(|r| r.start >= start).collect());
    let mut b = sp.builder();
    b.copy(start..tail_start);
    let sources = pull_tables(src, refs.tables.iter().filter(|r| r.qualifier.start >= start), "INSERT ... SELECT", &[], &[])?;
    let qualifier = &src.sql[target.qualifier.clone()];
    let shell = format!("{qualifier}{}", quote_ident(table));
    let per_shard = (tail_start < end).then(|| {
        let alias = insert.table_alias.as_ref().map_or_else(|| quote_ident(table), |a| quote_ident(&fold(&a.alias)));
        let text = format!("INSERT INTO {qualifier}{} AS {alias} ", quote_ident(table));
        let at = "INSERT INTO ".len();
        let head = Splicer::new(&text, std::iter::once(at..at + qualifier.len()).collect()).whole();
        let mut t = sp.builder();
        t.copy(tail_start..end);
        PerShard { head, tail: t.build() }
    });
    Ok(InsertSelect {
        target: CopyIn {
            group,
            table: table.clone(),
            columns: Some(columns),
            dist_index,
            format: CopyFormat::Text { delimiter: '\t', null: "\\N".into() },
            reference: None,
        },
        shell,
        listed: !insert.columns.is_empty(),
        sources,
        query: b.build(),
        filled,
        defaults: values || dist_index == filled,
        per_shard,
    })
}

/// The first token of the INSERT's ON CONFLICT or RETURNING clause, after token offset `start`.
fn tail_start(src: &Source<'_>, start: usize) -> Option<usize> {
    let from = (0..src.len()).find(|&i| src.pos(i) >= start)?;
    (from..src.len()).find(|&i| {
        src.tok(i).is_some_and(|t| t.depth == 0)
            && (src.is_kw(i, "returning") || (src.is_kw(i, "on") && src.is_kw(i + 1, "conflict")))
    })
}

/// Byte offset where the INSERT's query starts: after the target's name (and alias) and its
/// column list.
fn query_start(src: &Source<'_>, target: &RelRef) -> Option<usize> {
    let mut i = (0..src.len()).find(|&i| src.pos(i) >= target.qualifier.end)?;
    // The table name, then an optional alias (`AS a` or `a`) and column list.
    i += 1;
    if src.is_kw(i, "as") {
        i += 2;
    } else if matches!(src.tok(i).map(|t| &t.token), Some(Token::Word(w)) if !is_query_keyword(&w.value)) {
        i += 1;
    }
    if matches!(src.tok(i).map(|t| &t.token), Some(Token::LParen)) && !starts_query(src, i + 1) {
        i = src.close_of(i)? + 1;
    }
    if src.is_kw(i, "overriding") {
        i += 3;
    }
    Some(src.pos(i))
}

fn is_query_keyword(word: &str) -> bool {
    ["select", "with", "values", "table", "default", "overriding"].iter().any(|k| word.eq_ignore_ascii_case(k))
}

/// Whether token `i` starts a query (a parenthesized query after the table is the source).
fn starts_query(src: &Source<'_>, i: usize) -> bool {
    src.is_kw(i, "select") || src.is_kw(i, "with") || src.is_kw(i, "values") || src.is_kw(i, "table")
}

/// INSERT ... SELECT whose rows stay in their shard: the query reads one distributed table of
/// the target's colocation group (and any reference tables), row by row (no aggregate,
/// grouping, DISTINCT, window, ORDER BY or LIMIT), within what the colocation proof allows, and
/// the target's distribution column takes that table's distribution column as is. Then every
/// shard runs the statement against its own rows (ON CONFLICT and RETURNING included).
pub(crate) fn colocated(
    insert: &Insert,
    column: &str,
    group: i32,
    src: &Source<'_>,
    refs: &Refs,
    rels: &impl Relations,
) -> Option<ShardPlan> {
    let q = insert.source.as_deref()?;
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() || !q.locks.is_empty() {
        return None;
    }
    let SetExpr::Select(select) = q.body.as_ref() else { return None };
    let grouped = match &select.group_by {
        GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
        GroupByExpr::All(_) => true,
    };
    let used = uses(&select.projection).or(uses(&select.having));
    if grouped || used.aggregate || used.window || select.having.is_some() || select.distinct.is_some() {
        return None;
    }
    // Exactly one distributed table read (the target aside), in the target's group.
    let mut sources = refs.tables.iter().skip(1).filter(|r| r.is_distributed());
    let source = sources.next()?;
    if sources.next().is_some() {
        return None;
    }
    let Some(RelationKind::Distributed { column: source_column, group: source_group }) = &source.kind else { return None };
    if *source_group != group {
        return None;
    }
    // The distribution column's value is the source's distribution column, unchanged.
    crate::insert::check_on_conflict(insert, column).ok()?;
    let dist_index = if insert.columns.is_empty() {
        let target = refs.tables.first()?;
        rels.columns_of(target.schema.as_deref(), &target.name)?.iter().position(|c| c == column)?
    } else {
        insert.columns.iter().position(|c| split_name(c).is_some_and(|(_, n)| n == column))?
    };
    let item = select.projection.get(dist_index)?;
    let expr = match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e,
        _ => return None,
    };
    if select.projection.iter().any(|p| matches!(p, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..))) {
        return None;
    }
    let names_source = |qualifier: &str| {
        let alias = select.from.iter().flat_map(|f| std::iter::once(&f.relation).chain(f.joins.iter().map(|j| &j.relation))).find_map(|t| match t {
            TableFactor::Table { name, alias, .. } if split_name(name).is_some_and(|(_, n)| n == source.name) => {
                Some(alias.as_ref().map_or_else(|| source.name.clone(), |a| fold(&a.name)))
            }
            _ => None,
        });
        alias.is_some_and(|a| a == qualifier)
    };
    let maps = match expr {
        Expr::Identifier(id) => fold(id) == *source_column && select.from.len() == 1 && select.from[0].joins.is_empty(),
        Expr::CompoundIdentifier(parts) if parts.len() == 2 => fold(&parts[1]) == *source_column && names_source(&fold(&parts[0])),
        _ => false,
    };
    if !maps {
        return None;
    }
    let proof = prove(&Statement::Query(Box::new(q.clone())), rels).ok()?;
    if proof.single_only.is_some() {
        return None;
    }
    let whole = Splicer::new(src.sql, refs.qualifiers()).whole();
    Some(ShardPlan {
        group,
        targets: proof.pins.map_or(Targets::All, Targets::Keys),
        kind: StmtKind::Insert,
        single: whole.clone(),
        multi: Ok(MultiShard { fragment: whole, merge: MergeStep::Concat }),
        insert: None,
        pull: None,
    })
}
