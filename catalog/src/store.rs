//! Reading the catalog from the metadata store and keeping its schema current.
//!
//! The catalog's tables live in schema `pgshard` of the metadata database. [`MetadataStore::migrate`]
//! brings them to the version this build knows, one numbered step at a time (`migrations/`),
//! recording the step reached in `pgshard.schema_version`; every coordinator runs it at start and
//! an advisory lock keeps two coordinators from racing. Changes go through
//! [`MetadataStore::begin`] (see [`crate::CatalogTransaction`]); reads through
//! [`MetadataStore::load`], which sees one consistent state.

use tokio_postgres::{Client, IsolationLevel};

use crate::{CatalogError, CatalogParts, CatalogSnapshot, CatalogTransaction, rows};

/// Lock key for schema migrations (arbitrary, fixed forever).
const MIGRATION_LOCK: i64 = 0x7067_7368_6172_6401;

/// Migration steps, in order; step `i` takes the schema from version `i` to `i + 1`. Append only:
/// a released step never changes.
const MIGRATIONS: [&str; 3] = [
    include_str!("migrations/v1_nodes.sql"),
    include_str!("migrations/v2_tables.sql"),
    include_str!("migrations/v3_transactions.sql"),
];

/// The catalog schema version this build migrates to.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

const SCHEMA_VERSION_TABLE: &str = "
CREATE SCHEMA IF NOT EXISTS pgshard;
CREATE TABLE IF NOT EXISTS pgshard.schema_version (
    one_row boolean PRIMARY KEY DEFAULT true CHECK (one_row),
    version integer NOT NULL
);
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

    /// The connection, for the caller's own statements outside catalog changes.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Creates the catalog schema, or upgrades it step by step to [`SCHEMA_VERSION`]. A store
    /// from before schema versioning (nodes only) counts as version 0. Refuses a store that a
    /// newer pgshard has migrated further.
    pub async fn migrate(&mut self) -> Result<(), CatalogError> {
        let tx = self.client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
        tx.batch_execute(SCHEMA_VERSION_TABLE).await?;
        let found = match tx.query_opt("SELECT version FROM pgshard.schema_version", &[]).await? {
            Some(row) => row.try_get::<_, i32>(0)?,
            None => 0,
        };
        if found > SCHEMA_VERSION {
            return Err(CatalogError::SchemaTooNew { found, supported: SCHEMA_VERSION });
        }
        let done = usize::try_from(found).unwrap_or(0);
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            tracing::info!(from = step, to = step + 1, "migrating the catalog schema");
            tx.batch_execute(sql).await?;
        }
        if found != SCHEMA_VERSION {
            tx.execute(
                "INSERT INTO pgshard.schema_version (version) VALUES ($1)
                 ON CONFLICT (one_row) DO UPDATE SET version = excluded.version",
                &[&SCHEMA_VERSION],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Registers nodes by name, updating the address of a node that already exists. The first
    /// node becomes the default node when the catalog has none. Bumps the catalog version only
    /// when something changed.
    pub async fn register_nodes(&mut self, nodes: &[NodeRegistration]) -> Result<(), CatalogError> {
        let mut tx = self.begin().await?;
        for node in nodes {
            tx.register_node(node).await?;
        }
        tx.ensure_default_node().await?;
        tx.commit().await?;
        Ok(())
    }

    /// Starts a catalog change; see [`CatalogTransaction`] for the rules.
    pub async fn begin(&mut self) -> Result<CatalogTransaction<'_>, CatalogError> {
        CatalogTransaction::begin(&mut self.client).await
    }

    /// The catalog version committed now (cheap; compare with [`CatalogSnapshot::version`]).
    pub async fn current_version(&self) -> Result<i64, CatalogError> {
        let row = self.client.query_one("SELECT version FROM pgshard.catalog_version", &[]).await?;
        Ok(row.try_get(0)?)
    }

    /// Reads the whole catalog as of one moment (one REPEATABLE READ, read-only transaction).
    pub async fn load(&mut self) -> Result<CatalogSnapshot, CatalogError> {
        let tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let version: i64 = tx.query_one("SELECT version FROM pgshard.catalog_version", &[]).await?.try_get(0)?;
        let mut parts = CatalogParts { version, ..CatalogParts::default() };
        for row in tx.query(rows::SELECT_NODES, &[]).await? {
            parts.nodes.push(rows::node(&row)?);
        }
        for row in tx.query(rows::SELECT_GROUPS, &[]).await? {
            parts.groups.push(rows::group(&row)?);
        }
        for row in tx.query(rows::SELECT_SHARDS, &[]).await? {
            parts.shards.push(rows::shard(&row)?);
        }
        for row in tx.query(rows::SELECT_TABLES, &[]).await? {
            parts.tables.push(rows::table(&row)?);
        }
        tx.commit().await?;
        CatalogSnapshot::new(parts)
    }
}
