//! Global transaction ids. A distributed transaction prepared by coordinator `c` is named
//! `pgshard_tx_<c>_<epoch>_<seq>` (its *base*, the key of its decision record) and prepared on
//! each data node as `<base>_<node>`. The coordinator name lets each coordinator recover only
//! its own transactions; the epoch (the process's start time) keeps ids unique across restarts.

use std::fmt;

const PREFIX: &str = "pgshard_tx_";

/// Why a coordinator name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("coordinator name {0:?} must be 1 to 32 lowercase letters or digits")]
pub struct BadName(pub String);

/// Checks a coordinator name: it becomes part of every gid, so it is kept to `[a-z0-9]{1,32}`.
pub fn check_name(name: &str) -> Result<(), BadName> {
    let ok = (1..=32).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok { Ok(()) } else { Err(BadName(name.to_owned())) }
}

/// The id of one distributed transaction, without the node part.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gid {
    /// The coordinator that prepared it.
    pub coordinator: String,
    /// The coordinator process's epoch.
    pub epoch: u64,
    /// Its number within the epoch.
    pub seq: u64,
}

impl Gid {
    /// The gid this transaction is prepared under on data node `node`.
    pub fn on_node(&self, node: i32) -> String {
        format!("{self}_{node}")
    }

    /// Reads a per-node gid: the transaction and the node, or `None` for anything else.
    pub fn parse_node_gid(s: &str) -> Option<(Gid, i32)> {
        let (base, node) = s.rsplit_once('_')?;
        let gid = Gid::parse(base)?;
        let node = node.parse().ok().filter(|_| node.bytes().all(|b| b.is_ascii_digit()))?;
        Some((gid, node))
    }

    /// Reads a base gid (a decision record's key).
    pub fn parse(s: &str) -> Option<Gid> {
        let rest = s.strip_prefix(PREFIX)?;
        let mut parts = rest.split('_');
        let (coordinator, epoch, seq) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || check_name(coordinator).is_err() {
            return None;
        }
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(epoch) || !digits(seq) {
            return None;
        }
        Some(Gid { coordinator: coordinator.to_owned(), epoch: epoch.parse().ok()?, seq: seq.parse().ok()? })
    }
}

impl fmt::Display for Gid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}_{}_{}", self.coordinator, self.epoch, self.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gids_round_trip_and_carry_their_node() {
        let g = Gid { coordinator: "c1".into(), epoch: 1_700_000_000_123, seq: 42 };
        assert_eq!(g.to_string(), "pgshard_tx_c1_1700000000123_42");
        assert_eq!(Gid::parse(&g.to_string()), Some(g.clone()));
        assert_eq!(g.on_node(3), "pgshard_tx_c1_1700000000123_42_3");
        assert_eq!(Gid::parse_node_gid(&g.on_node(3)), Some((g.clone(), 3)));
        assert_eq!(Gid::parse_node_gid(&g.to_string()), None, "a base gid names no node");
    }

    #[test]
    fn foreign_gids_are_not_ours() {
        for s in [
            "pgshard_ddl_7_0a",
            "pgshard_tx_C1_1_2_3",
            "pgshard_tx_c1_x_2_3",
            "pgshard_tx_c1_1_2_-3",
            "pgshard_tx_c1_1__3",
            "client_gid",
            "pgshard_tx_a_b_1_2_3",
        ] {
            assert_eq!(Gid::parse_node_gid(s), None, "{s}");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("c0").is_ok());
        assert!(check_name("primary").is_ok());
        for bad in ["", "C0", "a_b", "a-b", &"x".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
