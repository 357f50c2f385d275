//! One consistent, immutable view of the catalog and the lookups the planner and the executor
//! make on it. A snapshot is checked when it is built (every shard on a known node, every group's
//! shards covering the hash space in order, every table's group and node known), so lookups need
//! no error paths of their own.

use std::collections::{BTreeMap, HashMap};

use crate::hash;
use crate::{CatalogError, ColocationGroup, ColocationId, Node, NodeId, Shard, Table, TableKind};

/// The catalog's rows, unchecked: what the store reads, or what a test writes by hand.
#[derive(Debug, Clone, Default)]
pub struct CatalogParts {
    /// Catalog version (`pgshard.catalog_version`).
    pub version: i64,
    /// Data nodes, any order.
    pub nodes: Vec<Node>,
    /// Colocation groups, any order.
    pub groups: Vec<ColocationGroup>,
    /// Shards of every group, any order.
    pub shards: Vec<Shard>,
    /// Tables, any order.
    pub tables: Vec<Table>,
}

#[derive(Debug, Clone)]
struct GroupEntry {
    group: ColocationGroup,
    /// Sorted by index; `shards[i].index == i`.
    shards: Vec<Shard>,
}

/// One consistent view of the catalog; never mutated, replaced whole on change.
#[derive(Debug, Clone, Default)]
pub struct CatalogSnapshot {
    version: i64,
    /// Sorted by id.
    nodes: Vec<Node>,
    groups: BTreeMap<ColocationId, GroupEntry>,
    /// schema -> table name -> table, so a lookup by `&str` allocates nothing.
    tables: HashMap<String, HashMap<String, Table>>,
}

