//! Distributed transactions, the coordinator's side of them: global ids, the decision records
//! in the metadata store whose commit is a two-phase transaction's commit point, and recovery
//! of what a crash left prepared on the data nodes (`recover`). The session runs the commit
//! protocol itself (`session::commit`); this module owns everything that outlives a session.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pgshard_txn::{Gid, InFlight};
use tokio_postgres::{Client, Statement};

use crate::error::CoordError;

pub mod deadlock;
pub mod recover;

/// Why a decision could not be recorded.
#[derive(Debug)]
pub enum DecisionError {
    /// The metadata store refused it, or could not be reached before anything was sent:
    /// nothing was recorded, the transaction aborts.
    Refused(CoordError),
    /// The connection failed or timed out while the insert was in flight: it may or may not
    /// have committed. Recovery finds out.
    Unknown(String),
}

/// What a coordinator process shares about distributed transactions.
pub struct Dtx {
    /// This coordinator's name, carried by its gids.
    pub name: String,
    epoch: u64,
    seq: AtomicU64,
    /// Transactions this process is committing now (recovery leaves them alone).
    pub in_flight: InFlight,
    log: DecisionLog,
    /// Decision records whose transactions are complete everywhere, to delete.
    finished: Mutex<Vec<Gid>>,
    /// Held by the recovery round running (periodic or on demand): one at a time.
    pub recovering: tokio::sync::Mutex<()>,
}

impl Dtx {
    /// State for coordinator `name`, recording decisions in the store at `dsn`.
    pub fn new(name: &str, dsn: &str, decision_timeout: Duration) -> Arc<Self> {
        let epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or_default();
        Arc::new(Self {
            name: name.to_owned(),
            epoch,
            seq: AtomicU64::new(0),
            in_flight: InFlight::default(),
            log: DecisionLog { dsn: dsn.to_owned(), timeout: decision_timeout, conn: tokio::sync::Mutex::new(None) },
            finished: Mutex::new(Vec::new()),
            recovering: tokio::sync::Mutex::new(()),
        })
    }

    /// A fresh global transaction id.
    pub fn next_gid(&self) -> Gid {
        Gid { coordinator: self.name.clone(), epoch: self.epoch, seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1 }
    }

    /// Records the commit decision for `gid`; its commit is the transaction's commit point.
    pub async fn record(&self, gid: &Gid) -> Result<(), DecisionError> {
        // Without a connection nothing was sent: the transaction aborts.
        let (client, insert) = self.log.connection().await.map_err(DecisionError::Refused)?;
        let key = gid.to_string();
        match tokio::time::timeout(self.log.timeout, client.execute(&insert, &[&key, &self.name])).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) if e.as_db_error().is_some() => Err(DecisionError::Refused(CoordError::from_pg(e))),
            Ok(Err(e)) => {
                self.log.forget(&client).await;
                Err(DecisionError::Unknown(e.to_string()))
            }
            Err(_) => {
                self.log.forget(&client).await;
                Err(DecisionError::Unknown(format!("no answer within {} ms", self.log.timeout.as_millis())))
            }
        }
    }

    /// Notes that `gid` is committed on every data node: its record can go.
    pub fn finished(&self, gid: Gid) {
        self.finished.lock().unwrap_or_else(PoisonError::into_inner).push(gid);
    }

    /// Deletes the records noted finished (and `more`), in one statement.
    pub async fn delete_records(&self, more: &[Gid]) -> Result<usize, CoordError> {
        let mut gids: Vec<String> = std::mem::take(&mut *self.finished.lock().unwrap_or_else(PoisonError::into_inner))
            .iter()
            .map(Gid::to_string)
            .collect();
        gids.extend(more.iter().map(Gid::to_string));
        if gids.is_empty() {
            return Ok(0);
        }
        let (client, _) = self.log.connection().await?;
        let deleted = client
            .execute("DELETE FROM pgshard.decisions WHERE gid = ANY($1)", &[&gids])
            .await
            .map_err(CoordError::from_pg)?;
        Ok(deleted as usize)
    }

    /// This coordinator's decision records.
    pub async fn records(&self) -> Result<std::collections::BTreeSet<Gid>, CoordError> {
        let (client, _) = self.log.connection().await?;
        let rows = client
            .query("SELECT gid FROM pgshard.decisions WHERE coordinator = $1", &[&self.name])
            .await
            .map_err(CoordError::from_pg)?;
        Ok(rows.iter().filter_map(|r| r.try_get::<_, String>(0).ok()).filter_map(|g| Gid::parse(&g)).collect())
    }
}

/// The connection decisions are written on: one, shared, its statements pipelined; opened
/// again after a failure.
struct DecisionLog {
    dsn: String,
    timeout: Duration,
    conn: tokio::sync::Mutex<Option<(Arc<Client>, Statement)>>,
}

impl DecisionLog {
    async fn connection(&self) -> Result<(Arc<Client>, Statement), CoordError> {
        let mut slot = self.conn.lock().await;
        if let Some((c, s)) = slot.as_ref()
            && !c.is_closed()
        {
            return Ok((c.clone(), s.clone()));
        }
        let client = crate::lease::connect(&self.dsn).await?;
        client
            .batch_execute("SET synchronous_commit = on; SET application_name = 'pgshard_decisions'")
            .await
            .map_err(CoordError::from_pg)?;
        let insert = client
            .prepare("INSERT INTO pgshard.decisions (gid, coordinator) VALUES ($1, $2)")
            .await
            .map_err(CoordError::from_pg)?;
        let client = Arc::new(client);
        *slot = Some((client.clone(), insert.clone()));
        Ok((client, insert))
    }

    /// Drops `client` if it is still the current connection.
    async fn forget(&self, client: &Arc<Client>) {
        let mut slot = self.conn.lock().await;
        if slot.as_ref().is_some_and(|(c, _)| Arc::ptr_eq(c, client)) {
            *slot = None;
        }
    }
}

/// The metadata store's user and password: the identity recovery and deadlock detection use
/// on the data nodes (it must be allowed to settle anyone's prepared transactions and cancel
/// anyone's backends).
pub fn store_identity(dsn: &str) -> Result<(String, Option<String>), CoordError> {
    let config: tokio_postgres::Config = dsn
        .parse()
        .map_err(|e| CoordError::sql(tokio_postgres::error::SqlState::CONNECTION_EXCEPTION, format!("bad metadata DSN: {e}")))?;
    let user = config.get_user().unwrap_or("postgres").to_owned();
    Ok((user, config.get_password().map(|p| String::from_utf8_lossy(p).into_owned())))
}

/// Takes the advisory lock that makes `name` this process's own among the coordinators of the
/// metadata store, waiting up to 15 s for a previous process of the same name to be gone.
pub async fn claim_name(store: &Client, name: &str) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let row = store
            .query_one("SELECT pg_try_advisory_lock(1885826920, hashtext('pgshard coordinator ' || $1))", &[&name])
            .await?;
        if row.try_get::<_, bool>(0)? {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "another coordinator named {name:?} runs against this metadata store; give each coordinator its own name (--name)"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
