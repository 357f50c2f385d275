//! Errors of the catalog crate, each mapped to the SQLSTATE PostgreSQL would use.

use tokio_postgres::error::SqlState;

use crate::{ColocationId, NodeId};

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
    /// The metadata store was migrated by a newer pgshard than this one.
    #[error("the metadata store has catalog schema version {found}, this pgshard knows up to {supported}")]
    SchemaTooNew {
        /// Version found in `pgshard.schema_version`.
        found: i32,
        /// Latest version this build can migrate to.
        supported: i32,
    },
    /// The table is already in the catalog (already distributed, say).
    #[error("table \"{table}\" is already {kind}")]
    DuplicateTable {
        /// `schema.name` of the table.
        table: String,
        /// What it already is: "distributed", "a reference table", "an undistributed table".
        kind: &'static str,
    },
    /// The table is not in the catalog.
    #[error("table \"{table}\" is not in the pgshard catalog")]
    UndefinedTable {
        /// `schema.name` of the table.
        table: String,
    },
    /// No colocation group has this id.
    #[error("colocation group {0} does not exist")]
    UndefinedGroup(ColocationId),
    /// No data node has this id.
    #[error("data node {0} does not exist")]
    UndefinedNode(NodeId),
    /// A distributed table's column type does not match its colocation group's.
    #[error(
        "cannot colocate table \"{table}\" with colocation group {group}: its distribution column \
         type is {table_type}, the group's is {group_type}"
    )]
    DistTypeMismatch {
        /// `schema.name` of the table.
        table: String,
        /// The table's distribution column type.
        table_type: &'static str,
        /// The group it was to join.
        group: ColocationId,
        /// The group's distribution column type.
        group_type: &'static str,
    },
    /// A shard count outside `1..=MAX_SHARD_COUNT`.
    #[error("shard_count must be between 1 and {max}, not {0}", max = crate::MAX_SHARD_COUNT)]
    InvalidShardCount(u32),
    /// A colocation group cannot be removed while tables are distributed in it.
    #[error("cannot remove colocation group {group}: {tables} table(s) are distributed in it")]
    GroupInUse {
        /// The group.
        group: ColocationId,
        /// How many tables still use it.
        tables: i64,
    },
}

impl CatalogError {
    /// The SQLSTATE PostgreSQL would use for this failure.
    ///
    /// A metadata store error keeps its code only when it tells the client something it can act
    /// on (retry after a serialization failure or deadlock, the server shutting down); anything
    /// else the store says is the coordinator's internal business (XX000), and a lost connection
    /// is 08006.
    pub fn sqlstate(&self) -> &'static SqlState {
        match self {
            CatalogError::Store(e) => store_sqlstate(e),
            CatalogError::NoDataNode | CatalogError::SchemaTooNew { .. } => &SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
            CatalogError::Inconsistent(_) => &SqlState::INTERNAL_ERROR,
            CatalogError::DuplicateTable { .. } => &SqlState::DUPLICATE_TABLE,
            CatalogError::UndefinedTable { .. } => &SqlState::UNDEFINED_TABLE,
            CatalogError::UndefinedGroup(_) | CatalogError::UndefinedNode(_) => &SqlState::UNDEFINED_OBJECT,
            CatalogError::DistTypeMismatch { .. } => &SqlState::DATATYPE_MISMATCH,
            CatalogError::InvalidShardCount(_) => &SqlState::INVALID_PARAMETER_VALUE,
            CatalogError::GroupInUse { .. } => &SqlState::DEPENDENT_OBJECTS_STILL_EXIST,
        }
    }
}

fn store_sqlstate(e: &tokio_postgres::Error) -> &'static SqlState {
    const PASSED_ON: [&SqlState; 5] = [
        &SqlState::T_R_SERIALIZATION_FAILURE,
        &SqlState::T_R_DEADLOCK_DETECTED,
        &SqlState::ADMIN_SHUTDOWN,
        &SqlState::CRASH_SHUTDOWN,
        &SqlState::CANNOT_CONNECT_NOW,
    ];
    match e.code() {
        None => &SqlState::CONNECTION_FAILURE,
        Some(code) => PASSED_ON.into_iter().find(|c| *c == code).unwrap_or(&SqlState::INTERNAL_ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_and_undefined_tables_use_postgres_codes() {
        let dup = CatalogError::DuplicateTable { table: "public.orders".into(), kind: "distributed" };
        assert_eq!(dup.sqlstate().code(), "42P07");
        assert_eq!(dup.to_string(), "table \"public.orders\" is already distributed");
        let undef = CatalogError::UndefinedTable { table: "public.orders".into() };
        assert_eq!(undef.sqlstate().code(), "42P01");
        assert_eq!(CatalogError::InvalidShardCount(0).sqlstate().code(), "22023");
    }
}
