//! `pgshard tpcc` end to end, on a plain PostgreSQL and through pgshard: the load gives the
//! exact row counts of the seed (through pgshard with every row in its shard and `item` a
//! reference table), 4 clients run the mix with every transaction type committing and no
//! error, the JSON result and the SVG chart are written, the consistency check passes, and it
//! fails once the data is made inconsistent. Through pgshard also with 2 warehouses, so
//! Payments and New-Orders cross warehouses (and data nodes).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::path::Path;
use std::time::{Duration, Instant};

use pgshard_tests::{PlainPg, TestCluster, connect, temp_dir};
use pgshard_tpcc::{
    Conn, LoadOptions, RunOptions, RunReport, Target, TxnKind, check, expected_rows, load, run,
};
use tokio_postgres::{Client, SimpleQueryMessage};

const SEED: u64 = 42;
const CLIENTS: usize = 4;
const SECONDS: u64 = 4;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn conn(port: u16) -> Conn {
    Conn::new("127.0.0.1", port)
}

/// The text rows of `sql` (simple protocol, as pgshard answers merged statements).
async fn rows(client: &Client, sql: &str) -> Vec<Vec<String>> {
    let messages = client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_owned()).collect()),
            _ => None,
        })
        .collect()
}

async fn value(client: &Client, sql: &str) -> String {
    rows(client, sql).await.remove(0).remove(0)
}

/// Loads `warehouses` warehouses and checks every table holds exactly the seed's rows.
async fn load_exactly(port: u16, warehouses: u32, target: Target) {
    let started = Instant::now();
    let opts = LoadOptions { conn: conn(port), warehouses, jobs: 4, target: Target::Auto, seed: SEED, drop: true, progress: false };
    let report = load(&opts).await.unwrap();
    eprintln!("{report}\n(test wall time {:.1} s)", started.elapsed().as_secs_f64());
    assert_eq!(report.target, target, "detected target");
    let expected = expected_rows(SEED, warehouses);
    let client = connect(&format!("host=127.0.0.1 port={port} user=postgres dbname=postgres")).await.unwrap();
    for (table, rows) in &expected {
        assert_eq!(report.rows_of(table), *rows, "rows loaded into {table}");
        let counted: u64 = value(&client, &format!("SELECT count(*) FROM {table}")).await.parse().unwrap();
        assert_eq!(counted, *rows, "rows in {table}");
    }
    let ol_cnt = value(&client, "SELECT sum(o_ol_cnt) FROM orders").await;
    assert_eq!(ol_cnt, report.rows_of("order_line").to_string());
    let undelivered = value(&client, "SELECT count(*) FROM orders WHERE o_carrier_id IS NULL").await;
    assert_eq!(undelivered, report.rows_of("new_order").to_string());
    let bad_credit = value(&client, "SELECT count(*) FROM customer WHERE c_credit = 'BC'").await.parse::<u64>().unwrap();
    let customers = report.rows_of("customer");
    assert!(bad_credit > customers / 20 && bad_credit < customers * 3 / 20, "{bad_credit} BC of {customers}");
    let names = value(&client, "SELECT count(DISTINCT c_last) FROM customer WHERE c_w_id = 1 AND c_d_id = 1 AND c_id <= 1000").await;
    assert_eq!(names, "1000", "customers 1..1000 have the 1000 names");
}

/// Runs the mix and checks what it reports and writes.
async fn run_clean(port: u16, warehouses: u32, dir: &Path, label: &str) -> RunReport {
    let (json, svg) = (dir.join(format!("{label}.json")), dir.join(format!("{label}.svg")));
    let opts = RunOptions {
        conn: conn(port),
        duration: Duration::from_secs(SECONDS),
        clients: CLIENTS,
        warehouses: None,
        seed: 7,
        json: Some(json.clone()),
        svg: Some(svg.clone()),
    };
    let report = run(&opts).await.unwrap();
    eprintln!("{label}:\n{report}");
    assert_eq!(report.setup.warehouses, warehouses, "warehouses counted from the table");
    assert!(report.nopm > 0.0, "{report}");
    for kind in TxnKind::ALL {
        assert!(report.txn(kind).committed > 0, "no {} committed:\n{report}", kind.name());
    }
    assert_eq!(report.total_errors(), 0, "errors:\n{report}");
    assert!(report.errors.is_empty());
    let new_orders = report.txn(TxnKind::NewOrder).committed;
    assert!((report.nopm - new_orders as f64 * 60.0 / SECONDS as f64).abs() < 1e-6);

    let written = RunReport::read_json(&json).unwrap();
    assert_eq!(written.txn(TxnKind::NewOrder).committed, new_orders);
    assert_eq!(written.throughput.len(), SECONDS as usize);
    let committed: u64 = TxnKind::ALL.iter().map(|k| written.txn(*k).committed).sum();
    assert_eq!(written.throughput.iter().map(|s| s.tps).sum::<u64>(), committed);
    assert_eq!(written.throughput.iter().map(|s| s.new_orders).sum::<u64>(), new_orders);
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"), "{chart}");
    assert_eq!(chart.matches("<polyline").count(), 3, "axes and two series");
    report
}

