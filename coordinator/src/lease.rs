//! Primary and follower coordinators. Every coordinator sharing a metadata store serves
//! queries and DML; only the holder of the lease in `pgshard.lease` (the primary) runs DDL and
//! catalog-changing functions. The primary renews the lease every `renew_ms`; a follower takes
//! it when it has expired (`lease_ms` without renewal), or at once with `become_primary()`. A
//! primary that cannot renew in time steps down by itself, and before each catalog change the
//! primary checks the lease in the store, so a coordinator that lost it does not change the
//! catalog. Every coordinator also follows the catalog version in the store and loads a newer
//! catalog within `renew_ms`, so changes made through the primary reach followers without a
//! restart (at once when the store's NOTIFY arrives).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use pgshard_catalog::MetadataStore;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::error::CoordError;
use crate::server::Shared;

/// This coordinator's view of the lease.
pub struct Lease {
    /// This coordinator's name.
    name: String,
    /// The address clients reach it at.
    address: String,
    primary: AtomicBool,
    /// The current holder and its address, as last read.
    holder: Mutex<Option<(String, String)>>,
    duration: Duration,
}

/// SQL that takes the lease when it is free, expired, or ours (`$4`: take it anyway).
const TAKE: &str = "INSERT INTO pgshard.lease (holder, address, expires_at) \
     VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond') \
     ON CONFLICT (one_row) DO UPDATE SET holder = excluded.holder, address = excluded.address, \
     expires_at = excluded.expires_at \
     WHERE pgshard.lease.expires_at < clock_timestamp() OR pgshard.lease.holder = excluded.holder OR $4 \
     RETURNING holder";

impl Lease {
    /// The lease state of coordinator `name`, reachable at `address`.
    pub fn new(name: &str, address: &str, duration: Duration) -> Self {
        Self {
            name: name.to_owned(),
            address: address.to_owned(),
            primary: AtomicBool::new(false),
            holder: Mutex::new(None),
            duration,
        }
    }

    /// Whether this coordinator holds the lease (as of its last renewal).
    pub fn is_primary(&self) -> bool {
        self.primary.load(Ordering::SeqCst)
    }

    /// Tries to take the lease (`force`: even from a live primary). Returns whether this
    /// coordinator holds it now, and who held it before.
    pub async fn take(&self, client: &Client, force: bool) -> Result<(bool, Option<String>), CoordError> {
        let before = current(client).await?.map(|(h, _)| h);
        let ms = self.duration.as_millis() as f64;
        let rows = client.query(TAKE, &[&self.name, &self.address, &ms, &force]).await.map_err(CoordError::from_pg)?;
        let held = !rows.is_empty();
        self.primary.store(held, Ordering::SeqCst);
        self.remember(current(client).await?);
        Ok((held, before))
    }

    fn remember(&self, holder: Option<(String, String)>) {
        *self.holder.lock().unwrap_or_else(PoisonError::into_inner) = holder;
    }

    /// The error a follower answers DDL and catalog changes with (25006, as a standby does).
    pub fn follower_error(&self, what: &str) -> CoordError {
        let primary = match &*self.holder.lock().unwrap_or_else(PoisonError::into_inner) {
            Some((name, address)) if *name != self.name => format!("the primary coordinator {name} at {address}"),
            _ => "the primary coordinator (none holds the lease right now)".to_owned(),
        };
        CoordError::sql(
            SqlState::READ_ONLY_SQL_TRANSACTION,
            format!("cannot run {what} on coordinator {}, which is a follower", self.name),
        )
        .with_hint(format!("DDL and catalog changes run on {primary}."))
    }
}

/// The lease holder and its address, if the lease is live.
async fn current(client: &Client) -> Result<Option<(String, String)>, CoordError> {
    let row = client
        .query_opt("SELECT holder, address FROM pgshard.lease WHERE expires_at > clock_timestamp()", &[])
        .await
        .map_err(CoordError::from_pg)?;
    Ok(row.and_then(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?))))
}

/// Checks, in the store, that this coordinator holds a live lease; else the follower error.
pub async fn ensure_primary(shared: &Shared, what: &str) -> Result<(), CoordError> {
    let lease = &shared.lease;
    if !lease.is_primary() {
        return Err(lease.follower_error(what));
    }
    let client = connect(&shared.config.metadata.dsn).await?;
    let holder = current(&client).await?;
    let ours = holder.as_ref().is_some_and(|(h, _)| *h == lease.name);
    lease.remember(holder);
    if !ours {
        lease.primary.store(false, Ordering::SeqCst);
        return Err(lease.follower_error(what));
    }
    Ok(())
}

