//! `load`: drops and creates the tables (distributing them on pgshard), fills them with the
//! population of clause 4.3 through `COPY ... FROM STDIN` on several connections at once, with
//! a progress bar, then builds the secondary indexes and ANALYZEs.
//!
//! The work is cut into jobs (the items; per warehouse its warehouse and district rows, its
//! stock, its customers with their history, its orders with their new orders and lines). Each
//! job draws from random streams seeded by the load's seed and the job's table and warehouse,
//! so a given seed gives the same database whatever `--jobs` is.

use std::collections::{BTreeMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use futures::SinkExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_postgres::{Client, CopyInSink};

use crate::conn::Conn;
use crate::population::{self, CUSTOMERS, DISTRICTS, DistrictOrders, FIRST_NEW_ORDER, ITEMS, ORDERS};
use crate::random::stream;
use crate::schema::{self, TABLES, Target};

/// What to load and where.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Where to connect.
    pub conn: Conn,
    /// Number of warehouses (W).
    pub warehouses: u32,
    /// Connections loading in parallel.
    pub jobs: usize,
    /// pgshard, plain PostgreSQL, or ask the server.
    pub target: Target,
    /// Seed of the population: the same seed gives the same rows.
    pub seed: u64,
    /// Drop the TPC-C tables that exist first (otherwise creating them fails if they exist).
    pub drop: bool,
    /// Show a progress bar on stderr (only drawn when stderr is a terminal).
    pub progress: bool,
}

/// What `load` did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LoadReport {
    /// Where the tables were created (never `Auto`).
    pub target: Target,
    /// Number of warehouses loaded.
    pub warehouses: u32,
    /// Rows copied into each table, in schema order.
    pub rows: Vec<(String, u64)>,
    /// Wall time of the whole load, DDL and ANALYZE included.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Rows copied into `table` (0 if unknown).
    pub fn rows_of(&self, table: &str) -> u64 {
        self.rows.iter().find(|(t, _)| t == table).map_or(0, |(_, n)| *n)
    }
}

impl std::fmt::Display for LoadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "loaded {} warehouse(s) into {} in {:.1} s", self.warehouses, self.target, self.elapsed.as_secs_f64())?;
        writeln!(f, "{:<12} {:>12}", "table", "rows")?;
        for (table, rows) in &self.rows {
            writeln!(f, "{table:<12} {rows:>12}")?;
        }
        let total: u64 = self.rows.iter().map(|(_, n)| n).sum();
        write!(f, "{:<12} {total:>12}", "total")
    }
}

/// One unit of loading work, run on one connection.
#[derive(Clone, Copy, Debug)]
enum Job {
    Item,
    Warehouse(u32),
    Stock(u32),
    Customer(u32),
    Orders(u32),
}

/// Stream ids of the random streams, one per kind of row.
const ITEM_STREAM: u64 = 1;
const WAREHOUSE_STREAM: u64 = 2;
const STOCK_STREAM: u64 = 3;
const CUSTOMER_STREAM: u64 = 4;
const HISTORY_STREAM: u64 = 5;
const ORDERS_STREAM: u64 = 6;
const ORDER_LINE_STREAM: u64 = 7;

/// Rows loaded per table, summed over jobs.
type RowCounts = Arc<Mutex<BTreeMap<&'static str, u64>>>;

/// Loads the database; see the module documentation.
pub async fn load(opts: &LoadOptions) -> anyhow::Result<LoadReport> {
    anyhow::ensure!(opts.warehouses >= 1, "--warehouses must be at least 1");
    let started = Instant::now();
    let client = opts.conn.connect().await?;
    let target = opts.target.resolve(&client).await;
    tracing::info!(?target, warehouses = opts.warehouses, "creating the TPC-C tables");
    if opts.drop {
        schema::drop_tables(&client).await?;
    }
    schema::create_tables(&client, target).await?;

    let mut queue = VecDeque::from([Job::Item]);
    for w in 1..=opts.warehouses {
        queue.extend([Job::Orders(w), Job::Stock(w), Job::Customer(w), Job::Warehouse(w)]);
    }
    let bar = progress_bar(opts);
    let counts = run_jobs(opts, queue, &bar).await;
    bar.finish_and_clear();
    let counts = counts?;

    tracing::info!("creating indexes and analyzing");
    schema::index_and_analyze(&client).await?;
    let rows = TABLES.iter().map(|(t, _)| ((*t).to_owned(), counts.get(t).copied().unwrap_or(0))).collect();
    Ok(LoadReport { target, warehouses: opts.warehouses, rows, elapsed: started.elapsed() })
}

