//! The catalog's entities as plain data: data nodes, colocation groups, tables and shards.
//! How they hang together in one consistent view is [`crate::CatalogSnapshot`]'s business.

use std::fmt;

use crate::CatalogError;
use crate::hash::{self, DistType};

/// Largest shard count a colocation group may have (Citus's limit too).
pub const MAX_SHARD_COUNT: u32 = 64_000;

/// Prefix of every shard schema on a data node (`pgshard_g{group}_s{index}`).
pub const SHARD_SCHEMA_PREFIX: &str = "pgshard_g";

/// Identifies a data node for the life of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub i32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A data node: one PostgreSQL server that holds shards and undistributed tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Catalog id.
    pub id: NodeId,
    /// Unique name chosen at registration (`dn1`, `eu-west-a`, ...).
    pub name: String,
    /// Host name or address the coordinator connects to.
    pub host: String,
    /// TCP port of the server.
    pub port: u16,
    /// The node that stores tables which are not distributed.
    pub is_default: bool,
}

/// Identifies a colocation group for the life of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ColocationId(pub i32);

impl fmt::Display for ColocationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Tables hashed the same way into the same shards: shard `i` of every table in the group lives
/// in one schema on one node, so joins and transactions on one distribution value stay local.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColocationGroup {
    /// Catalog id.
    pub id: ColocationId,
    /// Number of shards (hash ranges) of every table in the group.
    pub shard_count: u32,
    /// Type of every member's distribution column, after coercion for hashing.
    pub dist_type: DistType,
}

/// How the catalog places a table's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableKind {
    /// Rows hashed on `column` into the shards of colocation group `group`.
    Distributed {
        /// Distribution column name, as PostgreSQL stores it.
        column: String,
        /// The column's type for hashing (always the group's).
        dist_type: DistType,
        /// The colocation group whose shards hold the rows.
        group: ColocationId,
    },
    /// A full copy, under its own schema and name, on every data node.
    Reference,
    /// Not distributed: the whole table on one node.
    Local {
        /// The node that holds it.
        node: NodeId,
    },
}

impl TableKind {
    /// The kind as `pgshard.tables.kind` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            TableKind::Distributed { .. } => "distributed",
            TableKind::Reference => "reference",
            TableKind::Local { .. } => "local",
        }
    }

    /// What a table of this kind "is", for messages ("is already distributed").
    pub fn described(&self) -> &'static str {
        match self {
            TableKind::Distributed { .. } => "distributed",
            TableKind::Reference => "a reference table",
            TableKind::Local { .. } => "an undistributed table",
        }
    }

    /// The colocation group of a distributed table.
    pub fn group(&self) -> Option<ColocationId> {
        match self {
            TableKind::Distributed { group, .. } => Some(*group),
            TableKind::Reference | TableKind::Local { .. } => None,
        }
    }

    /// Distributed or reference: the catalog spreads the table over the data nodes.
    pub fn is_spread(&self) -> bool {
        !matches!(self, TableKind::Local { .. })
    }
}

/// A user table the catalog places, under the schema and name the user gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Schema the user created it in.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Where its rows live.
    pub kind: TableKind,
}

impl Table {
    /// `schema.name`, for messages (not quoted: not for SQL text).
    pub fn display_name(&self) -> String {
        display_name(&self.schema, &self.name)
    }
}

/// `schema.name`, for messages (not quoted: not for SQL text).
pub(crate) fn display_name(schema: &str, name: &str) -> String {
    format!("{schema}.{name}")
}

/// One hash range of a colocation group, placed on one node. Every table of the group has its
/// shard `index` in schema [`Shard::schema_name`] on `node`, under the table's own name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// The colocation group.
    pub group: ColocationId,
    /// Position in the group, `0..shard_count`, in hash order.
    pub index: u32,
    /// Smallest hash in the shard's range.
    pub hash_min: u64,
    /// Largest hash in the shard's range (inclusive).
    pub hash_max: u64,
    /// The node that holds the shard.
    pub node: NodeId,
}

