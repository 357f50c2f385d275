//! Memory and scale checks: a multi-shard ORDER BY of many rows
//! (time against plain PostgreSQL, coordinator peak RSS), a multi-shard SELECT of more rows
//! streamed through (bounded coordinator memory), many client connections held open (and how
//! many data-node connections they take).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};

use super::workloads::connect;
use super::{BenchArgs, BenchCluster};

/// Runs the checks; Markdown lines.
pub async fn run_all(cluster: &BenchCluster, args: &BenchArgs) -> anyhow::Result<String> {
    let mut out = String::new();
    out.push_str(&sorted(cluster, args).await?);
    if args.stream_rows > 0 {
        out.push_str(&streamed(cluster, args).await?);
    }
    if args.connections > 0 {
        out.push_str(&connections(cluster, args).await?);
    }
    Ok(out)
}

/// Creates `table (id int8 PRIMARY KEY, v text)` with `rows` rows on both sides; through pgshard
/// it is then distributed by id.
async fn big_table(cluster: &BenchCluster, table: &str, rows: u64) -> anyhow::Result<()> {
    for port in [cluster.plain_port, cluster.pgshard_port] {
        let c = connect(port).await?;
        c.batch_execute(&format!("DROP TABLE IF EXISTS {table}")).await?;
        c.batch_execute(&format!("CREATE TABLE {table} (id int8 PRIMARY KEY, v text NOT NULL)")).await?;
        c.batch_execute(&format!("INSERT INTO {table} SELECT g, md5(g::text) FROM generate_series(1, {rows}) g")).await?;
        if port == cluster.pgshard_port {
            c.batch_execute(&format!("SELECT create_distributed_table('{table}', 'id')")).await?;
        }
        c.batch_execute(&format!("ANALYZE {table}")).await?;
    }
    Ok(())
}

/// Seconds `psql` takes to fetch a query's whole result.
fn psql_seconds(cluster: &BenchCluster, port: u16, sql: &str) -> anyhow::Result<f64> {
    let started = Instant::now();
    let out = Command::new(cluster.tool("psql"))
        .args(["-X", "-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-o", "/dev/null", "-c", sql])
        // Bounded: the connection and the query (through pgshard the option reaches the nodes).
        .env("PGCONNECT_TIMEOUT", "30")
        .env("PGOPTIONS", "-c statement_timeout=600000")
        .output()?;
    anyhow::ensure!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(started.elapsed().as_secs_f64())
}

async fn sorted(cluster: &BenchCluster, args: &BenchArgs) -> anyhow::Result<String> {
    let rows = args.sort_rows;
    println!("memory check: ORDER BY of {rows} rows");
    big_table(cluster, "bench_sorted", rows).await?;
    let sql = "SELECT * FROM bench_sorted ORDER BY id";
    cluster.reset_peak_rss()?;
    let (mut plain, mut pgshard) = (Vec::new(), Vec::new());
    for round in 0..2 {
        let sides = if round == 0 { [false, true] } else { [true, false] };
        for side in sides {
            let port = if side { cluster.pgshard_port } else { cluster.plain_port };
            let secs = psql_seconds(cluster, port, sql)?;
            if side { pgshard.push(secs) } else { plain.push(secs) }
        }
    }
    let best = |v: &[f64]| v.iter().copied().fold(f64::MAX, f64::min);
    let (p, s) = (best(&plain), best(&pgshard));
    let (_, peak) = cluster.coordinator_rss_mib()?;
    let ratio = s / p;
    Ok(format!(
        "- Multi-shard `{sql}` of {rows} rows, fetched whole by psql (best of 2): plain {p:.2} s, pgshard {s:.2} s, \
         **{ratio:.2}×** (goal ≤ 1.2×: {}); coordinator peak RSS during the queries **{peak:.1} MiB** (goal < 50 MiB: {}).\n",
        verdict(ratio <= 1.2),
        verdict(peak < 50.0)
    ))
}

async fn streamed(cluster: &BenchCluster, args: &BenchArgs) -> anyhow::Result<String> {
    let rows = args.stream_rows;
    println!("memory check: streaming {rows} rows");
    big_table(cluster, "bench_streamed", rows).await?;
    let (rss_before, _) = cluster.coordinator_rss_mib()?;
    cluster.reset_peak_rss()?;
    let mut secs = [0.0; 2];
    for (k, port) in [cluster.plain_port, cluster.pgshard_port].into_iter().enumerate() {
        let c = connect(port).await?;
        let started = Instant::now();
        let stream = c.query_raw("SELECT * FROM bench_streamed", std::iter::empty::<i32>()).await?;
        let counted = stream.try_fold(0u64, |n, _| async move { Ok(n + 1) }).await?;
        anyhow::ensure!(counted == rows, "streamed {counted} rows of {rows}");
        secs[k] = started.elapsed().as_secs_f64();
    }
    let (rss_after, peak) = cluster.coordinator_rss_mib()?;
    Ok(format!(
        "- Multi-shard `SELECT * FROM bench_streamed` of {rows} rows, streamed to a client that counts them: plain {:.1} s, \
         pgshard {:.1} s; coordinator RSS {rss_before:.1} MiB before, {rss_after:.1} MiB after, peak during the query {peak:.1} MiB \
         (bounded: {}).\n",
        secs[0],
        secs[1],
        verdict(peak < 50.0)
    ))
}

async fn connections(cluster: &BenchCluster, args: &BenchArgs) -> anyhow::Result<String> {
    let n = args.connections;
    println!("scale check: {n} client connections");
    let mut opened = Vec::with_capacity(n);
    let mut first_error = None;
    let attempts = futures::stream::iter(0..n)
        .map(|_| async {
            let c = tokio::time::timeout(Duration::from_secs(30), connect(cluster.pgshard_port)).await??;
            c.simple_query("SELECT 1").await?;
            anyhow::Ok(c)
        })
        .buffer_unordered(512)
        .collect::<Vec<_>>()
        .await;
    for a in attempts {
        match a {
            Ok(c) => opened.push(c),
            Err(e) => {
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    let direct = connect(cluster.default_node_port).await?;
    let on_node: i64 = direct
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .context("counting the default node's connections")?
        .get(0);
    let held = opened.len();
    drop(opened);
    Ok(format!(
        "- {n} client connections opened and held: **{held} succeeded**, served by **{on_node} connections** on the \
         default node (goal: all held with a bounded number of data-node connections: {}){}.\n",
        verdict(held == n && on_node <= 200),
        first_error.map(|e| format!("; first failure: {e}")).unwrap_or_default()
    ))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "not met" }
}
