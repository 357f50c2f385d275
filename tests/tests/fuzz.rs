//! The differential fuzzer's short fixed-seed run: random schemas, data and queries on a plain
//! PostgreSQL and through pgshard must give the same answers (or a 0A000 refusal). The long run
//! is `cargo run --release -p pgshard-tests --bin fuzz`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use pgshard_tests::fuzz;
use pgshard_tests::{PlainPg, TestCluster, connect};

#[test]
fn fixed_seeds_answer_like_postgresql() {
    let plain = PlainPg::start().unwrap();
    let cluster = TestCluster::start(2).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let a = connect(&plain.dsn("postgres")).await.unwrap();
        let b = connect(&cluster.dsn("postgres")).await.unwrap();
        let mut answered = 0;
        for seed in [1, 2] {
            let report = fuzz::run(&a, &b, seed, 150, |_| {}).await.unwrap();
            eprintln!("seed {seed}: {report}");
            assert!(report.mismatches.is_empty(), "seed {seed}: pgshard answered differently from PostgreSQL:\n{report}");
            answered += report.matched + report.both_failed;
            for t in fuzz::table_names(seed) {
                a.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
                b.batch_execute(&format!("DROP TABLE {t}")).await.unwrap();
            }
        }
        // The grammar must exercise what pgshard answers, not only what it refuses.
        assert!(answered >= 150, "only {answered} of 300 queries were answered");
    });
}

/// The same with every read across colocation groups answered on one group's shards with the
/// other tables written in (wherever that can run), instead of over copies.
#[test]
fn fixed_seed_answers_like_postgresql_with_broadcast_reads() {
    let broadcasts = pgshard_tests::Broadcasts::install();
    let plain = PlainPg::start().unwrap();
    let cluster = TestCluster::start_with(2, |c| c.reads.strategy = pgshard::config::ReadStrategy::Broadcast).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let a = connect(&plain.dsn("postgres")).await.unwrap();
        let b = connect(&cluster.dsn("postgres")).await.unwrap();
        let report = fuzz::run(&a, &b, 3, 150, |_| {}).await.unwrap();
        eprintln!("seed 3: {report}");
        assert!(report.mismatches.is_empty(), "pgshard answered differently from PostgreSQL:\n{report}");
        assert!(report.matched + report.both_failed >= 75, "{report}");
        assert!(broadcasts.count() >= 10, "only {} reads ran broadcast", broadcasts.count());
        eprintln!("{} reads ran on one group's shards with the other tables written in", broadcasts.count());
    });
}
