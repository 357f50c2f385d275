//! The differential fuzzer: random schemas, data and queries (see [`generate`]) run on a plain
//! PostgreSQL and through pgshard with the same data distributed; the answers must match
//! (as multisets where the order is undefined). A statement pgshard refuses with 0A000 is
//! counted, not a failure; any other difference is a mismatch, with the SQL to reproduce it.

pub mod generate;
mod rng;

use std::collections::BTreeMap;
use std::fmt;

use tokio_postgres::{Client, SimpleQueryMessage};

use generate::{QueryGen, Rng, Schema};

/// A query's outcome on one side: its rows as text, or the error's SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Rows(Vec<Vec<Option<String>>>),
    Error { code: String, message: String },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Rows(rows) => {
                write!(f, "{} rows", rows.len())?;
                for r in rows.iter().take(12) {
                    let cells: Vec<&str> = r.iter().map(|c| c.as_deref().unwrap_or("NULL")).collect();
                    write!(f, "\n    {}", cells.join(" | "))?;
                }
                if rows.len() > 12 {
                    write!(f, "\n    ...")?;
                }
                Ok(())
            }
            Outcome::Error { code, message } => write!(f, "ERROR {code}: {message}"),
        }
    }
}

/// Runs `sql` with the simple protocol and collects its rows (or its error).
pub async fn outcome(client: &Client, sql: &str) -> Outcome {
    match client.simple_query(sql).await {
        Ok(messages) => Outcome::Rows(
            messages
                .into_iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect()),
                    _ => None,
                })
                .collect(),
        ),
        Err(e) => match e.as_db_error() {
            Some(db) => Outcome::Error { code: db.code().code().to_owned(), message: db.message().to_owned() },
            None => Outcome::Error { code: "connection".into(), message: e.to_string() },
        },
    }
}

/// One difference between plain PostgreSQL and pgshard.
#[derive(Debug, Clone)]
pub struct Mismatch {
    pub sql: String,
    pub plain: Outcome,
    pub pgshard: Outcome,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct Report {
    /// Queries run.
    pub queries: usize,
    /// Same rows on both sides.
    pub matched: usize,
    /// Same error on both sides.
    pub both_failed: usize,
    /// Writes (INSERT, UPDATE, DELETE, data-modifying WITH) after which the table's rows were compared.
    pub writes: usize,
    /// Refused by pgshard with 0A000, by message.
    pub refused: BTreeMap<String, usize>,
    /// Wrong answers (or errors where PostgreSQL answers).
    pub mismatches: Vec<Mismatch>,
}

impl Report {
    /// How many queries pgshard refused.
    pub fn refusals(&self) -> usize {
        self.refused.values().sum()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} queries ({} writes, each followed by a comparison of its table): {} same rows, {} same error, {} refused (0A000), {} mismatches",
            self.queries,
            self.writes,
            self.matched,
            self.both_failed,
            self.refusals(),
            self.mismatches.len()
        )?;
        for (why, n) in &self.refused {
            writeln!(f, "  refused {n:>5}: {why}")?;
        }
        for m in &self.mismatches {
            writeln!(f, "MISMATCH: {}\n  plain:   {}\n  pgshard: {}", m.sql, m.plain, m.pgshard)?;
        }
        Ok(())
    }
}

/// Compares two outcomes of the same query; `ordered` when the query fixes the row order.
pub fn same(plain: &Outcome, pgshard: &Outcome, ordered: bool) -> bool {
    match (plain, pgshard) {
        (Outcome::Rows(a), Outcome::Rows(b)) if ordered => a == b,
        (Outcome::Rows(a), Outcome::Rows(b)) => {
            let (mut a, mut b) = (a.clone(), b.clone());
            a.sort();
            b.sort();
            a == b
        }
        (Outcome::Error { code: a, .. }, Outcome::Error { code: b, .. }) => a == b,
        _ => false,
    }
}

/// Sets up one schema on both sides (`plain` and `pgshard`, each a fresh database) and runs
/// `queries` random queries. `progress` is told after each query.
pub async fn run(plain: &Client, pgshard: &Client, seed: u64, queries: usize, mut progress: impl FnMut(&Report)) -> anyhow::Result<Report> {
    let mut rng = Rng::new(seed);
    let schema = Schema::generate(&mut rng);
    for sql in schema.setup_sql(&mut rng) {
        plain.batch_execute(&sql).await.map_err(|e| anyhow::anyhow!("plain: {sql}: {e}"))?;
        pgshard.batch_execute(&sql).await.map_err(|e| anyhow::anyhow!("pgshard: {sql}: {e}"))?;
    }
    for sql in schema.placement_sql() {
        pgshard.batch_execute(&sql).await.map_err(|e| anyhow::anyhow!("pgshard: {sql}: {e}"))?;
    }
    let generator = QueryGen::new(&schema);
    let mut report = Report::default();
    for _ in 0..queries {
        let q = generator.query(&mut rng);
        let a = outcome(plain, &q.sql).await;
        let b = outcome(pgshard, &q.sql).await;
        report.queries += 1;
        match (&a, &b) {
            (Outcome::Rows(_), Outcome::Error { code, message }) if code == "0A000" => {
                *report.refused.entry(without_names(message)).or_default() += 1;
            }
            _ if same(&a, &b, q.ordered) => {
                if matches!(a, Outcome::Rows(_)) {
                    report.matched += 1;
                } else {
                    report.both_failed += 1;
                }
            }
            _ => report.mismatches.push(Mismatch { sql: q.sql.clone(), plain: a, pgshard: b }),
        }
        // After a write both sides must hold the same rows.
        if let Some(table) = &q.writes {
            report.writes += 1;
            let check = format!("SELECT * FROM {table}");
            let (a, b) = (outcome(plain, &check).await, outcome(pgshard, &check).await);
            if !same(&a, &b, false) {
                report.mismatches.push(Mismatch { sql: format!("{}; then {check}", q.sql), plain: a, pgshard: b });
            }
        }
        progress(&report);
    }
    Ok(report)
}

/// A refusal's message with its quoted names replaced, so that refusals group by reason.
fn without_names(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for ch in message.chars() {
        match (ch, quoted) {
            ('"', false) => {
                quoted = true;
                out.push_str("\"…");
            }
            ('"', true) => {
                quoted = false;
                out.push('"');
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

/// The tables a run creates, to drop them between seeds.
pub fn table_names(seed: u64) -> Vec<String> {
    let mut rng = Rng::new(seed);
    Schema::generate(&mut rng).tables.into_iter().map(|t| t.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_compare_as_multisets_unless_ordered() {
        let r = |v: &[&str]| Outcome::Rows(v.iter().map(|s| vec![Some((*s).to_owned())]).collect());
        assert!(same(&r(&["1", "2"]), &r(&["2", "1"]), false));
        assert!(!same(&r(&["1", "2"]), &r(&["2", "1"]), true));
        assert!(!same(&r(&["1", "1"]), &r(&["1"]), false));
        let e = |c: &str| Outcome::Error { code: c.into(), message: String::new() };
        assert!(same(&e("22012"), &e("22012"), false));
        assert!(!same(&e("22012"), &r(&["1"]), false));
    }

    #[test]
    fn refusals_group_without_table_names() {
        assert_eq!(without_names(r#"mixing "d1" with "l1", which"#), r#"mixing "…" with "…", which"#);
    }
}