/// The rows `load` puts in each table for `seed` and `warehouses`, in the order of the schema.
pub fn expected_rows(seed: u64, warehouses: u32) -> Vec<(&'static str, u64)> {
    let w = u64::from(warehouses);
    let districts = w * u64::from(DISTRICTS);
    let lines: u64 = (1..=warehouses)
        .flat_map(|w| (1..=DISTRICTS).map(move |d| (w, d)))
        .map(|(w, d)| DistrictOrders::draw(&mut stream(seed, &[ORDERS_STREAM, w.into(), d.into()])).lines())
        .sum();
    vec![
        ("warehouse", w),
        ("district", districts),
        ("customer", districts * u64::from(CUSTOMERS)),
        ("history", districts * u64::from(CUSTOMERS)),
        ("orders", districts * u64::from(ORDERS)),
        ("new_order", districts * u64::from(ORDERS - FIRST_NEW_ORDER + 1)),
        ("order_line", lines),
        ("stock", w * u64::from(ITEMS)),
        ("item", u64::from(ITEMS)),
    ]
}

/// A progress bar over the rows to load, hidden unless asked for and stderr is a terminal.
fn progress_bar(opts: &LoadOptions) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::hidden();
    }
    let per_warehouse = 1 + u64::from(DISTRICTS) * (1 + 2 * u64::from(CUSTOMERS) + u64::from(ORDERS) * 11)
        + u64::from(DISTRICTS) * u64::from(ORDERS - FIRST_NEW_ORDER + 1)
        + u64::from(ITEMS);
    let bar = ProgressBar::new(u64::from(ITEMS) + per_warehouse * u64::from(opts.warehouses));
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{wide_bar}] {human_pos}/~{human_len} rows, eta {eta}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Runs the jobs on `opts.jobs` connections; returns the rows loaded per table.
async fn run_jobs(opts: &LoadOptions, queue: VecDeque<Job>, bar: &ProgressBar) -> anyhow::Result<BTreeMap<&'static str, u64>> {
    let queue = Arc::new(Mutex::new(queue));
    let counts = RowCounts::default();
    let failed = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..opts.jobs.max(1) {
        let (queue, counts, failed, bar) = (queue.clone(), counts.clone(), failed.clone(), bar.clone());
        let (conn, seed) = (opts.conn.clone(), opts.seed);
        workers.push(tokio::spawn(async move {
            let result = worker(&conn, seed, &queue, &counts, &failed, &bar).await;
            if result.is_err() {
                failed.store(true, Ordering::SeqCst);
            }
            result
        }));
    }
    let mut first_error = None;
    for worker in workers {
        let result = worker.await.map_err(anyhow::Error::from).and_then(|r| r);
        if let (Err(e), None) = (result, &first_error) {
            first_error = Some(e);
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let counts = counts.lock().map_err(|_| anyhow::anyhow!("row counts poisoned"))?.clone();
    Ok(counts)
}

/// One loading connection: takes jobs until none is left or another worker failed.
async fn worker(
    conn: &Conn,
    seed: u64,
    queue: &Mutex<VecDeque<Job>>,
    counts: &RowCounts,
    failed: &AtomicBool,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let client = conn.connect().await?;
    loop {
        if failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let job = queue.lock().map_err(|_| anyhow::anyhow!("job queue poisoned"))?.pop_front();
        let Some(job) = job else { return Ok(()) };
        let loaded = run_job(&client, seed, job, bar).await.with_context(|| format!("loading {job:?}"))?;
        let mut counts = counts.lock().map_err(|_| anyhow::anyhow!("row counts poisoned"))?;
        for (table, rows) in loaded {
            *counts.entry(table).or_default() += rows;
        }
    }
}

/// Copies one job's rows; returns the rows per table.
async fn run_job(client: &Client, seed: u64, job: Job, bar: &ProgressBar) -> anyhow::Result<Vec<(&'static str, u64)>> {
    match job {
        Job::Item => {
            let mut rng = stream(seed, &[ITEM_STREAM]);
            let mut copy = CopyWriter::start(client, "item", bar).await?;
            for i_id in 1..=ITEMS {
                population::item(copy.buf(), &mut rng, i_id);
                copy.wrote(1).await?;
            }
            Ok(vec![("item", copy.finish().await?)])
        }
        Job::Warehouse(w) => {
            let mut rng = stream(seed, &[WAREHOUSE_STREAM, w.into()]);
            let mut copy = CopyWriter::start(client, "warehouse", bar).await?;
            population::warehouse(copy.buf(), &mut rng, w);
            copy.wrote(1).await?;
            let warehouses = copy.finish().await?;
            let mut copy = CopyWriter::start(client, "district", bar).await?;
            for d in 1..=DISTRICTS {
                population::district(copy.buf(), &mut rng, w, d);
                copy.wrote(1).await?;
            }
            Ok(vec![("warehouse", warehouses), ("district", copy.finish().await?)])
        }
        Job::Stock(w) => {
            let mut rng = stream(seed, &[STOCK_STREAM, w.into()]);
            let mut copy = CopyWriter::start(client, "stock", bar).await?;
            for i_id in 1..=ITEMS {
                population::stock(copy.buf(), &mut rng, w, i_id);
                copy.wrote(1).await?;
            }
            Ok(vec![("stock", copy.finish().await?)])
        }
        Job::Customer(w) => load_customers(client, seed, w, bar).await,
        Job::Orders(w) => load_orders(client, seed, w, bar).await,
    }
}

/// Copies a warehouse's customers, then their history rows.
async fn load_customers(client: &Client, seed: u64, w: u32, bar: &ProgressBar) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let mut copy = CopyWriter::start(client, "customer", bar).await?;
    for d in 1..=DISTRICTS {
        let mut rng = stream(seed, &[CUSTOMER_STREAM, w.into(), d.into()]);
        for c in 1..=CUSTOMERS {
            population::customer(copy.buf(), &mut rng, w, d, c);
            copy.wrote(1).await?;
        }
    }
    let customers = copy.finish().await?;
    let mut copy = CopyWriter::start(client, "history", bar).await?;
    for d in 1..=DISTRICTS {
        let mut rng = stream(seed, &[HISTORY_STREAM, w.into(), d.into()]);
        for c in 1..=CUSTOMERS {
            population::history(copy.buf(), &mut rng, w, d, c);
            copy.wrote(1).await?;
        }
    }
    Ok(vec![("customer", customers), ("history", copy.finish().await?)])
}

