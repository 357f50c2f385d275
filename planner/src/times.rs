//! The transaction's time, the same on every node. PostgreSQL's `now()` (and
//! `current_timestamp`, `current_date`, `localtimestamp`, ...) is the time its transaction
//! started; each data node would answer with its own start, so rows one statement writes on
//! several nodes would carry different times, and a read comparing with `now()` would not find
//! them. In a statement that reads or writes distributed or reference tables the coordinator
//! writes the transaction's start in instead, as a `timestamptz` literal cast the way the
//! function's type asks (the node's `TimeZone`, the client's, makes the date and local times);
//! a bare call in the select list or RETURNING keeps its column name. `statement_timestamp()`
//! gets the statement's start. `clock_timestamp()`, `random()` and other functions that change from call to call are
//! left to each node, as they change from row to row on one PostgreSQL too.

use std::ops::Range;

use sqlparser::ast::{Expr, Insert, SelectItem, SetExpr, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use crate::route::{Relations, split_name};
use crate::text::Source;

/// The coordinator's times as SQL expressions of type timestamptz: literals
/// (`'2026-12-06 17:40:55.123456+00'::timestamptz`), or parameters (`$3::timestamptz`) a
/// prepared statement is bound with at each execution.
#[derive(Debug, Clone, Copy)]
pub struct Stamps<'a> {
    /// When the transaction started (`now()`).
    pub transaction: &'a str,
    /// When the statement arrived (`statement_timestamp()`).
    pub statement: &'a str,
}

/// Whether `sql` may call one of the functions [`fix`] replaces: a cheap test before parsing.
pub fn mentions_time(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    [&b"now"[..], b"current_time", b"current_date", b"localtime", b"transaction_timestamp", b"statement_timestamp"]
        .iter()
        .any(|w| bytes.windows(w.len()).any(|s| s.eq_ignore_ascii_case(w)))
}

/// A column's default that calls a transaction-time function: `(column, default expression)`.
pub type TimeDefault = (String, String);

/// `sql` with the transaction-time functions replaced by `stamps`, when it is one statement
/// that reads or writes a distributed or reference table and calls one of them; `None`
/// otherwise.
/// `defaults` gives a managed table's columns whose defaults call them: an INSERT ... VALUES
/// with a column list that leaves such a column out gets it added, with its default (times
/// written in) in every row.
pub fn fix(
    sql: &str,
    rels: &impl Relations,
    stamps: Stamps<'_>,
    defaults: &dyn Fn(Option<&str>, &str) -> Vec<TimeDefault>,
) -> Option<String> {
    let (src, tokens) = Source::tokenize(sql).ok()?;
    let stmts = Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(tokens).parse_statements().ok()?;
    let [stmt] = stmts.as_slice() else { return None };
    if !matches!(stmt, Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)) {
        return None;
    }
    let targets = crate::plan::write_targets(stmt, &src, rels).ok()?;
    let touches = targets.iter().any(|t| t.kind.is_some())
        || crate::refs::collect(stmt, &src, rels).is_ok_and(|r| r.tables.iter().any(|t| t.kind.is_some()));
    if !touches {
        return None;
    }
    let mut edits = time_edits(&src, stamps);
    // A call that is a whole output column keeps the name PostgreSQL gives it.
    let bare = bare_items(stmt, &src);
    for (range, text) in &mut edits {
        if let Some((_, name)) = bare.iter().find(|(at, _)| *at == range.start) {
            text.push_str(&format!(" AS {name}"));
        }
    }
    if let Statement::Insert(insert) = stmt
        && let Some(target) = targets.first()
        && target.kind.is_some()
    {
        let missing: Vec<TimeDefault> = defaults(target.schema.as_deref(), &target.name)
            .into_iter()
            .filter(|(c, _)| !insert.columns.iter().any(|l| split_name(l).is_some_and(|(_, n)| n == *c)))
            .collect();
        edits.extend(add_columns(insert, &src, &missing, stamps).unwrap_or_default());
    }
    if edits.is_empty() {
        return None;
    }
    apply(sql, edits)
}

/// The replacements of the transaction-time function calls in `src`.
fn time_edits(src: &Source<'_>, stamps: Stamps<'_>) -> Vec<(Range<usize>, String)> {
    let mut edits = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let Some((end, text)) = call_at(src, i, stamps) else {
            i += 1;
            continue;
        };
        let qualified = i >= 2 && src.is_kw(i - 2, "pg_catalog") && src.tok(i - 1).is_some_and(|t| t.token == Token::Period);
        let start = if qualified { src.pos(i - 2) } else { src.pos(i) };
        edits.push((start..src.end_of(end), text));
        i = end + 1;
    }
    edits
}

