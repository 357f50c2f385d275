//! Reading and writing the catalog in the metadata store.
//!
//! The catalog's tables live in schema `pgshard` of the metadata database. [`MetadataStore::migrate`]
//! creates them idempotently (every coordinator runs it at start; an advisory lock keeps two
//! coordinators from racing), and every change is one transaction.

use tokio_postgres::Client;

use crate::{CatalogError, CatalogSnapshot, Node, NodeId};

/// Lock key for schema migrations (arbitrary, fixed forever).
const MIGRATION_LOCK: i64 = 0x7067_7368_6172_6401;

const SCHEMA: &str = "
CREATE SCHEMA IF NOT EXISTS pgshard;
CREATE TABLE IF NOT EXISTS pgshard.nodes (
    node_id    serial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    host       text NOT NULL,
    port       integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    is_default boolean NOT NULL DEFAULT false,
    added_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS nodes_one_default ON pgshard.nodes (is_default) WHERE is_default;
";

/// A data node as the configuration or the launcher names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRegistration {
    /// Unique node name.
    pub name: String,
    /// Host to connect to.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

/// The catalog's home: a connection to the metadata database.
pub struct MetadataStore {
    client: Client,
}

impl MetadataStore {
    /// Wraps a connected client to the metadata database.
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// Creates the catalog schema if it does not exist yet.
    pub async fn migrate(&mut self) -> Result<(), CatalogError> {
        let tx = self.client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(SCHEMA).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Registers nodes by name, updating the address of a node that already exists. The first
    /// node becomes the default node when the catalog has none.
    pub async fn register_nodes(&mut self, nodes: &[NodeRegistration]) -> Result<(), CatalogError> {
        let tx = self.client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        for node in nodes {
            tx.execute(
                "INSERT INTO pgshard.nodes (name, host, port) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET host = excluded.host, port = excluded.port",
                &[&node.name, &node.host, &i32::from(node.port)],
            )
            .await?;
        }
        tx.execute(
            "UPDATE pgshard.nodes SET is_default = true
             WHERE node_id = (SELECT min(node_id) FROM pgshard.nodes)
               AND NOT EXISTS (SELECT 1 FROM pgshard.nodes WHERE is_default)",
            &[],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reads the whole catalog in one snapshot.
    pub async fn load(&self) -> Result<CatalogSnapshot, CatalogError> {
        let rows = self
            .client
            .query("SELECT node_id, name, host, port, is_default FROM pgshard.nodes ORDER BY node_id", &[])
            .await?;
        let mut nodes = Vec::with_capacity(rows.len());
        for row in rows {
            let port: i32 = row.try_get(3)?;
            let port = u16::try_from(port)
                .map_err(|_| CatalogError::Inconsistent(format!("node port {port} out of range")))?;
            nodes.push(Node {
                id: NodeId(row.try_get(0)?),
                name: row.try_get(1)?,
                host: row.try_get(2)?,
                port,
                is_default: row.try_get(4)?,
            });
        }
        Ok(CatalogSnapshot { nodes })
    }
}