impl CatalogSnapshot {
    /// Checks the parts against each other and indexes them.
    pub fn new(parts: CatalogParts) -> Result<Self, CatalogError> {
        let CatalogParts { version, mut nodes, groups, shards, tables } = parts;
        nodes.sort_by_key(|n| n.id);
        if let Some(pair) = nodes.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(inconsistent(format!("node {} appears twice", pair[0].id)));
        }
        let mut snap = CatalogSnapshot { version, nodes, groups: BTreeMap::new(), tables: HashMap::new() };
        for group in groups {
            let id = group.id;
            if snap.groups.insert(id, GroupEntry { group, shards: Vec::new() }).is_some() {
                return Err(inconsistent(format!("colocation group {id} appears twice")));
            }
        }
        for shard in shards {
            if snap.node(shard.node).is_none() {
                return Err(inconsistent(format!("shard {} is on unknown node {}", shard.schema_name(), shard.node)));
            }
            let entry = snap.groups.get_mut(&shard.group).ok_or_else(|| {
                inconsistent(format!("shard {} belongs to unknown colocation group", shard.schema_name()))
            })?;
            entry.shards.push(shard);
        }
        for entry in snap.groups.values_mut() {
            entry.shards.sort_by_key(|s| s.index);
            check_shards(entry)?;
        }
        for table in tables {
            snap.check_table(&table)?;
            let by_name = snap.tables.entry(table.schema.clone()).or_default();
            if let Some(dup) = by_name.insert(table.name.clone(), table) {
                return Err(inconsistent(format!("table {} appears twice", dup.display_name())));
            }
        }
        Ok(snap)
    }

    /// Catalog version: grows with every committed change.
    pub fn version(&self) -> i64 {
        self.version
    }

    /// Every registered data node, ordered by id.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node that holds undistributed tables.
    pub fn default_node(&self) -> Result<&Node, CatalogError> {
        self.nodes.iter().find(|n| n.is_default).or_else(|| self.nodes.first()).ok_or(CatalogError::NoDataNode)
    }

    /// Looks a node up by id.
    pub fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.binary_search_by_key(&id, |n| n.id).ok().and_then(|i| self.nodes.get(i))
    }

    /// Looks a table up by schema and name (exact, as PostgreSQL stores them).
    pub fn table(&self, schema: &str, name: &str) -> Option<&Table> {
        self.tables.get(schema)?.get(name)
    }

    /// Every table the catalog places, in no particular order.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.values().flat_map(HashMap::values)
    }

    /// The tables distributed in a colocation group, in no particular order.
    pub fn tables_in_group(&self, group: ColocationId) -> impl Iterator<Item = &Table> {
        self.tables().filter(move |t| t.kind.group() == Some(group))
    }

    /// Looks a colocation group up by id.
    pub fn group(&self, id: ColocationId) -> Option<&ColocationGroup> {
        self.groups.get(&id).map(|e| &e.group)
    }

    /// Every colocation group, ordered by id.
    pub fn groups(&self) -> impl Iterator<Item = &ColocationGroup> {
        self.groups.values().map(|e| &e.group)
    }

    /// The shards of a group, sorted by index (empty for an unknown group).
    pub fn shards_of(&self, group: ColocationId) -> &[Shard] {
        self.groups.get(&group).map_or(&[], |e| &e.shards)
    }

    /// The shard of a group whose hash range holds `hash` (`None` only for an unknown group).
    pub fn shard_for_hash(&self, group: ColocationId, hash: u64) -> Option<&Shard> {
        let entry = self.groups.get(&group)?;
        let guess = usize::try_from(hash::shard_index(hash, entry.group.shard_count)).ok();
        match guess.and_then(|i| entry.shards.get(i)) {
            Some(shard) if shard.contains(hash) => Some(shard),
            // Ranges that are no longer equal (a split shard, one day): search them.
            _ => entry.shards.get(entry.shards.partition_point(|s| s.hash_max < hash)),
        }
    }

    /// The nodes holding at least one shard of a group, ordered by id.
    pub fn nodes_of_group(&self, group: ColocationId) -> Vec<&Node> {
        self.nodes.iter().filter(|n| self.shards_of(group).iter().any(|s| s.node == n.id)).collect()
    }

    fn check_table(&self, table: &Table) -> Result<(), CatalogError> {
        let name = table.display_name();
        match &table.kind {
            TableKind::Distributed { dist_type, group, .. } => {
                let found = self
                    .group(*group)
                    .ok_or_else(|| inconsistent(format!("table {name} is in unknown colocation group {group}")))?;
                if found.dist_type != *dist_type {
                    return Err(CatalogError::DistTypeMismatch {
                        table: name,
                        table_type: dist_type.name(),
                        group: *group,
                        group_type: found.dist_type.name(),
                    });
                }
            }
            TableKind::Local { node } if self.node(*node).is_none() => {
                return Err(inconsistent(format!("table {name} is on unknown node {node}")));
            }
            TableKind::Local { .. } | TableKind::Reference => {}
        }
        Ok(())
    }
}

/// A group's shards must be `0..shard_count` and cover the whole hash space in order.
fn check_shards(entry: &GroupEntry) -> Result<(), CatalogError> {
    let id = entry.group.id;
    let count = usize::try_from(entry.group.shard_count).unwrap_or(usize::MAX);
    if entry.shards.len() != count {
        return Err(inconsistent(format!(
            "colocation group {id} has {} shards, not {}",
            entry.shards.len(),
            entry.group.shard_count
        )));
    }
    let mut next_min = Some(0u64);
    for (i, shard) in entry.shards.iter().enumerate() {
        let in_place = usize::try_from(shard.index).is_ok_and(|index| index == i);
        if !in_place || next_min != Some(shard.hash_min) || shard.hash_min > shard.hash_max {
            return Err(inconsistent(format!("shard {} has a gap or overlap in its hash range", shard.schema_name())));
        }
        next_min = shard.hash_max.checked_add(1);
    }
    if next_min.is_some() {
        return Err(inconsistent(format!(
            "the shards of colocation group {id} do not reach the end of the hash space"
        )));
    }
    Ok(())
}

fn inconsistent(what: String) -> CatalogError {
    CatalogError::Inconsistent(what)
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
