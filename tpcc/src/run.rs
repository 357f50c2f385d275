//! `run`: N clients, each on its own connection with its statements prepared, deal
//! transactions from the mix for the measurement interval with no keying or think time.
//! Serialization failures (40001) and deadlocks (40P01) roll back and retry the same input;
//! other errors are counted and the transaction skipped; a lost connection is reopened.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::rngs::SmallRng;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use crate::conn::{Conn, int, text_rows};
use crate::mix::{Deck, TxnKind};
use crate::population::DISTRICTS;
use crate::random::{NurandConstants, stream};
use crate::report::{RunReport, RunSetup, Stats};
use crate::schema::Target;
use crate::statements::Statements;
use crate::transactions::{Home, Input};

/// How to run the benchmark.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Where to connect.
    pub conn: Conn,
    /// Measurement interval.
    pub duration: Duration,
    /// Client connections.
    pub clients: usize,
    /// Warehouses to spread the clients over; counted from `warehouse` when None.
    pub warehouses: Option<u32>,
    /// Seed of the clients' random inputs.
    pub seed: u64,
    /// Where to write the JSON result, if anywhere.
    pub json: Option<PathBuf>,
    /// Where to write the SVG throughput chart, if anywhere.
    pub svg: Option<PathBuf>,
}

/// Stream id of the run's NURand constants (clients use their index).
const CONSTANTS_STREAM: u64 = u64::MAX;

/// Runs the benchmark; see the module documentation.
pub async fn run(opts: &RunOptions) -> anyhow::Result<RunReport> {
    anyhow::ensure!(opts.clients >= 1, "--clients must be at least 1");
    anyhow::ensure!(opts.duration >= Duration::from_secs(1), "--duration must be at least 1 second");
    let admin = opts.conn.connect().await?;
    let target = Target::Auto.resolve(&admin).await;
    let warehouses = match opts.warehouses {
        Some(w) => w,
        None => {
            let rows = text_rows(&admin, "SELECT count(*) FROM warehouse").await?;
            u32::try_from(int(&rows[0][0], "count(*) of warehouse")?)?
        }
    };
    anyhow::ensure!(warehouses >= 1, "no warehouse to run on: load first");
    let constants = NurandConstants::for_run(&mut stream(opts.seed, &[CONSTANTS_STREAM]));
    let seconds = opts.duration.as_secs() as usize;
    tracing::info!(?target, warehouses, clients = opts.clients, seconds, "starting the run");

    // Every client connects and prepares before the clock starts.
    let mut sessions = Vec::with_capacity(opts.clients);
    for i in 0..opts.clients {
        sessions.push(Session::open(&opts.conn).await.with_context(|| format!("client {i}"))?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (i, session) in (0u32..).zip(sessions) {
        let home = Home {
            w_id: (i % warehouses + 1) as i32,
            warehouses: warehouses as i32,
            stock_level_district: ((i / warehouses) % DISTRICTS + 1) as i32,
            constants,
        };
        let client = ClientLoop { conn: opts.conn.clone(), home, rng: stream(opts.seed, &[i.into()]), seconds };
        tasks.push(tokio::spawn(client.run(session, start)));
    }

    let mut stats = Stats::new(seconds);
    for task in tasks {
        stats.merge(task.await?);
    }
    let setup = RunSetup { target, duration_secs: seconds as f64, clients: opts.clients, warehouses, seed: opts.seed };
    let report = RunReport::new(setup, stats);
    if let Some(path) = &opts.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &opts.svg {
        std::fs::write(path, crate::svg::throughput_chart(&report)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(report)
}

/// A client's connection and its prepared statements.
struct Session {
    client: Client,
    statements: Statements,
}

impl Session {
    async fn open(conn: &Conn) -> anyhow::Result<Self> {
        let client = conn.connect().await?;
        let statements = Statements::prepare(&client).await.context("preparing the transactions' statements")?;
        Ok(Self { client, statements })
    }
}

/// One client: its home, its random inputs, and the run's length.
struct ClientLoop {
    conn: Conn,
    home: Home,
    rng: SmallRng,
    seconds: usize,
}

impl ClientLoop {
    /// Runs transactions from `start` until the interval ends; returns what it measured.
    async fn run(mut self, session: Session, start: Instant) -> Stats {
        let deadline = start + Duration::from_secs(self.seconds as u64);
        let mut stats = Stats::new(self.seconds);
        let mut deck = Deck::new();
        let mut session = Some(session);
        while Instant::now() < deadline {
            let Some(s) = session.as_ref().filter(|s| !s.client.is_closed()) else {
                session = self.reconnect().await;
                continue;
            };
            let kind = deck.deal(&mut self.rng);
            let input = Input::draw(kind, &self.home, &mut self.rng);
            let began = Instant::now();
            loop {
                match input.execute(&s.client, &s.statements).await {
                    Ok(outcome) => {
                        let done = Instant::now();
                        if done < deadline {
                            stats.finished(kind, outcome, (done - start).as_secs() as usize, done - began);
                        }
                        break;
                    }
                    Err(e) => {
                        if !s.client.is_closed() {
                            let _ = s.client.batch_execute("ROLLBACK").await;
                        }
                        if !retry_or_count(&mut stats, kind, &e) || Instant::now() >= deadline {
                            break;
                        }
                    }
                }
            }
        }
        stats
    }

    /// A new session after the connection was lost (None, after a pause, if that fails too).
    async fn reconnect(&self) -> Option<Session> {
        match Session::open(&self.conn).await {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reconnecting");
                tokio::time::sleep(Duration::from_millis(200)).await;
                None
            }
        }
    }
}

/// Counts a failed attempt: true (retry) for 40001 and 40P01, false (skip, counted as an
/// error by SQLSTATE) for anything else.
fn retry_or_count(stats: &mut Stats, kind: TxnKind, e: &anyhow::Error) -> bool {
    let db = e.downcast_ref::<tokio_postgres::Error>().and_then(|e| e.as_db_error());
    match db.map(|d| d.code()) {
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED => {
            stats.retried(kind, *code == SqlState::T_R_DEADLOCK_DETECTED);
            true
        }
        _ => {
            let (code, message) = match db {
                Some(d) => (d.code().code().to_owned(), d.message().to_owned()),
                None => ("-".to_owned(), format!("{e:#}")),
            };
            tracing::debug!(kind = kind.name(), code, message, "transaction failed");
            stats.failed(kind, code, message);
            false
        }
    }
}
