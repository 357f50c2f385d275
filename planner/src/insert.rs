//! INSERT ... VALUES into a distributed table: each row's distribution value (a constant or a
//! parameter) and the byte range of its `( ... )`, so the coordinator can send each shard an
//! INSERT with only the rows that hash to it. The text before the rows (`INSERT INTO orders
//! (...) VALUES `) and after them (`ON CONFLICT ...`, `RETURNING ...`) is kept as written, the
//! target qualified by the shard schema.

use std::fmt;
use std::ops::Range;

use sqlparser::ast::{AssignmentTarget, Expr, Insert, OnConflictAction, OnInsert, SetExpr};

use crate::refs::RelRef;
use crate::route::{DistKey, Relations, fold, key_of, split_name};
use crate::template::{ShardTemplate, Splicer};
use crate::text::Source;

/// How to split a multi-row INSERT by shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertSplit {
    /// Whether the statement lists its columns (otherwise the catalog's column order placed the
    /// distribution value).
    pub column_list: bool,
    /// Position (0-based) of the distribution value in each row.
    pub dist_index: usize,
    /// The rows, in statement order; `ShardPlan::targets` holds the same keys.
    pub rows: Vec<RowSpan>,
    prefix: ShardTemplate,
    suffix: ShardTemplate,
    sql: String,
}

/// One VALUES row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowSpan {
    /// Byte range of the row's `( ... )` in the statement text.
    pub range: Range<usize>,
    /// Its distribution value.
    pub key: DistKey,
}

impl InsertSplit {
    /// The INSERT for shard schema `schema` with only the rows at the given indices (indices
    /// out of range are skipped): `INSERT INTO <schema>.<table> ... VALUES <rows> <suffix>`.
    pub fn render(&self, rows: &[usize], schema: &str) -> String {
        let mut out = self.prefix.render(Some(schema));
        let texts: Vec<&str> =
            rows.iter().filter_map(|&i| self.rows.get(i)).map(|r| &self.sql[r.range.clone()]).collect();
        out.push_str(&texts.join(", "));
        out.push_str(&self.suffix.render(Some(schema)));
        out
    }
}

impl fmt::Display for InsertSplit {
    /// One line per row: its key and text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = if self.column_list { "column list" } else { "catalog column order" };
        write!(f, "split by value {} of each row ({list})", self.dist_index + 1)?;
        for (i, r) in self.rows.iter().enumerate() {
            write!(f, "\n    row {} key {}: {}", i + 1, r.key, &self.sql[r.range.clone()])?;
        }
        Ok(())
    }
}

/// Plans an INSERT into the distributed table `target` with distribution column `column`.
pub(crate) fn plan(
    insert: &Insert,
    target: &RelRef,
    column: &str,
    src: &Source<'_>,
    sp: &Splicer<'_>,
    rels: &impl Relations,
) -> Result<InsertSplit, String> {
    let table = &target.name;
    let values = match insert.source.as_deref() {
        Some(q) if q.with.is_none() && q.order_by.is_none() && q.limit_clause.is_none() => match q.body.as_ref() {
            SetExpr::Values(v) => v,
            _ => return Err(format!("INSERT ... SELECT into the distributed table \"{table}\"")),
        },
        Some(_) => return Err(format!("INSERT ... SELECT into the distributed table \"{table}\"")),
        None => return Err(format!("INSERT without VALUES into the distributed table \"{table}\"")),
    };
    let column_list = !insert.columns.is_empty();
    let dist_index = if column_list {
        insert.columns.iter().position(|c| split_name(c).is_some_and(|(_, n)| n == column))
    } else {
        rels.columns_of(target.schema.as_deref(), table).and_then(|cols| cols.iter().position(|c| c == column))
    };
    let dist_index = dist_index.ok_or_else(|| match column_list {
        true => format!("INSERT into \"{table}\" without a value for its distribution column \"{column}\""),
        false => format!("INSERT without a column list into \"{table}\", whose column order the planner does not know"),
    })?;
    check_on_conflict(insert, column)?;
    let internal = || format!("internal: the VALUES rows of the INSERT into \"{table}\" could not be located");
    let mut rows = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        let key = row.content.get(dist_index).and_then(key_of).ok_or_else(|| {
            format!("INSERT whose value for the distribution column \"{column}\" is not a constant or a parameter")
        })?;
        let open = src.at(row.opening_token.0.span.start).ok_or_else(internal)?;
        let close = src.at(row.closing_token.0.span.start).ok_or_else(internal)?;
        rows.push(RowSpan { range: src.pos(open)..src.end_of(close), key });
    }
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else { return Err(internal()) };
    let (start, end) = (first.range.start, last.range.end);
    let part = |r: Range<usize>| {
        let mut b = sp.builder();
        b.copy(r);
        b.build()
    };
    Ok(InsertSplit {
        column_list,
        dist_index,
        prefix: part(0..start),
        suffix: part(end..src.sql.len()),
        rows,
        sql: src.sql.to_owned(),
    })
}

/// ON CONFLICT DO UPDATE may set the distribution column only to `EXCLUDED.<column>`.
pub(crate) fn check_on_conflict(insert: &Insert, column: &str) -> Result<(), String> {
    let Some(OnInsert::OnConflict(oc)) = &insert.on else { return Ok(()) };
    let OnConflictAction::DoUpdate(du) = &oc.action else { return Ok(()) };
    for a in &du.assignments {
        let targets: Vec<_> = match &a.target {
            AssignmentTarget::ColumnName(n) => vec![n],
            AssignmentTarget::Tuple(ns) => ns.iter().collect(),
        };
        if !targets.iter().any(|n| split_name(n).is_some_and(|(_, c)| c == column)) {
            continue;
        }
        let same = matches!(&a.value, Expr::CompoundIdentifier(p) if p.len() == 2 && fold(&p[0]) == "excluded" && fold(&p[1]) == column);
        if !same {
            return Err(format!("ON CONFLICT DO UPDATE that changes the distribution column \"{column}\""));
        }
    }
    Ok(())
}
