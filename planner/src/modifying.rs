//! Data-modifying WITH (`WITH moved AS (DELETE ... RETURNING *) INSERT INTO ... SELECT ...
//! FROM moved`) over the distributed tables of one colocation group. PostgreSQL runs all the
//! parts in one snapshot; pgshard keeps that by sending the whole statement, as written, to
//! shards, when that gives PostgreSQL's answer:
//! - on one shard, when every part that reads or writes a distributed table is tied to the
//!   same distribution value (`WHERE w_id = 5`, `VALUES (5, ...)`, `$1` alike);
//! - on every shard, when each shard's run stands on its own rows: the parts that write are
//!   UPDATE and DELETE (which keep rows in their shard; no INSERT), every part passes the
//!   colocation proof, and the parts that read work row by row (no aggregate, grouping,
//!   DISTINCT, window, ORDER BY, LIMIT or set operation), so the shards' rows together are the
//!   answer.
//!
//! Anything else is refused. Recursive WITH is refused here.

use std::ops::ControlFlow;

use sqlparser::ast::{
    AssignmentTarget, Expr, GroupByExpr, Query, SelectItem, SetExpr, Statement, TableFactor, TableObject, Visit, Visitor,
};

use crate::colocate::prove;
use crate::funcs::uses;
use crate::merge::{MergeStep, MultiShard};
use crate::refs::Refs;
use crate::route::{DistKey, RelationKind, Relations, fold, key_of, split_name};
use crate::shard::{ShardPlan, StmtKind, Targets};
use crate::template::Splicer;
use crate::text::Source;

/// What one part of the statement does.
struct Part {
    /// The distribution values it is tied to (`None`: not tied, or touches no distributed table).
    pins: Option<Vec<DistKey>>,
    /// It reads or writes a distributed table.
    distributed: bool,
    /// Why it cannot run on every shard, if it cannot.
    not_everywhere: Option<String>,
    /// What it writes.
    kind: StmtKind,
}

