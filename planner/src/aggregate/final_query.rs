//! The final query of a two-phase aggregation: SQL over the temporary table that holds every
//! shard's fragment rows, with two holes the coordinator fills at run time: the table's name and
//! the SQL type of a partial column (a `sum` is cast back to its partials' type, which is the
//! type PostgreSQL gives the sum of the original column).

use std::fmt;

/// A final query with holes for the table name and partial column types.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FinalQuery {
    pieces: Vec<FinalPiece>,
}

/// One piece of a final query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FinalPiece {
    /// SQL text.
    Text(String),
    /// The temporary table's name.
    Table,
    /// The SQL type name of fragment column `i` (0-based: column `c{i+1}`).
    PartialType(usize),
}

impl FinalQuery {
    /// A final query of these pieces (adjacent texts merged).
    pub(crate) fn new(pieces: Vec<FinalPiece>) -> Self {
        let mut merged: Vec<FinalPiece> = Vec::with_capacity(pieces.len());
        for p in pieces {
            match (merged.last_mut(), p) {
                (Some(FinalPiece::Text(a)), FinalPiece::Text(b)) => a.push_str(&b),
                (_, p) => merged.push(p),
            }
        }
        Self { pieces: merged }
    }

    /// The SQL to run over the temporary table `table` (written into the text as given: quote
    /// it if it needs quoting). `partial_type(i)` must give the SQL type of fragment column
    /// `c{i+1}` as PostgreSQL accepts it in a cast (e.g. `format_type` of the column: `bigint`,
    /// `numeric`, `double precision`, `numeric(10,2)`).
    pub fn render(&self, table: &str, partial_type: &dyn Fn(usize) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                FinalPiece::Text(t) => out.push_str(t),
                FinalPiece::Table => out.push_str(table),
                FinalPiece::PartialType(i) => out.push_str(&partial_type(*i)),
            }
        }
        out
    }

    /// The fragment columns whose types the final query needs (0-based).
    pub fn typed_columns(&self) -> Vec<usize> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                FinalPiece::PartialType(i) => Some(*i),
                _ => None,
            })
            .collect()
    }
}

impl fmt::Display for FinalQuery {
    /// Renders with the table `{T}` and the type of column `cN` as `{type cN}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("{T}", &|i| format!("{{type c{}}}", i + 1)))
    }
}