/// `text` with the edits made (none overlapping).
fn apply(text: &str, mut edits: Vec<(Range<usize>, String)>) -> Option<String> {
    edits.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out = String::with_capacity(text.len() + 64);
    let mut copied = 0;
    for (range, with) in edits {
        if range.start < copied {
            return None;
        }
        out.push_str(&text[copied..range.start]);
        out.push_str(&with);
        copied = range.end;
    }
    out.push_str(&text[copied..]);
    Some(out)
}

/// The output columns (select list of the outermost query, RETURNING) that are a bare call of
/// a transaction-time function without an alias: where the call starts, and the column name
/// PostgreSQL gives it.
fn bare_items(stmt: &Statement, src: &Source<'_>) -> Vec<(usize, String)> {
    let items: Vec<&SelectItem> = match stmt {
        Statement::Query(q) => match q.body.as_ref() {
            SetExpr::Select(s) => s.projection.iter().collect(),
            _ => Vec::new(),
        },
        Statement::Insert(i) => i.returning.iter().flatten().collect(),
        Statement::Update(u) => u.returning.iter().flatten().collect(),
        Statement::Delete(d) => d.returning.iter().flatten().collect(),
        _ => Vec::new(),
    };
    items
        .into_iter()
        .filter_map(|item| {
            let SelectItem::UnnamedExpr(Expr::Function(f)) = item else { return None };
            let name = crate::funcs::builtin_name(f)?;
            let first = f.name.0.first()?.as_ident()?;
            let i = src.ident(first)?;
            TIME_FUNCTIONS.contains(&name.as_str()).then(|| (src.pos(i), name))
        })
        .collect()
}

/// The functions [`fix`] writes the time in for.
const TIME_FUNCTIONS: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_timestamp",
    "current_time",
    "current_date",
    "localtime",
    "localtimestamp",
];

/// The insertions that add `missing` columns (with their defaults, times written in) to an
/// INSERT ... VALUES with a column list; `None` when it has another shape.
fn add_columns(insert: &Insert, src: &Source<'_>, missing: &[TimeDefault], stamps: Stamps<'_>) -> Option<Vec<(Range<usize>, String)>> {
    if missing.is_empty() {
        return Some(Vec::new());
    }
    let SetExpr::Values(values) = insert.source.as_deref()?.body.as_ref() else { return None };
    let last = insert.columns.last()?.0.last()?.as_ident()?;
    let after = src.ident(last)? + 1;
    if !matches!(src.tok(after).map(|t| &t.token), Some(Token::RParen)) {
        return None;
    }
    let names: String = missing.iter().map(|(c, _)| format!(", {}", crate::names::quote_ident(c))).collect();
    let mut out = vec![(src.pos(after)..src.pos(after), names)];
    let mut exprs = String::new();
    for (_, default) in missing {
        let fixed = fix_expression(default, stamps)?;
        exprs.push_str(&format!(", ({fixed})"));
    }
    for row in &values.rows {
        let close = src.at(row.closing_token.0.span.start)?;
        out.push((src.pos(close)..src.pos(close), exprs.clone()));
    }
    Some(out)
}

/// A default expression with its transaction-time functions written in.
fn fix_expression(expr: &str, stamps: Stamps<'_>) -> Option<String> {
    let (src, _) = Source::tokenize(expr).ok()?;
    apply(expr, time_edits(&src, stamps))
}

