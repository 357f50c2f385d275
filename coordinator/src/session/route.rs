//! The session's view of planning: what to do with a statement's text, asked once per simple
//! Query and once per Parse. Transaction control is the session's own business; everything else
//! is the planner's answer, made concrete with the catalog.

use std::sync::Arc;

use pgshard_catalog::CatalogSnapshot;

use super::txn::{self, TxnCmd};

/// What the session does with a statement.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Transaction control, handled by the session.
    Txn(TxnCmd),
    /// As written, on the home connection (or the connection a transaction block is bound to).
    Home,
    /// Refused with 0A000 and this sentence.
    Refuse(String),
}

/// Decides what to do with SQL text under a catalog snapshot.
pub fn decide(sql: &str, catalog: &Arc<CatalogSnapshot>) -> Decision {
    if let Some(cmd) = txn::classify(sql) {
        return Decision::Txn(cmd);
    }
    if catalog.tables().next().is_none() {
        return Decision::Home;
    }
    Decision::Home
}
