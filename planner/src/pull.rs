//! Reads no shard can answer alone and no merge step covers (joins across colocation groups or
//! off the distribution columns, with tables of the default node, window functions, UNION /
//! INTERSECT / EXCEPT, subqueries over other shards, ...): the coordinator copies the rows of
//! each distributed table the query reads into a temporary table of the same name on the
//! default node, where the reference tables and the ordinary tables already are, and the
//! default node answers the query as written, with those tables qualified by `pg_temp`.
//! Whole tables move, less the rows the query's own WHERE conjuncts on one table rule out
//! (see `narrow`); the answer is PostgreSQL's own.

use sqlparser::ast::Statement;

use crate::names::quote_ident;
use crate::narrow::Narrowed;
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
    /// For a read: the other way to answer it, one per colocation group it reads, which the
    /// coordinator may choose by the sizes of the tables each would move.
    pub broadcast: Vec<Broadcast>,
}

/// A read answered on the shards of one colocation group (the anchor): every table of other
/// groups and of the default node it names (and every subquery over them) is answered first
/// and written into the statement as a VALUES list, the way a reference table would be there,
/// and the statement so rewritten is planned again over the anchor's shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// The anchor group.
    pub group: i32,
    /// What to answer first and how to write it in.
    pub substitute: crate::substitute::Substitute,
    /// The tables whose rows are written in: `(group, schema, name)`, the group `None` for a
    /// table of the default node.
    pub moved: Vec<(Option<i32>, Option<String>, String)>,
}

/// One distributed table to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullTable {
    /// Its colocation group (whose shards hold its rows).
    pub group: i32,
    /// The temporary table's name (the table's name, quoted).
    pub temp_name: String,
    /// The table's name as the catalog knows it (unquoted).
    pub name: String,
    /// `SELECT * FROM <qualifier>table`: rendered with no schema it reads the shell on the
    /// default node, with a shard schema the shard's rows.
    pub rows: ShardTemplate,
}

/// One [`PullTable`] per distributed table among `refs` (each table once).
/// `narrow`: conjuncts to read a table's rows with (see `narrow`), by where it is named.
/// `columns`: the columns to copy of a table, by where it is named (all when absent).
pub(crate) fn pull_tables<'r>(
    src: &Source<'_>,
    refs: impl Iterator<Item = &'r RelRef>,
    why: &str,
    narrow: &[Narrowed],
    columns: &[(usize, Vec<String>)],
) -> Result<Vec<PullTable>, String> {
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
        let clause = narrow.iter().find(|n| n.at == r.qualifier.start).map_or("", |n| n.clause.as_str());
        let list = columns
            .iter()
            .find(|(at, _)| *at == r.qualifier.start)
            .map_or_else(|| "*".to_owned(), |(_, c)| c.iter().map(|c| quote_ident(c)).collect::<Vec<_>>().join(", "));
        let head = format!("SELECT {list} FROM ");
        let text = format!("{head}{qualifier}{quoted}{clause}");
        let start = head.len();
        let rows = Splicer::new(&text, std::iter::once(start..start + qualifier.len()).collect()).whole();
        tables.push(PullTable { group: *group, temp_name: quoted, name: r.name.clone(), rows });
    }
    Ok(tables)
}

/// Plans `stmt` (already known to read distributed tables, and to write nothing or, with
/// `local_write`, only ordinary tables) as a pull, or says why it cannot be one.
pub(crate) fn plan(stmt: &Statement, src: &Source<'_>, refs: &Refs, rels: &impl crate::route::Relations, why: &str, local_write: bool) -> Result<PullPlan, String> {
    match stmt {
        Statement::Query(q) if !q.locks.is_empty() => return Err(format!("{why} (with FOR UPDATE/SHARE)")),
        Statement::Query(_) => {}
        Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_) if local_write => {}
        _ => return Err(why.to_owned()),
    }
    // A table named once may move only the rows its own conjuncts let through.
    let once = |at: usize| {
        refs.tables.iter().find(|r| r.qualifier.start == at).is_some_and(|r| {
            refs.tables.iter().filter(|o| o.name == r.name && o.schema.as_deref().unwrap_or("public") == r.schema.as_deref().unwrap_or("public")).count() == 1
        })
    };
    let narrow: Vec<Narrowed> = crate::narrow::narrowings(stmt, src).into_iter().filter(|n| once(n.at)).collect();
    // ... and only the columns the statement may read of it.
    let used = crate::used::used_columns(stmt, src);
    let columns: Vec<(usize, Vec<String>)> = refs
        .tables
        .iter()
        .filter(|r| r.is_distributed() && once(r.qualifier.start))
        .filter_map(|r| {
            let (_, refname) = used.names.iter().find(|(at, _)| *at == r.qualifier.start)?;
            let all = rels.columns_of(r.schema.as_deref(), &r.name)?;
            Some((r.qualifier.start, used.of(refname, &all)?))
        })
        .collect();
    let tables = pull_tables(src, refs.tables.iter(), why, &narrow, &columns)?;
    if tables.is_empty() {
        return Err(why.to_owned());
    }
    let query = Splicer::new(src.sql, refs.qualifiers()).whole();
    let broadcast = if local_write { Vec::new() } else { crate::substitute::broadcasts(stmt, src, refs, why) };
    Ok(PullPlan { tables, query, why: why.to_owned(), writes: local_write, broadcast })
}
