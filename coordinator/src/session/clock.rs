//! The coordinator's clock in statements that read or write managed tables (see the planner's
//! `times` module): `now()` and its kin, and the column defaults that call them in an INSERT
//! that leaves those columns out, are the client's transaction start as the coordinator saw
//! it, the same on every node: written in as literals in the simple protocol, bound as two
//! extra parameters of a prepared statement at each execution.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use pgshard_planner::times::{self, Stamps};

use super::Session;
use super::plan::Rels;
use super::txn::TxnState;

/// The two parameters a prepared statement gets for the transaction's and the statement's
/// time, after the client's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeParams {
    /// The number of the first (`$n`, 1-based); the second is `$n + 1`.
    pub first: usize,
}

impl Session {
    /// `sql` with the transaction-time functions written in as literals, when it reads or
    /// writes a managed table and calls them or leaves out a column whose default does.
    pub(super) async fn with_times(&self, sql: &str) -> Option<String> {
        let (transaction, statement) = self.stamps();
        let (transaction, statement) = (format!("'{transaction}'::timestamptz"), format!("'{statement}'::timestamptz"));
        self.fix_times(sql, Stamps { transaction: &transaction, statement: &statement }).await
    }

    /// A statement being prepared with the transaction-time functions made parameters after
    /// the client's (bound with [`Session::time_values`] at each execution), when it needs them.
    pub(super) async fn with_time_params(&self, sql: &str) -> Option<(String, TimeParams)> {
        let first = pgshard_planner::max_param(sql) + 1;
        let (transaction, statement) = (format!("${first}::timestamptz"), format!("${}::timestamptz", first + 1));
        let fixed = self.fix_times(sql, Stamps { transaction: &transaction, statement: &statement }).await?;
        Some((fixed, TimeParams { first }))
    }

    /// The values of the time parameters for this execution, as text.
    pub(super) fn time_values(&self) -> [String; 2] {
        let (transaction, statement) = self.stamps();
        [transaction, statement]
    }

    /// The transaction's start (the client's BEGIN, or now outside a block) and the
    /// statement's, as timestamptz text.
    fn stamps(&self) -> (String, String) {
        let now = SystemTime::now();
        let started = match &self.txn {
            TxnState::Block(b) => b.started.unwrap_or(now),
            TxnState::Idle => now,
        };
        (timestamptz(started), timestamptz(now))
    }

    async fn fix_times(&self, sql: &str, stamps: Stamps<'_>) -> Option<String> {
        // Cheap tests first (every simple query passes here): a time function's name, or an
        // INSERT naming a table with such a default.
        let mentions = times::mentions_time(sql);
        let insert = sql.trim_start().get(..6).is_some_and(|w| w.eq_ignore_ascii_case("insert"));
        if !mentions && !insert {
            return None;
        }
        let catalog = self.catalog();
        catalog.tables().next()?;
        let defaults = self.time_defaults(&catalog).await;
        let named = insert && !defaults.is_empty() && {
            let lower = sql.to_ascii_lowercase();
            defaults.keys().any(|(_, n)| lower.contains(&n.to_ascii_lowercase()))
        };
        if !named && !mentions {
            return None;
        }
        let columns = HashMap::new();
        let rels = Rels { catalog: &catalog, columns: &columns };
        let of_table = |schema: Option<&str>, name: &str| -> Vec<times::TimeDefault> {
            rels.lookup(schema, name)
                .and_then(|t| defaults.get(&(t.schema.clone(), t.name.clone())))
                .cloned()
                .unwrap_or_default()
        };
        times::fix(sql, &rels, stamps, &of_table)
    }
}

/// A PostgreSQL timestamptz literal in UTC with microseconds: `2026-12-06 17:40:55.123456+00`.
pub fn timestamptz(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let date = super::binval::date(i64::try_from(days).unwrap_or(0)).unwrap_or_default();
    format!("{date} {:02}:{:02}:{:02}.{:06}+00", rest / 3600, rest / 60 % 60, rest % 60, d.subsec_micros())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn literals_are_utc_calendar_times() {
        assert_eq!(timestamptz(UNIX_EPOCH), "1970-01-01 00:00:00.000000+00");
        // 2024-02-29 (a leap day) 13:14:15.000016
        let t = UNIX_EPOCH + Duration::new(1_709_212_455, 16_000);
        assert_eq!(timestamptz(t), "2024-02-29 13:14:15.000016+00");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799);
        assert_eq!(timestamptz(t), "2099-12-31 23:59:59.000000+00");
    }
}
