//! UPDATE and DELETE of a distributed table whose subqueries read distributed tables the
//! shards cannot join (another colocation group, or off the distribution columns): each such
//! subquery that stands on its own (uncorrelated) is answered once on the default node over
//! copies of its tables, and its rows replace it as a VALUES list; the statement so rewritten
//! is planned again and runs on the target's shards. A correlated subquery fails to run on its
//! own and the statement is refused then.
//!
//! Reads over several colocation groups (or with tables of the default node) get the same
//! treatment as an alternative to answering them over copies ([`broadcasts`]): one colocation
//! group is the anchor, everything else is answered first, and the statement runs on the
//! anchor's shards with the other tables' rows written in, as a reference table's would be.

use std::ops::Range;

use sqlparser::ast::Statement;
use sqlparser::tokenizer::Token;

use crate::pull::{PullTable, pull_tables};
use crate::pull::Broadcast;
use crate::refs::{RelRef, Refs};
use crate::route::RelationKind;
use crate::template::{ShardTemplate, Splicer};
use crate::text::Source;

/// A write whose subqueries are answered first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitute {
    /// The statement as the client wrote it.
    pub sql: String,
    /// The subqueries to answer, in text order, not nested in one another.
    pub subqueries: Vec<Subquery>,
    /// Why the statement cannot run as written.
    pub why: String,
}

/// One parenthesized subquery of a [`Substitute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subquery {
    /// Bytes of the statement it spans, parentheses included.
    pub range: Range<usize>,
    /// The distributed tables it reads, copied to the default node.
    pub tables: Vec<PullTable>,
    /// Its query (without the parentheses); render it with `Some(PULL_SCHEMA)`.
    pub query: ShardTemplate,
    /// Text to write after its answer: ` AS <name>` when it replaces a table of the FROM
    /// (or USING) clause that had no alias.
    pub suffix: String,
}

impl Substitute {
    /// The statement with each subquery replaced by its answer (`answers[i]` for subquery `i`).
    pub fn rewrite(&self, answers: &[String]) -> String {
        let mut out = String::with_capacity(self.sql.len());
        let mut pos = 0;
        for (s, answer) in self.subqueries.iter().zip(answers) {
            out.push_str(&self.sql[pos..s.range.start]);
            out.push_str(answer);
            out.push_str(&s.suffix);
            pos = s.range.end;
        }
        out.push_str(&self.sql[pos..]);
        out
    }
}

/// Words that end a table reference instead of naming its alias.
fn is_clause_word(word: &str) -> bool {
    ["where", "set", "join", "inner", "left", "right", "full", "cross", "natural", "on", "using", "returning", "from", "order", "limit", "group", "window", "union", "except", "intersect", "lateral", "tablesample"]
        .iter()
        .any(|k| word.eq_ignore_ascii_case(k))
}

/// Plans the subquery substitution of an UPDATE or DELETE of a distributed table, or says why
/// there is none to make.
pub(crate) fn plan(stmt: &Statement, src: &Source<'_>, refs: &Refs, why: &str) -> Result<Substitute, String> {
    if !matches!(stmt, Statement::Update(_) | Statement::Delete(_)) {
        return Err(why.to_owned());
    }
    // Subqueries over any distributed table or a table of the default node; tables of FROM /
    // USING the shards cannot join: other distributed tables than the target, and the
    // default node's.
    let target = refs.tables.first().map(|r| (r.schema.clone(), r.name.clone()));
    let answered_table = |r: &RelRef| match &r.kind {
        None => true,
        Some(RelationKind::Distributed { .. }) => target != Some((r.schema.clone(), r.name.clone())),
        Some(RelationKind::Reference) => false,
    };
    substitute(src, refs, why, &|r: &RelRef| r.is_distributed() || r.kind.is_none(), &answered_table, &[])
}

