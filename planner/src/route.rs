//! Placement analysis: which relations a statement touches and, when it touches one distributed
//! table, whether its WHERE clause (or its VALUES rows) pins the distribution column to known
//! values. Pure: the catalog is seen through the [`Relations`] trait.
//!
//! Rules, in order:
//! 1. No distributed or reference table: the default node, as written.
//! 2. Only reference and undistributed tables: reads run on the default node (every node has the
//!    reference tables); a write to a reference table must reach every node.
//! 3. One distributed table (with any reference tables): pinned when a conjunct of the WHERE
//!    clause is `col = v` or `col IN (v, ...)` with `v` a literal or a `$n` parameter, or, for
//!    INSERT ... VALUES, by each row's value; otherwise all shards of its group.
//! 4. Anything else (two distributed tables, a distributed table with an undistributed one, a
//!    write that moves rows between shards, INSERT ... SELECT) is [`Placement::Unsupported`] with
//!    a sentence saying what, until a later pass learns it.

use std::collections::HashSet;
use std::fmt;
use std::ops::ControlFlow;

use sqlparser::ast::{
    AssignmentTarget, BinaryOperator, Expr, FromTable, Ident, ObjectName, ObjectNamePart, Query, SetExpr,
    Statement, TableFactor, TableObject, UnaryOperator, Value, Visit, Visitor,
};

/// How the catalog knows a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelationKind {
    /// Rows hashed on `column` into the shards of colocation group `group`.
    Distributed {
        /// Distribution column name, as PostgreSQL stores it (folded to lower case unless quoted).
        column: String,
        /// Colocation group id.
        group: i32,
    },
    /// A full copy on every data node.
    Reference,
}

/// The catalog as the planner sees it: `None` for relations it does not manage (ordinary
/// tables on the default node, views, CTE names, system catalogs).
pub trait Relations {
    /// Looks a relation up by its name as written (maybe schema-qualified).
    fn kind_of(&self, schema: Option<&str>, name: &str) -> Option<RelationKind>;

    /// The relation's column names in table order, when the catalog knows them. The planner
    /// uses them to find the distribution value of an INSERT without a column list and to
    /// resolve unqualified column names in joins; `None` (the default) means unknown.
    fn columns_of(&self, _schema: Option<&str>, _name: &str) -> Option<Vec<String>> {
        None
    }
}

/// A value that pins the distribution column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistKey {
    /// A literal, as text (the content of a string literal, or a number's digits).
    Literal(String),
    /// Bind parameter `$n` (1-based).
    Param(usize),
}

impl fmt::Display for DistKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DistKey::Literal(s) => write!(f, "'{}'", s.replace('\'', "''")),
            DistKey::Param(n) => write!(f, "${n}"),
        }
    }
}

/// Where a statement runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Touches no distributed or reference table: the default node.
    DefaultNode,
    /// Reads reference tables (perhaps with undistributed ones): the default node has them all.
    ReferenceRead,
    /// Writes a reference table: every node, atomically.
    ReferenceWrite,
    /// One distributed table, pinned: the shards these keys hash to.
    Pinned {
        /// Colocation group of the table.
        group: i32,
        /// The keys; the statement runs on the shards they hash to.
        keys: Vec<DistKey>,
    },
    /// One distributed table, not pinned: every shard of its group.
    AllShards {
        /// Colocation group of the table.
        group: i32,
    },
    /// Not supported yet: the sentence for a 0A000 error.
    Unsupported(String),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::DefaultNode => write!(f, "default node"),
            Placement::ReferenceRead => write!(f, "reference read on the default node"),
            Placement::ReferenceWrite => write!(f, "reference write on every node"),
            Placement::Pinned { group, keys } => {
                let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
                write!(f, "group {group} shards of keys [{}]", keys.join(", "))
            }
            Placement::AllShards { group } => write!(f, "group {group} all shards"),
            Placement::Unsupported(why) => write!(f, "unsupported: {why}"),
        }
    }
}

/// A relation the statement names, resolved.
#[derive(Debug, Clone)]
struct Touched {
    name: String,
    alias: Option<String>,
    kind: Option<RelationKind>,
}

/// Collects the plain relations of a statement (not table functions, not CTE names).
#[derive(Default)]
struct RelationCollector {
    tables: Vec<(ObjectName, Option<String>)>,
    ctes: HashSet<String>,
}