/// `check` passes now; after `corrupt` it fails, naming exactly the conditions in `broken`.
async fn check_then_break(port: u16, corrupt: &[&str], broken: &[u32]) {
    let report = check(&conn(port)).await.unwrap();
    eprintln!("{report}");
    assert_eq!(report.conditions.len(), 4);
    let client = connect(&format!("host=127.0.0.1 port={port} user=postgres dbname=postgres")).await.unwrap();
    for sql in corrupt {
        client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let message = format!("{:#}", check(&conn(port)).await.unwrap_err());
    for n in 1..=4 {
        let failed = message.contains(&format!("condition {n}: FAIL"));
        assert_eq!(failed, broken.contains(&n), "condition {n}:\n{message}");
    }
}

#[test]
fn tpcc_on_plain_postgres() {
    let pg = PlainPg::start().unwrap();
    let dir = temp_dir().unwrap();
    runtime().block_on(async {
        load_exactly(pg.port(), 1, Target::Postgres).await;
        run_clean(pg.port(), 1, dir.path(), "plain-w1").await;
        check_then_break(
            pg.port(),
            &[
                "UPDATE warehouse SET w_ytd = w_ytd + 0.01 WHERE w_id = 1",
                "DELETE FROM new_order WHERE no_w_id = 1 AND no_d_id = 4 \
                 AND no_o_id = (SELECT min(no_o_id) + 1 FROM new_order WHERE no_w_id = 1 AND no_d_id = 4)",
            ],
            &[1, 3],
        )
        .await;
    });
}

#[test]
fn tpcc_through_pgshard() {
    let cluster = TestCluster::start(2).unwrap();
    let port = cluster.port();
    let dir = temp_dir().unwrap();
    runtime().block_on(async {
        let client = connect(&cluster.dsn("postgres")).await.unwrap();
        load_exactly(port, 1, Target::Pgshard).await;
        assert_eq!(rows(&client, "SELECT verify_placement('stock')").await, [["100000", "0"]]);
        let kinds = rows(&client, "SELECT table_name, kind, distribution_column FROM pgshard.tables ORDER BY 1").await;
        let kinds: Vec<String> = kinds.iter().map(|r| r.join(" ")).collect();
        assert_eq!(
            kinds,
            [
                "customer distributed c_w_id",
                "district distributed d_w_id",
                "history distributed h_w_id",
                "item reference NULL",
                "new_order distributed no_w_id",
                "order_line distributed ol_w_id",
                "orders distributed o_w_id",
                "stock distributed s_w_id",
                "warehouse distributed w_id",
            ]
        );
        let groups = value(&client, "SELECT count(DISTINCT colocation_group) FROM pgshard.tables WHERE kind = 'distributed'").await;
        assert_eq!(groups, "1", "every warehouse-keyed table is colocated with warehouse");
        run_clean(port, 1, dir.path(), "pgshard-w1").await;
        check(&conn(port)).await.unwrap();

        // Two warehouses: remote stock and remote customers, on two data nodes.
        load_exactly(port, 2, Target::Pgshard).await;
        assert_eq!(rows(&client, "SELECT verify_placement('order_line')").await[0][1], "0");
        assert_eq!(rows(&client, "SELECT verify_placement('stock')").await, [["200000", "0"]]);
        run_clean(port, 2, dir.path(), "pgshard-w2").await;
        let remote = value(&client, "SELECT count(*) FROM history WHERE h_c_w_id <> h_w_id").await;
        let remote_stock = value(&client, "SELECT sum(s_remote_cnt) FROM stock").await;
        eprintln!("remote payments {remote}, remote order lines {remote_stock}");
        assert_ne!(remote, "0", "some Payments paid a customer of the other warehouse");
        check_then_break(
            port,
            &[
                "UPDATE district SET d_next_o_id = d_next_o_id + 1 WHERE d_w_id = 2 AND d_id = 3",
                "DELETE FROM order_line WHERE ol_w_id = 1 AND ol_d_id = 2 AND ol_o_id = 1 AND ol_number = 1",
            ],
            &[2, 4],
        )
        .await;
    });
}
