//! The throughput workloads: pgbench `-S` (simple and prepared), pgbench TPC-B with distributed
//! tables, and `pgshard tpcc`, each on plain PostgreSQL and through pgshard, alternating.

use std::process::Command;

use anyhow::Context;
use tokio_postgres::NoTls;

use super::{BenchArgs, BenchCluster, Row};

/// One pgbench workload.
struct Bench {
    /// Its name for `--only`.
    key: &'static str,
    name: &'static str,
    args: &'static [&'static str],
    /// Statements per transaction, for CPU per statement.
    statements: f64,
    goal: f64,
}

const PGBENCH: [Bench; 3] = [
    Bench { key: "select", name: "pgbench -S, simple protocol", args: &["-S", "-M", "simple"], statements: 1.0, goal: 0.80 },
    Bench { key: "prepared", name: "pgbench -S, -M prepared", args: &["-S", "-M", "prepared"], statements: 1.0, goal: 0.60 },
    // BEGIN, 3 UPDATEs, SELECT, INSERT, END.
    Bench { key: "tpcb", name: "pgbench TPC-B, -M prepared, distributed", args: &["-b", "tpcb-like", "-M", "prepared"], statements: 7.0, goal: 0.50 },
];

/// Runs every workload; one row each.
pub async fn run_all(cluster: &BenchCluster, args: &BenchArgs) -> anyhow::Result<Vec<Row>> {
    let chosen: Vec<&Bench> = PGBENCH.iter().filter(|b| args.only.is_empty() || args.only.iter().any(|o| o == b.key)).collect();
    if !chosen.is_empty() {
        init_pgbench(cluster, args).await?;
    }
    let mut rows: Vec<Row> = chosen
        .iter()
        .map(|b| Row { workload: b.name.into(), plain: Vec::new(), pgshard: Vec::new(), cpu_us: Vec::new(), goal: Some(b.goal) })
        .collect();
    for round in 0..args.rounds {
        for (b, row) in chosen.iter().zip(rows.iter_mut()) {
            // Alternate which side goes first, so warm caches favour neither.
            let sides = if round % 2 == 0 { [false, true] } else { [true, false] };
            for pgshard in sides {
                let port = if pgshard { cluster.pgshard_port } else { cluster.plain_port };
                let cpu_before = cluster.coordinator_cpu_us()?;
                let (tps, txns) = pgbench(cluster, port, b.args, args)?;
                let cpu = cluster.coordinator_cpu_us()? - cpu_before;
                println!("round {} {:<45} {:>8}: {tps:>10.1} tps", round + 1, b.name, if pgshard { "pgshard" } else { "plain" });
                if pgshard {
                    row.pgshard.push(tps);
                    row.cpu_us.push(cpu / (txns * b.statements).max(1.0));
                } else {
                    row.plain.push(tps);
                }
            }
        }
    }
    if args.warehouses > 0 && (args.only.is_empty() || args.only.iter().any(|o| o == "tpcc")) {
        rows.push(tpcc(cluster, args)?);
    }
    Ok(rows)
}

