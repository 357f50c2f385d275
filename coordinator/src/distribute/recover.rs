//! The verdict on prepared transactions that a placement operation or a DDL fan-out left on
//! the data nodes when it was cut short (recovery, [`crate::dtx::recover`], applies it). Each gid, `pgshard_<op>_<xid>_<random>`, names the
//! metadata-store transaction whose commit was the operation's commit point, so the metadata
//! store alone decides: committed means COMMIT PREPARED, aborted means ROLLBACK PREPARED, in
//! progress means the operation is still running (left alone).

use std::time::Duration;

use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

use super::admin::Admin;
use crate::error::CoordError;

/// Operations whose gids this module settles.
const OPS: [&str; 4] = ["dist", "ref", "undist", "ddl"];

/// The metadata-store transaction id a gid of ours carries.
pub fn gid_xid(gid: &str) -> Option<u64> {
    let rest = gid.strip_prefix("pgshard_")?;
    let (op, rest) = rest.split_once('_')?;
    let (xid, random) = rest.split_once('_')?;
    if !OPS.contains(&op) || random.is_empty() || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    xid.parse().ok()
}

/// Whether metadata-store transaction `xid` committed (`Some(true)`), aborted
/// (`Some(false)`), or is still running or too old to tell (`None`). Asks on a connection of
/// its own, since the store's may be the one that failed.
pub async fn xact_committed(admin: &Admin<'_>, xid: u64) -> Result<Option<bool>, CoordError> {
    let dsn = &admin.shared.config.metadata.dsn;
    let config: tokio_postgres::Config =
        dsn.parse().map_err(|e| CoordError::sql(SqlState::CONNECTION_EXCEPTION, format!("bad metadata DSN: {e}")))?;
    let connecting = tokio::time::timeout(Duration::from_secs(10), config.connect(NoTls));
    let (client, connection) = connecting
        .await
        .map_err(|_| CoordError::NodeLost("metadata store did not answer".into()))?
        .map_err(CoordError::from_pg)?;
    tokio::spawn(connection);
    let row = client
        .query_one("SELECT pg_xact_status($1::text::xid8)", &[&xid.to_string()])
        .await
        .map_err(CoordError::from_pg)?;
    let status: Option<String> = row.try_get(0).map_err(CoordError::from_pg)?;
    Ok(match status.as_deref() {
        Some("committed") => Some(true),
        Some("aborted") => Some(false),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gids_carry_the_deciding_transaction() {
        assert_eq!(gid_xid("pgshard_dist_1234_00ff00ff00ff00ff"), Some(1234));
        assert_eq!(gid_xid("pgshard_ddl_7_0a"), Some(7));
        assert_eq!(gid_xid("pgshard_other_7_0a"), None);
        assert_eq!(gid_xid("pgshard_ddl_x_0a"), None);
        assert_eq!(gid_xid("pgshard_ddl_7_"), None);
        assert_eq!(gid_xid("client_gid"), None);
    }
}
