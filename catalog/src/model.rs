//! The in-memory model of the catalog: plain data, cheap to clone behind an `Arc`.

use std::fmt;

use crate::CatalogError;

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

/// One consistent view of the catalog; never mutated, replaced whole on change.
#[derive(Debug, Clone, Default)]
pub struct CatalogSnapshot {
    /// Every registered data node, ordered by id.
    pub nodes: Vec<Node>,
}

impl CatalogSnapshot {
    /// The node that holds undistributed tables.
    pub fn default_node(&self) -> Result<&Node, CatalogError> {
        self.nodes
            .iter()
            .find(|n| n.is_default)
            .or_else(|| self.nodes.first())
            .ok_or(CatalogError::NoDataNode)
    }

    /// Looks a node up by id.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i32, is_default: bool) -> Node {
        Node { id: NodeId(id), name: format!("dn{id}"), host: "127.0.0.1".into(), port: 5432, is_default }
    }

    #[test]
    fn default_node_prefers_the_flagged_one() {
        let snap = CatalogSnapshot { nodes: vec![node(1, false), node(2, true)] };
        assert_eq!(snap.default_node().unwrap().id, NodeId(2));
    }

    #[test]
    fn default_node_falls_back_to_the_first() {
        let snap = CatalogSnapshot { nodes: vec![node(3, false), node(4, false)] };
        assert_eq!(snap.default_node().unwrap().id, NodeId(3));
    }

    #[test]
    fn empty_catalog_has_no_default_node() {
        assert!(matches!(CatalogSnapshot::default().default_node(), Err(CatalogError::NoDataNode)));
    }
}
