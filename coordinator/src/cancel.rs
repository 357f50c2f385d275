//! Cancel keys. A client session's BackendKeyData carries the pid of its backend on the default
//! node (so `pg_backend_pid()` and the pid in its own NOTIFY messages match, as on PostgreSQL)
//! and a secret of the coordinator's own; a CancelRequest carrying that pair is turned into a
//! CancelRequest for every data-node backend the session holds (a statement over several nodes
//! stops everywhere; an idle backend ignores it, as PostgreSQL does). Pids of different data
//! nodes may coincide, so sessions are keyed by the pair, whose random secret makes it unique.

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

/// A session's data-node backends, home first; the session keeps it current.
pub type CancelTargets = Arc<Mutex<Vec<CancelTarget>>>;

/// Live sessions by their client-facing cancel key.
#[derive(Default)]
pub struct CancelRegistry {
    sessions: Mutex<HashMap<(i32, i32), CancelTargets>>,
}

impl CancelRegistry {
    /// An empty registry.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a session under its home backend's pid and a fresh secret; returns
    /// `(pid, secret)` for BackendKeyData and the list the session adds its other backends to.
    pub fn register(&self, home: CancelTarget) -> (i32, i32, CancelTargets) {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = home.pid;
        let targets: CancelTargets = Arc::new(Mutex::new(vec![home]));
        loop {
            let secret = rand::random::<i32>();
            if let std::collections::hash_map::Entry::Vacant(slot) = sessions.entry((pid, secret)) {
                slot.insert(targets.clone());
                return (pid, secret, targets);
            }
        }
    }

    /// Forgets a session.
    pub fn unregister(&self, pid: i32, secret: i32) {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(&(pid, secret));
    }

    /// Looks up the backends of a CancelRequest's session; a wrong secret finds nothing.
    pub fn lookup(&self, pid: i32, secret: i32) -> Option<Vec<CancelTarget>> {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let targets = sessions.get(&(pid, secret))?;
        Some(targets.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    /// Handles a client's CancelRequest: forwards it to every backend of the session,
    /// silently ignoring unknown keys as PostgreSQL does.
    pub async fn cancel(&self, pid: i32, secret: i32) {
        let Some(targets) = self.lookup(pid, secret) else {
            tracing::debug!(pid, "cancel request for an unknown session");
            return;
        };
        tracing::info!(pid, backends = targets.len(), "forwarding cancel request");
        let sent = targets.iter().map(|t| crate::backend::cancel(&t.addr, t.pid, t.secret, Duration::from_secs(5)));
        for (t, r) in targets.iter().zip(futures::future::join_all(sent).await) {
            if let Err(e) = r {
                tracing::warn!(pid, node = %t.addr, error = %e, "could not forward cancel request");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_needs_the_right_secret() {
        let reg = CancelRegistry::new();
        let (pid, secret, targets) = reg.register(CancelTarget { addr: "a".into(), pid: 7, secret: 9 });
        assert_eq!(pid, 7);
        let addrs = |v: Option<Vec<CancelTarget>>| v.map(|v| v.into_iter().map(|t| t.addr).collect::<Vec<_>>());
        assert_eq!(addrs(reg.lookup(pid, secret)), Some(vec!["a".to_owned()]));
        targets.lock().unwrap().push(CancelTarget { addr: "c".into(), pid: 11, secret: 1 });
        assert_eq!(addrs(reg.lookup(pid, secret)), Some(vec!["a".to_owned(), "c".to_owned()]), "the session's other backends");
        assert!(reg.lookup(pid, secret.wrapping_add(1)).is_none());
        // The same backend pid on another node is another session.
        let (pid2, secret2, _) = reg.register(CancelTarget { addr: "b".into(), pid: 7, secret: 3 });
        assert_eq!(addrs(reg.lookup(pid2, secret2)), Some(vec!["b".to_owned()]));
        reg.unregister(pid, secret);
        assert!(reg.lookup(pid, secret).is_none());
        assert!(reg.lookup(pid2, secret2).is_some());
    }
}
