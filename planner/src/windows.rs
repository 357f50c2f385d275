//! Window functions whose every window is partitioned by a distribution column: each partition
//! lies whole in one shard (the colocation proof has tied the FROM clause's distributed tables
//! together on their distribution columns), so every shard computes its rows' window values
//! exactly and the rows of all shards together are the answer.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, NamedWindowExpr, Select, SetExpr, TableFactor, Visit, Visitor, WindowSpec, WindowType};

use crate::route::{RelationKind, Relations, fold, split_name};

/// The distributed tables of a query's outermost FROM clause: the name each goes by and its
/// distribution column.
pub(crate) fn dist_columns(query: &sqlparser::ast::Query, rels: &impl Relations) -> Vec<(String, String)> {
    let SetExpr::Select(select) = query.body.as_ref() else { return Vec::new() };
    select
        .from
        .iter()
        .flat_map(|t| std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)))
        .filter_map(|f| match f {
            TableFactor::Table { name, alias, .. } => {
                let (schema, table) = split_name(name)?;
                let Some(RelationKind::Distributed { column, .. }) = rels.kind_of(schema.as_deref(), &table) else { return None };
                Some((alias.as_ref().map_or(table, |a| fold(&a.name)), column))
            }
            _ => None,
        })
        .collect()
}

/// Whether every window function of the SELECT's list (and ORDER BY) has a window whose
/// PARTITION BY names a distribution column of `dist`.
pub(crate) fn partitioned_by_distribution(select: &Select, order_by: Option<&sqlparser::ast::OrderBy>, dist: &[(String, String)]) -> bool {
    struct Windows<'s> {
        select: &'s Select,
        dist: &'s [(String, String)],
        ok: bool,
    }
    impl Visitor for Windows<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = e
                && let Some(over) = &f.over
            {
                let partitioned = match over {
                    WindowType::WindowSpec(spec) => spec_partitioned(spec, self.select, self.dist, 0),
                    WindowType::NamedWindow(name) => named_partitioned(&fold(name), self.select, self.dist, 0),
                };
                if !partitioned {
                    self.ok = false;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut w = Windows { select, dist, ok: !dist.is_empty() };
    let _ = select.projection.visit(&mut w);
    if let Some(ob) = order_by {
        let _ = ob.visit(&mut w);
    }
    w.ok
}

/// A window spec's partitioning (its own, or the named window's it builds on) names a
/// distribution column.
fn spec_partitioned(spec: &WindowSpec, select: &Select, dist: &[(String, String)], depth: usize) -> bool {
    if spec.partition_by.iter().any(|e| is_dist(e, dist)) {
        return true;
    }
    spec.partition_by.is_empty() && spec.window_name.as_ref().is_some_and(|n| named_partitioned(&fold(n), select, dist, depth + 1))
}

fn named_partitioned(name: &str, select: &Select, dist: &[(String, String)], depth: usize) -> bool {
    if depth > 8 {
        return false;
    }
    select.named_window.iter().any(|d| {
        fold(&d.0) == name
            && match &d.1 {
                NamedWindowExpr::WindowSpec(spec) => spec_partitioned(spec, select, dist, depth + 1),
                NamedWindowExpr::NamedWindow(other) => named_partitioned(&fold(other), select, dist, depth + 1),
            }
    })
}

/// `e` is a distribution column: `t.col` of a distributed table, or an unqualified name that
/// is the distribution column of exactly one of them.
fn is_dist(e: &Expr, dist: &[(String, String)]) -> bool {
    match e {
        Expr::Nested(inner) => is_dist(inner, dist),
        Expr::Identifier(id) => {
            let c = fold(id);
            dist.iter().filter(|(_, d)| *d == c).count() == 1
        }
        Expr::CompoundIdentifier(p) if p.len() == 2 => {
            let (r, c) = (fold(&p[0]), fold(&p[1]));
            dist.iter().any(|(n, d)| *n == r && *d == c)
        }
        _ => false,
    }
}
