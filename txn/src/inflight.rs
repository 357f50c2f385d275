//! Distributed transactions this coordinator process is committing right now. Recovery leaves
//! them alone: between PREPARE and the decision record a prepared transaction without a record
//! is in flight, not abandoned. An entry lives exactly as long as its [`InFlightGuard`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::gid::Gid;

/// The set of transactions in flight.
#[derive(Debug, Default, Clone)]
pub struct InFlight {
    set: Arc<Mutex<HashSet<Gid>>>,
}

impl InFlight {
    /// Registers `gid` until the returned guard is dropped.
    pub fn enter(&self, gid: Gid) -> InFlightGuard {
        self.set.lock().unwrap_or_else(PoisonError::into_inner).insert(gid.clone());
        InFlightGuard { set: self.set.clone(), gid }
    }

    /// Whether `gid` is being committed by this process.
    pub fn contains(&self, gid: &Gid) -> bool {
        self.set.lock().unwrap_or_else(PoisonError::into_inner).contains(gid)
    }

    /// How many transactions are in flight.
    pub fn len(&self) -> usize {
        self.set.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps one transaction registered as in flight.
#[derive(Debug)]
pub struct InFlightGuard {
    set: Arc<Mutex<HashSet<Gid>>>,
    gid: Gid,
}

impl InFlightGuard {
    /// The transaction.
    pub fn gid(&self) -> &Gid {
        &self.gid
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.gid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_as_long_as_its_guard() {
        let f = InFlight::default();
        let g = Gid { coordinator: "c0".into(), epoch: 1, seq: 1 };
        let guard = f.enter(g.clone());
        assert!(f.contains(&g));
        assert_eq!(guard.gid(), &g);
        drop(guard);
        assert!(!f.contains(&g));
        assert!(f.is_empty());
    }
}
