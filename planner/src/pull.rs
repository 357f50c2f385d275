//! Reads no shard can answer alone and no merge step covers (joins across colocation groups or
//! off the distribution columns, with tables of the default node, window functions, UNION /
//! INTERSECT / EXCEPT, subqueries over other shards, ...): the coordinator copies the rows of
//! each distributed table the query reads into a temporary table of the same name on the
//! default node, where the reference tables and the ordinary tables already are, and the
//! default node answers the query as written, with those tables qualified by `pg_temp`.
//! Whole tables move; the answer is PostgreSQL's own.

use sqlparser::ast::Statement;

use crate::names::quote_ident;
use crate::refs::{RelRef, Refs};
use crate::route::RelationKind;
use crate::template::{ShardTemplate, Splicer};
use crate::text::Source;

/// The schema the final query reads the copies from.
pub const PULL_SCHEMA: &str = "pg_temp";

/// A read answered on the default node over copies of its distributed tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullPlan {
    /// Each distributed table the query reads, once.
    pub tables: Vec<PullTable>,
    /// The statement; render it with `Some(PULL_SCHEMA)`.
    pub query: ShardTemplate,
    /// Why no shard can answer it, for EXPLAIN.
    pub why: String,
    /// The statement writes an ordinary table of the default node (INSERT, UPDATE or DELETE
    /// reading distributed tables): it commits with the copies' transaction, so it cannot run
    /// inside a client's transaction block.
    pub writes: bool,
}

/// One distributed table to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullTable {
    /// Its colocation group (whose shards hold its rows).
    pub group: i32,
    /// The temporary table's name (the table's name, quoted).
    pub temp_name: String,
    /// `SELECT * FROM <qualifier>table`: rendered with no schema it reads the shell on the
    /// default node, with a shard schema the shard's rows.
    pub rows: ShardTemplate,
}

/// One [`PullTable`] per distributed table among `refs` (each table once).
pub(crate) fn pull_tables<'r>(src: &Source<'_>, refs: impl Iterator<Item = &'r RelRef>, why: &str) -> Result<Vec<PullTable>, String> {
    let mut tables: Vec<PullTable> = Vec::new();
    let mut seen: Vec<(&str, Option<&str>, i32)> = Vec::new();
    for r in refs {
        let Some(RelationKind::Distributed { group, .. }) = &r.kind else { continue };
        let schema = r.schema.as_deref();
        match seen.iter().find(|(name, _, _)| *name == r.name) {
            Some((_, s, g)) if *g == *group && s.unwrap_or("public") == schema.unwrap_or("public") => continue,
            Some(_) => return Err(format!("{why} (two distributed tables named \"{}\")", r.name)),
            None => seen.push((&r.name, schema, *group)),
        }
        let qualifier = &src.sql[r.qualifier.clone()];
        let quoted = quote_ident(&r.name);
        let text = format!("SELECT * FROM {qualifier}{quoted}");
        let start = "SELECT * FROM ".len();
        let rows = Splicer::new(&text, std::iter::once(start..start + qualifier.len()).collect()).whole();
        tables.push(PullTable { group: *group, temp_name: quoted, rows });
    }
    Ok(tables)
}

/// Plans `stmt` (already known to read distributed tables, and to write nothing or, with
/// `local_write`, only ordinary tables) as a pull, or says why it cannot be one.
pub(crate) fn plan(stmt: &Statement, src: &Source<'_>, refs: &Refs, why: &str, local_write: bool) -> Result<PullPlan, String> {
    match stmt {
        Statement::Query(q) if !q.locks.is_empty() => return Err(format!("{why} (with FOR UPDATE/SHARE)")),
        Statement::Query(_) => {}
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) if local_write => {}
        _ => return Err(why.to_owned()),
    }
    let tables = pull_tables(src, refs.tables.iter(), why)?;
    if tables.is_empty() {
        return Err(why.to_owned());
    }
    let query = Splicer::new(src.sql, refs.qualifiers()).whole();
    Ok(PullPlan { tables, query, why: why.to_owned(), writes: local_write })
}
