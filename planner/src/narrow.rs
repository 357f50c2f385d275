//! Fewer rows to move: the WHERE conjuncts of a read that test one table's columns alone (with
//! constants, comparisons, IN lists, BETWEEN, LIKE, IS NULL, casts and arithmetic; no function
//! calls, subqueries or parameters) are also applied where that table's rows are read for
//! copying or broadcasting, so only the rows that can pass move. They stay in the statement too.
//! Only the outermost SELECT's WHERE counts, and only for tables of its FROM clause that no
//! outer join could null-extend (a WHERE test on those could be about the missing rows).

use sqlparser::ast::{BinaryOperator, Expr, JoinOperator, Query, SetExpr, Statement, TableFactor, TableWithJoins, UnaryOperator, Value};

use crate::names::quote_ident;
use crate::route::{fold, split_name};
use crate::text::Source;

/// A table of the outermost FROM clause and the conjuncts that test it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Narrowed {
    /// Byte offset where its name starts (its schema, if written), as `RelRef::qualifier`.
    pub at: usize,
    /// The name its columns are qualified with in the statement (its alias, or its name).
    pub refname: String,
    /// `WHERE ...` text, with the table read `AS refname`: append to `SELECT * FROM <table>`.
    pub clause: String,
}

/// The narrowing of every table of the outermost FROM clause that has conjuncts of its own.
pub(crate) fn narrowings(stmt: &Statement, src: &Source<'_>) -> Vec<Narrowed> {
    let Statement::Query(q) = stmt else { return Vec::new() };
    narrow_query(q, src)
}

fn narrow_query(q: &Query, src: &Source<'_>) -> Vec<Narrowed> {
    let SetExpr::Select(select) = q.body.as_ref() else { return Vec::new() };
    let Some(selection) = &select.selection else { return Vec::new() };
    // The tables of the FROM clause that keep only matched rows.
    let mut tables: Vec<(&sqlparser::ast::ObjectName, String)> = Vec::new();
    let mut count = 0;
    for twj in &select.from {
        count += 1 + twj.joins.len();
        tables.extend(inner_tables(twj));
    }
    let alone = count == 1;
    let mut conjuncts = Vec::new();
    split_and(selection, &mut conjuncts);
    let mut out = Vec::new();
    for (name, refname) in tables {
        let Some(at) = name.0.first().and_then(|p| p.as_ident()).and_then(|id| src.ident_start(id)) else { continue };
        let mine: Vec<String> = conjuncts.iter().filter(|c| tests_only(c, &refname, alone)).map(|c| format!("({c})")).collect();
        if !mine.is_empty() {
            out.push(Narrowed { at, clause: format!(" AS {} WHERE {}", quote_ident(&refname), mine.join(" AND ")), refname });
        }
    }
    out
}

/// The plain tables of a FROM item that no outer join null-extends, with the name their
/// columns go by.
fn inner_tables(twj: &TableWithJoins) -> Vec<(&sqlparser::ast::ObjectName, String)> {
    let mut keep: Vec<Option<(&sqlparser::ast::ObjectName, String)>> = vec![plain(&twj.relation)];
    for j in &twj.joins {
        match &j.join_operator {
            JoinOperator::Join(_) | JoinOperator::Inner(_) | JoinOperator::CrossJoin(_) => keep.push(plain(&j.relation)),
            JoinOperator::Left(_) | JoinOperator::LeftOuter(_) => keep.push(None),
            JoinOperator::Right(_) | JoinOperator::RightOuter(_) => {
                keep.iter_mut().for_each(|k| *k = None);
                keep.push(plain(&j.relation));
            }
            _ => {
                keep.iter_mut().for_each(|k| *k = None);
                keep.push(None);
            }
        }
    }
    keep.into_iter().flatten().collect()
}

fn plain(t: &TableFactor) -> Option<(&sqlparser::ast::ObjectName, String)> {
    match t {
        TableFactor::Table { name, alias, args: None, with_hints, version: None, partitions, .. }
            if with_hints.is_empty() && partitions.is_empty() =>
        {
            let refname = match alias {
                Some(a) if a.columns.is_empty() => fold(&a.name),
                Some(_) => return None,
                None => split_name(name)?.1,
            };
            Some((name, refname))
        }
        _ => None,
    }
}

