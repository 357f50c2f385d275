//! Changing the catalog: one metadata-store transaction per change, serialized by an advisory
//! lock, that bumps `pgshard.catalog_version` and notifies channel [`NOTIFY_CHANNEL`] with the
//! new version as it commits.
//!
//! # Crash rule: the catalog commit is the commit point
//!
//! A change that also touches data nodes (creating shard schemas and tables, copying rows,
//! dropping them) is done in this order by the coordinator:
//!
//! 1. [`crate::MetadataStore::begin`]: takes the catalog lock; read what is needed
//!    ([`CatalogTransaction::table`], [`CatalogTransaction::shards`], ...).
//! 2. Everything that *creates* on the data nodes, idempotently (`CREATE SCHEMA IF NOT EXISTS`,
//!    `CREATE TABLE IF NOT EXISTS`, copies into empty shards): nothing reads it yet, since the
//!    catalog does not point at it.
//! 3. The catalog change ([`CatalogTransaction::add_table`], ...) and the coordinator's own
//!    bookkeeping rows (through [`CatalogTransaction::transaction`]), then
//!    [`CatalogTransaction::commit`]. **This commit is the commit point.**
//! 4. Everything that *destroys* on the data nodes (dropping the old placement of a table that
//!    was undistributed or moved): nothing reads it any more.
//!
//! A crash before the commit leaves the catalog as it was; what step 2 created is an orphan
//! (a shard schema or table the catalog does not name, see [`crate::parse_shard_schema_name`])
//! that a retry reuses and a cleanup may drop. A crash after the commit leaves the change in
//! force; what step 4 had to drop is an orphan of the same kind. Dropping the transaction without
//! committing rolls the change back.

use tokio_postgres::{Client, Transaction};

use crate::hash::{self, DistType};
use crate::model::display_name;
use crate::{CatalogError, ColocationGroup, ColocationId, NodeId, NodeRegistration, Shard, Table, TableKind, rows};

/// Channel on which every committed catalog change is announced; the payload is the new
/// catalog version in decimal.
pub const NOTIFY_CHANNEL: &str = "pgshard_catalog";

/// Lock key serializing catalog changes (arbitrary, fixed forever).
const CATALOG_LOCK: i64 = 0x7067_7368_6172_6402;

/// An open catalog change; see the module docs for the crash rule.
pub struct CatalogTransaction<'a> {
    tx: Transaction<'a>,
    changed: bool,
}

impl<'a> CatalogTransaction<'a> {
    pub(crate) async fn begin(client: &'a mut Client) -> Result<Self, CatalogError> {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CATALOG_LOCK]).await?;
        Ok(Self { tx, changed: false })
    }

