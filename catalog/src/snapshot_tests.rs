//! Lookups on a hand-built snapshot, and the checks that refuse inconsistent parts.

use super::*;
use crate::hash::DistType;

fn node(id: i32, is_default: bool) -> Node {
    Node { id: NodeId(id), name: format!("dn{id}"), host: "127.0.0.1".into(), port: 5432, is_default }
}

fn table(schema: &str, name: &str, kind: TableKind) -> Table {
    Table { schema: schema.into(), name: name.into(), kind }
}

fn orders_kind(group: i32) -> TableKind {
    TableKind::Distributed { column: "o_w_id".into(), dist_type: DistType::Int4, group: ColocationId(group) }
}

/// Two nodes, group 1 (4 shards of int4), group 2 (3 shards of text, all on node 2), and one
/// table of each kind.
fn parts() -> CatalogParts {
    let mut shards = Shard::layout(ColocationId(1), 4, &[NodeId(1), NodeId(2)]).unwrap();
    shards.extend(Shard::layout(ColocationId(2), 3, &[NodeId(2)]).unwrap());
    shards.reverse();
    CatalogParts {
        version: 7,
        nodes: vec![node(2, false), node(1, true)],
        groups: vec![
            ColocationGroup { id: ColocationId(2), shard_count: 3, dist_type: DistType::Text },
            ColocationGroup { id: ColocationId(1), shard_count: 4, dist_type: DistType::Int4 },
        ],
        shards,
        tables: vec![
            table("public", "orders", orders_kind(1)),
            table("public", "order_line", orders_kind(1)),
            table("public", "item", TableKind::Reference),
            table("app", "history", TableKind::Local { node: NodeId(2) }),
        ],
    }
}

fn snapshot() -> CatalogSnapshot {
    CatalogSnapshot::new(parts()).unwrap()
}

fn inconsistency(parts: CatalogParts) -> String {
    match CatalogSnapshot::new(parts) {
        Err(CatalogError::Inconsistent(what)) => what,
        other => panic!("expected an inconsistency, got {other:?}"),
    }
}

#[test]
fn tables_are_found_by_schema_and_name() {
    let snap = snapshot();
    assert_eq!(snap.version(), 7);
    assert_eq!(snap.table("public", "orders").unwrap().kind, orders_kind(1));
    assert_eq!(snap.table("public", "item").unwrap().kind, TableKind::Reference);
    assert_eq!(snap.table("app", "history").unwrap().kind, TableKind::Local { node: NodeId(2) });
    assert!(snap.table("app", "orders").is_none());
    assert!(snap.table("public", "Orders").is_none());
    assert_eq!(snap.tables().count(), 4);
    let mut in_group: Vec<&str> = snap.tables_in_group(ColocationId(1)).map(|t| t.name.as_str()).collect();
    in_group.sort_unstable();
    assert_eq!(in_group, ["order_line", "orders"]);
}

#[test]
fn nodes_are_sorted_and_found_by_id() {
    let snap = snapshot();
    let ids: Vec<i32> = snap.nodes().iter().map(|n| n.id.0).collect();
    assert_eq!(ids, [1, 2]);
    assert_eq!(snap.node(NodeId(2)).unwrap().name, "dn2");
    assert!(snap.node(NodeId(3)).is_none());
}

