//! The `.slt` corpus, run twice with one expected output: directly on a plain PostgreSQL and
//! through the coordinator. Each file gets a fresh database on each side.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use pgshard_tests::slt::{PGSHARD_ENGINE, PLAIN_ENGINE, corpus_files, run_file};
use pgshard_tests::{PlainPg, TestCluster, connect};

async fn fresh_database(dsn: &str, db: &str) {
    let admin = connect(dsn).await.unwrap();
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
}

/// Empties the coordinator's `postgres` database between files: the catalog is the cluster's,
/// so each file starts with no table (DROP TABLE through the coordinator takes distributed and
/// reference tables out of the catalog and off every node), then a fresh `public` schema.
async fn fresh_cluster_database(dsn: &str) {
    let admin = connect(dsn).await.unwrap();
    let tables = admin
        .query("SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", &[])
        .await
        .unwrap();
    for row in tables {
        let name: String = row.get(0);
        admin.batch_execute(&format!("DROP TABLE IF EXISTS {name} CASCADE")).await.unwrap();
    }
    admin.batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public").await.unwrap();
}

#[test]
fn slt_corpus_gives_the_same_answers_on_postgres_and_through_pgshard() {
    let plain = PlainPg::start().unwrap();
    let cluster = TestCluster::start(2).unwrap();
    let files = corpus_files();
    let filtered = std::env::var_os("PGSHARD_SLT").is_some();
    assert!(files.len() >= 5 || (filtered && !files.is_empty()), "the corpus is missing: {files:?}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut failures = Vec::new();
    for file in &files {
        let db = format!("slt_{}", file.file_stem().unwrap().to_string_lossy());
        for (side, port, engine) in
            [("plain PostgreSQL", plain.port(), PLAIN_ENGINE), ("pgshard", cluster.port(), PGSHARD_ENGINE)]
        {
            let db = if engine == PLAIN_ENGINE {
                runtime.block_on(fresh_database(&plain.dsn("postgres"), &db));
                db.clone()
            } else {
                runtime.block_on(fresh_cluster_database(&cluster.dsn("postgres")));
                "postgres".to_owned()
            };
            if let Err(e) = runtime.block_on(run_file(file, "127.0.0.1", port, "postgres", &db, engine)) {
                failures.push(format!("{} on {side}:\n{e:#}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The corpus through a coordinator that answers every read across colocation groups (or with
/// tables of the default node) on one group's shards, the other tables written in, whenever it
/// can: the answers must still be the files' (PostgreSQL's, checked by the test above).
#[test]
fn slt_corpus_gives_the_same_answers_with_broadcast_reads() {
    let cluster = TestCluster::start_with(2, |c| c.reads.strategy = pgshard::config::ReadStrategy::Broadcast).unwrap();
    let files = corpus_files();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut failures = Vec::new();
    for file in &files {
        runtime.block_on(fresh_cluster_database(&cluster.dsn("postgres")));
        if let Err(e) = runtime.block_on(run_file(file, "127.0.0.1", cluster.port(), "postgres", "postgres", PGSHARD_ENGINE)) {
            failures.push(format!("{}:\n{e:#}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
