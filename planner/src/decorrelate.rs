//! Correlated `[NOT] EXISTS` subqueries in UPDATE and DELETE, rewritten so they stand on their
//! own and can be answered first (see `substitute`): a subquery tied to the target (or a FROM /
//! USING table) only through equalities `inner.col = outer.col` becomes a membership test of
//! the outer columns in the inner columns' rows:
//!
//! - `EXISTS (SELECT .. FROM i WHERE i.k = t.k AND p)` is `(t.k) IN (SELECT i.k FROM i WHERE p)`;
//! - `NOT EXISTS (...)` is `(t.k IS NULL OR NOT ((t.k) IN (SELECT i.k FROM i WHERE i.k IS NOT
//!   NULL AND p)))`: an equality never holds with NULL, so a NULL outer value has no match, and
//!   the inner NULLs that would make `IN` unknown are left out.
//!
//! Columns must be qualified in the subquery, or belong to a table whose columns the catalog
//! knows (an unqualified name could otherwise be the outer table's); anything else is left as
//! written.

use std::collections::HashSet;

use sqlparser::ast::{BinaryOperator, Expr, FromTable, GroupByExpr, Query, SetExpr, Statement, TableFactor, TableWithJoins, Visit, Visitor};
use sqlparser::tokenizer::Token;

use crate::funcs::uses;
use crate::narrow::split_and;
use crate::route::{Relations, fold, split_name};
use crate::text::Source;

/// `src` with every correlated `[NOT] EXISTS` of an UPDATE's or DELETE's WHERE clause that can
/// be rewritten rewritten; `None` when there is none.
pub(crate) fn decorrelate(stmt: &Statement, src: &Source<'_>, rels: &impl Relations) -> Option<String> {
    let (outer_from, selection): (Vec<&TableWithJoins>, _) = match stmt {
        Statement::Update(u) => {
            let mut from = vec![&u.table];
            if let Some(sqlparser::ast::UpdateTableFromKind::BeforeSet(f) | sqlparser::ast::UpdateTableFromKind::AfterSet(f)) = &u.from {
                from.extend(f);
            }
            (from, u.selection.as_ref()?)
        }
        Statement::Delete(d) => {
            let (FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f)) = &d.from;
            let mut from: Vec<&TableWithJoins> = f.iter().collect();
            from.extend(d.using.iter().flatten());
            (from, d.selection.as_ref()?)
        }
        _ => return None,
    };
    let outer: HashSet<String> = outer_from.iter().flat_map(|t| refnames(t)).map(|(r, _)| r).collect();
    let mut found = Vec::new();
    collect_exists(selection, &mut found);
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for (sub, negated) in found {
        let Some(text) = rewrite(sub, negated, &outer, rels) else { continue };
        // Where it is written: its SELECT, after `EXISTS (` (and `NOT` before, when negated).
        let SetExpr::Select(select) = sub.body.as_ref() else { continue };
        let at = src.at(select.select_token.0.span.start)?;
        let (open, kw) = (at.checked_sub(1)?, at.checked_sub(2)?);
        if !src.is_kw(kw, "exists") || !matches!(src.tok(open).map(|t| &t.token), Some(Token::LParen)) {
            return None;
        }
        let close = src.close_of(open)?;
        let start = if negated && kw > 0 && src.is_kw(kw - 1, "not") { src.pos(kw - 1) } else { src.pos(kw) };
        edits.push((start..src.end_of(close), text));
    }
    if edits.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(src.sql.len());
    let mut pos = 0;
    for (range, text) in edits {
        out.push_str(&src.sql[pos..range.start]);
        out.push_str(&text);
        pos = range.end;
    }
    out.push_str(&src.sql[pos..]);
    Some(out)
}

/// The EXISTS subqueries of a WHERE clause outside other subqueries, with whether negated.
fn collect_exists<'e>(e: &'e Expr, out: &mut Vec<(&'e Query, bool)>) {
    match e {
        Expr::Exists { subquery, negated } => out.push((subquery, *negated)),
        Expr::BinaryOp { left, op: BinaryOperator::And | BinaryOperator::Or, right } => {
            collect_exists(left, out);
            collect_exists(right, out);
        }
        Expr::Nested(inner) => collect_exists(inner, out),
        _ => {}
    }
}

/// The name a table of a FROM item goes by, with its schema and name (`None`: a derived table).
type Named = (String, Option<(Option<String>, String)>);

/// The names a FROM item's tables go by, with the table names.
fn refnames(t: &TableWithJoins) -> Vec<Named> {
    std::iter::once(&t.relation)
        .chain(t.joins.iter().map(|j| &j.relation))
        .filter_map(|f| match f {
            TableFactor::Table { name, alias, .. } => {
                let (schema, table) = split_name(name)?;
                let r = alias.as_ref().map_or_else(|| table.clone(), |a| fold(&a.name));
                Some((r, Some((schema, table))))
            }
            TableFactor::Derived { alias: Some(a), .. } => Some((fold(&a.name), None)),
            _ => None,
        })
        .collect()
}

