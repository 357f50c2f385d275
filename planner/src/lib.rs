//! The pgshard planner: pure functions from statement text and the catalog (seen through
//! [`Relations`]) to a plan saying where the statement runs and how results combine. No I/O, no
//! state, nothing async.
//!
//! [`plan_sql`] is the entry point: it returns a [`Plan`] (default node, every node, shards of a
//! colocation group with a merge step, DDL, a pgshard function call, or a refusal). The
//! pushdown rules are described in the crate's README. The older [`plan`] /
//! [`DistributedPlan::PassThrough`] pair remains for the coordinator's default-node lookup.

mod aggregate;
mod clauses;
mod colocate;
mod ddl;
mod decorrelate;
mod function;
mod funcs;
mod insert;
mod insert_select;
mod merge;
mod modifying;
mod names;
mod narrow;
mod params;
mod plan;
mod pull;
mod refs;
pub mod route;
mod shard;
mod sort;
mod substitute;
mod template;
#[cfg(test)]
mod testing;
mod text;
mod used;
pub mod times;
mod windows;

pub use aggregate::FinalQuery;
pub use ddl::DdlPlan;
pub use function::{ArgValue, FunctionCall, NAMES as FUNCTION_NAMES};
pub use insert::{InsertSplit, RowSpan};
pub use insert_select::InsertSelect;
pub use merge::{Limit, MergeStep, MultiShard, SortKey};
pub use params::{bind_params, max_param};
pub use plan::{CopyFormat, CopyIn, Explain, Plan, plan_sql};
pub use pull::{Broadcast, PULL_SCHEMA, PullPlan, PullTable};
pub use route::{DistKey, RelationKind, Relations};
pub use shard::{ShardPlan, StmtKind, Targets};
pub use substitute::{Substitute, Subquery};
pub use template::ShardTemplate;

use std::fmt;

use pgshard_catalog::{CatalogError, CatalogSnapshot, NodeId};

/// Why a statement could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The catalog cannot place the statement.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// Where a statement runs and how its results are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DistributedPlan {
    /// Send the client's messages unchanged to one data node and relay its answers unchanged.
    PassThrough {
        /// The node that runs the statement.
        node: NodeId,
    },
}

impl fmt::Display for DistributedPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DistributedPlan::PassThrough { node } => write!(f, "PassThrough node={node}"),
        }
    }
}

/// Plans a statement. Every statement currently passes through to the default node, so only
/// the catalog is consulted; the statement text is not needed yet.
pub fn plan(catalog: &CatalogSnapshot) -> Result<DistributedPlan, PlanError> {
    Ok(DistributedPlan::PassThrough { node: catalog.default_node()?.id })
}

#[cfg(test)]
mod tests {
    use pgshard_catalog::{CatalogParts, Node};

    use super::*;

    #[test]
    fn everything_goes_to_the_default_node() {
        let catalog = CatalogSnapshot::new(CatalogParts {
            nodes: vec![
                Node { id: NodeId(1), name: "dn1".into(), host: "h".into(), port: 1, is_default: false },
                Node { id: NodeId(2), name: "dn2".into(), host: "h".into(), port: 2, is_default: true },
            ],
            ..CatalogParts::default()
        })
        .unwrap();
        assert_eq!(plan(&catalog).unwrap().to_string(), "PassThrough node=2");
    }

    #[test]
    fn no_node_no_plan() {
        assert!(plan(&CatalogSnapshot::default()).is_err());
    }
}