/// `pgbench -i` on both sides; through pgshard accounts and history are distributed by aid
/// (colocated), branches by bid and tellers by tid, as a sharded TPC-B deployment would have them
/// (a transaction then writes one node or two; the tests cover the reference-table variant).
async fn init_pgbench(cluster: &BenchCluster, args: &BenchArgs) -> anyhow::Result<()> {
    for port in [cluster.plain_port, cluster.pgshard_port] {
        let scale = args.scale.to_string();
        let out = Command::new(cluster.tool("pgbench"))
            .args(["-i", "-q", "-s", &scale, "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "postgres"])
            .output()?;
        anyhow::ensure!(out.status.success(), "pgbench -i failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let client = connect(cluster.pgshard_port).await?;
    for sql in [
        "SELECT create_distributed_table('pgbench_accounts', 'aid')",
        "SELECT create_distributed_table('pgbench_history', 'aid', colocate_with => 'pgbench_accounts')",
        "SELECT create_distributed_table('pgbench_branches', 'bid')",
        "SELECT create_distributed_table('pgbench_tellers', 'tid')",
    ] {
        client.batch_execute(sql).await.with_context(|| sql.to_owned())?;
    }
    Ok(())
}

/// Runs pgbench; its tps and the transactions it processed.
fn pgbench(cluster: &BenchCluster, port: u16, script: &[&str], args: &BenchArgs) -> anyhow::Result<(f64, f64)> {
    let (clients, duration) = (args.clients.to_string(), args.duration.to_string());
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get()).min(args.clients).to_string();
    let out = Command::new(cluster.tool("pgbench"))
        .args(["-n", "-c", &clients, "-j", &jobs, "-T", &duration, "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
        .args(script)
        .arg("postgres")
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(out.status.success(), "pgbench {script:?} failed:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let field = |prefix: &str| -> Option<f64> {
        text.lines().find_map(|l| l.strip_prefix(prefix)).and_then(|r| r.split_whitespace().next()).and_then(|v| v.parse().ok())
    };
    let failed = field("number of failed transactions: ").unwrap_or(0.0);
    anyhow::ensure!(failed == 0.0, "pgbench {script:?}: {failed} failed transactions\n{text}");
    Ok((
        field("tps = ").context("no tps in pgbench's output")?,
        field("number of transactions actually processed: ").context("no transaction count")?,
    ))
}

/// The TPC-C comparison: `pgshard tpcc load` and `run` on both sides, NOPM per round.
fn tpcc(cluster: &BenchCluster, args: &BenchArgs) -> anyhow::Result<Row> {
    let exe = std::env::current_exe()?;
    let w = args.warehouses.to_string();
    for port in [cluster.plain_port, cluster.pgshard_port] {
        println!("TPC-C: loading {w} warehouses on port {port}");
        let out = Command::new(&exe)
            .args(["tpcc", "load", "--warehouses", &w, "--port", &port.to_string()])
            .output()?;
        anyhow::ensure!(out.status.success(), "tpcc load failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut row = Row { workload: format!("pgshard tpcc, {w} warehouses (NOPM)"), plain: Vec::new(), pgshard: Vec::new(), cpu_us: Vec::new(), goal: Some(0.5) };
    for round in 0..args.rounds {
        let sides = if round % 2 == 0 { [false, true] } else { [true, false] };
        for pgshard in sides {
            let port = if pgshard { cluster.pgshard_port } else { cluster.plain_port };
            let json = cluster.dir().join(format!("tpcc-{round}-{port}.json"));
            let svg = cluster.dir().join(format!("tpcc-{round}-{port}.svg"));
            let out = Command::new(&exe)
                .args(["tpcc", "run", "--port", &port.to_string(), "--duration", &args.duration.to_string()])
                .args(["--clients", &args.clients.to_string(), "--json"])
                .arg(&json)
                .arg("--svg")
                .arg(&svg)
                .output()?;
            anyhow::ensure!(out.status.success(), "tpcc run failed: {}", String::from_utf8_lossy(&out.stderr));
            let value: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
            let nopm = value.get("nopm").and_then(serde_json::Value::as_f64).context("no nopm in the tpcc result")?;
            println!("round {} TPC-C {:>8}: {nopm:.0} NOPM", round + 1, if pgshard { "pgshard" } else { "plain" });
            if pgshard { row.pgshard.push(nopm) } else { row.plain.push(nopm) }
        }
    }
    Ok(row)
}

/// A connection to `port` as postgres (within 30 s).
pub async fn connect(port: u16) -> anyhow::Result<tokio_postgres::Client> {
    let dsn = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=30");
    let (client, conn) = tokio::time::timeout(std::time::Duration::from_secs(30), tokio_postgres::connect(&dsn, NoTls))
        .await
        .with_context(|| format!("no connection to port {port} within 30 s"))??;
    tokio::spawn(conn);
    Ok(client)
}

/// The report table, Markdown.
pub fn table(rows: &[Row]) -> String {
    let fmt = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(" / ");
    let mut out = String::from(
        "| workload | plain (per round) | pgshard (per round) | pgshard / plain | goal | coordinator CPU µs per statement |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let cpu = if r.cpu_us.is_empty() { "–".to_owned() } else { r.cpu_us.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(" / ") };
        let goal = r.goal.map_or("–".to_owned(), |g| {
            let met = if r.ratio() >= g { "met" } else { "not met" };
            format!("≥ {g:.2} ({met})")
        });
        out.push_str(&format!("| {} | {} | {} | {:.2} | {goal} | {cpu} |\n", r.workload, fmt(&r.plain), fmt(&r.pgshard), r.ratio()));
    }
    out.push_str("\nThroughput in transactions per second (TPC-C: NOPM). Coordinator CPU goal: ≤ 15 µs per routed statement.\n");
    out
}
