//! The `.slt` corpus, run twice with one expected output: directly on a plain PostgreSQL and
//! through the coordinator. Each file gets a fresh database on each side.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use pgshard_tests::slt::{corpus_files, run_file};
use pgshard_tests::{PlainPg, TestCluster, connect};

async fn fresh_database(dsn: &str, db: &str) {
    let admin = connect(dsn).await.unwrap();
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
}

#[test]
fn slt_corpus_gives_the_same_answers_on_postgres_and_through_pgshard() {
    let plain = PlainPg::start().unwrap();
    let cluster = TestCluster::start(2).unwrap();
    let files = corpus_files();
    assert!(files.len() >= 5, "the corpus is missing: {files:?}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut failures = Vec::new();
    for file in &files {
        let db = format!("slt_{}", file.file_stem().unwrap().to_string_lossy());
        for (side, port, dsn) in
            [("plain PostgreSQL", plain.port(), plain.dsn("postgres")), ("pgshard", cluster.port(), cluster.dsn("postgres"))]
        {
            runtime.block_on(fresh_database(&dsn, &db));
            if let Err(e) = runtime.block_on(run_file(file, "127.0.0.1", port, "postgres", &db)) {
                failures.push(format!("{} on {side}:\n{e:#}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