/// A call of a transaction-time function starting at token `i`: its last token and the text
/// that replaces it.
fn call_at(src: &Source<'_>, i: usize, stamps: Stamps<'_>) -> Option<(usize, String)> {
    let Some(Token::Word(w)) = src.tok(i).map(|t| &t.token) else { return None };
    if w.quote_style.is_some() {
        return None;
    }
    // Not a column or a field (`t.now`), and not a qualified name other than pg_catalog's.
    if i >= 2 && src.tok(i - 1).is_some_and(|t| t.token == Token::Period) && !src.is_kw(i - 2, "pg_catalog") {
        return None;
    }
    let name = w.value.to_ascii_lowercase();
    let open = src.tok(i + 1).is_some_and(|t| t.token == Token::LParen);
    let literal = |stamp: &str| stamp.to_owned();
    match name.as_str() {
        "now" | "transaction_timestamp" | "statement_timestamp" if open => {
            let close = src.close_of(i + 1)?;
            if close != i + 2 {
                return None;
            }
            let stamp = if name == "statement_timestamp" { stamps.statement } else { stamps.transaction };
            Some((close, format!("({})", literal(stamp))))
        }
        "current_timestamp" | "current_time" | "localtime" | "localtimestamp" | "current_date" => {
            // The SQL keywords, with an optional precision: `current_timestamp(3)`.
            let (end, precision) = match (open, name.as_str()) {
                (true, "current_date") => return None,
                (true, _) => {
                    let close = src.close_of(i + 1)?;
                    let Some(Token::Number(p, _)) = src.tok(i + 2).map(|t| &t.token) else { return None };
                    if close != i + 3 {
                        return None;
                    }
                    (close, format!("({p})"))
                }
                (false, _) => (i, String::new()),
            };
            let ty = match name.as_str() {
                "current_timestamp" => "timestamptz",
                "current_time" => "timetz",
                "localtime" => "time",
                "localtimestamp" => "timestamp",
                _ => "date",
            };
            Some((end, format!("(({})::{ty}{precision})", literal(stamps.transaction))))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use crate::testing::Catalog;

    const STAMPS: Stamps<'static> = Stamps { transaction: "'T'::timestamptz", statement: "'S'::timestamptz" };

    fn fixed(sql: &str) -> Option<String> {
        fix(sql, &Catalog, STAMPS, &|_, _| Vec::new())
    }

    #[test]
    fn writes_to_managed_tables_get_the_coordinators_time() {
        assert_eq!(
            fixed("UPDATE orders SET ts = now(), d = CURRENT_DATE, s = statement_timestamp() WHERE o_w_id = 1").unwrap(),
            "UPDATE orders SET ts = ('T'::timestamptz), d = (('T'::timestamptz)::date), s = ('S'::timestamptz) WHERE o_w_id = 1"
        );
        assert_eq!(
            fixed("INSERT INTO item VALUES (1, current_timestamp(3), localtime, pg_catalog.now())").unwrap(),
            "INSERT INTO item VALUES (1, (('T'::timestamptz)::timestamptz(3)), (('T'::timestamptz)::time), ('T'::timestamptz))"
        );
    }

    #[test]
    fn reads_of_managed_tables_too_with_their_column_names() {
        assert_eq!(
            fixed("SELECT now(), current_date, now() - interval '1 day' AS d FROM orders WHERE o_entry_d < pg_catalog.now()").unwrap(),
            "SELECT ('T'::timestamptz) AS now, (('T'::timestamptz)::date) AS current_date, ('T'::timestamptz) - interval '1 day' AS d FROM orders WHERE o_entry_d < ('T'::timestamptz)"
        );
        assert_eq!(
            fixed("UPDATE orders SET o_carrier_id = 1 WHERE o_w_id = 1 RETURNING now(), o_id").unwrap(),
            "UPDATE orders SET o_carrier_id = 1 WHERE o_w_id = 1 RETURNING ('T'::timestamptz) AS now, o_id"
        );
    }

    #[test]
    fn columns_and_other_tables_are_left_alone() {
        assert_eq!(fixed("SELECT now() FROM plain"), None);
        assert_eq!(fixed("INSERT INTO plain VALUES (now())"), None);
        assert_eq!(fixed("UPDATE orders SET ts = o.now WHERE o_w_id = 1"), None);
        assert_eq!(fixed("UPDATE orders SET ts = clock_timestamp(), r = random() WHERE o_w_id = 1"), None);
        assert_eq!(fixed("UPDATE orders SET note = 'now()' WHERE o_w_id = 1"), None);
    }

    #[test]
    fn columns_left_to_a_time_default_are_written_in() {
        let defaults = |_: Option<&str>, name: &str| match name {
            "orders" => vec![("o_entry_d".to_owned(), "now()".to_owned()), ("o_d_id".to_owned(), "(CURRENT_DATE - 1)".to_owned())],
            _ => Vec::new(),
        };
        let got = fix("INSERT INTO orders (o_id, o_w_id) VALUES (1, 2), (3, 4) RETURNING o_entry_d", &Catalog, STAMPS, &defaults);
        assert_eq!(
            got.unwrap(),
            "INSERT INTO orders (o_id, o_w_id, \"o_entry_d\", \"o_d_id\") VALUES (1, 2, (('T'::timestamptz)), (((('T'::timestamptz)::date) - 1))), (3, 4, (('T'::timestamptz)), (((('T'::timestamptz)::date) - 1))) RETURNING o_entry_d"
        );
        // Listed columns keep their values; other shapes are left as written.
        let got = fix("INSERT INTO orders (o_id, o_w_id, o_entry_d, o_d_id) VALUES (1, 2, NULL, 3)", &Catalog, STAMPS, &defaults);
        assert_eq!(got, None);
        assert_eq!(fix("INSERT INTO orders VALUES (1, 2)", &Catalog, STAMPS, &defaults), None);
    }
}
