//! The pgshard catalog: which data nodes exist (and, as later issues add them, which tables,
//! shards and placements). The catalog lives in the metadata store, a PostgreSQL database
//! shared by every coordinator; each coordinator loads it into an immutable [`CatalogSnapshot`]
//! and replaces the snapshot whole when it changes.

mod error;
mod model;
mod store;

pub use error::CatalogError;
pub use model::{CatalogSnapshot, Node, NodeId};
pub use store::{MetadataStore, NodeRegistration};
