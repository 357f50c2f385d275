//! Relation references of a query or DML statement: every table named in FROM and JOIN at any
//! depth (subqueries, CTE bodies, EXISTS and IN subqueries), the INSERT target, the UPDATE
//! target and its FROM list, DELETE's FROM and USING lists, each resolved through the catalog
//! and located in the text. CTE names shadow tables exactly where PostgreSQL's scoping says
//! (a non-recursive CTE is visible in later CTEs and in the query body, a recursive one
//! everywhere in its WITH), so `WITH orders AS (SELECT * FROM orders) ...` reads the table inside
//! and the CTE outside. Column references stay as written, except three-part ones
//! (`public.orders.o_id`), whose schema part is qualified like the table's.

use std::ops::{ControlFlow, Range};

use sqlparser::ast::{Expr, ObjectName, ObjectNamePart, Query, TableFactor, Visit, Visitor};
use sqlparser::tokenizer::Location;

use crate::route::{RelationKind, Relations, fold, split_name};
use crate::text::Source;

/// One reference to a relation in the statement text.
#[derive(Debug, Clone)]
pub(crate) struct RelRef {
    /// Schema as written (folded), if any.
    pub schema: Option<String>,
    /// Relation name (folded).
    pub name: String,
    /// What the catalog knows of it (`None`: not managed).
    pub kind: Option<RelationKind>,
    /// Bytes to replace with `<shard schema>.`: the written schema and dot, or an empty range at
    /// the start of an unqualified name.
    pub qualifier: Range<usize>,
}

impl RelRef {
    /// Whether the reference is a distributed table.
    pub fn is_distributed(&self) -> bool {
        matches!(self.kind, Some(RelationKind::Distributed { .. }))
    }
}

/// The references of a statement.
#[derive(Debug, Default)]
pub(crate) struct Refs {
    /// Relations, in text order of discovery.
    pub tables: Vec<RelRef>,
    /// Qualifier ranges of three-part column references to distributed tables.
    pub columns: Vec<Range<usize>>,
}

impl Refs {
    /// Qualifier ranges of every distributed-table reference.
    pub fn qualifiers(&self) -> Vec<Range<usize>> {
        self.tables
            .iter()
            .filter(|r| r.is_distributed())
            .map(|r| r.qualifier.clone())
            .chain(self.columns.iter().cloned())
            .collect()
    }
}

/// The bytes of `name`'s schema qualifier (empty at the name's start when unqualified).
pub(crate) fn qualifier_range(name: &ObjectName, src: &Source<'_>) -> Option<Range<usize>> {
    let idents: Option<Vec<_>> = name
        .0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => Some(i),
            ObjectNamePart::Function(_) => None,
        })
        .collect();
    let idents = idents?;
    let last = src.ident_start(idents.last()?)?;
    let first = src.ident_start(idents.first()?)?;
    Some(first..last)
}

/// Resolves and locates one relation name.
pub(crate) fn resolve(name: &ObjectName, src: &Source<'_>, rels: &impl Relations) -> Result<RelRef, String> {
    let (schema, table) = split_name(name).ok_or_else(|| format!("the relation name {name}"))?;
    let qualifier =
        qualifier_range(name, src).ok_or_else(|| format!("internal: cannot locate the name {name} in the text"))?;
    let kind = rels.kind_of(schema.as_deref(), &table);
    Ok(RelRef { schema, name: table, kind, qualifier })
}

/// Collects the relation references of a query or DML statement (or of any part of a
/// statement holding queries).
pub(crate) fn collect<V: Visit>(stmt: &V, src: &Source<'_>, rels: &impl Relations) -> Result<Refs, String> {
    let mut c = Collector { src, rels, frames: Vec::new(), functions: Vec::new(), out: Refs::default(), error: None };
    let _ = stmt.visit(&mut c);
    match c.error {
        Some(e) => Err(e),
        None => Ok(c.out),
    }
}

/// CTE names declared by one query, and how many of its CTE bodies have been visited (the
/// visitor walks the WITH list before the body, so body `i` sees names `0..i`).
struct Frame {
    names: Vec<String>,
    recursive: bool,
    done: usize,
}

struct Collector<'a, 'r, R> {
    src: &'a Source<'a>,
    rels: &'r R,
    frames: Vec<Frame>,
    /// Name locations of table functions (`FROM f(...)`), which are not relations.
    functions: Vec<Location>,
    out: Refs,
    error: Option<String>,
}

impl<R: Relations> Collector<'_, '_, R> {
    fn is_cte(&self, name: &str) -> bool {
        self.frames.iter().any(|f| {
            let visible = if f.recursive { f.names.len() } else { f.done.min(f.names.len()) };
            f.names[..visible].iter().any(|n| n == name)
        })
    }
}

impl<R: Relations> Visitor for Collector<'_, '_, R> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        let (names, recursive) = match &query.with {
            Some(w) => (w.cte_tables.iter().map(|c| fold(&c.alias.name)).collect(), w.recursive),
            None => (Vec::new(), false),
        };
        self.frames.push(Frame { names, recursive, done: 0 });
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.frames.pop();
        if let Some(parent) = self.frames.last_mut() {
            parent.done += 1;
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table { name, args: Some(_), .. } = factor
            && let Some(ObjectNamePart::Identifier(first)) = name.0.first()
        {
            self.functions.push(first.span.start);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, name: &ObjectName) -> ControlFlow<()> {
        if let Some(ObjectNamePart::Identifier(first)) = name.0.first()
            && self.functions.contains(&first.span.start)
        {
            return ControlFlow::Continue(());
        }
        if name.0.len() == 1
            && let Some((_, table)) = split_name(name)
            && self.is_cte(&table)
        {
            return ControlFlow::Continue(());
        }
        match resolve(name, self.src, self.rels) {
            Ok(r) => self.out.tables.push(r),
            Err(e) => {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        if let Expr::CompoundIdentifier(parts) = expr
            && let [schema, table, _column] = parts.as_slice()
            && let Some(RelationKind::Distributed { .. }) = self.rels.kind_of(Some(&fold(schema)), &fold(table))
            && let (Some(a), Some(b)) = (self.src.ident_start(schema), self.src.ident_start(table))
        {
            self.out.columns.push(a..b);
        }
        ControlFlow::Continue(())
    }
}