/// The broadcast variants of a read over several colocation groups or with tables of the
/// default node: one per group it reads, the tables of the others (and of the default node)
/// answered first.
pub(crate) fn broadcasts(stmt: &Statement, src: &Source<'_>, refs: &Refs, why: &str) -> Vec<Broadcast> {
    let Statement::Query(q) = stmt else { return Vec::new() };
    if !q.locks.is_empty() {
        return Vec::new();
    }
    let group_of = |r: &RelRef| match r.kind {
        Some(RelationKind::Distributed { group, .. }) => Some(group),
        _ => None,
    };
    let mut groups: Vec<i32> = Vec::new();
    for g in refs.tables.iter().filter_map(group_of) {
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let local = refs.tables.iter().any(|r| r.kind.is_none());
    if groups.is_empty() || (groups.len() == 1 && !local) {
        return Vec::new();
    }
    let narrow = crate::narrow::narrowings(stmt, src);
    groups
        .into_iter()
        .filter_map(|anchor| {
            let foreign = |r: &RelRef| r.kind.is_none() || group_of(r).is_some_and(|g| g != anchor);
            let substitute = substitute(src, refs, why, &foreign, &foreign, &narrow).ok()?;
            let mut moved: Vec<(Option<i32>, Option<String>, String)> = Vec::new();
            for r in refs.tables.iter().filter(|r| foreign(r)) {
                let m = (group_of(r), r.schema.clone(), r.name.clone());
                if !moved.contains(&m) {
                    moved.push(m);
                }
            }
            Some(Broadcast { group: anchor, substitute, moved })
        })
        .collect()
}

/// The parenthesized subqueries that read a table `answered_in` accepts (answered whole, with
/// whatever else they read), and the tables `answered_table` accepts named outside them.
fn substitute(
    src: &Source<'_>,
    refs: &Refs,
    why: &str,
    answered_in: &dyn Fn(&RelRef) -> bool,
    answered_table: &dyn Fn(&RelRef) -> bool,
    narrow: &[crate::narrow::Narrowed],
) -> Result<Substitute, String> {
    let mut subqueries = Vec::new();
    let mut i = 0;
    while i < src.len() {
        let opens_query = matches!(src.tok(i).map(|t| &t.token), Some(Token::LParen)) && (src.is_kw(i + 1, "select") || src.is_kw(i + 1, "with"));
        if !opens_query {
            i += 1;
            continue;
        }
        let Some(close) = src.close_of(i) else { return Err(why.to_owned()) };
        let range = src.pos(i)..src.end_of(close);
        let inner = src.pos(i + 1)..src.pos(close);
        let inside: Vec<_> = refs.tables.iter().filter(|r| r.qualifier.start >= inner.start && r.qualifier.start < inner.end).collect();
        // Subqueries over distributed tables the shards cannot join, or over tables only the
        // default node has.
        if inside.iter().any(|r| answered_in(r)) {
            let tables = pull_tables(src, inside.into_iter(), why, &[], &[])?;
            let quals = refs.qualifiers().into_iter().filter(|q| q.start >= inner.start && q.start < inner.end).collect();
            let sp = Splicer::new(src.sql, quals);
            let mut b = sp.builder();
            b.copy(inner);
            subqueries.push(Subquery { range, tables, query: b.build(), suffix: String::new() });
            i = close + 1;
        } else {
            i += 1;
        }
    }
    // Tables the shards cannot join named directly (outside the subqueries above) are
    // answered whole: `SELECT * FROM <table>`.
    for r in refs.tables.iter() {
        if !answered_table(r) || subqueries.iter().any(|s| s.range.contains(&r.qualifier.start)) {
            continue;
        }
        let Some(name_tok) = (0..src.len()).find(|&i| src.pos(i) >= r.qualifier.end) else { return Err(why.to_owned()) };
        let range = r.qualifier.start..src.end_of(name_tok);
        let has_alias = src.is_kw(name_tok + 1, "as")
            || matches!(src.tok(name_tok + 1).map(|t| &t.token), Some(Token::Word(w)) if w.quote_style.is_some() || !is_clause_word(&w.value));
        let clause = narrow.iter().find(|n| n.at == r.qualifier.start).map_or("", |n| n.clause.as_str());
        let text = format!("SELECT * FROM {}{clause}", &src.sql[range.clone()]);
        let start = "SELECT * FROM ".len();
        let quals = if r.is_distributed() { std::iter::once(start..start + r.qualifier.len()).collect() } else { Vec::new() };
        let query = Splicer::new(&text, quals).whole();
        let tables = pull_tables(src, std::iter::once(r), why, &[], &[])?;
        let suffix = if has_alias { String::new() } else { format!(" AS {}", crate::names::quote_ident(&r.name)) };
        subqueries.push(Subquery { range, tables, query, suffix });
    }
    subqueries.sort_by_key(|s| s.range.start);
    if subqueries.is_empty() {
        return Err(why.to_owned());
    }
    Ok(Substitute { sql: src.sql.to_owned(), subqueries, why: why.to_owned() })
}
