//! Errors of the catalog crate.

/// What can go wrong while reading or changing the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The metadata store could not be reached or refused a statement.
    #[error("metadata store: {0}")]
    Store(#[from] tokio_postgres::Error),
    /// The catalog holds no data node, so no statement can be placed.
    #[error("no data node is registered in the catalog")]
    NoDataNode,
    /// A row in the catalog does not make sense (a port out of range, say).
    #[error("catalog is inconsistent: {0}")]
    Inconsistent(String),
}