/// Plans a statement with data-modifying CTEs over the distributed tables of `group`.
pub(crate) fn plan(stmt: &Statement, group: i32, src: &Source<'_>, refs: &Refs, rels: &impl Relations) -> Result<ShardPlan, String> {
    const WHAT: &str = "a data-modifying WITH query over distributed tables";
    let Statement::Query(q) = stmt else { return Err(WHAT.into()) };
    let Some(with) = &q.with else { return Err(WHAT.into()) };
    if with.recursive {
        return Err(format!("{WHAT} with RECURSIVE"));
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut named: Vec<(String, &Query)> = Vec::new();
    for cte in &with.cte_tables {
        let p = part(&cte.query, &named, &parts, rels)?;
        parts.push(p);
        named.push((fold(&cte.alias.name), &cte.query));
    }
    let mut main = (**q).clone();
    main.with = None;
    parts.push(part(&main, &named, &parts, rels)?);
    let kind = parts.iter().map(|p| p.kind).find(|k| *k != StmtKind::Select).unwrap_or(StmtKind::Select);
    let single = Splicer::new(src.sql, refs.qualifiers()).whole();
    // One shard: every part that touches a distributed table is tied to the same one value.
    let mut key: Option<&DistKey> = None;
    let tied = parts.iter().filter(|p| p.distributed).all(|p| match p.pins.as_deref() {
        Some([k]) => *key.get_or_insert(k) == k,
        _ => false,
    });
    if tied && let Some(k) = key {
        return Ok(ShardPlan {
            group,
            targets: Targets::Keys(vec![k.clone()]),
            kind,
            single,
            multi: Err(format!("{WHAT} whose parts are tied to different distribution values")),
            insert: None,
            pull: None,
        });
    }
    if let Some(why) = parts.iter().find_map(|p| p.not_everywhere.clone()) {
        return Err(format!("{WHAT}: {why}"));
    }
    // Every part tied to some values: only their shards have rows to touch.
    let mut keys: Vec<DistKey> = Vec::new();
    let all_tied = parts.iter().filter(|p| p.distributed).all(|p| match &p.pins {
        Some(pins) => {
            keys.extend(pins.iter().filter(|k| !keys.contains(k)).cloned().collect::<Vec<_>>());
            true
        }
        None => false,
    });
    Ok(ShardPlan {
        group,
        targets: if all_tied && !keys.is_empty() { Targets::Keys(keys) } else { Targets::All },
        kind,
        single: single.clone(),
        multi: Ok(MultiShard { fragment: single, merge: MergeStep::Concat }),
        insert: None,
        pull: None,
    })
}

/// Analyzes one part: a CTE body or the main statement (`named`: the CTEs before it, whose
/// parts are `earlier`).
fn part(q: &Query, named: &[(String, &Query)], earlier: &[Part], rels: &impl Relations) -> Result<Part, String> {
    let distributed = reads_distributed(q, rels);
    // On every shard, a part sees only the rows the other parts returned on that shard: fine
    // for a SELECT that just passes one part's rows on, or an INSERT of rows that keep their
    // distribution value (see `kept_from`); not for a join or subquery over them.
    let ctes = cte_refs(q, named);
    let crossing = || Some("a part that joins or filters by the rows another part returns".to_owned());
    let mut part = part_alone(q, named, earlier, rels, distributed)?;
    let passes_on = !distributed && ctes == 1 && lone_relation(q).is_some() && row_by_row(q);
    if ctes > 0 && part.not_everywhere.is_none() && !(passes_on || part.kind == StmtKind::Insert) {
        part.not_everywhere = crossing();
    }
    Ok(part)
}

/// [`part`] without looking at how it uses the other parts' rows.
fn part_alone(q: &Query, named: &[(String, &Query)], earlier: &[Part], rels: &impl Relations, distributed: bool) -> Result<Part, String> {
    match q.body.as_ref() {
        SetExpr::Update(s @ Statement::Update(u)) => {
            let proof = prove(s, rels)?;
            if let TableFactor::Table { name, .. } = &u.table.relation
                && let Some((schema, table)) = split_name(name)
                && let Some(RelationKind::Distributed { column, .. }) = rels.kind_of(schema.as_deref(), &table)
                && moves(u, &column, proof.pins.as_deref())
            {
                return Err(format!("updating the distribution column \"{column}\" of \"{table}\" in a data-modifying WITH query"));
            }
            Ok(Part { pins: proof.pins, distributed, not_everywhere: proof.single_only, kind: StmtKind::Update })
        }
        SetExpr::Delete(s) => {
            let proof = prove(s, rels)?;
            Ok(Part { pins: proof.pins, distributed, not_everywhere: proof.single_only, kind: StmtKind::Delete })
        }
        SetExpr::Insert(Statement::Insert(i)) => {
            let elsewhere = || Some("an INSERT whose rows may belong to other shards".to_owned());
            let (pins, not_everywhere) = match insert_keys(i, rels) {
                Some(keys) => (Some(keys), elsewhere()),
                // Rows of a part (or table) that keep their distribution value stay in the
                // shard that part ran on.
                None => match kept_from(i, named, earlier, rels) {
                    Some(Kept::Part(p)) => (p.pins.clone(), p.not_everywhere.clone()),
                    Some(Kept::Table(proof)) => (proof.pins, proof.single_only),
                    None => (None, elsewhere()),
                },
            };
            Ok(Part { pins, distributed: true, not_everywhere, kind: StmtKind::Insert })
        }
        SetExpr::Select(_) | SetExpr::Query(_) | SetExpr::SetOperation { .. } | SetExpr::Values(_) | SetExpr::Table(_) => {
            if !distributed {
                let not_everywhere = (!row_by_row(q)).then(|| "a part that aggregates, sorts or limits the rows of every shard".to_owned());
                return Ok(Part { pins: None, distributed, not_everywhere, kind: StmtKind::Select });
            }
            let proof = prove(&Statement::Query(Box::new(q.clone())), rels)?;
            let not_everywhere = proof.single_only.or_else(|| {
                (!row_by_row(q)).then(|| "a part that aggregates, sorts or limits the rows of a distributed table".to_owned())
            });
            Ok(Part { pins: proof.pins, distributed, not_everywhere, kind: StmtKind::Select })
        }
        _ => Err("a data-modifying WITH query with a part pgshard cannot read".into()),
    }
}

/// Where the rows of an INSERT ... SELECT come from, when they keep their distribution value.
enum Kept<'p> {
    /// From an earlier part (an UPDATE or DELETE ... RETURNING of a distributed table).
    Part(&'p Part),
    /// From a distributed table read by the SELECT, with the SELECT's proof.
    Table(crate::colocate::Proof),
}

/// The source of an `INSERT INTO <distributed> ... SELECT ... FROM <one relation>` whose
/// distribution value is that relation's distribution column, unchanged: a distributed table
/// of the group, or an earlier part that returns its table's distribution column.
fn kept_from<'p>(i: &sqlparser::ast::Insert, named: &[(String, &Query)], earlier: &'p [Part], rels: &impl Relations) -> Option<Kept<'p>> {
    let TableObject::TableName(name) = &i.table else { return None };
    let (schema, table) = split_name(name)?;
    let Some(RelationKind::Distributed { column, group }) = rels.kind_of(schema.as_deref(), &table) else { return None };
    let listed: Vec<String> = if i.columns.is_empty() {
        rels.columns_of(schema.as_deref(), &table)?
    } else {
        i.columns.iter().map(|c| split_name(c).map(|(_, n)| n)).collect::<Option<_>>()?
    };
    let position = listed.iter().position(|c| *c == column)?;
    let source = i.source.as_deref()?;
    if source.with.is_some() || !row_by_row(source) {
        return None;
    }
    let SetExpr::Select(select) = source.body.as_ref() else { return None };
    let (rel, alias) = lone_relation(source)?;
    let (rel_schema, rel_name) = split_name(rel)?;
    let refname = alias.map_or_else(|| rel_name.clone(), |a| fold(&a.name));
    // The relation's columns, and which of them is its distribution column.
    let cte = named.iter().position(|(n, _)| rel_schema.is_none() && *n == rel_name);
    if cte_refs(source, named) != usize::from(cte.is_some()) {
        return None;
    }
    let (columns, dist) = match cte {
        Some(k) => returned(named[k].1, rels)?,
        None => match rels.kind_of(rel_schema.as_deref(), &rel_name) {
            Some(RelationKind::Distributed { column, group: g }) if g == group => (rels.columns_of(rel_schema.as_deref(), &rel_name)?, column),
            _ => return None,
        },
    };
    let wildcard = |item: &SelectItem| matches!(item, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..));
    let picked = match select.projection.as_slice() {
        [only] if wildcard(only) => columns.get(position)?.clone(),
        items if !items.iter().any(wildcard) => match items.get(position)? {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => match e {
                Expr::Identifier(id) => fold(id),
                Expr::CompoundIdentifier(p) if p.len() == 2 && fold(&p[0]) == refname => fold(&p[1]),
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    };
    if picked != dist {
        return None;
    }
    match cte {
        Some(k) => earlier.get(k).map(Kept::Part),
        None => prove(&Statement::Query(Box::new(source.clone())), rels).ok().map(Kept::Table),
    }
}

/// The one relation of a SELECT's FROM clause, without joins, and its alias.
fn lone_relation(q: &Query) -> Option<(&sqlparser::ast::ObjectName, Option<&sqlparser::ast::TableAlias>)> {
    let SetExpr::Select(select) = q.body.as_ref() else { return None };
    let [from] = select.from.as_slice() else { return None };
    if !from.joins.is_empty() {
        return None;
    }
    match &from.relation {
        TableFactor::Table { name, alias, args: None, .. } => Some((name, alias.as_ref())),
        _ => None,
    }
}

/// How many times a query names one of the CTEs (unqualified).
fn cte_refs(q: &Query, named: &[(String, &Query)]) -> usize {
    struct Counter<'n, 'q> {
        named: &'n [(String, &'q Query)],
        count: usize,
    }
    impl Visitor for Counter<'_, '_> {
        type Break = ();
        fn pre_visit_relation(&mut self, name: &sqlparser::ast::ObjectName) -> ControlFlow<()> {
            if let Some((None, table)) = split_name(name)
                && self.named.iter().any(|(n, _)| *n == table)
            {
                self.count += 1;
            }
            ControlFlow::Continue(())
        }
    }
    let mut c = Counter { named, count: 0 };
    let _ = q.visit(&mut c);
    c.count
}

