//! The coordinator server: loads the catalog from the metadata store, listens for clients,
//! runs a session per connection, and shuts down gracefully (idle sessions are closed with
//! 57P01 at once, busy ones when their statement ends or the grace period runs out).

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use pgshard_catalog::{CatalogSnapshot, MetadataStore, NodeRegistration};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backend::{NodeAddr, Pools};
use crate::cancel::CancelRegistry;
use crate::config::Config;
use crate::error::CoordError;
use crate::frontend::Authenticator;

/// What every session shares: explicit dependencies, no globals.
pub struct Shared {
    /// The configuration the coordinator runs with.
    pub config: Config,
    /// Client authentication.
    pub auth: Authenticator,
    /// Data-node connection pools.
    pub pools: Arc<Pools>,
    /// Cancel keys of live sessions.
    pub cancels: Arc<CancelRegistry>,
    /// The metadata store; catalog changes hold this lock for their whole change.
    pub store: tokio::sync::Mutex<MetadataStore>,
    catalog: RwLock<Arc<CatalogSnapshot>>,
    /// Column names of the managed tables, read from the default node per catalog version.
    pub columns: RwLock<ColumnCache>,
    /// Distributed transactions: ids, decision records, in-flight registry.
    pub dtx: Arc<crate::dtx::Dtx>,
    /// The data-node backends of every session, for deadlock detection.
    pub backends: crate::dtx::deadlock::Backends,
    /// The primary lease as this coordinator sees it.
    pub lease: crate::lease::Lease,
    /// Plans of simple-protocol query shapes (the fast path).
    pub(crate) shapes: crate::session::shape::ShapeCache,
    /// Table sizes on the nodes, for choosing how to answer reads across colocation groups.
    pub(crate) sizes: std::sync::Mutex<crate::session::broadcast::SizeCache>,
}

/// Column names of the managed tables, by (schema, name), for one catalog version.
#[derive(Debug, Default, Clone)]
pub struct ColumnCache {
    /// The catalog version the columns were read at (`-1`: never read).
    pub version: i64,
    /// The columns in table order.
    pub columns: Arc<std::collections::HashMap<(String, String), Vec<String>>>,
    /// The columns whose defaults call now() and its kin, with those defaults.
    pub time_defaults: Arc<TimeDefaults>,
}

/// By (schema, name): the columns whose defaults call now() and its kin, with those defaults.
pub type TimeDefaults = std::collections::HashMap<(String, String), Vec<pgshard_planner::times::TimeDefault>>;

