//! The final query's expressions: each select item, HAVING condition and ORDER BY item is the
//! client's text with its aggregate calls replaced by their final form over the partial columns
//! and its group-key references replaced by the key columns. Any other column reference, a
//! subquery, a window function or a parameter left in that text is refused.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Query, Visit, Visitor};

use super::calls::{AggFn, locate};
use super::final_query::FinalPiece;
use super::{Ctx, column_of, same_column};
use crate::clauses::Span;
use crate::funcs::is_aggregate;
use crate::route::fold;

/// What the final query replaces inside an expression.
#[derive(Debug, Clone)]
pub(super) enum Site {
    Agg { span: Span, call: usize },
    Col { span: Span, qual: Option<String>, name: String },
}

impl Site {
    fn span(&self) -> Span {
        match self {
            Site::Agg { span, .. } | Site::Col { span, .. } => *span,
        }
    }
}

/// Collects the aggregate calls and column references of an expression.
pub(super) fn sites(e: &Expr, ctx: &mut Ctx<'_, '_>) -> Result<Vec<Site>, String> {
    let mut finder = SiteFinder { ctx, sites: Vec::new(), error: None };
    let _ = e.visit(&mut finder);
    if let Some(err) = finder.error {
        return Err(err);
    }
    let mut sites = finder.sites;
    let aggs: Vec<Span> = sites.iter().filter(|s| matches!(s, Site::Agg { .. })).map(Site::span).collect();
    sites.retain(|s| {
        let (a, b) = s.span();
        !aggs.iter().any(|&(x, y)| x <= a && b <= y && (x, y) != (a, b))
    });
    sites.sort_by_key(Site::span);
    Ok(sites)
}

struct SiteFinder<'c, 'a, 's> {
    ctx: &'c mut Ctx<'a, 's>,
    sites: Vec<Site>,
    error: Option<String>,
}

impl Visitor for SiteFinder<'_, '_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.error =
            Some("a subquery in the select list, HAVING or ORDER BY of an aggregate over several shards".into());
        ControlFlow::Break(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        let src = self.ctx.src;
        match e {
            Expr::Function(f) if is_aggregate(f) => match locate(f, src) {
                Ok(call) => {
                    let span = call.span;
                    let id = match self.ctx.calls.iter().position(|c| c.norm == call.norm) {
                        Some(id) => id,
                        None => {
                            self.ctx.calls.push(call);
                            self.ctx.calls.len() - 1
                        }
                    };
                    self.sites.push(Site::Agg { span, call: id });
                }
                Err(err) => {
                    self.error = Some(err);
                    return ControlFlow::Break(());
                }
            },
            Expr::Identifier(id) => {
                if let Some(i) = src.ident(id) {
                    self.sites.push(Site::Col { span: (i, i + 1), qual: None, name: fold(id) });
                }
            }
            Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                if let (Some(a), Some(b)) = (src.ident(&parts[0]), parts.last().and_then(|p| src.ident(p))) {
                    let qual = Some(fold(&parts[parts.len() - 2]));
                    self.sites.push(Site::Col { span: (a, b + 1), qual, name: fold(&parts[parts.len() - 1]) });
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

impl Ctx<'_, '_> {
    /// Original text of a span, which must not contain a parameter.
    pub(super) fn text(&self, (a, b): Span) -> Result<String, String> {
        self.between(self.src.pos(a), self.src.end_of(b.saturating_sub(1)))
    }

    /// An expression of the final query: group keys become their columns, aggregates their
    /// final form; any other column reference is refused.
    pub(super) fn rewrite(&self, e: &Expr, span: Span, sites: &[Site]) -> Result<Vec<FinalPiece>, String> {
        let col = column_of(e);
        let norm = self.src.norm(span.0, span.1);
        let whole = self.keys.iter().position(|k| match (&k.col, &col) {
            (Some(kc), Some((q, n))) => same_column(kc, q.as_ref(), n),
            _ => k.norm == norm,
        });
        if let Some(k) = whole {
            return Ok(vec![FinalPiece::Text(format!("c{}", k + 1))]);
        }
        let mut out = Vec::new();
        let mut pos = self.src.pos(span.0);
        for site in sites {
            let (a, b) = site.span();
            out.push(FinalPiece::Text(self.between(pos, self.src.pos(a))?));
            match site {
                Site::Agg { call, .. } => out.extend(self.final_agg(*call)?),
                Site::Col { qual, name, .. } => {
                    let k = self
                        .keys
                        .iter()
                        .position(|k| k.col.as_ref().is_some_and(|kc| same_column(kc, qual.as_ref(), name)));
                    let k = k.ok_or_else(|| {
                        format!("the column \"{name}\" outside GROUP BY and aggregates (or inside a grouped expression) over several shards")
                    })?;
                    out.push(FinalPiece::Text(format!("c{}", k + 1)));
                }
            }
            pos = self.src.end_of(b - 1);
        }
        out.push(FinalPiece::Text(self.between(pos, self.src.end_of(span.1 - 1))?));
        Ok(out)
    }

    /// The original text between two byte offsets, which must not contain a parameter.
    fn between(&self, a: usize, b: usize) -> Result<String, String> {
        let r = a..b.max(a);
        if self.src.has_param(&r) {
            return Err(
                "a parameter in the select list, HAVING, ORDER BY, LIMIT or OFFSET of an aggregate over several shards"
                    .into(),
            );
        }
        Ok(self.src.sql[r].to_owned())
    }

    fn final_agg(&self, id: usize) -> Result<Vec<FinalPiece>, String> {
        let call = &self.calls[id];
        let cols = self.call_cols.get(id).ok_or("internal: aggregate without columns")?;
        let c = |k: usize| cols.get(k).map(|c| format!("c{}", c + 1)).ok_or("internal: aggregate column missing");
        let t = |s: String| FinalPiece::Text(s);
        if !self.raw {
            return Ok(match call.func {
                AggFn::Count => vec![t(format!("sum({})::bigint", c(0)?))],
                AggFn::Sum => vec![t(format!("sum({})::", c(0)?)), FinalPiece::PartialType(cols[0])],
                AggFn::Min => vec![t(format!("min({})", c(0)?))],
                AggFn::Max => vec![t(format!("max({})", c(0)?))],
                AggFn::Avg => vec![t(format!("(sum({}) / NULLIF(sum({}), 0))", c(0)?, c(1)?))],
                AggFn::BoolAnd => vec![t(format!("bool_and({})", c(0)?))],
                AggFn::BoolOr => vec![t(format!("bool_or({})", c(0)?))],
                AggFn::Other => return Err(format!("internal: {} has no partial form", call.name)),
            });
        }
        let mut next = 0;
        let mut col = || {
            next += 1;
            c(next - 1)
        };
        let mut s = format!("{}({}", call.name, if call.distinct { "DISTINCT " } else { "" });
        let args: Vec<String> = call.args.iter().map(|_| col()).collect::<Result<_, _>>()?;
        s.push_str(if call.star { "*" } else { "" });
        s.push_str(&args.join(", "));
        for (i, (e, whole)) in call.order.iter().enumerate() {
            s.push_str(if i == 0 { " ORDER BY " } else { ", " });
            s.push_str(&col()?);
            s.push_str(self.src.sql.get(self.src.end_of(e.1 - 1)..self.src.end_of(whole.1 - 1)).unwrap_or_default());
        }
        s.push(')');
        if call.filter.is_some() {
            s.push_str(&format!(" FILTER (WHERE {})", col()?));
        }
        Ok(vec![t(s)])
    }
}