impl Shard {
    /// The schema that holds this shard on its node: `pgshard_g{group}_s{index}`.
    pub fn schema_name(&self) -> String {
        shard_schema_name(self.group, self.index)
    }

    /// Whether a distribution value with this hash belongs here.
    pub fn contains(&self, hash: u64) -> bool {
        self.hash_min <= hash && hash <= self.hash_max
    }

    /// The shards of a new group: equal hash ranges ([`hash::shard_range`]), placed round-robin
    /// over `nodes` in id order (duplicates ignored).
    pub fn layout(group: ColocationId, shard_count: u32, nodes: &[NodeId]) -> Result<Vec<Shard>, CatalogError> {
        if shard_count == 0 || shard_count > MAX_SHARD_COUNT {
            return Err(CatalogError::InvalidShardCount(shard_count));
        }
        let mut nodes = nodes.to_vec();
        nodes.sort_unstable();
        nodes.dedup();
        if nodes.is_empty() {
            return Err(CatalogError::NoDataNode);
        }
        let shards = (0..shard_count)
            .zip(nodes.iter().cycle())
            .map(|(index, &node)| {
                let (hash_min, hash_max) = hash::shard_range(index, shard_count);
                Shard { group, index, hash_min, hash_max, node }
            })
            .collect();
        Ok(shards)
    }
}

/// The schema of shard `index` of colocation group `group`.
pub fn shard_schema_name(group: ColocationId, index: u32) -> String {
    format!("{SHARD_SCHEMA_PREFIX}{}_s{index}", group.0)
}

/// Reads a shard schema name back (`pgshard_g1_s5` -> group 1, shard 5), e.g. to find shard
/// schemas a crash left behind on a data node.
pub fn parse_shard_schema_name(schema: &str) -> Option<(ColocationId, u32)> {
    let rest = schema.strip_prefix(SHARD_SCHEMA_PREFIX)?;
    let (group, index) = rest.split_once("_s")?;
    let canonical =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if !canonical(group) || !canonical(index) {
        return None;
    }
    Some((ColocationId(group.parse().ok()?), index.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_schema_names_round_trip() {
        assert_eq!(shard_schema_name(ColocationId(1), 5), "pgshard_g1_s5");
        assert_eq!(parse_shard_schema_name("pgshard_g1_s5"), Some((ColocationId(1), 5)));
        assert_eq!(parse_shard_schema_name("pgshard_g12_s0"), Some((ColocationId(12), 0)));
        for bad in ["pgshard_g1_s05", "pgshard_g_s1", "pgshard_g1_s", "pgshard_g1", "public", "pgshard_g-1_s2"] {
            assert_eq!(parse_shard_schema_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn layout_alternates_nodes_in_id_order_and_covers_the_hash_space() {
        let shards = Shard::layout(ColocationId(3), 8, &[NodeId(7), NodeId(2), NodeId(7)]).unwrap();
        assert_eq!(shards.len(), 8);
        let nodes: Vec<i32> = shards.iter().map(|s| s.node.0).collect();
        assert_eq!(nodes, [2, 7, 2, 7, 2, 7, 2, 7]);
        assert_eq!(shards[0].hash_min, 0);
        assert_eq!(shards[7].hash_max, u64::MAX);
        for pair in shards.windows(2) {
            assert_eq!(pair[0].hash_max + 1, pair[1].hash_min);
        }
        assert!(shards.iter().enumerate().all(|(i, s)| s.index as usize == i && s.group == ColocationId(3)));
    }

    #[test]
    fn layout_refuses_bad_input() {
        assert!(matches!(Shard::layout(ColocationId(1), 0, &[NodeId(1)]), Err(CatalogError::InvalidShardCount(0))));
        assert!(matches!(Shard::layout(ColocationId(1), 4, &[]), Err(CatalogError::NoDataNode)));
    }
}