impl Visitor for RelationCollector {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.ctes.insert(fold(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, alias, args: None, .. } = factor {
            self.tables.push((name.clone(), alias.as_ref().map(|a| fold(&a.name))));
        }
        ControlFlow::Continue(())
    }
}

/// PostgreSQL's identifier folding: unquoted names are lower-cased.
pub(crate) fn fold(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// Splits a relation name into its folded schema (if written) and table name.
pub(crate) fn split_name(name: &ObjectName) -> Option<(Option<String>, String)> {
    let parts: Option<Vec<String>> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(fold(i)),
            ObjectNamePart::Function(_) => None,
        })
        .collect();
    let mut parts = parts?;
    let table = parts.pop()?;
    Some((parts.pop(), table))
}

fn touched(stmt: &Statement, rels: &impl Relations) -> Vec<Touched> {
    let mut collector = RelationCollector::default();
    let _ = stmt.visit(&mut collector);
    // INSERT's target and DELETE's tables are not table factors.
    match stmt {
        Statement::Insert(insert) => {
            if let TableObject::TableName(name) = &insert.table {
                collector.tables.push((name.clone(), None));
            }
        }
        Statement::Delete(delete) => {
            let from = match &delete.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            for t in from {
                if let TableFactor::Table { name, alias, .. } = &t.relation {
                    collector.tables.push((name.clone(), alias.as_ref().map(|a| fold(&a.name))));
                }
            }
        }
        _ => {}
    }
    let mut out: Vec<Touched> = Vec::new();
    for (name, alias) in collector.tables {
        let Some((schema, table)) = split_name(&name) else { continue };
        let kind = if schema.is_none() && collector.ctes.contains(&table) {
            None
        } else {
            rels.kind_of(schema.as_deref(), &table)
        };
        if !out.iter().any(|t| t.name == table && t.alias == alias) {
            out.push(Touched { name: table, alias, kind });
        }
    }
    out
}

/// The written table of a data-modifying statement, if any.
fn write_target(stmt: &Statement) -> Option<ObjectName> {
    match stmt {
        Statement::Insert(i) => match &i.table {
            TableObject::TableName(n) => Some(n.clone()),
            _ => None,
        },
        Statement::Update(u) => match &u.table.relation {
            TableFactor::Table { name, .. } => Some(name.clone()),
            _ => None,
        },
        Statement::Delete(d) => {
            let from = match &d.from {
                FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
            };
            from.first().and_then(|t| match &t.relation {
                TableFactor::Table { name, .. } => Some(name.clone()),
                _ => None,
            })
        }
        _ => None,
    }
}

/// Decides where a statement runs.
pub fn place(stmt: &Statement, rels: &impl Relations) -> Placement {
    let touched = touched(stmt, rels);
    let distributed: Vec<&Touched> =
        touched.iter().filter(|t| matches!(t.kind, Some(RelationKind::Distributed { .. }))).collect();
    let writes_reference = write_target(stmt)
        .and_then(|n| split_name(&n))
        .is_some_and(|(schema, name)| rels.kind_of(schema.as_deref(), &name) == Some(RelationKind::Reference));
    if distributed.is_empty() {
        if writes_reference {
            return Placement::ReferenceWrite;
        }
        if touched.iter().any(|t| t.kind == Some(RelationKind::Reference)) {
            return Placement::ReferenceRead;
        }
        return Placement::DefaultNode;
    }
    if writes_reference {
        return Placement::Unsupported("a statement that writes a reference table and reads a distributed table".into());
    }
    if let Some(local) = touched.iter().find(|t| t.kind.is_none()) {
        return Placement::Unsupported(format!(
            "a statement mixing the distributed table \"{}\" with \"{}\", which is not distributed",
            distributed[0].name, local.name
        ));
    }
    let names: HashSet<&str> = distributed.iter().map(|t| t.name.as_str()).collect();
    if names.len() > 1 || distributed.len() > 1 {
        return Placement::Unsupported("statements over more than one distributed table".into());
    }
    let table = distributed[0];
    let Some(RelationKind::Distributed { column, group }) = &table.kind else {
        return Placement::Unsupported("internal: distributed table without a column".into());
    };
    place_one(stmt, table, column, *group)
}

