//! Distributed deadlock detection. Every data-node connection a session holds is registered
//! here with the session's *victim mark*, so the detector can map the backends in the data
//! nodes' lock views to the coordinator's transactions. Each round it reads, on every node,
//! who waits for whom among those backends, builds the wait-for graph and finds cycles (see
//! [`pgshard_txn::deadlock`]); a cycle seen two rounds in a row is a deadlock no single
//! PostgreSQL can see. Its youngest transaction is the victim: its session is marked and its
//! waiting backends are canceled, and the session reports the canceled statement's error as
//! 40P01 (see `session::conns`). The others proceed.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pgshard_catalog::NodeId;
use pgshard_txn::{TxnId, WaitGraph, victims};
use tokio_postgres::Client;

use crate::distribute::{Admin, connect};
use crate::error::CoordError;
use crate::server::Shared;

/// A session's victim mark: set by the detector just before it cancels the session's waiting
/// backends.
pub type VictimMark = Arc<AtomicBool>;

/// The data-node backends of every session, by node and pid.
#[derive(Default)]
pub struct Backends {
    map: Mutex<HashMap<(NodeId, i32), VictimMark>>,
}

impl Backends {
    /// Registers backend `pid` on `node` as one of the session marked by `mark`.
    pub fn register(&self, node: NodeId, pid: i32, mark: &VictimMark) {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).insert((node, pid), mark.clone());
    }

    /// Forgets a backend (its connection went back to the pool or died).
    pub fn unregister(&self, node: NodeId, pid: i32) {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).remove(&(node, pid));
    }

    fn snapshot(&self) -> Vec<((NodeId, i32), VictimMark)> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(k, v)| (*k, v.clone())).collect()
    }
}

/// The transaction id the detector gives a session: its mark's address.
fn txn_of(mark: &VictimMark) -> TxnId {
    Arc::as_ptr(mark) as usize as TxnId
}

/// Runs a detection round every `transactions.deadlock_check_ms`.
pub async fn detect_periodically(shared: Arc<Shared>) {
    let interval = Duration::from_millis(shared.config.transactions.deadlock_check_ms);
    let mut detector = Detector::default();
    loop {
        tokio::time::sleep(interval).await;
        if let Err(e) = detector.round(&shared).await {
            tracing::debug!(error = %e, "deadlock detection round did not complete");
        }
    }
}

#[derive(Default)]
struct Detector {
    /// Cycles seen last round, not yet resolved.
    previous: Vec<BTreeSet<TxnId>>,
    /// One monitoring connection per node.
    clients: HashMap<NodeId, Client>,
}

impl Detector {
    async fn round(&mut self, shared: &Shared) -> Result<(), CoordError> {
        let backends = shared.backends.snapshot();
        let marks: HashMap<TxnId, VictimMark> = backends.iter().map(|(_, m)| (txn_of(m), m.clone())).collect();
        if marks.len() < 2 {
            self.previous.clear();
            return Ok(());
        }
        let mut by_node: HashMap<NodeId, HashMap<i32, TxnId>> = HashMap::new();
        for ((node, pid), mark) in &backends {
            by_node.entry(*node).or_default().insert(*pid, txn_of(mark));
        }
        let mut graph = WaitGraph::default();
        let mut waiting: HashMap<TxnId, Vec<(NodeId, i32)>> = HashMap::new();
        for (node, pids) in &by_node {
            let list: Vec<i32> = pids.keys().copied().collect();
            let rows = match self.client(shared, *node).await {
                Ok(c) => c
                    .query(
                        "SELECT pid, extract(epoch FROM xact_start)::float8, \
                         CASE WHEN wait_event_type = 'Lock' THEN pg_catalog.pg_blocking_pids(pid) END \
                         FROM pg_catalog.pg_stat_activity WHERE pid = ANY($1)",
                        &[&list],
                    )
                    .await
                    .map_err(CoordError::from_pg),
                Err(e) => Err(e),
            };
            let rows = match rows {
                Ok(r) => r,
                Err(e) => {
                    self.clients.remove(node);
                    tracing::debug!(%node, error = %e, "deadlock detection could not read a node's lock view");
                    continue;
                }
            };
            for row in rows {
                let Ok(pid) = row.try_get::<_, i32>(0) else { continue };
                let Some(&txn) = pids.get(&pid) else { continue };
                if let Ok(Some(at)) = row.try_get::<_, Option<f64>>(1) {
                    graph.started(txn, at);
                }
                let blockers: Vec<i32> = row.try_get::<_, Option<Vec<i32>>>(2).ok().flatten().unwrap_or_default();
                for b in blockers {
                    if let Some(&holder) = pids.get(&b) {
                        graph.wait(txn, holder);
                        waiting.entry(txn).or_default().push((*node, pid));
                    }
                }
            }
        }
        let chosen = victims(&self.previous, &graph);
        let cycles = graph.cycles();
        for victim in &chosen {
            let Some(mark) = marks.get(victim) else { continue };
            mark.store(true, Ordering::SeqCst);
            let cycle = cycles.iter().find(|c| c.contains(victim)).map_or(0, BTreeSet::len);
            tracing::warn!(transactions = cycle, "distributed deadlock: canceling the youngest transaction of the cycle");
            let mut targets = waiting.get(victim).cloned().unwrap_or_default();
            targets.sort_unstable();
            targets.dedup();
            for (node, pid) in targets {
                if let Ok(c) = self.client(shared, node).await
                    && let Err(e) = c.execute("SELECT pg_catalog.pg_cancel_backend($1)", &[&pid]).await
                {
                    tracing::warn!(%node, pid, error = %e, "could not cancel a deadlocked backend");
                }
            }
        }
        self.previous = cycles.into_iter().filter(|c| !chosen.iter().any(|v| c.contains(v))).collect();
        Ok(())
    }

    async fn client(&mut self, shared: &Shared, node: NodeId) -> Result<&Client, CoordError> {
        if self.clients.get(&node).is_none_or(Client::is_closed) {
            let catalog = shared.catalog();
            let n = catalog.node(node).ok_or(pgshard_catalog::CatalogError::UndefinedNode(node))?;
            let (user, password) = super::store_identity(&shared.config.metadata.dsn)?;
            let admin = Admin { shared, user: &user, database: "postgres", password: password.as_deref() };
            let client = connect(&admin, n).await?;
            self.clients.insert(node, client);
        }
        self.clients.get(&node).ok_or_else(|| CoordError::NodeLost("monitoring connection".into()))
    }
}
