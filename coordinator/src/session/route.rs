//! What the session does with a statement, as decided by `Session::decide` (see `dispatch`):
//! transaction control is the session's own business; everything else is the planner's answer
//! under one catalog snapshot.

use std::sync::Arc;

use pgshard_catalog::CatalogSnapshot;
use pgshard_planner::Plan;

use super::txn::TxnCmd;

/// What the session does with a statement.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Transaction control, handled by the session.
    Txn(TxnCmd),
    /// As written, on the home connection (or the connection a transaction block is bound to).
    Home,
    /// Refused with 0A000 and this sentence.
    Refuse(String),
    /// Distributed work planned under this catalog.
    Plan(Arc<CatalogSnapshot>, Box<Plan>),
}
