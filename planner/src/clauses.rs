//! Where the clauses of the outermost SELECT are in the text: its select items (and the
//! expression part of each, without the alias), FROM, GROUP BY items, HAVING, ORDER BY items
//! (without ASC/DESC/NULLS), and the LIMIT/OFFSET/FETCH region. Found by scanning the tokens at
//! the SELECT keyword's depth for the clause keywords, which PostgreSQL reserves (the few
//! ambiguous spots, `IS DISTINCT FROM` and `WITHIN GROUP`, are told apart by their neighbours),
//! and checked against the parsed statement: the item counts must agree.

use sqlparser::ast::{Ident, OrderByExpr, OrderByKind, OrderBySort, Query, Select, SelectItem};
use sqlparser::tokenizer::Token;

use crate::text::Source;

/// A token index range, `to` exclusive.
pub(crate) type Span = (usize, usize);

/// The clause positions of a SELECT (token indices).
#[derive(Debug, Default)]
pub(crate) struct Clauses {
    /// The SELECT keyword.
    pub select: usize,
    /// The expression of each select item (alias excluded); wildcards have their own span.
    pub items: Vec<Span>,
    /// First token after the select list.
    pub list_end: usize,
    /// The FROM keyword.
    pub from: Option<usize>,
    /// First token after FROM ... WHERE: GROUP, HAVING, WINDOW, ORDER, LIMIT, OFFSET, FETCH,
    /// FOR or the end.
    pub tail: usize,
    /// The GROUP BY items.
    pub group: Vec<Span>,
    /// The HAVING condition.
    pub having: Option<Span>,
    /// The ORDER BY items: the expression, and the whole item with its options.
    pub order: Vec<(Span, Span)>,
    /// The LIMIT/OFFSET/FETCH region.
    pub limit: Option<Span>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kw {
    From,
    Into,
    Where,
    Group,
    Having,
    Window,
    Order,
    Limit,
    Offset,
    Fetch,
    For,
    SetOp,
}

fn keyword(src: &Source<'_>, i: usize) -> Option<Kw> {
    let kw = |k: &str| src.is_kw(i, k);
    let after = |k: &str| src.is_kw(i + 1, k);
    let before = |n: usize, k: &str| i >= n && src.is_kw(i - n, k);
    Some(match () {
        _ if kw("FROM") && !(before(1, "DISTINCT") && (before(2, "IS") || before(2, "NOT"))) => Kw::From,
        _ if kw("INTO") => Kw::Into,
        _ if kw("WHERE") => Kw::Where,
        _ if kw("GROUP") && after("BY") && !before(1, "WITHIN") => Kw::Group,
        _ if kw("HAVING") => Kw::Having,
        _ if kw("WINDOW") => Kw::Window,
        _ if kw("ORDER") && after("BY") => Kw::Order,
        _ if kw("LIMIT") => Kw::Limit,
        _ if kw("OFFSET") => Kw::Offset,
        _ if kw("FETCH") => Kw::Fetch,
        _ if kw("FOR") => Kw::For,
        _ if kw("UNION") || kw("INTERSECT") || kw("EXCEPT") => Kw::SetOp,
        _ => return None,
    })
}

const INTERNAL: &str = "internal: the clauses of the query could not be located in its text";

/// The clause keywords at the SELECT keyword's depth, and the token ending the statement.
fn scan(src: &Source<'_>, s: usize) -> (Vec<(Kw, usize)>, usize) {
    let depth = src.tok(s).map_or(0, |t| t.depth);
    let mut marks = Vec::new();
    let mut end = s + 1;
    while let Some(t) = src.tok(end) {
        if t.depth < depth || (t.depth == depth && t.token == Token::SemiColon) {
            break;
        }
        if t.depth == depth
            && let Some(k) = keyword(src, end)
        {
            marks.push((k, end));
        }
        end += 1;
    }
    (marks, end)
}

/// The first token of the select list, after `ALL`, `DISTINCT` or `DISTINCT ON (...)`.
fn list_start(src: &Source<'_>, s: usize) -> Result<usize, String> {
    let mut start = s + 1;
    if src.is_kw(start, "ALL") {
        start += 1;
    } else if src.is_kw(start, "DISTINCT") {
        start += 1;
        if src.is_kw(start, "ON") {
            start = src.close_of(start + 1).ok_or(INTERNAL)? + 1;
        }
    }
    Ok(start)
}

/// Finds the clauses of `select`, the body of `query`.
pub(crate) fn find(src: &Source<'_>, query: &Query, select: &Select) -> Result<Clauses, String> {
    let s = src.at(select.select_token.0.span.start).ok_or(INTERNAL)?;
    let (marks, end) = scan(src, s);
    let next_after = |i: usize| marks.iter().map(|m| m.1).find(|&m| m > i).unwrap_or(end);
    let first = |k: Kw| marks.iter().find(|m| m.0 == k).map(|m| m.1);
    let start = list_start(src, s)?;
    let list_end = next_after(start - 1);
    let mut c = Clauses { select: s, list_end, ..Clauses::default() };
    let parts = if list_end > start { src.split_commas(start, list_end) } else { Vec::new() };
    if parts.len() != select.projection.len() {
        return Err(INTERNAL.into());
    }
    c.items = parts.into_iter().zip(&select.projection).map(|(part, item)| strip_alias(src, part, item)).collect();
    c.from = first(Kw::From);
    c.tail = marks.iter().find(|m| !matches!(m.0, Kw::From | Kw::Where | Kw::Into)).map_or(end, |m| m.1);
    if let Some(g) = first(Kw::Group) {
        c.group = src.split_commas(g + 2, next_after(g));
    }
    if let Some(h) = first(Kw::Having) {
        c.having = Some((h + 1, next_after(h)));
    }
    if let Some(o) = first(Kw::Order) {
        let items = match query.order_by.as_ref().map(|ob| &ob.kind) {
            Some(OrderByKind::Expressions(e)) => e.as_slice(),
            _ => &[],
        };
        let parts = src.split_commas(o + 2, next_after(o));
        if parts.len() != items.len() {
            return Err(INTERNAL.into());
        }
        c.order =
            parts.into_iter().zip(items).map(|(p, i)| Ok((strip_options(p, i)?, p))).collect::<Result<_, String>>()?;
    }
    let is_limit = |k: Kw| matches!(k, Kw::Limit | Kw::Offset | Kw::Fetch);
    if let Some(l) = marks.iter().find(|m| is_limit(m.0)).map(|m| m.1) {
        c.limit = Some((l, marks.iter().find(|m| m.1 > l && !is_limit(m.0)).map_or(end, |m| m.1)));
    }
    Ok(c)
}

/// The expression part of a select item.
fn strip_alias(src: &Source<'_>, (from, to): Span, item: &SelectItem) -> Span {
    let alias: Option<&Ident> = match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(alias),
        SelectItem::ExprWithAliases { aliases, .. } => aliases.first(),
        _ => None,
    };
    match alias.and_then(|a| src.ident(a)) {
        Some(a) if a > from && a < to => {
            let before_paren =
                if src.tok(a.wrapping_sub(1)).is_some_and(|t| t.token == Token::LParen) { a - 1 } else { a };
            if src.is_kw(before_paren.wrapping_sub(1), "AS") { (from, before_paren - 1) } else { (from, before_paren) }
        }
        _ => (from, to),
    }
}

/// The expression part of an ORDER BY item, without `ASC`/`DESC` and `NULLS FIRST/LAST`.
pub(crate) fn strip_options((from, to): Span, item: &OrderByExpr) -> Result<Span, String> {
    let mut n = 0;
    match item.options.sort {
        Some(OrderBySort::Asc | OrderBySort::Desc) => n += 1,
        Some(OrderBySort::Using(_)) => return Err("ORDER BY ... USING over several shards".into()),
        None => {}
    }
    if item.options.nulls_first.is_some() {
        n += 2;
    }
    if item.with_fill.is_some() || to < from + n + 1 {
        return Err("internal: an ORDER BY item could not be located in the text".into());
    }
    Ok((from, to - n))
}
