//! Distributed transaction state: the session's status as PostgreSQL reports it, global
//! transaction ids, the registry of transactions being committed, the recovery rule, and
//! distributed deadlock detection's wait-for graph.

pub mod deadlock;
pub mod gid;
pub mod inflight;
pub mod recovery;

pub use deadlock::{TxnId, WaitGraph, victims};
pub use gid::{BadName, Gid, check_name};
pub use inflight::{InFlight, InFlightGuard};
pub use recovery::{Verdict, finished_records, verdict};

/// The transaction state of a session, as PostgreSQL's ReadyForQuery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxnStatus {
    /// Not in a transaction block (`I`).
    #[default]
    Idle,
    /// In a transaction block (`T`).
    InBlock,
    /// In a failed transaction block (`E`): statements are refused until ROLLBACK.
    Failed,
}

impl TxnStatus {
    /// Reads the status byte of a ReadyForQuery message.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'I' => Some(Self::Idle),
            b'T' => Some(Self::InBlock),
            b'E' => Some(Self::Failed),
            _ => None,
        }
    }

    /// The status byte of a ReadyForQuery message.
    pub fn as_byte(self) -> u8 {
        match self {
            Self::Idle => b'I',
            Self::InBlock => b'T',
            Self::Failed => b'E',
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bytes_round_trip() {
        for s in [TxnStatus::Idle, TxnStatus::InBlock, TxnStatus::Failed] {
            assert_eq!(TxnStatus::from_byte(s.as_byte()), Some(s));
        }
        assert_eq!(TxnStatus::from_byte(b'X'), None);
    }
}