/// Opens a connection to the metadata store, driven by a task.
pub async fn connect(dsn: &str) -> Result<Client, CoordError> {
    let config: tokio_postgres::Config =
        dsn.parse().map_err(|e| CoordError::sql(SqlState::CONNECTION_EXCEPTION, format!("bad metadata DSN: {e}")))?;
    let (client, connection) = tokio::time::timeout(Duration::from_secs(10), config.connect(NoTls))
        .await
        .map_err(|_| CoordError::NodeLost("the metadata store did not answer".into()))?
        .map_err(CoordError::from_pg)?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "lease connection ended");
        }
    });
    Ok(client)
}

/// Keeps the lease (renewing it, taking it when it expires, stepping down when it cannot be
/// renewed in time) and follows the catalog version, every `renew_ms`.
pub async fn keep(shared: Arc<Shared>) {
    let renew = Duration::from_millis(shared.config.primary.renew_ms);
    let mut store: Option<MetadataStore> = None;
    let mut renewed = Instant::now();
    let (notify_tx, mut notified) = tokio::sync::mpsc::unbounded_channel::<()>();
    loop {
        // A catalog change's NOTIFY wakes the loop at once; otherwise every `renew_ms`.
        tokio::select! {
            () = tokio::time::sleep(renew) => {}
            _ = notified.recv() => {}
        }
        if store.as_ref().is_none_or(|s| s.client().is_closed()) {
            store = listening(&shared.config.metadata.dsn, notify_tx.clone()).await.ok().map(MetadataStore::new);
        }
        let Some(s) = store.as_mut() else {
            step_down_if_stale(&shared, renewed);
            continue;
        };
        let lease = &shared.lease;
        let auto = shared.config.primary.auto_takeover;
        let was_primary = lease.is_primary();
        if was_primary || auto {
            match lease.take(s.client(), false).await {
                Ok((true, _)) => {
                    if !was_primary {
                        tracing::warn!("took the expired primary lease: now the primary");
                    }
                    renewed = Instant::now();
                }
                Ok((false, _)) => {
                    if was_primary {
                        tracing::warn!("another coordinator took the lease: now a follower");
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "could not renew the lease");
                    step_down_if_stale(&shared, renewed);
                }
            }
        } else if let Ok(holder) = current(s.client()).await {
            lease.remember(holder);
        }
        match s.current_version().await {
            Ok(v) if v > shared.catalog().version() => match s.load().await {
                Ok(snapshot) => {
                    tracing::info!(version = v, "catalog changed in the metadata store: loaded");
                    shared.set_catalog(Arc::new(snapshot));
                }
                Err(e) => tracing::warn!(error = %e, "could not load the changed catalog"),
            },
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(error = %e, "could not read the catalog version");
                store = None;
            }
        }
    }
}

/// A metadata-store connection that listens for catalog changes, each reported on `tx`.
async fn listening(dsn: &str, tx: tokio::sync::mpsc::UnboundedSender<()>) -> Result<Client, CoordError> {
    let config: tokio_postgres::Config =
        dsn.parse().map_err(|e| CoordError::sql(SqlState::CONNECTION_EXCEPTION, format!("bad metadata DSN: {e}")))?;
    let (client, mut connection) = tokio::time::timeout(Duration::from_secs(10), config.connect(NoTls))
        .await
        .map_err(|_| CoordError::NodeLost("the metadata store did not answer".into()))?
        .map_err(CoordError::from_pg)?;
    tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(m) = futures::StreamExt::next(&mut messages).await {
            match m {
                Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                    let _ = tx.send(());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "catalog listener connection ended");
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {}", pgshard_catalog::NOTIFY_CHANNEL))
        .await
        .map_err(CoordError::from_pg)?;
    Ok(client)
}

fn step_down_if_stale(shared: &Shared, renewed: Instant) {
    if renewed.elapsed() >= shared.lease.duration && shared.lease.primary.swap(false, Ordering::SeqCst) {
        tracing::warn!("could not renew the lease in time: now a follower");
    }
}

/// Gives the lease up at a graceful shutdown, so a follower takes over at once.
pub async fn release(shared: &Shared) {
    if !shared.lease.is_primary() {
        return;
    }
    if let Ok(client) = connect(&shared.config.metadata.dsn).await {
        let released = client
            .execute("UPDATE pgshard.lease SET expires_at = clock_timestamp() WHERE holder = $1", &[&shared.lease.name])
            .await;
        if released.is_ok() {
            shared.lease.primary.store(false, Ordering::SeqCst);
            tracing::info!("released the primary lease");
        }
    }
}
