//! What a run measured: counters and latency samples gathered per client ([`Stats`]), merged
//! into a [`RunReport`] that prints as a table and serialises as the JSON result.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::mix::TxnKind;
use crate::schema::Target;
use crate::transactions::Outcome;

/// Counters of one transaction type in one client.
#[derive(Clone, Debug, Default)]
struct KindStats {
    committed: u64,
    rolled_back: u64,
    errors: u64,
    retries_serialization: u64,
    retries_deadlock: u64,
    latencies_us: Vec<u64>,
}

/// What one client measured; merged over clients at the end of the run.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stats {
    kinds: [KindStats; 5],
    /// Committed transactions and committed New-Orders finished in each second of the run.
    per_second: Vec<(u64, u64)>,
    /// Errors by transaction type and SQLSTATE: how many, and the first message.
    errors: BTreeMap<(TxnKind, String), (u64, String)>,
}

impl Stats {
    /// Empty statistics for a run of `seconds` seconds.
    pub(crate) fn new(seconds: usize) -> Self {
        Self { per_second: vec![(0, 0); seconds], ..Self::default() }
    }

    /// A transaction that finished in second `second` of the run after `latency`.
    pub(crate) fn finished(&mut self, kind: TxnKind, outcome: Outcome, second: usize, latency: Duration) {
        let k = &mut self.kinds[kind.index()];
        k.latencies_us.push(latency.as_micros() as u64);
        match outcome {
            Outcome::Committed => {
                k.committed += 1;
                if let Some(slot) = self.per_second.get_mut(second) {
                    slot.0 += 1;
                    slot.1 += u64::from(kind == TxnKind::NewOrder);
                }
            }
            Outcome::RolledBack => k.rolled_back += 1,
        }
    }

    /// A retry after a serialization failure (40001) or a deadlock (40P01).
    pub(crate) fn retried(&mut self, kind: TxnKind, deadlock: bool) {
        let k = &mut self.kinds[kind.index()];
        if deadlock { k.retries_deadlock += 1 } else { k.retries_serialization += 1 }
    }

    /// A transaction skipped after an error other than 40001/40P01.
    pub(crate) fn failed(&mut self, kind: TxnKind, code: String, message: String) {
        self.kinds[kind.index()].errors += 1;
        self.errors.entry((kind, code)).or_insert((0, message)).0 += 1;
    }

    /// Adds another client's statistics to these.
    pub(crate) fn merge(&mut self, other: Stats) {
        for (mine, theirs) in self.kinds.iter_mut().zip(other.kinds) {
            mine.committed += theirs.committed;
            mine.rolled_back += theirs.rolled_back;
            mine.errors += theirs.errors;
            mine.retries_serialization += theirs.retries_serialization;
            mine.retries_deadlock += theirs.retries_deadlock;
            mine.latencies_us.extend(theirs.latencies_us);
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(other.per_second) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
        for (key, (count, message)) in other.errors {
            self.errors.entry(key).or_insert((0, message)).0 += count;
        }
    }
}

/// The run's shape, as given.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunSetup {
    /// pgshard or plain PostgreSQL.
    pub target: Target,
    /// Measurement interval in seconds.
    pub duration_secs: f64,
    /// Client connections.
    pub clients: usize,
    /// Warehouses the clients were spread over.
    pub warehouses: u32,
    /// Seed of the clients' random inputs.
    pub seed: u64,
}

/// Latency percentiles of one transaction type, in milliseconds.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest.
    pub max: f64,
}

/// Results of one transaction type.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct TxnReport {
    /// The type.
    pub kind: TxnKind,
    /// Committed in the measurement interval.
    pub committed: u64,
    /// Rolled back on purpose (New-Order's unused item).
    pub rolled_back: u64,
    /// Skipped after an error other than 40001/40P01.
    pub errors: u64,
    /// Retries after 40001 (serialization failure).
    pub retries_serialization: u64,
    /// Retries after 40P01 (deadlock detected).
    pub retries_deadlock: u64,
    /// Response times, first attempt to end, of committed and rolled-back transactions.
    pub latency_ms: Latency,
}

/// An error other than 40001/40P01, by transaction type and SQLSTATE.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct ErrorCount {
    /// The transaction type.
    pub kind: TxnKind,
    /// SQLSTATE, or "-" for errors without one (a lost connection).
    pub code: String,
    /// The first message seen.
    pub message: String,
    /// How many transactions failed so.
    pub count: u64,
}

/// Throughput in one second of the run.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Second {
    /// Seconds since the start, counting from 1.
    pub second: usize,
    /// Committed transactions of every type.
    pub tps: u64,
    /// Committed New-Orders (NOPM / 60 for this second).
    pub new_orders: u64,
}

/// The result of `run`, also written as JSON.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RunReport {
    /// The run's shape.
    #[serde(flatten)]
    pub setup: RunSetup,
    /// New-Orders committed per minute (tpmC).
    pub nopm: f64,
    /// Committed transactions of every type per second.
    pub tps: f64,
    /// Per transaction type, in [`TxnKind::ALL`] order.
    pub transactions: Vec<TxnReport>,
    /// Errors other than 40001/40P01, by type and SQLSTATE.
    pub errors: Vec<ErrorCount>,
    /// Throughput in each second of the run.
    pub throughput: Vec<Second>,
}

