//! What recovery does with the prepared transactions it finds, decided from facts alone so the
//! rule can be tested without servers.
//!
//! One round: read the decision records (`before`), list the prepared transactions of every
//! node, read the decision records again (`after`). A prepared transaction of ours is committed
//! when `after` holds its record, left alone while this process is committing it, and rolled
//! back otherwise: a transaction is prepared everywhere before its record is written, so a
//! record written after the listing cannot belong to a transaction the listing saw without it
//! being in flight. A record is finished, and deleted, when it was already in `before`, every
//! node was listed, and no node still has its transaction prepared.

use std::collections::{BTreeSet, HashSet};

use crate::gid::Gid;

/// What to do with one prepared transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// COMMIT PREPARED: the decision record exists.
    Commit,
    /// ROLLBACK PREPARED: no decision record and nobody is committing it.
    Rollback,
    /// Leave it: this process is committing it right now.
    Leave,
}

/// The verdict for one prepared transaction of ours.
pub fn verdict(decided: bool, in_flight: bool) -> Verdict {
    match (decided, in_flight) {
        (true, _) => Verdict::Commit,
        (false, true) => Verdict::Leave,
        (false, false) => Verdict::Rollback,
    }
}

/// Decision records whose work is finished: present before the listing, and prepared on no node
/// it saw. Empty unless every node was listed.
pub fn finished_records(before: &BTreeSet<Gid>, still_prepared: &HashSet<Gid>, all_nodes_listed: bool) -> Vec<Gid> {
    if !all_nodes_listed {
        return Vec::new();
    }
    before.iter().filter(|g| !still_prepared.contains(*g)).cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(seq: u64) -> Gid {
        Gid { coordinator: "c0".into(), epoch: 9, seq }
    }

    #[test]
    fn a_record_commits_and_no_record_rolls_back_unless_in_flight() {
        assert_eq!(verdict(true, false), Verdict::Commit);
        assert_eq!(verdict(true, true), Verdict::Commit);
        assert_eq!(verdict(false, true), Verdict::Leave);
        assert_eq!(verdict(false, false), Verdict::Rollback);
    }

    #[test]
    fn records_are_kept_while_any_node_may_still_need_them() {
        let before: BTreeSet<Gid> = [g(1), g(2)].into_iter().collect();
        let prepared: HashSet<Gid> = [g(2), g(3)].into_iter().collect();
        assert_eq!(finished_records(&before, &prepared, true), vec![g(1)]);
        assert!(finished_records(&before, &prepared, false).is_empty(), "a node that was down may hold g(1)");
    }
}
