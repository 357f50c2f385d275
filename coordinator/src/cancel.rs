//! Cancel keys. A client session's BackendKeyData carries the pid of the data-node backend that
//! serves it (so `pg_backend_pid()` and the pid in its own NOTIFY messages match, as on
//! PostgreSQL) and a secret of the coordinator's own; a CancelRequest carrying that pair is
//! turned into a CancelRequest for the data-node backend. Pids of different data nodes may
//! coincide, so sessions are keyed by the pair, whose random secret makes it unique.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The data-node backend a session's queries run on.
#[derive(Debug, Clone)]
pub struct CancelTarget {
    /// `host:port` of the data node.
    pub addr: String,
    /// The node backend's pid.
    pub pid: i32,
    /// The node backend's secret key.
    pub secret: i32,
}

/// Live sessions by their client-facing cancel key.
#[derive(Default)]
pub struct CancelRegistry {
    sessions: Mutex<HashMap<(i32, i32), CancelTarget>>,
}

impl CancelRegistry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a session under its node backend's pid and a fresh secret; returns
    /// `(pid, secret)` for BackendKeyData.
    pub fn register(&self, target: CancelTarget) -> (i32, i32) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = target.pid;
        loop {
            let secret = rand::random::<i32>();
            if let std::collections::hash_map::Entry::Vacant(slot) = sessions.entry((pid, secret)) {
                slot.insert(target);
                return (pid, secret);
            }
        }
    }

    /// Forgets a session.
    pub fn unregister(&self, pid: i32, secret: i32) {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(&(pid, secret));
    }

    /// Looks up the target of a CancelRequest; a wrong secret finds nothing.
    pub fn lookup(&self, pid: i32, secret: i32) -> Option<CancelTarget> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).get(&(pid, secret)).cloned()
    }

    /// Handles a client's CancelRequest: forwards it to the data node, silently ignoring
    /// unknown keys as PostgreSQL does.
    pub async fn cancel(&self, pid: i32, secret: i32) {
        let Some(target) = self.lookup(pid, secret) else {
            tracing::debug!(pid, "cancel request for an unknown session");
            return;
        };
        tracing::info!(pid, node = %target.addr, node_pid = target.pid, "forwarding cancel request");
        if let Err(e) = crate::backend::cancel(&target.addr, target.pid, target.secret, Duration::from_secs(5)).await {
            tracing::warn!(pid, error = %e, "could not forward cancel request");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_needs_the_right_secret() {
        let reg = CancelRegistry::new();
        let (pid, secret) = reg.register(CancelTarget { addr: "a".into(), pid: 7, secret: 9 });
        assert_eq!(pid, 7);
        assert_eq!(reg.lookup(pid, secret).map(|t| t.addr), Some("a".into()));
        assert!(reg.lookup(pid, secret.wrapping_add(1)).is_none());
        // The same backend pid on another node is another session.
        let (pid2, secret2) = reg.register(CancelTarget { addr: "b".into(), pid: 7, secret: 3 });
        assert_eq!(reg.lookup(pid2, secret2).map(|t| t.addr), Some("b".into()));
        reg.unregister(pid, secret);
        assert!(reg.lookup(pid, secret).is_none());
        assert!(reg.lookup(pid2, secret2).is_some());
    }
}