/// The conjuncts of `e` (through AND and parentheses around ANDs).
pub(crate) fn split_and<'e>(e: &'e Expr, out: &mut Vec<&'e Expr>) {
    match e {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner) if matches!(**inner, Expr::BinaryOp { op: BinaryOperator::And, .. }) => split_and(inner, out),
        other => out.push(other),
    }
}

/// Whether `e` reads only columns of `refname` (qualified; unqualified too when it is the only
/// table) and only in the forms a shard evaluates exactly as the default node would.
fn tests_only(e: &Expr, refname: &str, alone: bool) -> bool {
    let mut columns = 0;
    safe(e, refname, alone, &mut columns) && columns > 0
}

fn safe(e: &Expr, refname: &str, alone: bool, columns: &mut usize) -> bool {
    let mut go = |e: &Expr| safe(e, refname, alone, columns);
    match e {
        Expr::Identifier(_) if alone => {
            *columns += 1;
            true
        }
        Expr::CompoundIdentifier(parts) if parts.len() == 2 && fold(&parts[0]) == refname => {
            *columns += 1;
            true
        }
        Expr::Value(v) => matches!(v.value, Value::Number(..) | Value::SingleQuotedString(_) | Value::Boolean(_) | Value::Null),
        Expr::Nested(inner) => go(inner),
        Expr::BinaryOp { left, op, right } => {
            use BinaryOperator as B;
            matches!(op, B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq | B::And | B::Or | B::Plus | B::Minus | B::Multiply)
                && go(left)
                && go(right)
        }
        Expr::UnaryOp { op: UnaryOperator::Not | UnaryOperator::Minus, expr } => go(expr),
        Expr::IsNull(x) | Expr::IsNotNull(x) | Expr::IsTrue(x) | Expr::IsFalse(x) | Expr::IsNotTrue(x) | Expr::IsNotFalse(x) => go(x),
        Expr::InList { expr, list, .. } => go(expr) && list.iter().all(go),
        Expr::Between { expr, low, high, .. } => go(expr) && go(low) && go(high),
        Expr::Like { expr, pattern, escape_char: None, any: false, .. } | Expr::ILike { expr, pattern, escape_char: None, any: false, .. } => {
            go(expr) && go(pattern)
        }
        Expr::Cast { expr, format: None, .. } => go(expr),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    use super::*;

    fn narrowed(sql: &str) -> Vec<(String, String)> {
        let (src, tokens) = Source::tokenize(sql).unwrap();
        let stmts = Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(tokens).parse_statements().unwrap();
        narrowings(&stmts[0], &src).into_iter().map(|n| (sql[n.at..].split_whitespace().next().unwrap().to_owned(), n.clause)).collect()
    }

    #[test]
    fn conjuncts_on_one_table_narrow_it() {
        let got = narrowed("SELECT * FROM orders o JOIN events e ON e.k = o.k WHERE o.amount > 10 AND e.kind IN ('a', 'b') AND o.k = e.k AND (o.s IS NULL OR o.s <> 'x')");
        assert_eq!(
            got,
            [
                ("orders".to_owned(), " AS \"o\" WHERE (o.amount > 10) AND ((o.s IS NULL OR o.s <> 'x'))".to_owned()),
                ("events".to_owned(), " AS \"e\" WHERE (e.kind IN ('a', 'b'))".to_owned()),
            ]
        );
        // One table: unqualified columns are its own.
        assert_eq!(narrowed("SELECT count(*) FROM public.orders WHERE amount BETWEEN 1 AND 5")[0].1, " AS \"orders\" WHERE (amount BETWEEN 1 AND 5)");
    }

    #[test]
    fn null_extended_sides_calls_and_parameters_do_not() {
        assert_eq!(narrowed("SELECT * FROM orders o LEFT JOIN events e ON e.k = o.k WHERE e.kind IS NULL AND o.a = 1").len(), 1);
        assert!(narrowed("SELECT * FROM orders o LEFT JOIN events e ON e.k = o.k WHERE e.kind IS NULL")[..].is_empty());
        assert!(narrowed("SELECT * FROM orders o FULL JOIN events e ON e.k = o.k WHERE o.a = 1").is_empty());
        assert!(narrowed("SELECT * FROM orders o, events e WHERE lower(o.s) = 'a' AND o.a = $1 AND o.b IN (SELECT 1)").is_empty());
        assert!(narrowed("SELECT * FROM orders o, events e WHERE a = 1").is_empty(), "unqualified with two tables");
        assert!(narrowed("SELECT 1 FROM orders UNION SELECT 2 FROM events WHERE a = 1").is_empty());
    }
}