impl RunReport {
    /// Builds the report from the merged statistics.
    pub(crate) fn new(setup: RunSetup, stats: Stats) -> Self {
        let minutes = setup.duration_secs / 60.0;
        let transactions: Vec<TxnReport> = TxnKind::ALL
            .iter()
            .zip(stats.kinds)
            .map(|(kind, mut k)| {
                k.latencies_us.sort_unstable();
                let ms = |p: f64| percentile(&k.latencies_us, p) as f64 / 1000.0;
                TxnReport {
                    kind: *kind,
                    committed: k.committed,
                    rolled_back: k.rolled_back,
                    errors: k.errors,
                    retries_serialization: k.retries_serialization,
                    retries_deadlock: k.retries_deadlock,
                    latency_ms: Latency { p50: ms(50.0), p95: ms(95.0), p99: ms(99.0), max: ms(100.0) },
                }
            })
            .collect();
        let committed: u64 = transactions.iter().map(|t| t.committed).sum();
        let nopm = transactions[TxnKind::NewOrder.index()].committed as f64 / minutes;
        let errors = stats
            .errors
            .into_iter()
            .map(|((kind, code), (count, message))| ErrorCount { kind, code, message, count })
            .collect();
        let throughput = (1..)
            .zip(stats.per_second)
            .map(|(second, (tps, new_orders))| Second { second, tps, new_orders })
            .collect();
        Self { nopm, tps: committed as f64 / setup.duration_secs, setup, transactions, errors, throughput }
    }

    /// Reads a report written by `run` as JSON.
    pub fn read_json(path: &std::path::Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// The results of one transaction type.
    pub fn txn(&self, kind: TxnKind) -> &TxnReport {
        &self.transactions[kind.index()]
    }

    /// Errors of every type (retried 40001/40P01 not included).
    pub fn total_errors(&self) -> u64 {
        self.transactions.iter().map(|t| t.errors).sum()
    }
}

/// The nearest-rank `p`th percentile of sorted samples (0 when there are none).
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl std::fmt::Display for RunReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.setup;
        writeln!(
            f,
            "TPC-C run on {}: {:.0} s, {} clients, {} warehouse(s), seed {}",
            s.target, s.duration_secs, s.clients, s.warehouses, s.seed
        )?;
        writeln!(f, "NOPM (tpmC): {:.1}    transactions/s: {:.1}", self.nopm, self.tps)?;
        writeln!(
            f,
            "{:<13}{:>10}{:>10}{:>8}{:>8}{:>8}{:>10}{:>10}{:>10}{:>10}",
            "transaction", "committed", "rollback", "errors", "40001", "40P01", "p50 ms", "p95 ms", "p99 ms", "max ms"
        )?;
        for t in &self.transactions {
            let l = &t.latency_ms;
            writeln!(
                f,
                "{:<13}{:>10}{:>10}{:>8}{:>8}{:>8}{:>10.2}{:>10.2}{:>10.2}{:>10.2}",
                t.kind.name(),
                t.committed,
                t.rolled_back,
                t.errors,
                t.retries_serialization,
                t.retries_deadlock,
                l.p50,
                l.p95,
                l.p99,
                l.max
            )?;
        }
        for e in &self.errors {
            writeln!(f, "error in {}: {} x SQLSTATE {}: {}", e.kind.name(), e.count, e.code, e.message)?;
        }
        let series: Vec<String> = self.throughput.iter().map(|s| format!("{}/{}", s.tps, s.new_orders)).collect();
        write!(f, "per second (tps/new-orders): {}", series.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50.0), 50);
        assert_eq!(percentile(&samples, 95.0), 95);
        assert_eq!(percentile(&samples, 99.0), 99);
        assert_eq!(percentile(&samples, 100.0), 100);
        assert_eq!(percentile(&samples, 0.0), 1);
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[1, 2, 3, 4], 50.0), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 51.0), 3);
    }

    #[test]
    fn merged_stats_make_the_report() {
        let mut a = Stats::new(2);
        let mut b = Stats::new(2);
        a.finished(TxnKind::NewOrder, Outcome::Committed, 0, Duration::from_millis(4));
        b.finished(TxnKind::NewOrder, Outcome::Committed, 1, Duration::from_millis(2));
        b.finished(TxnKind::NewOrder, Outcome::RolledBack, 1, Duration::from_millis(1));
        b.finished(TxnKind::Payment, Outcome::Committed, 1, Duration::from_millis(3));
        a.retried(TxnKind::Payment, true);
        b.failed(TxnKind::Delivery, "23505".into(), "duplicate".into());
        a.failed(TxnKind::Delivery, "23505".into(), "other".into());
        a.merge(b);
        let setup = RunSetup { target: Target::Postgres, duration_secs: 30.0, clients: 2, warehouses: 1, seed: 1 };
        let report = RunReport::new(setup, a);
        assert_eq!(report.nopm, 4.0);
        assert_eq!(report.txn(TxnKind::NewOrder).rolled_back, 1);
        assert_eq!(report.txn(TxnKind::NewOrder).latency_ms.p50, 2.0);
        assert_eq!(report.txn(TxnKind::Payment).retries_deadlock, 1);
        assert_eq!(report.total_errors(), 2);
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].count, 2);
        assert_eq!(report.throughput.iter().map(|s| (s.tps, s.new_orders)).collect::<Vec<_>>(), [(1, 1), (2, 1)]);
        let json: serde_json::Value = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        assert_eq!(json["clients"], 2);
        assert_eq!(json["transactions"][0]["kind"], "new_order");
    }
}
