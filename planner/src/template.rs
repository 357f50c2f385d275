//! Shard templates: the text of a statement (or of a fragment built from pieces of it) with the
//! places where a distributed table's name must be qualified by a shard schema. Rendering for
//! shard 5 of group 1 turns `orders` into `pgshard_g1_s5.orders`, `public.orders` into
//! `pgshard_g1_s5.orders` and `"Orders"` into `pgshard_g1_s5."Orders"`; everything else stays
//! byte for byte as the client wrote it (literals are never re-printed). Rendering with no schema
//! gives the text as it runs against the empty shell tables on one node.

use std::fmt;
use std::ops::Range;

/// A statement text with the qualifier slots of its distributed-table references.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardTemplate {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// Text copied or generated, rendered as is.
    Text(String),
    /// The schema qualifier of a distributed table as written (`public.`, or empty when the
    /// name was unqualified): replaced by `<schema>.` when rendering for a shard.
    Qualifier(String),
}

impl ShardTemplate {
    /// The text for the shard schema `schema` (an identifier that needs no quoting, such as
    /// `pgshard_g1_s5`), or with `None` the text against the shell tables.
    pub fn render(&self, schema: Option<&str>) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match (piece, schema) {
                (Piece::Text(t), _) | (Piece::Qualifier(t), None) => out.push_str(t),
                (Piece::Qualifier(_), Some(s)) => {
                    out.push_str(s);
                    out.push('.');
                }
            }
        }
        out
    }

    /// Whether any distributed-table reference is qualified when rendering for a shard.
    pub fn has_qualifiers(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Qualifier(_)))
    }
}

impl fmt::Display for ShardTemplate {
    /// Renders for the placeholder schema `<shard>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Some("<shard>")))
    }
}

/// The original text and the byte ranges of the qualifiers to replace, from which templates
/// are built by copying ranges of the text and adding generated text.
pub(crate) struct Splicer<'s> {
    sql: &'s str,
    quals: Vec<Range<usize>>,
}

impl<'s> Splicer<'s> {
    /// A splicer over `sql` replacing the given qualifier ranges (empty ranges insert).
    pub fn new(sql: &'s str, mut quals: Vec<Range<usize>>) -> Self {
        quals.sort_by_key(|r| (r.start, r.end));
        quals.dedup();
        Self { sql, quals }
    }

    /// A builder for a new template.
    pub fn builder(&self) -> Builder<'_, 's> {
        Builder { sp: self, pieces: Vec::new() }
    }

    /// The whole text as a template.
    pub fn whole(&self) -> ShardTemplate {
        let mut b = self.builder();
        b.copy(0..self.sql.len());
        b.build()
    }
}

/// Accumulates the pieces of a template.
pub(crate) struct Builder<'p, 's> {
    sp: &'p Splicer<'s>,
    pieces: Vec<Piece>,
}

impl Builder<'_, '_> {
    /// Appends generated text.
    pub fn push(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(Piece::Text(last)) = self.pieces.last_mut() {
            last.push_str(text);
        } else {
            self.pieces.push(Piece::Text(text.to_owned()));
        }
    }

    /// Appends the original text of `range`, with the qualifiers that start inside it.
    pub fn copy(&mut self, range: Range<usize>) {
        let sql = self.sp.sql;
        let end = range.end.min(sql.len());
        let mut pos = range.start.min(end);
        let first = self.sp.quals.partition_point(|q| q.start < pos);
        for q in &self.sp.quals[first..] {
            if q.start >= end {
                break;
            }
            let q_end = q.end.min(end);
            self.push(&sql[pos..q.start]);
            self.pieces.push(Piece::Qualifier(sql[q.start..q_end].to_owned()));
            pos = q_end;
        }
        self.push(&sql[pos..end]);
    }

    /// The template built so far.
    pub fn build(self) -> ShardTemplate {
        ShardTemplate { pieces: self.pieces }
    }
}

#[cfg(test)]
mod tests;