/// The columns an UPDATE or DELETE ... RETURNING of a distributed table returns (`*` or plain
/// column names), and the table's distribution column.
fn returned(q: &Query, rels: &impl Relations) -> Option<(Vec<String>, String)> {
    let (name, returning) = match q.body.as_ref() {
        SetExpr::Update(Statement::Update(u)) => match &u.table.relation {
            TableFactor::Table { name, .. } => (name, u.returning.as_ref()?),
            _ => return None,
        },
        SetExpr::Delete(Statement::Delete(d)) => {
            let (sqlparser::ast::FromTable::WithFromKeyword(f) | sqlparser::ast::FromTable::WithoutKeyword(f)) = &d.from;
            match f.first().map(|t| &t.relation) {
                Some(TableFactor::Table { name, .. }) => (name, d.returning.as_ref()?),
                _ => return None,
            }
        }
        _ => return None,
    };
    let (schema, table) = split_name(name)?;
    let Some(RelationKind::Distributed { column, .. }) = rels.kind_of(schema.as_deref(), &table) else { return None };
    let columns = match returning.as_slice() {
        [SelectItem::Wildcard(_)] => rels.columns_of(schema.as_deref(), &table)?,
        items => items
            .iter()
            .map(|item| match item {
                SelectItem::UnnamedExpr(Expr::Identifier(id)) => Some(fold(id)),
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => p.last().map(fold),
                _ => None,
            })
            .collect::<Option<_>>()?,
    };
    Some((columns, column))
}