impl Shared {
    /// The current catalog snapshot.
    pub fn catalog(&self) -> Arc<CatalogSnapshot> {
        self.catalog.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Reloads the catalog from the metadata store and makes it the current snapshot.
    pub async fn reload_catalog(&self) -> Result<Arc<CatalogSnapshot>, CoordError> {
        let snapshot = Arc::new(self.store.lock().await.load().await?);
        self.set_catalog(snapshot.clone());
        Ok(snapshot)
    }

    /// Makes `snapshot` the current catalog unless a newer one is already in force.
    pub fn set_catalog(&self, snapshot: Arc<CatalogSnapshot>) {
        let mut current = self.catalog.write().unwrap_or_else(PoisonError::into_inner);
        if snapshot.version() >= current.version() {
            *current = snapshot;
        }
    }

    /// The node the planner sends a session's statements to.
    pub fn default_node(&self) -> Result<NodeAddr, CoordError> {
        let catalog = self.catalog();
        let plan = pgshard_planner::plan(&catalog)?;
        let pgshard_planner::DistributedPlan::PassThrough { node } = plan;
        let node = catalog
            .node(node)
            .ok_or_else(|| CoordError::Catalog(pgshard_catalog::CatalogError::NoDataNode))?;
        Ok(NodeAddr::of(node))
    }
}

/// A coordinator bound to its port, ready to serve.
pub struct Coordinator {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Coordinator {
    /// Connects to the metadata store, creates the catalog schema if needed, registers the
    /// configured data nodes, loads the catalog and binds the listen address.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let mut store = connect_metadata(&config.metadata.dsn).await?;
        store.migrate().await?;
        crate::dtx::claim_name(store.client(), &config.name).await?;
        if !config.data_nodes.is_empty() {
            let nodes: Vec<NodeRegistration> = config
                .data_nodes
                .iter()
                .map(|n| NodeRegistration { name: n.name.clone(), host: n.host.clone(), port: n.port })
                .collect();
            store.register_nodes(&nodes).await?;
        }
        let catalog = store.load().await?;
        catalog.default_node().map_err(|e| anyhow::anyhow!("{e}: list data nodes in the config or with --data-node"))?;
        let listener = TcpListener::bind(&config.listen).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!("cannot listen on {}: the address is already in use (choose another with --port/--listen)", config.listen)
            } else {
                anyhow::anyhow!("cannot listen on {}: {e}", config.listen)
            }
        })?;
        let address = listener.local_addr().map_or_else(|_| config.listen.clone(), |a| a.to_string());
        let lease = crate::lease::Lease::new(&config.name, &address, Duration::from_millis(config.primary.lease_ms));
        let (primary, _) = lease.take(store.client(), false).await?;
        tracing::info!(
            name = %config.name,
            listen = %address,
            nodes = catalog.nodes().len(),
            role = if primary { "primary" } else { "follower" },
            "coordinator ready"
        );
        let shared = Arc::new(Shared {
            auth: Authenticator::new(&config),
            pools: Pools::new(config.pool.clone()),
            cancels: CancelRegistry::new(),
            catalog: RwLock::new(Arc::new(catalog)),
            columns: RwLock::new(ColumnCache { version: -1, ..ColumnCache::default() }),
            sizes: std::sync::Mutex::default(),
            store: tokio::sync::Mutex::new(store),
            dtx: crate::dtx::Dtx::new(
                &config.name,
                &config.metadata.dsn,
                Duration::from_millis(config.transactions.decision_timeout_ms),
            ),
            backends: crate::dtx::deadlock::Backends::default(),
            lease,
            shapes: crate::session::shape::ShapeCache::default(),
            config,
        });
        Ok(Self { listener, shared })
    }

    /// The address clients connect to.
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared state (for tests and monitoring).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Serves clients until `stop` resolves, then shuts down gracefully.
    pub async fn serve(self, stop: impl std::future::Future<Output = ()>) {
        let (tx, rx) = watch::channel(false);
        let mut sessions = JoinSet::new();
        let recovery = tokio::spawn(recover_periodically(self.shared.clone()));
        let deadlocks = tokio::spawn(crate::dtx::deadlock::detect_periodically(self.shared.clone()));
        let lease = tokio::spawn(crate::lease::keep(self.shared.clone()));
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        sessions.spawn(crate::session::serve(stream, peer, self.shared.clone(), rx.clone()));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                () = &mut stop => break,
            }
        }
        drop(self.listener);
        recovery.abort();
        deadlocks.abort();
        lease.abort();
        crate::lease::release(&self.shared).await;
        let _ = tx.send(true);
        let grace = Duration::from_secs(self.shared.config.shutdown_grace_secs);
        tracing::info!(sessions = sessions.len(), grace_secs = grace.as_secs(), "shutting down");
        let drained = tokio::time::timeout(grace, async { while sessions.join_next().await.is_some() {} }).await;
        if drained.is_err() {
            tracing::warn!(sessions = sessions.len(), "grace period over, closing busy sessions");
            sessions.shutdown().await;
        }
        self.shared.pools.close_idle();
        tracing::info!("coordinator stopped");
    }
}

/// Settles prepared transactions left by a crash at start and then every
/// `transactions.recovery_interval_ms`; deletes finished decision records in between.
async fn recover_periodically(shared: Arc<Shared>) {
    let interval = Duration::from_millis(shared.config.transactions.recovery_interval_ms);
    loop {
        match crate::dtx::recover::recover(&shared).await {
            Ok(settled) if settled.is_empty() => {}
            Ok(settled) => {
                let committed = settled.iter().filter(|r| r.committed).count();
                tracing::info!(committed, rolled_back = settled.len() - committed, "recovery settled prepared transactions");
            }
            Err(e) => tracing::debug!(error = %e, "recovery round did not complete"),
        }
        let next = tokio::time::Instant::now() + interval;
        while tokio::time::Instant::now() < next {
            tokio::time::sleep(interval.min(Duration::from_millis(500))).await;
            if let Err(e) = shared.dtx.delete_records(&[]).await {
                tracing::debug!(error = %e, "could not delete finished decision records");
            }
        }
    }
}

async fn connect_metadata(dsn: &str) -> anyhow::Result<MetadataStore> {
    let config: tokio_postgres::Config =
        dsn.parse().map_err(|e| anyhow::anyhow!("bad metadata DSN {dsn:?}: {e}"))?;
    let (client, connection) = tokio::time::timeout(Duration::from_secs(10), config.connect(tokio_postgres::NoTls))
        .await
        .map_err(|_| anyhow::anyhow!("metadata store {dsn:?} did not answer within 10 s"))?
        .map_err(|e| anyhow::anyhow!("cannot connect to the metadata store {dsn:?}: {e}"))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::error!(error = %e, "metadata store connection lost");
        }
    });
    Ok(MetadataStore::new(client))
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