/// Copies a warehouse's orders, its undelivered orders' new_order rows, and the order lines.
async fn load_orders(client: &Client, seed: u64, w: u32, bar: &ProgressBar) -> anyhow::Result<Vec<(&'static str, u64)>> {
    let plans: Vec<DistrictOrders> =
        (1..=DISTRICTS).map(|d| DistrictOrders::draw(&mut stream(seed, &[ORDERS_STREAM, w.into(), d.into()]))).collect();
    let mut copy = CopyWriter::start(client, "orders", bar).await?;
    for (d, plan) in (1..).zip(&plans) {
        for o in 1..=ORDERS {
            population::order(copy.buf(), plan, w, d, o);
            copy.wrote(1).await?;
        }
    }
    let orders = copy.finish().await?;
    let mut copy = CopyWriter::start(client, "new_order", bar).await?;
    for d in 1..=DISTRICTS {
        for o in FIRST_NEW_ORDER..=ORDERS {
            population::new_order(copy.buf(), w, d, o);
            copy.wrote(1).await?;
        }
    }
    let new_orders = copy.finish().await?;
    let mut copy = CopyWriter::start(client, "order_line", bar).await?;
    for (d, plan) in (1..).zip(&plans) {
        let mut rng = stream(seed, &[ORDER_LINE_STREAM, w.into(), d.into()]);
        for o in 1..=ORDERS {
            population::order_lines(copy.buf(), &mut rng, plan, w, d, o);
            copy.wrote(u64::from(plan.orders[o as usize - 1].1)).await?;
        }
    }
    let lines = copy.finish().await?;
    anyhow::ensure!(lines == plans.iter().map(DistrictOrders::lines).sum::<u64>(), "order lines copied differ from plan");
    Ok(vec![("orders", orders), ("new_order", new_orders), ("order_line", lines)])
}