/// The membership test replacing one EXISTS, or `None` to leave it.
fn rewrite(q: &Query, negated: bool, outer: &HashSet<String>, rels: &impl Relations) -> Option<String> {
    if q.with.is_some() || q.order_by.is_some() || q.limit_clause.is_some() || q.fetch.is_some() {
        return None;
    }
    let SetExpr::Select(s) = q.body.as_ref() else { return None };
    let grouped = match &s.group_by {
        GroupByExpr::Expressions(e, m) => !e.is_empty() || !m.is_empty(),
        GroupByExpr::All(_) => true,
    };
    if grouped || s.having.is_some() || uses(&s.projection).aggregate || s.from.is_empty() {
        return None;
    }
    let inner: Vec<Named> = s.from.iter().flat_map(refnames).collect();
    if inner.len() != s.from.iter().map(|t| 1 + t.joins.len()).sum::<usize>() {
        return None;
    }
    let inner_names: HashSet<&str> = inner.iter().map(|(r, _)| r.as_str()).collect();
    // Unqualified column names are fine when every inner table's columns are known and the
    // name is one of them.
    let inner_columns: Option<HashSet<String>> = inner
        .iter()
        .map(|(_, t)| t.as_ref().and_then(|(schema, name)| rels.columns_of(schema.as_deref(), name)))
        .collect::<Option<Vec<_>>>()
        .map(|cols| cols.into_iter().flatten().collect());
    let side = |e: &Expr| -> Side {
        match e {
            Expr::CompoundIdentifier(p) if p.len() == 2 => {
                let q = fold(&p[0]);
                if inner_names.contains(q.as_str()) {
                    Side::Inner
                } else if outer.contains(&q) {
                    Side::Outer
                } else {
                    Side::Unknown
                }
            }
            Expr::Identifier(id) if inner_columns.as_ref().is_some_and(|c| c.contains(&fold(id))) => Side::Inner,
            _ => Side::Unknown,
        }
    };
    let mut conjuncts = Vec::new();
    if let Some(w) = &s.selection {
        split_and(w, &mut conjuncts);
    }
    let (mut pairs, mut rest) = (Vec::new(), Vec::new());
    for c in conjuncts {
        if let Expr::BinaryOp { left, op: BinaryOperator::Eq, right } = c {
            match (side(left), side(right)) {
                (Side::Inner, Side::Outer) => {
                    pairs.push((left.to_string(), right.to_string()));
                    continue;
                }
                (Side::Outer, Side::Inner) => {
                    pairs.push((right.to_string(), left.to_string()));
                    continue;
                }
                _ => {}
            }
        }
        if !inner_only(c, &side) {
            return None;
        }
        rest.push(format!("({c})"));
    }
    if pairs.is_empty() {
        return None;
    }
    let from: Vec<String> = s.from.iter().map(ToString::to_string).collect();
    let list = |side: fn(&(String, String)) -> &String| pairs.iter().map(side).cloned().collect::<Vec<_>>().join(", ");
    let (inner_list, outer_list) = (list(|p| &p.0), list(|p| &p.1));
    if !negated {
        let filter = if rest.is_empty() { String::new() } else { format!(" WHERE {}", rest.join(" AND ")) };
        return Some(format!("(({outer_list}) IN (SELECT {inner_list} FROM {}{filter}))", from.join(", ")));
    }
    let mut filter: Vec<String> = pairs.iter().map(|(i, _)| format!("{i} IS NOT NULL")).collect();
    filter.extend(rest);
    let nulls: Vec<String> = pairs.iter().map(|(_, o)| format!("{o} IS NULL")).collect();
    Some(format!(
        "({} OR NOT (({outer_list}) IN (SELECT {inner_list} FROM {} WHERE {})))",
        nulls.join(" OR "),
        from.join(", "),
        filter.join(" AND ")
    ))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Inner,
    Outer,
    Unknown,
}

/// Whether every column `e` names is an inner one (and it has no subquery, which could name
/// outer columns out of sight).
fn inner_only(e: &Expr, side: &dyn Fn(&Expr) -> Side) -> bool {
    struct Check<'s> {
        side: &'s dyn Fn(&Expr) -> Side,
        ok: bool,
    }
    impl Visitor for Check<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> std::ops::ControlFlow<()> {
            let bad = match e {
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => (self.side)(e) != Side::Inner,
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => true,
                _ => false,
            };
            if bad {
                self.ok = false;
                return std::ops::ControlFlow::Break(());
            }
            std::ops::ControlFlow::Continue(())
        }
    }
    let mut c = Check { side, ok: true };
    let _ = e.visit(&mut c);
    c.ok
}
