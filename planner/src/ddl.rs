//! Utility statements naming managed tables. DDL on a distributed table runs as written on every
//! node (where the table's empty shell lives) and, qualified, on every shard of its group; DDL on
//! a reference table runs as written on every node; DDL on other tables runs on the default
//! node. Refused: changing a distribution column (type, name, drop), renaming a managed table,
//! a unique constraint or index without the distribution column, foreign keys across colocation
//! groups, not on the distribution columns, from a reference or ordinary table to a distributed
//! one, or from a distributed table to an ordinary one, and views or CREATE TABLE ... AS over
//! distributed tables.

use std::fmt;

use sqlparser::ast::{
    AlterColumnOperation, AlterTable, AlterTableOperation, ColumnOption, CreateIndex, Expr, ForeignKeyConstraint,
    Ident, IndexColumn, ObjectName, ObjectType, Statement, TableConstraint, Visit,
};

use crate::plan::Plan;
use crate::refs::{RelRef, collect, resolve};
use crate::route::{RelationKind, Relations, fold};
use crate::template::{ShardTemplate, Splicer};
use crate::text::Source;

/// A utility statement naming distributed (or, for DROP, reference) tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdlPlan {
    /// The statement as written, for every node (shells and reference tables).
    pub on_every_node: String,
    /// For each colocation group, the statement to run on each of its shards (render with the
    /// shard's schema).
    pub shards: Vec<(i32, ShardTemplate)>,
    /// CREATE INDEX CONCURRENTLY (cannot run inside a transaction block).
    pub concurrently: bool,
    /// Managed tables dropped by DROP TABLE (schema as written, name), for the catalog.
    pub drops: Vec<(Option<String>, String)>,
    /// The statement creates an index.
    pub creates_index: bool,
}

/// Plans a utility statement.
pub(crate) fn plan(stmt: &Statement, src: &Source<'_>, rels: &impl Relations) -> Plan {
    let result = match stmt {
        Statement::AlterTable(at) => alter_table(at, src, rels),
        Statement::CreateIndex(ci) => create_index(ci, src, rels),
        Statement::Drop { object_type: ObjectType::Table, names, if_exists, .. } => {
            let prefix = if *if_exists { "DROP TABLE IF EXISTS " } else { "DROP TABLE " };
            let targets: Vec<(&ObjectName, bool)> = names.iter().map(|n| (n, false)).collect();
            listed(&targets, prefix, true, src, rels)
        }
        Statement::Truncate(t) => {
            let targets: Vec<(&ObjectName, bool)> = t.table_names.iter().map(|t| (&t.name, t.only)).collect();
            listed(&targets, "TRUNCATE TABLE ", false, src, rels)
        }
        Statement::Lock(l) => {
            let targets: Vec<(&ObjectName, bool)> = l.tables.iter().map(|t| (&t.name, t.only)).collect();
            listed(&targets, "LOCK TABLE ", false, src, rels)
        }
        Statement::Comment { object_type, object_name, .. } => {
            let mut name = object_name.clone();
            if matches!(object_type, sqlparser::ast::CommentObject::Column) {
                name.0.pop();
            }
            match matches!(object_type, sqlparser::ast::CommentObject::Table | sqlparser::ast::CommentObject::Column) {
                true => on_table(&name, false, src, rels),
                false => Ok(Plan::DefaultNode),
            }
        }
        Statement::Analyze(a) => maintenance(a.table_name.as_ref(), src, rels),
        Statement::Vacuum(v) => maintenance(v.table_name.as_ref(), src, rels),
        Statement::CreateTable(ct) => create_table(ct, src, rels),
        Statement::CreateView(cv) => reads_no_distributed(&cv.query, "a view over the distributed table", src, rels),
        _ => Ok(Plan::DefaultNode),
    };
    result.unwrap_or_else(Plan::Unsupported)
}

fn ddl(src: &Source<'_>, shards: Vec<(i32, ShardTemplate)>) -> Plan {
    Plan::Ddl(DdlPlan {
        on_every_node: src.sql.to_owned(),
        shards,
        concurrently: false,
        drops: Vec::new(),
        creates_index: false,
    })
}

/// The whole statement with the given references qualified.
fn qualified(src: &Source<'_>, refs: &[&RelRef]) -> ShardTemplate {
    Splicer::new(src.sql, refs.iter().map(|r| r.qualifier.clone()).collect()).whole()
}