#[test]
fn shards_of_a_group_are_sorted_by_index() {
    let snap = snapshot();
    let shards = snap.shards_of(ColocationId(1));
    assert_eq!(shards.iter().map(|s| s.index).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert_eq!(shards.iter().map(|s| s.node.0).collect::<Vec<_>>(), [1, 2, 1, 2]);
    assert_eq!(shards[2].schema_name(), "pgshard_g1_s2");
    assert!(snap.shards_of(ColocationId(9)).is_empty());
    assert_eq!(snap.group(ColocationId(2)).unwrap().dist_type, DistType::Text);
    assert_eq!(snap.groups().map(|g| g.id.0).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn shard_for_hash_picks_the_range_holding_the_hash() {
    let snap = snapshot();
    let group = ColocationId(1);
    for shard in snap.shards_of(group) {
        for hash in [shard.hash_min, shard.hash_max, shard.hash_min / 2 + shard.hash_max / 2] {
            assert_eq!(snap.shard_for_hash(group, hash), Some(shard), "hash {hash:#x}");
            assert_eq!(hash::shard_index(hash, 4), shard.index);
        }
    }
    assert_eq!(snap.shard_for_hash(group, 0).unwrap().index, 0);
    assert_eq!(snap.shard_for_hash(group, u64::MAX).unwrap().index, 3);
    assert_eq!(snap.shard_for_hash(ColocationId(2), u64::MAX / 2).unwrap().index, 1);
    assert!(snap.shard_for_hash(ColocationId(9), 0).is_none());
}

#[test]
fn shard_for_hash_searches_ranges_that_are_not_equal() {
    // Shard 0 covers a quarter, shard 1 the rest: the equal-split guess is wrong for some hashes.
    let mut parts = parts();
    parts.shards.retain(|s| s.group != ColocationId(1));
    parts.groups.retain(|g| g.id != ColocationId(1));
    parts.tables.retain(|t| t.kind.group() != Some(ColocationId(1)));
    parts.groups.push(ColocationGroup { id: ColocationId(1), shard_count: 2, dist_type: DistType::Int4 });
    let quarter = u64::MAX / 4;
    parts.shards.push(Shard { group: ColocationId(1), index: 0, hash_min: 0, hash_max: quarter, node: NodeId(1) });
    parts.shards.push(Shard {
        group: ColocationId(1),
        index: 1,
        hash_min: quarter + 1,
        hash_max: u64::MAX,
        node: NodeId(2),
    });
    let snap = CatalogSnapshot::new(parts).unwrap();
    assert_eq!(snap.shard_for_hash(ColocationId(1), quarter).unwrap().index, 0);
    assert_eq!(snap.shard_for_hash(ColocationId(1), quarter + 1).unwrap().index, 1);
    assert_eq!(snap.shard_for_hash(ColocationId(1), u64::MAX / 3).unwrap().index, 1);
}

#[test]
fn nodes_of_group_lists_each_node_once_in_id_order() {
    let snap = snapshot();
    let ids = |g| snap.nodes_of_group(ColocationId(g)).iter().map(|n| n.id.0).collect::<Vec<_>>();
    assert_eq!(ids(1), [1, 2]);
    assert_eq!(ids(2), [2]);
    assert!(ids(9).is_empty());
}

#[test]
fn default_node_prefers_the_flagged_one() {
    let snap =
        CatalogSnapshot::new(CatalogParts { nodes: vec![node(1, false), node(2, true)], ..CatalogParts::default() });
    assert_eq!(snap.unwrap().default_node().unwrap().id, NodeId(2));
}

#[test]
fn default_node_falls_back_to_the_first() {
    let snap =
        CatalogSnapshot::new(CatalogParts { nodes: vec![node(4, false), node(3, false)], ..CatalogParts::default() });
    assert_eq!(snap.unwrap().default_node().unwrap().id, NodeId(3));
}

#[test]
fn empty_catalog_has_no_default_node() {
    assert!(matches!(CatalogSnapshot::default().default_node(), Err(CatalogError::NoDataNode)));
}

#[test]
fn shards_must_cover_the_hash_space() {
    let mut missing = parts();
    missing.shards.retain(|s| !(s.group == ColocationId(1) && s.index == 2));
    assert!(inconsistency(missing).contains("has 3 shards, not 4"));

    let mut gap = parts();
    gap.shards.iter_mut().filter(|s| s.group == ColocationId(1) && s.index == 2).for_each(|s| s.hash_min += 1);
    assert!(inconsistency(gap).contains("pgshard_g1_s2"));

    let mut short = parts();
    short.shards.iter_mut().filter(|s| s.group == ColocationId(2) && s.index == 2).for_each(|s| s.hash_max -= 1);
    assert!(inconsistency(short).contains("do not reach the end"));

    let mut orphan = parts();
    orphan.groups.retain(|g| g.id != ColocationId(2));
    assert!(inconsistency(orphan).contains("unknown colocation group"));
}

#[test]
fn references_must_resolve() {
    let mut unknown_node = parts();
    unknown_node.nodes.retain(|n| n.id != NodeId(2));
    assert!(inconsistency(unknown_node).contains("unknown node 2"));

    let mut unknown_group = parts();
    unknown_group.tables.push(table("public", "stock", orders_kind(5)));
    assert!(inconsistency(unknown_group).contains("unknown colocation group 5"));

    let mut local_elsewhere = parts();
    local_elsewhere.tables.push(table("public", "log", TableKind::Local { node: NodeId(8) }));
    assert!(inconsistency(local_elsewhere).contains("unknown node 8"));

    let mut mismatch = parts();
    let kind = TableKind::Distributed { column: "c".into(), dist_type: DistType::Text, group: ColocationId(1) };
    mismatch.tables.push(table("public", "customer", kind));
    assert!(matches!(CatalogSnapshot::new(mismatch), Err(CatalogError::DistTypeMismatch { .. })));
}

#[test]
fn duplicates_are_refused() {
    let mut table_twice = parts();
    table_twice.tables.push(table("public", "item", TableKind::Reference));
    assert!(inconsistency(table_twice).contains("public.item appears twice"));

    let mut node_twice = parts();
    node_twice.nodes.push(node(1, false));
    assert!(inconsistency(node_twice).contains("node 1 appears twice"));

    let mut group_twice = parts();
    group_twice.groups.push(ColocationGroup { id: ColocationId(1), shard_count: 4, dist_type: DistType::Int4 });
    assert!(inconsistency(group_twice).contains("group 1 appears twice"));
}
