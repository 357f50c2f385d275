//! Two-phase aggregation of a SELECT with aggregates, GROUP BY, HAVING or DISTINCT over several
//! shards, finished by PostgreSQL itself. Each shard runs a fragment whose output columns are
//! named `c1..cn`: the group keys, then partial aggregates (`count(x)`, `sum(x)`, `min(x)`,
//! `max(x)`, `bool_and(x)`, `bool_or(x)`; `avg(x)` as `sum(x)` and `count(x)`), grouped by the
//! keys. When an aggregate cannot be combined from partials (DISTINCT aggregates, `string_agg`,
//! `array_agg`, statistics, ...) the fragment instead returns the raw rows: keys and every
//! aggregate's arguments (made DISTINCT when every aggregate ignores duplicates). The final
//! query reads the temporary table holding all fragment rows, groups by the keys, combines or
//! computes the aggregates, and applies HAVING, DISTINCT, ORDER BY and LIMIT/OFFSET, with every
//! output column named as PostgreSQL would have named it.

mod calls;
mod final_query;
mod rewrite;

use sqlparser::ast::{Distinct, Expr, GroupByExpr, OrderByKind, Query, Select, SelectItem, Value};

use self::calls::{AggFn, Call};
use self::final_query::FinalPiece;
pub use self::final_query::FinalQuery;
use self::rewrite::{Site, sites};
use crate::clauses::{Clauses, Span};
use crate::funcs::uses;
use crate::merge::{MergeStep, MultiShard};
use crate::names::{output_name, quote_ident};
use crate::route::fold;
use crate::template::{Builder, Splicer};
use crate::text::Source;

/// A group key (or, for SELECT DISTINCT, a select item).
struct Key {
    span: Span,
    col: Option<(Option<String>, String)>,
    norm: Vec<String>,
}

/// One fragment output column.
enum Col {
    /// The original text of a span.
    Copy(Span),
    /// `func(<interior>) [FILTER (...)]`.
    Wrap(&'static str, Span, Option<Span>),
}

struct Ctx<'a, 's> {
    src: &'a Source<'s>,
    keys: Vec<Key>,
    calls: Vec<Call>,
    /// Fragment columns (0-based) of each call: its partials, or in raw mode its arguments,
    /// ORDER BY expressions and FILTER condition.
    call_cols: Vec<Vec<usize>>,
    raw: bool,
}

/// Plans the two-phase aggregation.
pub(crate) fn plan(
    query: &Query,
    select: &Select,
    c: &Clauses,
    src: &Source<'_>,
    sp: &Splicer<'_>,
) -> Result<MultiShard, String> {
    let (group, items) = shape(select)?;
    let aggregated = uses(&select.projection).aggregate || select.having.is_some() || !group.is_empty();
    let distinct_only = !aggregated && matches!(select.distinct, Some(Distinct::Distinct));
    let keys = if distinct_only {
        items.iter().zip(&c.items).map(|(e, s)| key(e, *s, src)).collect()
    } else {
        group_keys(group, select, &items, c, src)?
    };
    let mut ctx = Ctx { src, keys, calls: Vec::new(), call_cols: Vec::new(), raw: false };
    let item_sites: Vec<Vec<Site>> = items.iter().map(|e| sites(e, &mut ctx)).collect::<Result<_, _>>()?;
    let having_sites = select.having.as_ref().map(|h| sites(h, &mut ctx)).transpose()?;
    let order: &[sqlparser::ast::OrderByExpr] = match query.order_by.as_ref().map(|o| &o.kind) {
        Some(OrderByKind::Expressions(e)) => e,
        Some(OrderByKind::All(_)) => return Err("ORDER BY ALL".into()),
        None => &[],
    };
    let names: Vec<String> = select.projection.iter().map(|i| output_name(i).unwrap_or_default()).collect();
    let mut order_sites = Vec::with_capacity(order.len());
    for o in order {
        order_sites.push(if kept_order(&o.expr, &names) { None } else { Some(sites(&o.expr, &mut ctx)?) });
    }
    ctx.raw = ctx.calls.iter().any(|call| !call.combines());
    let cols = ctx.columns();
    let mut b = sp.builder();
    fragment(&mut b, &ctx, &cols, c, distinct_only)?;
    let finals = Finals { items: &items, names: &names, item_sites, having_sites, order, order_sites };
    let f = final_pieces(&ctx, select, c, &finals, distinct_only)?;
    Ok(MultiShard { fragment: b.build(), merge: MergeStep::Final(FinalQuery::new(f)) })
}

/// The final query's expressions, with the sites the rewrite replaces in each.
struct Finals<'q> {
    items: &'q [&'q Expr],
    names: &'q [String],
    item_sites: Vec<Vec<Site>>,
    having_sites: Option<Vec<Site>>,
    order: &'q [sqlparser::ast::OrderByExpr],
    /// `None` for an ORDER BY item kept as written (an output position or name).
    order_sites: Vec<Option<Vec<Site>>>,
}