fn group_of(r: &RelRef) -> Option<(i32, &str)> {
    match &r.kind {
        Some(RelationKind::Distributed { group, column }) => Some((*group, column.as_str())),
        _ => None,
    }
}

/// A statement on one table that needs the shells (and, with `shards`, the shards) changed.
fn on_table(name: &ObjectName, shards: bool, src: &Source<'_>, rels: &impl Relations) -> Result<Plan, String> {
    let t = resolve(name, src, rels)?;
    Ok(match (&t.kind, group_of(&t)) {
        (_, Some((g, _))) => ddl(src, if shards { vec![(g, qualified(src, &[&t]))] } else { Vec::new() }),
        (Some(RelationKind::Reference), _) => Plan::EveryNode,
        _ => Plan::DefaultNode,
    })
}

/// ANALYZE or VACUUM: of one table like other DDL; of everything, on every node.
fn maintenance(name: Option<&ObjectName>, src: &Source<'_>, rels: &impl Relations) -> Result<Plan, String> {
    match name {
        Some(n) => on_table(n, true, src, rels),
        None => Ok(Plan::EveryNode),
    }
}

/// DROP TABLE, TRUNCATE, LOCK: a list of tables. Each group's shards get the statement
/// rebuilt with only that group's tables.
fn listed(
    targets: &[(&ObjectName, bool)],
    prefix: &str,
    drop: bool,
    src: &Source<'_>,
    rels: &impl Relations,
) -> Result<Plan, String> {
    let refs: Vec<RelRef> = targets.iter().map(|(n, _)| resolve(n, src, rels)).collect::<Result<_, _>>()?;
    if refs.iter().all(|r| r.kind.is_none()) {
        return Ok(Plan::DefaultNode);
    }
    if !drop && let Some(local) = refs.iter().find(|r| r.kind.is_none()) {
        let what = prefix.split(' ').next().unwrap_or(prefix);
        return Err(format!(
            "{what} of a distributed or reference table together with \"{}\", which is neither",
            local.name
        ));
    }
    if !drop && refs.iter().all(|r| r.kind == Some(RelationKind::Reference)) {
        return Ok(Plan::EveryNode);
    }
    let last =
        targets.last().and_then(|(n, _)| n.0.last()).and_then(|p| p.as_ident()).ok_or("internal: empty table list")?;
    let tail_start = src.ident(last).map(|i| src.end_of(i)).ok_or("internal: cannot locate the table list")?;
    let mut shards: Vec<(i32, ShardTemplate)> = Vec::new();
    let mut groups: Vec<i32> = refs.iter().filter_map(group_of).map(|(g, _)| g).collect();
    groups.dedup();
    groups.sort_unstable();
    groups.dedup();
    let sp =
        Splicer::new(src.sql, refs.iter().filter(|r| group_of(r).is_some()).map(|r| r.qualifier.clone()).collect());
    for g in groups {
        let mut b = sp.builder();
        b.push(prefix);
        let mine = refs.iter().zip(targets).filter(|(r, _)| group_of(r).is_some_and(|(rg, _)| rg == g));
        for (i, (r, (name, only))) in mine.enumerate() {
            b.push(if i == 0 { "" } else { ", " });
            b.push(if *only { "ONLY " } else { "" });
            let end = name.0.last().and_then(|p| p.as_ident()).and_then(|id| src.ident(id)).map(|i| src.end_of(i));
            b.copy(r.qualifier.start..end.ok_or("internal: cannot locate a table name")?);
        }
        b.copy(tail_start..src.sql.len());
        shards.push((g, b.build()));
    }
    let drops = refs.iter().filter(|r| drop && r.kind.is_some()).map(|r| (r.schema.clone(), r.name.clone())).collect();
    Ok(Plan::Ddl(DdlPlan {
        on_every_node: src.sql.to_owned(),
        shards,
        concurrently: false,
        drops,
        creates_index: false,
    }))
}

