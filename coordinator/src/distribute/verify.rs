//! `verify_placement`: reads every shard's distribution values and checks each hashes into
//! its shard's range, and that the table's shells hold no rows.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use futures::StreamExt;
use pgshard_catalog::hash::DistType;
use pgshard_catalog::{NodeId, Shard, TableKind};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::admin::{Admin, connect};
use super::checks;
use super::copy::line_hash;
use super::sql::{ident, qualified};
use crate::error::CoordError;

/// Checks where a distributed table's rows are. Returns `(rows checked, rows misplaced)`: a
/// shard row is misplaced when its distribution value is NULL or hashes outside the shard's
/// range; every row found in a shell (on any node) counts as checked and misplaced. Refuses
/// an unknown table (42P01) and one that is not distributed (55000).
pub async fn verify_placement(admin: &Admin<'_>, table: &str) -> Result<(i64, i64), CoordError> {
    let catalog = admin.shared.catalog();
    let default = catalog.default_node()?;
    let mut clients: HashMap<NodeId, Client> = HashMap::new();
    clients.insert(default.id, connect(admin, default).await?);
    let rel = checks::resolve(&clients[&default.id], table).await?;
    let Some(TableKind::Distributed { column, dist_type, group }) =
        catalog.table(&rel.schema, &rel.name).map(|t| t.kind.clone())
    else {
        return Err(CoordError::sql(
            SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("table \"{}\" is not distributed", rel.name),
        ));
    };
    for node in catalog.nodes() {
        if let Entry::Vacant(slot) = clients.entry(node.id) {
            slot.insert(connect(admin, node).await?);
        }
    }
    let (mut checked, mut misplaced) = (0i64, 0i64);
    for shard in catalog.shards_of(group) {
        let sql = format!(
            "COPY (SELECT {} FROM ONLY {}) TO STDOUT",
            ident(&column),
            qualified(&shard.schema_name(), &rel.name)
        );
        let (rows, wrong) = check_shard(&clients[&shard.node], &sql, shard, dist_type).await?;
        checked += rows;
        misplaced += wrong;
    }
    let shell = qualified(&rel.schema, &rel.name);
    for client in clients.values() {
        let row =
            client.query_one(&format!("SELECT count(*) FROM ONLY {shell}"), &[]).await.map_err(CoordError::from_pg)?;
        let rows: i64 = row.try_get(0).map_err(CoordError::from_pg)?;
        checked += rows;
        misplaced += rows;
    }
    Ok((checked, misplaced))
}

/// Streams one shard's distribution values (`sql`, a COPY of that one column) and counts
/// `(rows, rows outside the shard's range or NULL)`.
async fn check_shard(client: &Client, sql: &str, shard: &Shard, ty: DistType) -> Result<(i64, i64), CoordError> {
    let stream = client.copy_out(sql).await.map_err(CoordError::from_pg)?;
    let mut stream = std::pin::pin!(stream);
    let (mut rows, mut misplaced) = (0, 0);
    let mut carry = Vec::new();
    while let Some(chunk) = stream.next().await {
        carry.extend_from_slice(&chunk.map_err(CoordError::from_pg)?);
        let complete = carry.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        // Lines end in `\n`; an empty line is an empty value, not a separator.
        let lines = carry[..complete].strip_suffix(b"\n").map(|body| body.split(|&b| b == b'\n'));
        for line in lines.into_iter().flatten() {
            rows += 1;
            if !line_hash(line, 0, ty)?.is_some_and(|h| shard.contains(h)) {
                misplaced += 1;
            }
        }
        carry.drain(..complete);
    }
    Ok((rows, misplaced))
}
