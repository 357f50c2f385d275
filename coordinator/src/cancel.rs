//! Cancel keys. Each client session gets its own (pid, secret) pair in BackendKeyData; a
//! CancelRequest carrying it is turned into a CancelRequest for the data-node backend that
//! serves the session.

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
    sessions: Mutex<HashMap<i32, (i32, CancelTarget)>>,
}

impl CancelRegistry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a session under a fresh key; returns `(pid, secret)` for BackendKeyData.
    pub fn register(&self, target: CancelTarget) -> (i32, i32) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            // Positive pids, as PostgreSQL's are; the secret is any i32.
            let pid = rand::random::<i32>() & i32::MAX;
            if pid != 0 && !sessions.contains_key(&pid) {
                let secret = rand::random::<i32>();
                sessions.insert(pid, (secret, target));
                return (pid, secret);
            }
        }
    }

    /// Forgets a session.
    pub fn unregister(&self, pid: i32) {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(&pid);
    }

    /// Looks up the target of a CancelRequest; a wrong secret finds nothing.
    pub fn lookup(&self, pid: i32, secret: i32) -> Option<CancelTarget> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        match sessions.get(&pid) {
            Some((s, target)) if *s == secret => Some(target.clone()),
            _ => None,
        }
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
        assert!(pid > 0);
        assert_eq!(reg.lookup(pid, secret).map(|t| t.pid), Some(7));
        assert!(reg.lookup(pid, secret.wrapping_add(1)).is_none());
        reg.unregister(pid);
        assert!(reg.lookup(pid, secret).is_none());
    }
}