/// Bytes gathered before they are sent as one CopyData message.
const CHUNK: usize = 256 * 1024;

/// A `COPY table FROM STDIN` in text format: rows are appended to [`CopyWriter::buf`] and sent
/// in chunks.
struct CopyWriter<'a> {
    table: &'static str,
    sink: Pin<Box<CopyInSink<Bytes>>>,
    buf: String,
    rows: u64,
    unsent_rows: u64,
    bar: &'a ProgressBar,
}

impl<'a> CopyWriter<'a> {
    /// Starts the COPY.
    async fn start(client: &Client, table: &'static str, bar: &'a ProgressBar) -> anyhow::Result<Self> {
        let sink = client.copy_in(&format!("COPY {table} FROM STDIN")).await.with_context(|| format!("COPY {table}"))?;
        Ok(Self { table, sink: Box::pin(sink), buf: String::with_capacity(CHUNK + 4096), rows: 0, unsent_rows: 0, bar })
    }

    /// The text not yet sent; append whole rows.
    fn buf(&mut self) -> &mut String {
        &mut self.buf
    }

    /// Notes that `rows` rows were appended, sending the buffer when it is full.
    async fn wrote(&mut self, rows: u64) -> anyhow::Result<()> {
        self.rows += rows;
        self.unsent_rows += rows;
        if self.buf.len() >= CHUNK { self.flush().await } else { Ok(()) }
    }

    async fn flush(&mut self) -> anyhow::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = Bytes::from(std::mem::replace(&mut self.buf, String::with_capacity(CHUNK + 4096)));
        self.sink.send(data).await.with_context(|| format!("COPY {}", self.table))?;
        self.bar.inc(self.unsent_rows);
        self.unsent_rows = 0;
        Ok(())
    }

    /// Sends the rest and ends the COPY; returns the server's row count (checked against ours).
    async fn finish(mut self) -> anyhow::Result<u64> {
        self.flush().await?;
        let copied = self.sink.as_mut().finish().await.with_context(|| format!("COPY {}", self.table))?;
        anyhow::ensure!(copied == self.rows, "COPY {} reported {copied} rows, {} sent", self.table, self.rows);
        Ok(copied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_rows_follow_the_seed() {
        let one = expected_rows(42, 1);
        let tables: Vec<&str> = one.iter().map(|(t, _)| *t).collect();
        assert_eq!(tables, TABLES.map(|(t, _)| t));
        let lines = |rows: &[(&str, u64)]| rows.iter().find(|(t, _)| *t == "order_line").map_or(0, |(_, n)| *n);
        assert!((150_000..=450_000).contains(&lines(&one)), "{one:?}");
        assert_eq!(lines(&one), lines(&expected_rows(42, 1)));
        assert_ne!(lines(&one), lines(&expected_rows(43, 1)));
        let two = expected_rows(42, 2);
        assert_eq!(two[7], ("stock", 200_000));
        assert_eq!(two[8], ("item", 100_000));
        assert!(lines(&two) > lines(&one));
    }
}