    /// The underlying transaction, for the caller's own rows that must commit with the change.
    pub fn transaction(&self) -> &Transaction<'a> {
        &self.tx
    }

    /// Counts this transaction as a catalog change even if no catalog row changed (the caller
    /// changed something followers must reload for).
    pub fn mark_changed(&mut self) {
        self.changed = true;
    }

    /// Commits; when anything changed, first bumps the catalog version and notifies
    /// [`NOTIFY_CHANNEL`]. Returns the catalog version now in force.
    pub async fn commit(self) -> Result<i64, CatalogError> {
        let version: i64 = if self.changed {
            let row = self
                .tx
                .query_one("UPDATE pgshard.catalog_version SET version = version + 1 RETURNING version", &[])
                .await?;
            let version: i64 = row.try_get(0)?;
            self.tx.execute("SELECT pg_notify($1, $2)", &[&NOTIFY_CHANNEL, &version.to_string()]).await?;
            version
        } else {
            self.tx.query_one("SELECT version FROM pgshard.catalog_version", &[]).await?.try_get(0)?
        };
        self.tx.commit().await?;
        Ok(version)
    }

    /// Abandons the change.
    pub async fn rollback(self) -> Result<(), CatalogError> {
        Ok(self.tx.rollback().await?)
    }

    /// A table as the catalog holds it now (including this transaction's changes).
    pub async fn table(&self, schema: &str, name: &str) -> Result<Option<Table>, CatalogError> {
        let sql = format!("{} WHERE t.schema_name = $1 AND t.table_name = $2", rows::SELECT_TABLES);
        self.tx.query_opt(&sql, &[&schema, &name]).await?.as_ref().map(rows::table).transpose()
    }

    /// A colocation group by id.
    pub async fn group(&self, id: ColocationId) -> Result<Option<ColocationGroup>, CatalogError> {
        let sql = "SELECT group_id, shard_count, dist_type FROM pgshard.colocation_groups WHERE group_id = $1";
        self.tx.query_opt(sql, &[&id.0]).await?.as_ref().map(rows::group).transpose()
    }

    /// The shards of a group, sorted by index.
    pub async fn shards(&self, group: ColocationId) -> Result<Vec<Shard>, CatalogError> {
        let sql = "SELECT group_id, shard_index, hash_min, hash_max, node_id FROM pgshard.shards
                   WHERE group_id = $1 ORDER BY shard_index";
        self.tx.query(sql, &[&group.0]).await?.iter().map(rows::shard).collect()
    }

    /// The default group for `colocate_with => 'default'`: the oldest group with this shard
    /// count and distribution type.
    pub async fn find_colocation_group(
        &self,
        shard_count: u32,
        dist_type: DistType,
    ) -> Result<Option<ColocationId>, CatalogError> {
        let sql = "SELECT group_id FROM pgshard.colocation_groups WHERE shard_count = $1 AND dist_type = $2
                   ORDER BY group_id LIMIT 1";
        let row = self.tx.query_opt(sql, &[&rows::to_int(shard_count)?, &dist_type.name()]).await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?.map(ColocationId))
    }

    /// Creates a group of `shard_count` equal hash ranges placed round-robin over `nodes` in id
    /// order ([`Shard::layout`]).
    pub async fn create_colocation_group(
        &mut self,
        shard_count: u32,
        dist_type: DistType,
        nodes: &[NodeId],
    ) -> Result<ColocationGroup, CatalogError> {
        // Checks the shard count and node list before anything is written.
        let mut shards = Shard::layout(ColocationId(0), shard_count, nodes)?;
        for &node in nodes {
            self.check_node(node).await?;
        }
        let row = self
            .tx
            .query_one(
                "INSERT INTO pgshard.colocation_groups (shard_count, dist_type) VALUES ($1, $2) RETURNING group_id",
                &[&rows::to_int(shard_count)?, &dist_type.name()],
            )
            .await?;
        let group = ColocationGroup { id: ColocationId(row.try_get(0)?), shard_count, dist_type };
        for shard in &mut shards {
            shard.group = group.id;
        }
        let indexes = shards.iter().map(|s| rows::to_int(s.index)).collect::<Result<Vec<i32>, _>>()?;
        let mins: Vec<i64> = shards.iter().map(|s| hash::to_catalog(s.hash_min)).collect();
        let maxs: Vec<i64> = shards.iter().map(|s| hash::to_catalog(s.hash_max)).collect();
        let node_ids: Vec<i32> = shards.iter().map(|s| s.node.0).collect();
        self.tx
            .execute(
                "INSERT INTO pgshard.shards (group_id, shard_index, hash_min, hash_max, node_id)
                 SELECT $1, * FROM unnest($2::integer[], $3::bigint[], $4::bigint[], $5::integer[])",
                &[&group.id.0, &indexes, &mins, &maxs, &node_ids],
            )
            .await?;
        self.changed = true;
        Ok(group)
    }

    /// Removes a colocation group and its shards; refused while tables are distributed in it.
    pub async fn remove_colocation_group(&mut self, id: ColocationId) -> Result<(), CatalogError> {
        let row = self.tx.query_one("SELECT count(*) FROM pgshard.tables WHERE group_id = $1", &[&id.0]).await?;
        let tables: i64 = row.try_get(0)?;
        if tables > 0 {
            return Err(CatalogError::GroupInUse { group: id, tables });
        }
        self.tx.execute("DELETE FROM pgshard.shards WHERE group_id = $1", &[&id.0]).await?;
        let removed = self.tx.execute("DELETE FROM pgshard.colocation_groups WHERE group_id = $1", &[&id.0]).await?;
        if removed == 0 {
            return Err(CatalogError::UndefinedGroup(id));
        }
        self.changed = true;
        Ok(())
    }

    /// Adds a table the catalog does not know yet.
    pub async fn add_table(&mut self, table: &Table) -> Result<(), CatalogError> {
        if let Some(existing) = self.table(&table.schema, &table.name).await? {
            return Err(CatalogError::DuplicateTable { table: table.display_name(), kind: existing.kind.described() });
        }
        self.check_kind(table).await?;
        let (kind, column, group, node) = rows::kind_columns(&table.kind);
        self.tx
            .execute(
                "INSERT INTO pgshard.tables (schema_name, table_name, kind, dist_column, group_id, node_id)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&table.schema, &table.name, &kind, &column, &group, &node],
            )
            .await?;
        self.changed = true;
        Ok(())
    }

    /// Removes a table from the catalog and returns what it was.
    pub async fn remove_table(&mut self, schema: &str, name: &str) -> Result<Table, CatalogError> {
        let table = self.existing(schema, name).await?;
        self.tx
            .execute("DELETE FROM pgshard.tables WHERE schema_name = $1 AND table_name = $2", &[&schema, &name])
            .await?;
        self.changed = true;
        Ok(table)
    }

    /// Changes where a table's rows live and returns what it was. An undistributed table may
    /// become distributed or reference (`create_distributed_table`, `create_reference_table`)
    /// or move to another node; a distributed or reference table may become undistributed
    /// (`undistribute_table`); a distributed or reference table cannot become distributed or
    /// reference again ([`CatalogError::DuplicateTable`]: undistribute it first).
    pub async fn set_table_kind(&mut self, schema: &str, name: &str, kind: TableKind) -> Result<Table, CatalogError> {
        let old = self.existing(schema, name).await?;
        if old.kind.is_spread() && kind.is_spread() {
            return Err(CatalogError::DuplicateTable { table: old.display_name(), kind: old.kind.described() });
        }
        let new = Table { schema: schema.to_owned(), name: name.to_owned(), kind };
        self.check_kind(&new).await?;
        let (kind, column, group, node) = rows::kind_columns(&new.kind);
        self.tx
            .execute(
                "UPDATE pgshard.tables SET kind = $3, dist_column = $4, group_id = $5, node_id = $6
                 WHERE schema_name = $1 AND table_name = $2",
                &[&schema, &name, &kind, &column, &group, &node],
            )
            .await?;
        self.changed = true;
        Ok(old)
    }

    /// Registers a node by name (or updates its address) and returns its id.
    pub async fn register_node(&mut self, node: &NodeRegistration) -> Result<NodeId, CatalogError> {
        let changed = self
            .tx
            .query_opt(
                "INSERT INTO pgshard.nodes (name, host, port) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET host = excluded.host, port = excluded.port
                 WHERE (nodes.host, nodes.port) IS DISTINCT FROM (excluded.host, excluded.port)
                 RETURNING node_id",
                &[&node.name, &node.host, &i32::from(node.port)],
            )
            .await?;
        let row = match changed {
            Some(row) => {
                self.changed = true;
                row
            }
            None => self.tx.query_one("SELECT node_id FROM pgshard.nodes WHERE name = $1", &[&node.name]).await?,
        };
        Ok(NodeId(row.try_get(0)?))
    }

    /// Makes the node with the smallest id the default node when none is.
    pub async fn ensure_default_node(&mut self) -> Result<(), CatalogError> {
        let updated = self
            .tx
            .execute(
                "UPDATE pgshard.nodes SET is_default = true
                 WHERE node_id = (SELECT min(node_id) FROM pgshard.nodes)
                   AND NOT EXISTS (SELECT 1 FROM pgshard.nodes WHERE is_default)",
                &[],
            )
            .await?;
        self.changed |= updated > 0;
        Ok(())
    }

    async fn existing(&self, schema: &str, name: &str) -> Result<Table, CatalogError> {
        self.table(schema, name)
            .await?
            .ok_or_else(|| CatalogError::UndefinedTable { table: display_name(schema, name) })
    }

    /// The group or node a table points at exists (and a distributed table's type is its group's).
    async fn check_kind(&self, table: &Table) -> Result<(), CatalogError> {
        match &table.kind {
            TableKind::Distributed { dist_type, group, .. } => {
                let found = self.group(*group).await?.ok_or(CatalogError::UndefinedGroup(*group))?;
                if found.dist_type != *dist_type {
                    return Err(CatalogError::DistTypeMismatch {
                        table: table.display_name(),
                        table_type: dist_type.name(),
                        group: *group,
                        group_type: found.dist_type.name(),
                    });
                }
                Ok(())
            }
            TableKind::Local { node } => self.check_node(*node).await,
            TableKind::Reference => Ok(()),
        }
    }

    async fn check_node(&self, node: NodeId) -> Result<(), CatalogError> {
        let found = self.tx.query_opt("SELECT 1 FROM pgshard.nodes WHERE node_id = $1", &[&node.0]).await?;
        found.map(|_| ()).ok_or(CatalogError::UndefinedNode(node))
    }
}