fn create_index(ci: &CreateIndex, src: &Source<'_>, rels: &impl Relations) -> Result<Plan, String> {
    let t = resolve(&ci.table_name, src, rels)?;
    match (&t.kind, group_of(&t)) {
        (_, Some((g, column))) => {
            if ci.unique && !includes(&ci.columns, column) {
                return Err(format!(
                    "a unique index on \"{}\" that does not include its distribution column \"{column}\"",
                    t.name
                ));
            }
            Ok(Plan::Ddl(DdlPlan {
                on_every_node: src.sql.to_owned(),
                shards: vec![(g, qualified(src, &[&t]))],
                concurrently: ci.concurrently,
                drops: Vec::new(),
                creates_index: true,
            }))
        }
        (Some(RelationKind::Reference), _) => Ok(Plan::EveryNode),
        _ => Ok(Plan::DefaultNode),
    }
}

fn includes(cols: &[IndexColumn], column: &str) -> bool {
    cols.iter().any(|c| matches!(&c.column.expr, Expr::Identifier(id) if fold(id) == column))
}

/// Foreign keys an ALTER TABLE adds: (columns, the constraint).
fn added_keys(at: &AlterTable) -> Vec<(Vec<Ident>, &ForeignKeyConstraint)> {
    let mut out = Vec::new();
    for op in &at.operations {
        match op {
            AlterTableOperation::AddConstraint { constraint: TableConstraint::ForeignKey(fk), .. } => {
                out.push((fk.columns.clone(), fk));
            }
            AlterTableOperation::AddColumn { column_def, .. } => {
                for o in &column_def.options {
                    if let ColumnOption::ForeignKey(fk) = &o.option {
                        out.push((vec![column_def.name.clone()], fk));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// Checks a foreign key from table `from` (distributed on `column` in `group`, or not
/// distributed) and returns the referenced table when it is distributed.
fn check_key(
    from: &RelRef,
    cols: &[Ident],
    fk: &ForeignKeyConstraint,
    src: &Source<'_>,
    rels: &impl Relations,
) -> Result<Option<RelRef>, String> {
    let to = resolve(&fk.foreign_table, src, rels)?;
    match (group_of(from), group_of(&to), &from.kind, &to.kind) {
        (_, None, _, Some(RelationKind::Reference)) | (None, None, _, _) => Ok(None),
        (Some(_), None, _, _) => Err(format!(
            "a foreign key from the distributed table \"{}\" to \"{}\", which is not distributed",
            from.name, to.name
        )),
        (None, Some(_), Some(RelationKind::Reference), _) => {
            Err("a foreign key from a reference table to a distributed table".into())
        }
        (None, Some(_), _, _) => {
            Err(format!("a foreign key from \"{}\", which is not distributed, to a distributed table", from.name))
        }
        (Some((g1, c1)), Some((g2, c2)), _, _) => {
            if g1 != g2 {
                return Err("a foreign key between distributed tables of different colocation groups".into());
            }
            let pos = cols.iter().position(|c| fold(c) == c1);
            let on_dist = pos.is_some_and(|p| fk.referred_columns.get(p).is_some_and(|r| fold(r) == c2));
            if !on_dist {
                return Err(format!(
                    "a foreign key from \"{}\" to \"{}\" that does not pair their distribution columns \"{c1}\" and \"{c2}\" (list the referenced columns)",
                    from.name, to.name
                ));
            }
            Ok(Some(to))
        }
    }
}

fn alter_table(at: &AlterTable, src: &Source<'_>, rels: &impl Relations) -> Result<Plan, String> {
    let t = resolve(&at.name, src, rels)?;
    let mut targets = vec![];
    for (cols, fk) in added_keys(at) {
        targets.extend(check_key(&t, &cols, fk, src, rels)?);
    }
    let Some((g, column)) = group_of(&t) else {
        if t.kind.is_some() && at.operations.iter().any(|o| matches!(o, AlterTableOperation::RenameTable { .. })) {
            return Err(format!("renaming the reference table \"{}\"", t.name));
        }
        return Ok(if t.kind.is_some() { Plan::EveryNode } else { Plan::DefaultNode });
    };
    for op in &at.operations {
        check_operation(op, &t.name, column)?;
    }
    let mut refs: Vec<&RelRef> = vec![&t];
    refs.extend(targets.iter());
    Ok(ddl(src, vec![(g, qualified(src, &refs))]))
}

fn check_operation(op: &AlterTableOperation, table: &str, column: &str) -> Result<(), String> {
    let is_dist = |id: &Ident| fold(id) == column;
    let unique_without = |cols: &[IndexColumn]| !includes(cols, column);
    let refused = match op {
        AlterTableOperation::AlterColumn { column_name, op: AlterColumnOperation::SetDataType { .. } }
            if is_dist(column_name) =>
        {
            "changing the type of the distribution column"
        }
        AlterTableOperation::RenameColumn { old_column_name, .. } if is_dist(old_column_name) => {
            "renaming the distribution column"
        }
        AlterTableOperation::DropColumn { column_names, .. } if column_names.iter().any(is_dist) => {
            "dropping the distribution column"
        }
        AlterTableOperation::RenameTable { .. } => "renaming a distributed table",
        AlterTableOperation::AddConstraint { constraint: TableConstraint::Unique(u), .. }
            if unique_without(&u.columns) =>
        {
            "a unique constraint without the distribution column"
        }
        AlterTableOperation::AddConstraint { constraint: TableConstraint::PrimaryKey(p), .. }
            if unique_without(&p.columns) =>
        {
            "a primary key without the distribution column"
        }
        AlterTableOperation::AddColumn { column_def, .. }
            if column_def
                .options
                .iter()
                .any(|o| matches!(o.option, ColumnOption::Unique(_) | ColumnOption::PrimaryKey(_))) =>
        {
            "a unique column other than the distribution column"
        }
        _ => return Ok(()),
    };
    Err(format!("{refused} \"{column}\" of the distributed table \"{table}\""))
}

fn create_table(ct: &sqlparser::ast::CreateTable, src: &Source<'_>, rels: &impl Relations) -> Result<Plan, String> {
    let new = RelRef { schema: None, name: fold_last(&ct.name), kind: None, qualifier: 0..0 };
    let mut keys: Vec<(Vec<Ident>, &ForeignKeyConstraint)> = Vec::new();
    for c in &ct.constraints {
        if let TableConstraint::ForeignKey(fk) = c {
            keys.push((fk.columns.clone(), fk));
        }
    }
    for col in &ct.columns {
        for o in &col.options {
            if let ColumnOption::ForeignKey(fk) = &o.option {
                keys.push((vec![col.name.clone()], fk));
            }
        }
    }
    for (cols, fk) in keys {
        check_key(&new, &cols, fk, src, rels)?;
    }
    for parent in ct.inherits.iter().flatten().chain(&ct.partition_of) {
        if group_of(&resolve(parent, src, rels)?).is_some() {
            return Err("a table that inherits from or is a partition of a distributed table".into());
        }
    }
    match &ct.query {
        Some(q) => reads_no_distributed(q, "CREATE TABLE ... AS over the distributed table", src, rels),
        None => Ok(Plan::DefaultNode),
    }
}

fn fold_last(name: &ObjectName) -> String {
    name.0.last().and_then(|p| p.as_ident()).map(fold).unwrap_or_default()
}

/// A statement creating an object from a query: fine on the default node unless the query
/// reads a distributed table.
fn reads_no_distributed<V: Visit>(q: &V, what: &str, src: &Source<'_>, rels: &impl Relations) -> Result<Plan, String> {
    let refs = collect(q, src, rels)?;
    match refs.tables.iter().find(|r| r.is_distributed()) {
        Some(d) => Err(format!("{what} \"{}\"", d.name)),
        None => Ok(Plan::DefaultNode),
    }
}

impl fmt::Display for DdlPlan {
    /// EXPLAIN text: the statement for every node, then each group's shard statement rendered
    /// for schema `pgshard_g<group>_sN`, then the flags.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ddl on every node: {}", self.on_every_node)?;
        for (g, t) in &self.shards {
            write!(f, "\n  group {g}: {}", t.render(Some(&format!("pgshard_g{g}_sN"))))?;
        }
        if self.concurrently {
            write!(f, "\n  concurrently")?;
        }
        if self.creates_index {
            write!(f, "\n  creates index")?;
        }
        if !self.drops.is_empty() {
            let names: Vec<String> =
                self.drops.iter().map(|(s, n)| s.as_ref().map_or(n.clone(), |s| format!("{s}.{n}"))).collect();
            write!(f, "\n  drops: {}", names.join(", "))?;
        }
        Ok(())
    }
}
