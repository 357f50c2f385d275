//! Pools of data-node connections.
//!
//! A connection is made with the client's startup parameters (user, database, application_name,
//! client_encoding, options, ...), so the data node itself applies them exactly as PostgreSQL
//! would; connections are therefore pooled per node *and* per parameter set ([`PoolKey`]).
//! A session holds its connection for its life and gives it back when it ends; a connection
//! comes back only if it is at a clean message boundary, and is reset with `DISCARD ALL`
//! (after `ROLLBACK` when a transaction was left open) before anyone else gets it.
//!
//! At most `max_per_node` connections are open to a node (idle ones count): an idle connection
//! for another parameter set is closed to make room before a session is made to wait. A waiting
//! checkout also signals [`Pools::pressure`]: an idle session that holds no state only its
//! connections keep gives them back (it takes new ones with its next statement), so many more
//! client sessions than data-node connections can stay open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::conn::{DnConn, StartupFailure};
use crate::config::PoolConfig;
use crate::error::CoordError;

/// A data node as the pool sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeAddr {
    /// Node name, for messages.
    pub name: String,
    /// `host:port`, or a Unix-domain socket's path (see [`super::address`]).
    pub addr: String,
}

impl NodeAddr {
    /// The pool address of a catalog node.
    pub fn of(node: &pgshard_catalog::Node) -> Self {
        NodeAddr { name: node.name.clone(), addr: super::address(&node.host, node.port) }
    }
}

/// What makes two connections interchangeable: same node, same startup parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    node: NodeAddr,
    params: Vec<(String, String)>,
}

struct Idle {
    conn: DnConn,
    permit: OwnedSemaphorePermit,
    since: Instant,
}

#[derive(Default)]
struct NodePool {
    idle: HashMap<PoolKey, Vec<Idle>>,
}

/// Every node's pool.
pub struct Pools {
    cfg: PoolConfig,
    limits: Mutex<HashMap<NodeAddr, Arc<Semaphore>>>,
    nodes: Mutex<HashMap<NodeAddr, NodePool>>,
    /// Signalled (one waiter at a time) when a checkout has to wait for a connection.
    pressure: Notify,
    /// Signalled when a connection comes back to the idle lists.
    returned: Notify,
}

/// A connection checked out of the pool; give it back with [`Pools::checkin`].
pub struct Pooled {
    /// The connection.
    pub conn: DnConn,
    key: PoolKey,
    permit: OwnedSemaphorePermit,
}

impl Pools {
    /// Empty pools with these limits.
    pub fn new(cfg: PoolConfig) -> Arc<Self> {
        Arc::new(Self { cfg, limits: Mutex::default(), nodes: Mutex::default(), pressure: Notify::new(), returned: Notify::new() })
    }

    fn limit(&self, node: &NodeAddr) -> Arc<Semaphore> {
        let mut limits = self.limits.lock().unwrap_or_else(PoisonError::into_inner);
        limits.entry(node.clone()).or_insert_with(|| Arc::new(Semaphore::new(self.cfg.max_per_node))).clone()
    }

