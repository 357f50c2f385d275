//! The pgshard catalog: which data nodes exist, which tables are distributed (hashed into the
//! shards of a colocation group), replicated to every node (reference tables) or kept whole on
//! one node, and where each shard lives. The catalog lives in the metadata store, a PostgreSQL
//! database shared by every coordinator; each coordinator loads it into an immutable
//! [`CatalogSnapshot`] and replaces the snapshot whole when it changes (every change bumps the
//! catalog version and notifies [`NOTIFY_CHANNEL`]).

mod change;
mod error;
pub mod hash;
mod model;
mod rows;
mod snapshot;
mod store;

pub use change::{CatalogTransaction, NOTIFY_CHANNEL};
pub use error::CatalogError;
pub use model::{
    ColocationGroup, ColocationId, MAX_SHARD_COUNT, Node, NodeId, SHARD_SCHEMA_PREFIX, Shard, Table, TableKind,
    parse_shard_schema_name, shard_schema_name,
};
pub use snapshot::{CatalogParts, CatalogSnapshot};
pub use store::{MetadataStore, NodeRegistration, SCHEMA_VERSION};
