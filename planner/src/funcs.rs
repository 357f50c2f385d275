//! Which function calls are aggregates or window functions. PostgreSQL decides by the catalog;
//! the planner knows the built-in aggregates of PostgreSQL 15 by name. A user-defined aggregate
//! looks like an ordinary function to it (see the README's limits).

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Function, ObjectNamePart, Query, Visit, Visitor};

use crate::route::fold;

/// The built-in aggregate functions of PostgreSQL 15.
const AGGREGATES: &[&str] = &[
    "any_value",
    "array_agg",
    "avg",
    "bit_and",
    "bit_or",
    "bit_xor",
    "bool_and",
    "bool_or",
    "corr",
    "count",
    "covar_pop",
    "covar_samp",
    "cume_dist",
    "dense_rank",
    "every",
    "json_agg",
    "json_object_agg",
    "jsonb_agg",
    "jsonb_object_agg",
    "max",
    "min",
    "mode",
    "percent_rank",
    "percentile_cont",
    "percentile_disc",
    "range_agg",
    "range_intersect_agg",
    "rank",
    "regr_avgx",
    "regr_avgy",
    "regr_count",
    "regr_intercept",
    "regr_r2",
    "regr_slope",
    "regr_sxx",
    "regr_sxy",
    "regr_syy",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "string_agg",
    "sum",
    "var_pop",
    "var_samp",
    "variance",
    "xmlagg",
];

/// A function's name parts, folded as PostgreSQL folds identifiers.
pub(crate) fn name_parts(f: &Function) -> Option<Vec<String>> {
    f.name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(fold(i)),
            ObjectNamePart::Function(_) => None,
        })
        .collect()
}

/// The function's name (folded) when it is unqualified or in `pg_catalog`.
pub(crate) fn builtin_name(f: &Function) -> Option<String> {
    let parts = name_parts(f)?;
    match parts.as_slice() {
        [name] => Some(name.clone()),
        [schema, name] if schema == "pg_catalog" => Some(name.clone()),
        _ => None,
    }
}

/// Whether a call is an aggregate (a known aggregate name, not used as a window function).
pub(crate) fn is_aggregate(f: &Function) -> bool {
    f.over.is_none() && builtin_name(f).is_some_and(|n| AGGREGATES.contains(&n.as_str()))
}

/// What an expression list calls, outside its subqueries.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Uses {
    /// An aggregate call.
    pub aggregate: bool,
    /// A window function (`OVER`).
    pub window: bool,
}

impl Uses {
    /// Both scans together.
    pub fn or(self, other: Uses) -> Uses {
        Uses { aggregate: self.aggregate || other.aggregate, window: self.window || other.window }
    }
}

struct Scanner {
    uses: Uses,
    depth: usize,
}

impl Visitor for Scanner {
    type Break = ();

    fn pre_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if self.depth == 0
            && let Expr::Function(f) = expr
        {
            self.uses.window |= f.over.is_some();
            self.uses.aggregate |= is_aggregate(f);
        }
        ControlFlow::Continue(())
    }
}

/// Scans `node` for aggregate and window calls, not looking into subqueries.
pub(crate) fn uses<V: Visit + ?Sized>(node: &V) -> Uses {
    let mut s = Scanner { uses: Uses::default(), depth: 0 };
    let _ = node.visit(&mut s);
    s.uses
}