/// The final query: `SELECT [DISTINCT] <items AS names> FROM <table> [GROUP BY keys] [HAVING]
/// [ORDER BY] [LIMIT/OFFSET]`.
fn final_pieces(
    ctx: &Ctx<'_, '_>,
    select: &Select,
    c: &Clauses,
    fin: &Finals<'_>,
    distinct_only: bool,
) -> Result<Vec<FinalPiece>, String> {
    let mut f = vec![FinalPiece::Text("SELECT ".into())];
    if matches!(select.distinct, Some(Distinct::Distinct)) {
        f.push(FinalPiece::Text("DISTINCT ".into()));
    }
    for (i, ((e, span), s)) in fin.items.iter().zip(&c.items).zip(&fin.item_sites).enumerate() {
        f.push(FinalPiece::Text(if i == 0 { String::new() } else { ", ".into() }));
        f.extend(ctx.rewrite(e, *span, s)?);
        f.push(FinalPiece::Text(format!(" AS {}", quote_ident(&fin.names[i]))));
    }
    f.push(FinalPiece::Text(" FROM ".into()));
    f.push(FinalPiece::Table);
    if !distinct_only && !ctx.keys.is_empty() {
        let keys: Vec<String> = (1..=ctx.keys.len()).map(|k| format!("c{k}")).collect();
        f.push(FinalPiece::Text(format!(" GROUP BY {}", keys.join(", "))));
    }
    if let (Some(h), Some(span), Some(s)) = (&select.having, c.having, &fin.having_sites) {
        f.push(FinalPiece::Text(" HAVING ".into()));
        f.extend(ctx.rewrite(h, span, s)?);
    }
    for (i, ((o, (span, whole)), s)) in fin.order.iter().zip(&c.order).zip(&fin.order_sites).enumerate() {
        f.push(FinalPiece::Text(if i == 0 { " ORDER BY ".into() } else { ", ".into() }));
        match s {
            Some(s) => f.extend(ctx.rewrite(&o.expr, *span, s)?),
            None => f.push(FinalPiece::Text(ctx.text(*span)?)),
        }
        let options = ctx.src.sql.get(ctx.src.end_of(span.1 - 1)..ctx.src.end_of(whole.1 - 1)).unwrap_or_default();
        f.push(FinalPiece::Text(options.to_owned()));
    }
    if let Some(limit) = c.limit {
        f.push(FinalPiece::Text(format!(" {}", ctx.text(limit)?)));
    }
    Ok(f)
}

/// The GROUP BY list and the select items' expressions, refusing what cannot be split.
fn shape(select: &Select) -> Result<(&[Expr], Vec<&Expr>), String> {
    let GroupByExpr::Expressions(group, modifiers) = &select.group_by else {
        return Err("GROUP BY ALL".into());
    };
    if !modifiers.is_empty()
        || group.iter().any(|g| matches!(g, Expr::GroupingSets(_) | Expr::Rollup(_) | Expr::Cube(_)))
    {
        return Err("GROUPING SETS, ROLLUP or CUBE over several shards".into());
    }
    if matches!(select.distinct, Some(Distinct::On(_))) {
        return Err("SELECT DISTINCT ON over several shards".into());
    }
    let items =
        select
            .projection
            .iter()
            .map(|i| match i {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Ok(e),
                _ => Err("SELECT * (or a multi-name alias) with aggregates, GROUP BY or DISTINCT over several shards"
                    .to_owned()),
            })
            .collect::<Result<_, _>>()?;
    Ok((group, items))
}

fn key(e: &Expr, span: Span, src: &Source<'_>) -> Key {
    Key { span, col: column_of(e), norm: src.norm(span.0, span.1) }
}

/// The group keys: GROUP BY items, with output positions and output aliases resolved to the
/// select items they name (PostgreSQL resolves a GROUP BY name as an input column first; the
/// planner takes an explicit output alias).
fn group_keys(
    group: &[Expr],
    select: &Select,
    items: &[&Expr],
    c: &Clauses,
    src: &Source<'_>,
) -> Result<Vec<Key>, String> {
    if group.len() != c.group.len() {
        return Err("internal: the GROUP BY list could not be located in the text".into());
    }
    let mut keys: Vec<Key> = Vec::new();
    for (g, span) in group.iter().zip(&c.group) {
        let item = match g {
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) => {
                    let p: usize = n.parse().map_err(|_| format!("GROUP BY {n}"))?;
                    Some(
                        p.checked_sub(1)
                            .filter(|&p| p < items.len())
                            .ok_or(format!("GROUP BY position {p} is not in the select list"))?,
                    )
                }
                _ => None,
            },
            Expr::Identifier(id) => select
                .projection
                .iter()
                .position(|i| matches!(i, SelectItem::ExprWithAlias { alias, .. } if fold(alias) == fold(id))),
            _ => None,
        };
        let k = match item {
            Some(i) => key(items[i], c.items[i], src),
            None => key(g, *span, src),
        };
        if !keys.iter().any(|o| o.norm == k.norm) {
            keys.push(k);
        }
    }
    Ok(keys)
}