/// An UPDATE assigns the distribution column something other than the value its WHERE pins.
fn moves(u: &sqlparser::ast::Update, column: &str, pins: Option<&[DistKey]>) -> bool {
    u.assignments.iter().any(|a| {
        let names: Vec<_> = match &a.target {
            AssignmentTarget::ColumnName(n) => vec![n],
            AssignmentTarget::Tuple(ns) => ns.iter().collect(),
        };
        names.iter().any(|n| split_name(n).is_some_and(|(_, c)| c == column))
            && !(matches!(&a.target, AssignmentTarget::ColumnName(_))
                && matches!((pins, key_of(&a.value)), (Some([pin]), Some(v)) if *pin == v))
    })
}

/// The distribution values of an INSERT ... VALUES into a distributed table, when all its rows
/// give one as a constant or parameter.
fn insert_keys(i: &sqlparser::ast::Insert, rels: &impl Relations) -> Option<Vec<DistKey>> {
    let TableObject::TableName(name) = &i.table else { return None };
    let (schema, table) = split_name(name)?;
    let Some(RelationKind::Distributed { column, .. }) = rels.kind_of(schema.as_deref(), &table) else { return None };
    let SetExpr::Values(values) = i.source.as_deref()?.body.as_ref() else { return None };
    let position = if i.columns.is_empty() {
        rels.columns_of(schema.as_deref(), &table)?.iter().position(|c| *c == column)?
    } else {
        i.columns.iter().position(|c| split_name(c).is_some_and(|(_, n)| n == column))?
    };
    let mut keys: Vec<DistKey> = Vec::new();
    for row in &values.rows {
        let k = row.content.get(position).and_then(key_of)?;
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    Some(keys)
}

/// The query works row by row: one SELECT without aggregates, grouping, DISTINCT, windows,
/// ORDER BY, LIMIT or OFFSET.
fn row_by_row(q: &Query) -> bool {
    if q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return false;
    }
    let SetExpr::Select(s) = q.body.as_ref() else { return false };
    let grouped = match &s.group_by {
        GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
        GroupByExpr::All(_) => true,
    };
    let used = uses(&s.projection);
    !(grouped || s.having.is_some() || s.distinct.is_some() || used.aggregate || used.window)
}

/// Whether a query names a distributed table anywhere.
fn reads_distributed(q: &Query, rels: &impl Relations) -> bool {
    struct Finder<'r, R> {
        rels: &'r R,
        found: bool,
    }
    impl<R: Relations> Visitor for Finder<'_, R> {
        type Break = ();
        fn pre_visit_relation(&mut self, name: &sqlparser::ast::ObjectName) -> ControlFlow<()> {
            if let Some((schema, table)) = split_name(name)
                && matches!(self.rels.kind_of(schema.as_deref(), &table), Some(RelationKind::Distributed { .. }))
            {
                self.found = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut f = Finder { rels, found: false };
    let _ = q.visit(&mut f);
    f.found
}