fn place_one(stmt: &Statement, table: &Touched, column: &str, group: i32) -> Placement {
    let pinned = |keys: Option<Vec<DistKey>>| match keys {
        Some(keys) => Placement::Pinned { group, keys },
        None => Placement::AllShards { group },
    };
    match stmt {
        Statement::Query(q) => match q.body.as_ref() {
            SetExpr::Select(select) => pinned(select.selection.as_ref().and_then(|w| pin(w, table, column))),
            _ => Placement::AllShards { group },
        },
        Statement::Update(u) => {
            let moves = u.assignments.iter().any(|a| match &a.target {
                AssignmentTarget::ColumnName(n) => split_name(n).is_some_and(|(_, c)| c == column),
                AssignmentTarget::Tuple(cols) => cols.iter().any(|n| split_name(n).is_some_and(|(_, c)| c == column)),
            });
            if moves {
                return Placement::Unsupported(format!(
                    "updating the distribution column \"{column}\" of \"{}\"",
                    table.name
                ));
            }
            pinned(u.selection.as_ref().and_then(|w| pin(w, table, column)))
        }
        Statement::Delete(d) => pinned(d.selection.as_ref().and_then(|w| pin(w, table, column))),
        Statement::Insert(insert) => place_insert(insert, table, column, group),
        _ => Placement::AllShards { group },
    }
}

fn place_insert(insert: &sqlparser::ast::Insert, table: &Touched, column: &str, group: i32) -> Placement {
    let Some(source) = &insert.source else {
        return Placement::Unsupported("INSERT without VALUES".into());
    };
    let SetExpr::Values(values) = source.body.as_ref() else {
        return Placement::Unsupported(format!("INSERT ... SELECT into the distributed table \"{}\"", table.name));
    };
    if insert.columns.is_empty() {
        return Placement::Unsupported(format!(
            "INSERT into the distributed table \"{}\" without a column list",
            table.name
        ));
    }
    let Some(pos) = insert.columns.iter().position(|c| split_name(c).is_some_and(|(_, n)| n == column)) else {
        return Placement::Unsupported(format!(
            "INSERT into \"{}\" without a value for its distribution column \"{column}\"",
            table.name
        ));
    };
    let mut keys = Vec::with_capacity(values.rows.len());
    for row in &values.rows {
        match row.content.get(pos).and_then(key_of) {
            Some(k) => keys.push(k),
            None => {
                return Placement::Unsupported(format!(
                    "INSERT whose value for the distribution column \"{column}\" is not a constant or a parameter"
                ));
            }
        }
    }
    Placement::Pinned { group, keys }
}

/// Keys that a WHERE clause pins the distribution column to, from its top-level conjuncts.
fn pin(expr: &Expr, table: &Touched, column: &str) -> Option<Vec<DistKey>> {
    match expr {
        Expr::Nested(inner) => pin(inner, table, column),
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            pin(left, table, column).or_else(|| pin(right, table, column))
        }
        Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => {
            if is_column(left, table, column) {
                key_of(right).map(|k| vec![k])
            } else if is_column(right, table, column) {
                key_of(left).map(|k| vec![k])
            } else {
                None
            }
        }
        Expr::InList { expr, list, negated: false } if is_column(expr, table, column) && !list.is_empty() => {
            list.iter().map(key_of).collect()
        }
        _ => None,
    }
}

fn is_column(expr: &Expr, table: &Touched, column: &str) -> bool {
    match expr {
        Expr::Nested(inner) => is_column(inner, table, column),
        Expr::Identifier(id) => fold(id) == column,
        Expr::CompoundIdentifier(ids) => match ids.as_slice() {
            [.., qualifier, col] => {
                let q = fold(qualifier);
                fold(col) == column && (table.alias.as_deref() == Some(q.as_str()) || (table.alias.is_none() && q == table.name))
            }
            _ => false,
        },
        _ => false,
    }
}

/// A literal or parameter, through casts and a unary minus on numbers.
pub(crate) fn key_of(expr: &Expr) -> Option<DistKey> {
    match expr {
        Expr::Nested(inner) => key_of(inner),
        Expr::Cast { expr, .. } => key_of(expr),
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match key_of(expr)? {
            DistKey::Literal(n) if !n.starts_with('-') && n.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
                Some(DistKey::Literal(format!("-{n}")))
            }
            _ => None,
        },
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(DistKey::Literal(n.to_string())),
            Value::SingleQuotedString(s) => Some(DistKey::Literal(s.clone())),
            Value::Placeholder(p) => p.strip_prefix('$')?.parse().ok().filter(|n| *n > 0).map(DistKey::Param),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests;
