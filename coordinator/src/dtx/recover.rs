//! Recovery: settles the prepared transactions a crash left on the data nodes. One round lists
//! every node's prepared transactions named `pgshard_...` (in every database), then:
//! - a distributed transaction of this coordinator (`pgshard_tx_<name>_...`) is committed when
//!   its decision record exists, rolled back when it does not, and left alone while this
//!   process is committing it (see [`pgshard_txn::recovery`] for why that order is safe);
//! - a placement or DDL operation (`pgshard_<op>_<xid>_...`) is decided by its metadata-store
//!   transaction (see [`crate::distribute`]);
//! - another coordinator's transactions are left to it.
//!
//! Decision records whose transactions are complete everywhere are deleted. A node that cannot
//! be reached is skipped and tried again next round; records stay until every node was seen.

use std::collections::{BTreeMap, HashMap, HashSet};

use pgshard_txn::{Gid, Verdict, finished_records, verdict};
use tokio_postgres::error::SqlState;

use crate::distribute::{Admin, connect};
use crate::error::CoordError;
use crate::server::Shared;

/// One prepared transaction recovery settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// The data node's name.
    pub node: String,
    /// The database it was prepared in.
    pub database: String,
    /// Its gid.
    pub gid: String,
    /// Committed (else rolled back).
    pub committed: bool,
}

/// Runs one recovery round; returns what it settled.
pub async fn recover(shared: &Shared) -> Result<Vec<Resolution>, CoordError> {
    let dtx = &shared.dtx;
    let _one_at_a_time = dtx.recovering.lock().await;
    let (user, password) = super::store_identity(&shared.config.metadata.dsn)?;

    let before = dtx.records().await?;
    let catalog = shared.catalog();
    let mut all_listed = true;
    // (node index, database) -> gids
    let mut found: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
    for (k, node) in catalog.nodes().iter().enumerate() {
        let listed = async {
            let admin = Admin { shared, user: &user, database: "postgres", password: password.as_deref() };
            let client = connect(&admin, node).await?;
            client
                .query(
                    "SELECT database::text, gid FROM pg_catalog.pg_prepared_xacts WHERE gid LIKE 'pgshard\\_%'",
                    &[],
                )
                .await
                .map_err(CoordError::from_pg)
        };
        match listed.await {
            Ok(rows) => {
                for row in rows {
                    let (Ok(db), Ok(gid)) = (row.try_get::<_, String>(0), row.try_get::<_, String>(1)) else { continue };
                    found.entry((k, db)).or_default().push(gid);
                }
            }
            Err(e) => {
                all_listed = false;
                tracing::debug!(node = %node.name, error = %e, "recovery could not list a node's prepared transactions");
            }
        }
    }
    let decided = dtx.records().await?;

    let mut settled = Vec::new();
    let mut still: HashSet<Gid> = HashSet::new();
    let mut op_verdicts: HashMap<u64, Option<bool>> = HashMap::new();
    for ((k, database), gids) in found {
        let node = &catalog.nodes()[k];
        let admin = Admin { shared, user: &user, database: &database, password: password.as_deref() };
        let client = match connect(&admin, node).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(node = %node.name, %database, error = %e, "recovery could not connect");
                still.extend(gids.iter().filter_map(|g| Gid::parse_node_gid(g)).map(|(g, _)| g));
                continue;
            }
        };
        for gid in gids {
            let commit = if let Some((g, _)) = Gid::parse_node_gid(&gid) {
                if g.coordinator != dtx.name {
                    continue;
                }
                match verdict(decided.contains(&g), dtx.in_flight.contains(&g)) {
                    Verdict::Commit => true,
                    Verdict::Rollback => false,
                    Verdict::Leave => {
                        still.insert(g);
                        continue;
                    }
                }
            } else if let Some(xid) = crate::distribute::gid_xid(&gid) {
                let v = match op_verdicts.get(&xid) {
                    Some(v) => *v,
                    None => {
                        let v = crate::distribute::xact_committed(&admin, xid).await?;
                        op_verdicts.insert(xid, v);
                        v
                    }
                };
                match v {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                continue;
            };
            let sql = format!("{} PREPARED '{}'", if commit { "COMMIT" } else { "ROLLBACK" }, gid.replace('\'', "''"));
            match client.batch_execute(&sql).await {
                Ok(()) => settled.push(Resolution { node: node.name.clone(), database: database.clone(), gid, committed: commit }),
                Err(e) if e.code() == Some(&SqlState::UNDEFINED_OBJECT) => {} // settled meanwhile
                Err(e) => {
                    tracing::warn!(node = %node.name, %gid, error = %e, "recovery could not settle a prepared transaction");
                    if let Some((g, _)) = Gid::parse_node_gid(&gid) {
                        still.insert(g);
                    }
                }
            }
        }
    }
    let finished = finished_records(&before, &still, all_listed);
    dtx.delete_records(&finished).await?;
    Ok(settled)
}
