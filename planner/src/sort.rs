//! The sorted merge of a SELECT with ORDER BY and/or LIMIT/OFFSET over several shards. Each
//! shard runs the query with its ORDER BY, every ORDER BY expression appended to the select list
//! as a junk column (`pgshard_sort_1`, ...) so the coordinator can compare rows without knowing
//! the output, and LIMIT pushed down as `LIMIT limit + offset` without OFFSET; the coordinator
//! merges the sorted streams, skips the offset and stops at the limit.

use sqlparser::ast::{Expr, LimitClause, OrderByKind, OrderBySort, Query, Select, SelectItem, Value};

use crate::clauses::{Clauses, Span};
use crate::merge::{Limit, MergeStep, MultiShard, SortKey};
use crate::names::output_name;
use crate::route::fold;
use crate::template::Splicer;
use crate::text::Source;

/// Plans the sorted merge.
pub(crate) fn plan(
    query: &Query,
    select: &Select,
    c: &Clauses,
    src: &Source<'_>,
    sp: &Splicer<'_>,
) -> Result<MultiShard, String> {
    let order: &[sqlparser::ast::OrderByExpr] = match query.order_by.as_ref().map(|o| &o.kind) {
        Some(OrderByKind::Expressions(e)) => e,
        Some(OrderByKind::All(_)) => return Err("ORDER BY ALL".into()),
        None => &[],
    };
    let (limit, offset) = limits(query)?;
    let mut b = sp.builder();
    let insert_at = if c.items.is_empty() { src.end_of(c.select) } else { src.end_of(c.list_end - 1) };
    b.copy(0..insert_at);
    let mut keys = Vec::with_capacity(order.len());
    for (i, (item, (span, _))) in order.iter().zip(&c.order).enumerate() {
        let (from, to) = sort_expr(&item.expr, *span, select, c)?;
        b.push(if i == 0 && c.items.is_empty() { " " } else { ", " });
        b.copy(src.pos(from)..src.end_of(to - 1));
        b.push(&format!(" AS pgshard_sort_{}", i + 1));
        let descending = matches!(item.options.sort, Some(OrderBySort::Desc));
        keys.push(SortKey { junk_index: i, descending, nulls_first: item.options.nulls_first.unwrap_or(descending) });
    }
    match c.limit {
        Some((from, to)) => {
            b.copy(insert_at..src.end_of(from - 1));
            b.push(&pushed_limit(limit, offset)?);
            b.copy(src.end_of(to - 1)..src.sql.len());
        }
        None => b.copy(insert_at..src.sql.len()),
    }
    Ok(MultiShard { fragment: b.build(), merge: MergeStep::Sort { keys, limit, offset, junk: order.len() } })
}

/// The select-list expression an ORDER BY item stands for: an output position (`ORDER BY 2`)
/// or an output column name is resolved to that item's expression.
fn sort_expr(expr: &Expr, span: Span, select: &Select, c: &Clauses) -> Result<Span, String> {
    let item_at = |i: usize| -> Result<Span, String> {
        if select.projection[..=i]
            .iter()
            .any(|it| matches!(it, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)))
        {
            return Err("ORDER BY an output position or name after * over several shards".into());
        }
        c.items.get(i).copied().ok_or_else(|| "internal: select item out of range".into())
    };
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => {
                let p: usize = n.parse().map_err(|_| format!("ORDER BY {n}"))?;
                if p == 0 || p > select.projection.len() {
                    return Err(format!("ORDER BY position {p} is not in the select list"));
                }
                item_at(p - 1)
            }
            _ => Ok(span),
        },
        Expr::Identifier(id) => {
            let name = fold(id);
            match select.projection.iter().position(|it| output_name(it).as_deref() == Some(name.as_str())) {
                Some(i) => item_at(i),
                None => Ok(span),
            }
        }
        _ => Ok(span),
    }
}

/// The LIMIT (None: all) and OFFSET of a query, as constants or parameters.
pub(crate) fn limits(query: &Query) -> Result<(Option<Limit>, Limit), String> {
    let (limit, offset) = match &query.limit_clause {
        Some(LimitClause::LimitOffset { limit, offset, limit_by }) if limit_by.is_empty() => (
            limit.as_ref().map(count).transpose()?.flatten(),
            offset.as_ref().map(|o| count(&o.value)).transpose()?.flatten(),
        ),
        Some(_) => return Err("this LIMIT form".into()),
        None => (None, None),
    };
    let limit = match &query.fetch {
        Some(f) if f.with_ties || f.percent => return Err("FETCH ... WITH TIES or PERCENT over several shards".into()),
        Some(f) => match &f.quantity {
            Some(q) => count(q)?,
            None => Some(Limit::Value(1)),
        },
        None => limit,
    };
    Ok((limit, offset.unwrap_or(Limit::Value(0))))
}

/// A constant or parameter count; `None` for NULL.
fn count(e: &Expr) -> Result<Option<Limit>, String> {
    match e {
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => count(inner),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().map(|n| Some(Limit::Value(n))).map_err(|_| format!("LIMIT or OFFSET {n}")),
            Value::Null => Ok(None),
            Value::Placeholder(p) => match p.strip_prefix('$').and_then(|n| n.parse().ok()) {
                Some(n) if n > 0 => Ok(Some(Limit::Param(n))),
                _ => Err(format!("the parameter {p} in LIMIT or OFFSET")),
            },
            _ => Err(format!("LIMIT or OFFSET {e} over several shards")),
        },
        _ => Err(format!("LIMIT or OFFSET {e} over several shards")),
    }
}

/// The fragment's LIMIT: the limit plus the offset, no OFFSET.
fn pushed_limit(limit: Option<Limit>, offset: Limit) -> Result<String, String> {
    let term = |l: Limit| match l {
        Limit::Value(n) => n.to_string(),
        Limit::Param(p) => format!("${p}::bigint"),
    };
    Ok(match (limit, offset) {
        (None, _) => String::new(),
        (Some(Limit::Value(l)), Limit::Value(o)) => {
            format!(" LIMIT {}", l.checked_add(o).ok_or("a LIMIT plus OFFSET that overflows")?)
        }
        (Some(Limit::Param(p)), Limit::Value(0)) => format!(" LIMIT ${p}"),
        (Some(l), o) => format!(" LIMIT ({} + {})", term(l), term(o)),
    })
}
