//! `pgshard tpcc`: a TPC-C style benchmark for pgshard and plain PostgreSQL. `load` creates
//! and fills the nine tables (distributing them when the server is pgshard), `run` drives the
//! five transactions from N clients and reports NOPM, latencies and throughput per second
//! (JSON and an SVG chart), `check` verifies consistency conditions 1 to 4. See README.md.

mod check;
mod conn;
mod load;
mod mix;
mod population;
mod random;
mod report;
mod run;
mod schema;
mod statements;
mod svg;
mod transactions;

use std::path::PathBuf;
use std::time::Duration;

pub use check::{CheckReport, Condition, check, check_report};
pub use conn::Conn;
pub use load::{LoadOptions, LoadReport, expected_rows, load};
pub use mix::TxnKind;
pub use report::{ErrorCount, Latency, RunReport, RunSetup, Second, TxnReport};
pub use run::{RunOptions, run};
pub use schema::Target;

/// `pgshard tpcc ...`
#[derive(clap::Subcommand, Debug)]
pub enum TpccCommand {
    /// Create the TPC-C tables and load W warehouses (distributed when the server is pgshard).
    Load(LoadArgs),
    /// Run the transaction mix from N clients for a while and report NOPM (tpmC).
    Run(RunArgs),
    /// Check TPC-C consistency conditions 1-4; exits non-zero when one is violated.
    Check(CheckArgs),
}

/// Flags of `pgshard tpcc load`.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// Number of warehouses (W).
    #[arg(long, default_value_t = 1)]
    pub warehouses: u32,
    /// Connections loading in parallel.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Where the tables go: auto (pgshard if the server answers pgshard's catalog or functions), pgshard or postgres.
    #[arg(long, value_enum, default_value_t = Target::Auto)]
    pub target: Target,
    /// Seed of the population: the same seed loads the same rows.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Keep existing tables: by default the nine TPC-C tables (warehouse, district, customer,
    /// history, orders, new_order, order_line, stock, item) are dropped first if they exist;
    /// with this flag the load fails if one exists.
    #[arg(long)]
    pub no_drop: bool,
}

/// Flags of `pgshard tpcc run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub conn: Conn,
    /// Measurement interval in seconds.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Client connections, each running transactions back to back.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Warehouses to spread the clients over (default: the rows of the warehouse table).
    #[arg(long)]
    pub warehouses: Option<u32>,
    /// Where to write the JSON result.
    #[arg(long, default_value = "tpcc-result.json")]
    pub json: PathBuf,
    /// Where to write the SVG chart of throughput per second.
    #[arg(long, default_value = "tpcc-throughput.svg")]
    pub svg: PathBuf,
    /// Seed of the clients' random inputs (default: drawn at random).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// Flags of `pgshard tpcc check`.
#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub conn: Conn,
}

impl From<&LoadArgs> for LoadOptions {
    fn from(a: &LoadArgs) -> Self {
        LoadOptions {
            conn: a.conn.clone(),
            warehouses: a.warehouses,
            jobs: a.jobs,
            target: a.target,
            seed: a.seed,
            drop: !a.no_drop,
            progress: true,
        }
    }
}

impl From<&RunArgs> for RunOptions {
    fn from(a: &RunArgs) -> Self {
        RunOptions {
            conn: a.conn.clone(),
            duration: Duration::from_secs(a.duration),
            clients: a.clients,
            warehouses: a.warehouses,
            seed: a.seed.unwrap_or_else(rand::random),
            json: Some(a.json.clone()),
            svg: Some(a.svg.clone()),
        }
    }
}

/// Runs a command to completion on its own tokio runtime, printing its report; Err = failure exit.
pub fn main(cmd: TpccCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        match cmd {
            TpccCommand::Load(args) => {
                let report = load(&LoadOptions::from(&args)).await?;
                println!("{report}");
            }
            TpccCommand::Run(args) => {
                let opts = RunOptions::from(&args);
                let report = run(&opts).await?;
                println!("{report}");
                println!("wrote {} and {}", args.json.display(), args.svg.display());
            }
            TpccCommand::Check(args) => {
                let report = check_report(&args.conn).await?;
                println!("{report}");
                anyhow::ensure!(report.passed(), "TPC-C consistency check failed");
            }
        }
        Ok(())
    })
}
