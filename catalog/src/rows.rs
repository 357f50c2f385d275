//! The catalog's rows in the metadata store and their decoding into the model, shared by the
//! snapshot load and the change transaction so both read a row the same way.

use tokio_postgres::Row;

use crate::hash::{self, DistType};
use crate::{CatalogError, ColocationGroup, ColocationId, Node, NodeId, Shard, Table, TableKind};

/// Reads every node.
pub(crate) const SELECT_NODES: &str =
    "SELECT node_id, name, host, port, is_default FROM pgshard.nodes ORDER BY node_id";
/// Reads every colocation group.
pub(crate) const SELECT_GROUPS: &str =
    "SELECT group_id, shard_count, dist_type FROM pgshard.colocation_groups ORDER BY group_id";
/// Reads every shard.
pub(crate) const SELECT_SHARDS: &str =
    "SELECT group_id, shard_index, hash_min, hash_max, node_id FROM pgshard.shards ORDER BY group_id, shard_index";
/// Reads tables with their group's distribution type; append a WHERE clause to narrow it.
pub(crate) const SELECT_TABLES: &str = "SELECT t.schema_name, t.table_name, t.kind, t.dist_column, \
     t.group_id, g.dist_type, t.node_id \
     FROM pgshard.tables t LEFT JOIN pgshard.colocation_groups g ON g.group_id = t.group_id";

/// A node row.
pub(crate) fn node(row: &Row) -> Result<Node, CatalogError> {
    let port: i32 = row.try_get("port")?;
    let port = u16::try_from(port).map_err(|_| inconsistent(format!("node port {port} out of range")))?;
    Ok(Node {
        id: NodeId(row.try_get("node_id")?),
        name: row.try_get("name")?,
        host: row.try_get("host")?,
        port,
        is_default: row.try_get("is_default")?,
    })
}

/// A colocation group row.
pub(crate) fn group(row: &Row) -> Result<ColocationGroup, CatalogError> {
    let id = ColocationId(row.try_get("group_id")?);
    let shard_count: i32 = row.try_get("shard_count")?;
    let shard_count = u32::try_from(shard_count)
        .map_err(|_| inconsistent(format!("colocation group {id} has shard count {shard_count}")))?;
    Ok(ColocationGroup { id, shard_count, dist_type: dist_type(row.try_get("dist_type")?)? })
}

/// A shard row.
pub(crate) fn shard(row: &Row) -> Result<Shard, CatalogError> {
    let group = ColocationId(row.try_get("group_id")?);
    let index: i32 = row.try_get("shard_index")?;
    let index = u32::try_from(index).map_err(|_| inconsistent(format!("group {group} has shard index {index}")))?;
    Ok(Shard {
        group,
        index,
        hash_min: hash::from_catalog(row.try_get("hash_min")?),
        hash_max: hash::from_catalog(row.try_get("hash_max")?),
        node: NodeId(row.try_get("node_id")?),
    })
}

/// A row of [`SELECT_TABLES`].
pub(crate) fn table(row: &Row) -> Result<Table, CatalogError> {
    let schema: String = row.try_get("schema_name")?;
    let name: String = row.try_get("table_name")?;
    let missing = |what: &str| inconsistent(format!("table {schema}.{name} has no {what}"));
    let kind = match row.try_get::<_, &str>("kind")? {
        "distributed" => TableKind::Distributed {
            column: row.try_get::<_, Option<String>>("dist_column")?.ok_or_else(|| missing("distribution column"))?,
            dist_type: dist_type(row.try_get::<_, Option<&str>>("dist_type")?.ok_or_else(|| missing("group"))?)?,
            group: ColocationId(row.try_get::<_, Option<i32>>("group_id")?.ok_or_else(|| missing("group"))?),
        },
        "reference" => TableKind::Reference,
        "local" => {
            TableKind::Local { node: NodeId(row.try_get::<_, Option<i32>>("node_id")?.ok_or_else(|| missing("node"))?) }
        }
        other => return Err(inconsistent(format!("table {schema}.{name} has kind {other:?}"))),
    };
    Ok(Table { schema, name, kind })
}

/// The table's kind as the columns `(kind, dist_column, group_id, node_id)` hold it.
pub(crate) fn kind_columns(kind: &TableKind) -> (&'static str, Option<&str>, Option<i32>, Option<i32>) {
    match kind {
        TableKind::Distributed { column, group, .. } => (kind.name(), Some(column), Some(group.0), None),
        TableKind::Reference => (kind.name(), None, None, None),
        TableKind::Local { node } => (kind.name(), None, None, Some(node.0)),
    }
}

/// A count or index as the `integer` columns store it.
pub(crate) fn to_int(value: u32) -> Result<i32, CatalogError> {
    i32::try_from(value).map_err(|_| CatalogError::InvalidShardCount(value))
}

fn dist_type(name: &str) -> Result<DistType, CatalogError> {
    DistType::from_type_name(name).map_err(|e| inconsistent(format!("distribution type {name:?}: {e}")))
}

fn inconsistent(what: String) -> CatalogError {
    CatalogError::Inconsistent(what)
}
