//! `pgshard bench`: how pgshard compares with plain PostgreSQL, measured in one run on one
//! machine. It starts a plain PostgreSQL and a pgshard cluster (default node + 2 shard nodes,
//! the coordinator as its own process) with the same server settings, runs each workload on
//! both back to back, alternating which goes first, `--rounds` times, and prints a table: tps
//! of each, the ratio pgshard/plain, and the coordinator's CPU time per statement (from
//! `/proc/<pid>/stat`). Then the memory and scale checks. The report is also written to
//! `--out` as Markdown.

mod checks;
mod cluster;
mod workloads;

use std::path::PathBuf;

use clap::Args;

pub use cluster::BenchCluster;

/// `pgshard bench` options.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Rounds of every workload on each side (at least 2 for a fair comparison).
    #[arg(long, default_value_t = 2)]
    pub rounds: usize,
    /// Seconds each workload runs on each side per round.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Client connections of the workloads.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// pgbench scale factor.
    #[arg(long, default_value_t = 10)]
    pub scale: u32,
    /// TPC-C warehouses (0 skips TPC-C).
    #[arg(long, default_value_t = 2)]
    pub warehouses: u32,
    /// Rows of the multi-shard ORDER BY check.
    #[arg(long, default_value_t = 1_000_000)]
    pub sort_rows: u64,
    /// Rows of the streaming check (0 skips it).
    #[arg(long, default_value_t = 10_000_000)]
    pub stream_rows: u64,
    /// Client connections held open in the connection check (0 skips it).
    #[arg(long, default_value_t = 2000)]
    pub connections: usize,
    /// Where the Markdown report goes.
    #[arg(long, default_value = "bench-results.md")]
    pub out: PathBuf,
    /// Run only these workloads (comma-separated: select, prepared, tpcb, tpcc); all by default.
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Skip the memory and scale checks.
    #[arg(long)]
    pub no_checks: bool,
    /// Directory for the servers' data (a fresh one is made under the system temp dir).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// One measured line of the report.
#[derive(Debug, Clone)]
pub struct Row {
    /// The workload.
    pub workload: String,
    /// Plain PostgreSQL's result per round (tps, or NOPM for TPC-C).
    pub plain: Vec<f64>,
    /// pgshard's result per round.
    pub pgshard: Vec<f64>,
    /// Coordinator CPU microseconds per statement, per round.
    pub cpu_us: Vec<f64>,
    /// The goal ratio, if the issue sets one.
    pub goal: Option<f64>,
}

impl Row {
    fn mean(v: &[f64]) -> f64 {
        if v.is_empty() { 0.0 } else { v.iter().sum::<f64>() / v.len() as f64 }
    }

    /// pgshard / plain, over the rounds' means.
    pub fn ratio(&self) -> f64 {
        let p = Self::mean(&self.plain);
        if p > 0.0 { Self::mean(&self.pgshard) / p } else { 0.0 }
    }
}

/// Runs the benchmark and writes the report.
pub fn main(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.rounds >= 1, "--rounds must be at least 1");
    let cluster = BenchCluster::start(&args)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let mut report = String::new();
    let started = chrono_like_now();
    report.push_str(&format!(
        "# pgshard vs plain PostgreSQL\n\nRun {started} on this machine ({} cores); {} rounds of {} s per workload and side, {} clients; pgbench scale {}; pgshard = coordinator + default node + 2 shard nodes; plain = one PostgreSQL with the data nodes' settings.\n\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        args.rounds,
        args.duration,
        args.clients,
        args.scale
    ));
    let rows = runtime.block_on(workloads::run_all(&cluster, &args))?;
    report.push_str(&workloads::table(&rows));
    println!("{}", workloads::table(&rows));
    if !args.no_checks {
        let checks = runtime.block_on(checks::run_all(&cluster, &args))?;
        report.push_str("\n## Memory and scale\n\n");
        report.push_str(&checks);
        println!("{checks}");
    }
    std::fs::write(&args.out, &report)?;
    println!("report written to {}", args.out.display());
    drop(runtime);
    cluster.stop();
    Ok(())
}

/// The current UTC time as `YYYY-MM-DD HH:MM` (no date crate needed).
fn chrono_like_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rest / 3600, rest % 3600 / 60)
}
