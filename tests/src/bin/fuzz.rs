//! `fuzz`: the differential fuzzer's long run. Starts a plain PostgreSQL and a pgshard cluster
//! (default node + 2 shard nodes), then for each seed creates a random schema on both, runs the
//! queries and compares the answers. Prints the report; exits non-zero on any mismatch.
//!
//!     cargo run --release -p pgshard-tests --bin fuzz -- [--seeds 10] [--queries 1000] [--first-seed 1]
//!         [--reads auto|copies|broadcast]
//!
//! `--reads` sets the coordinator's `reads.strategy` (how reads across colocation groups are
//! answered).

use std::process::ExitCode;

use pgshard::config::ReadStrategy;
use pgshard_tests::fuzz::{self, Report};
use pgshard_tests::{PlainPg, TestCluster, connect};

fn arg(args: &[String], name: &str, default: u64) -> anyhow::Result<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => {
            let v = args.get(i + 1).ok_or_else(|| anyhow::anyhow!("{name} needs a value"))?;
            Ok(v.parse()?)
        }
        None => Ok(default),
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fuzz: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds = arg(&args, "--seeds", 10)?;
    let queries = arg(&args, "--queries", 1000)? as usize;
    let first = arg(&args, "--first-seed", 1)?;
    let strategy = match args.iter().position(|a| a == "--reads").and_then(|i| args.get(i + 1)).map(String::as_str) {
        None | Some("auto") => ReadStrategy::Auto,
        Some("copies") => ReadStrategy::Copies,
        Some("broadcast") => ReadStrategy::Broadcast,
        Some(other) => anyhow::bail!("--reads takes auto, copies or broadcast, not {other}"),
    };
    let plain = PlainPg::start()?;
    let cluster = TestCluster::start_with(2, |c| c.reads.strategy = strategy)?;
    let runtime = tokio::runtime::Runtime::new()?;
    let total = runtime.block_on(async {
        let a = connect(&plain.dsn("postgres")).await?;
        let b = connect(&cluster.dsn("postgres")).await?;
        let mut total = Report::default();
        for seed in first..first + seeds {
            let report = fuzz::run(&a, &b, seed, queries, |r| {
                if r.queries % 100 == 0 {
                    eprint!("\rseed {seed}: {} queries, {} mismatches", r.queries, r.mismatches.len());
                }
            })
            .await?;
            eprintln!("\rseed {seed}: {report}");
            for t in fuzz::table_names(seed) {
                a.batch_execute(&format!("DROP TABLE {t}")).await?;
                b.batch_execute(&format!("DROP TABLE {t}")).await?;
            }
            total.queries += report.queries;
            total.matched += report.matched;
            total.both_failed += report.both_failed;
            total.writes += report.writes;
            for (why, n) in report.refused {
                *total.refused.entry(why).or_default() += n;
            }
            total.mismatches.extend(report.mismatches);
        }
        anyhow::Ok(total)
    })?;
    println!("seeds {first}..{}: {total}", first + seeds - 1);
    Ok(total.mismatches.is_empty())
}