    /// Takes an idle connection with exactly these parameters, or opens a new one.
    pub async fn checkout(
        &self,
        node: &NodeAddr,
        mut params: Vec<(String, String)>,
        password: Option<&str>,
    ) -> Result<Pooled, StartupFailure> {
        params.sort();
        let key = PoolKey { node: node.clone(), params };
        let deadline = tokio::time::Instant::now() + self.cfg.checkout_timeout();
        let limit = self.limit(node);
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            // Registered before looking, so a connection given back meanwhile is not missed.
            returned.as_mut().enable();
            if let Some(idle) = self.take_idle(&key) {
                return Ok(Pooled { conn: idle.conn, key, permit: idle.permit });
            }
            // Make room by closing an idle connection kept for other parameters.
            let permit = match limit.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) if self.evict_one(node) => limit.clone().try_acquire_owned().ok(),
                Err(_) => None,
            };
            let permit = match permit {
                Some(p) => p,
                None => {
                    // Ask an idle session to give its connections back, and wait.
                    self.pressure.notify_one();
                    tokio::select! {
                        p = limit.clone().acquire_owned() => p.map_err(|_| CoordError::PoolExhausted(node.name.clone()))?,
                        () = &mut returned => continue,
                        () = tokio::time::sleep_until(deadline) => return Err(CoordError::PoolExhausted(node.name.clone()).into()),
                    }
                }
            };
            let conn = DnConn::connect(&node.name, &node.addr, &key.params, password, self.cfg.connect_timeout()).await?;
            return Ok(Pooled { conn, key, permit });
        }
    }

    /// Signalled when a session waits for a connection: an idle session that can give its
    /// connections back should (see the module doc).
    pub fn pressure(&self) -> &Notify {
        &self.pressure
    }

    fn take_idle(&self, key: &PoolKey) -> Option<Idle> {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let list = nodes.get_mut(&key.node)?.idle.get_mut(key)?;
        while let Some(idle) = list.pop() {
            if idle.since.elapsed() < self.cfg.idle_timeout() && is_alive(&idle.conn) {
                return Some(idle);
            }
        }
        None
    }

    fn evict_one(&self, node: &NodeAddr) -> bool {
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(pool) = nodes.get_mut(node) else { return false };
        pool.idle.values_mut().find_map(|list| list.pop()).is_some()
    }

    /// Gives a connection back. `clean` says the session left it at a message boundary (last
    /// message ReadyForQuery, nothing in flight); `in_txn` that a transaction block is open.
    /// Unclean connections are closed; clean ones are reset in the background and pooled.
    pub fn checkin(self: &Arc<Self>, pooled: Pooled, clean: bool, in_txn: bool) {
        if !clean {
            return;
        }
        let pools = self.clone();
        tokio::spawn(async move {
            let Pooled { mut conn, key, permit } = pooled;
            let reset = async {
                if in_txn {
                    conn.simple("ROLLBACK").await?;
                }
                conn.simple("DISCARD ALL").await
            };
            match tokio::time::timeout(pools.cfg.connect_timeout(), reset).await {
                Ok(Ok(())) => pools.put_idle(key, Idle { conn, permit, since: Instant::now() }),
                Ok(Err(e)) => tracing::warn!(node = %key.node.name, error = %e, "closing a connection that did not reset"),
                Err(_) => tracing::warn!(node = %key.node.name, "closing a connection whose reset timed out"),
            }
        });
    }

    fn put_idle(&self, key: PoolKey, idle: Idle) {
        let timeout = self.cfg.idle_timeout();
        let mut nodes = self.nodes.lock().unwrap_or_else(PoisonError::into_inner);
        let pool = nodes.entry(key.node.clone()).or_default();
        for list in pool.idle.values_mut() {
            list.retain(|i| i.since.elapsed() < timeout);
        }
        pool.idle.entry(key).or_default().push(idle);
        drop(nodes);
        self.returned.notify_waiters();
    }

    /// Closes every idle connection (shutdown).
    pub fn close_idle(&self) {
        self.nodes.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Open connections to a node (idle and in use), for tests and monitoring.
    pub fn open_count(&self, node: &NodeAddr) -> usize {
        self.cfg.max_per_node - self.limit(node).available_permits()
    }
}

/// An idle connection that the node closed (restart, idle timeout) shows EOF or an unexpected
/// message on a non-blocking read; a live one has nothing to read.
fn is_alive(conn: &DnConn) -> bool {
    let mut probe = [0u8; 1];
    matches!(conn.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

impl PoolKey {
    /// `host:port` of the node.
    pub fn addr(&self) -> &str {
        &self.node.addr
    }
}

impl Pooled {
    /// The key this connection was made for.
    pub fn key(&self) -> &PoolKey {
        &self.key
    }

    /// Drops the connection without returning it (releases its slot).
    pub fn discard(self) {
        drop(self.permit);
    }
}