/// An ORDER BY item the final query keeps as written: an output position or output name.
fn kept_order(e: &Expr, names: &[String]) -> bool {
    match e {
        Expr::Value(v) => matches!(v.value, Value::Number(..)),
        Expr::Identifier(id) => names.contains(&fold(id)),
        _ => false,
    }
}

fn column_of(e: &Expr) -> Option<(Option<String>, String)> {
    match e {
        Expr::Nested(inner) => column_of(inner),
        Expr::Identifier(id) => Some((None, fold(id))),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [.., t, c] => Some((Some(fold(t)), fold(c))),
            _ => None,
        },
        _ => None,
    }
}

fn same_column(a: &(Option<String>, String), qual: Option<&String>, name: &str) -> bool {
    a.1 == name && (a.0.is_none() || qual.is_none() || a.0.as_ref() == qual)
}

impl Ctx<'_, '_> {
    /// The fragment's columns: keys, then each call's partials (or raw arguments, each distinct
    /// expression once, so `array_agg(DISTINCT x ORDER BY x)` orders by its argument).
    fn columns(&mut self) -> Vec<Col> {
        let mut cols: Vec<Col> = self.keys.iter().map(|k| Col::Copy(k.span)).collect();
        let mut seen: Vec<(Vec<String>, usize)> =
            self.keys.iter().enumerate().map(|(i, k)| (k.norm.clone(), i)).collect();
        for call in &self.calls {
            let mut mine = Vec::new();
            if self.raw {
                let spans = call.args.iter().chain(call.order.iter().map(|(e, _)| e)).chain(call.filter.iter());
                for &(a, b) in spans {
                    let norm = self.src.norm(a, b);
                    let col = match seen.iter().find(|(n, _)| *n == norm) {
                        Some((_, c)) => *c,
                        None => {
                            cols.push(Col::Copy((a, b)));
                            seen.push((norm, cols.len() - 1));
                            cols.len() - 1
                        }
                    };
                    mine.push(col);
                }
            } else if call.func == AggFn::Avg {
                mine = vec![cols.len(), cols.len() + 1];
                cols.push(Col::Wrap("sum", call.interior, call.filter_clause));
                cols.push(Col::Wrap("count", call.interior, call.filter_clause));
            } else {
                mine.push(cols.len());
                cols.push(Col::Copy(call.span));
            }
            self.call_cols.push(mine);
        }
        cols
    }
}

/// Writes the fragment: `SELECT <keys and partials AS c1..cn> FROM ... WHERE ... [GROUP BY]`.
fn fragment(
    b: &mut Builder<'_, '_>,
    ctx: &Ctx<'_, '_>,
    cols: &[Col],
    c: &Clauses,
    distinct_only: bool,
) -> Result<(), String> {
    let src = ctx.src;
    let from = c.from.ok_or("an aggregate without FROM over several shards")?;
    b.copy(0..src.pos(c.select));
    b.push("SELECT ");
    let dedup = distinct_only || (ctx.raw && ctx.calls.iter().all(Call::ignores_duplicates));
    if dedup {
        b.push("DISTINCT ");
    }
    for (i, col) in cols.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        match *col {
            Col::Copy((x, y)) => b.copy(src.pos(x)..src.end_of(y - 1)),
            Col::Wrap(func, (x, y), filter) => {
                b.push(func);
                b.push("(");
                b.copy(src.pos(x)..src.pos(y));
                b.push(")");
                if let Some((fx, fy)) = filter {
                    b.push(" ");
                    b.copy(src.pos(fx)..src.end_of(fy - 1));
                }
            }
        }
        b.push(&format!(" AS c{}", i + 1));
    }
    if cols.is_empty() {
        b.push("1 AS c1");
    }
    b.push(" ");
    b.copy(src.pos(from)..src.end_of(c.tail.saturating_sub(1)).max(src.pos(from)));
    if !ctx.raw && !distinct_only && !ctx.keys.is_empty() {
        let positions: Vec<String> = (1..=ctx.keys.len()).map(|k| k.to_string()).collect();
        b.push(&format!(" GROUP BY {}", positions.join(", ")));
    }
    Ok(())
}
