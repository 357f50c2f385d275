//! Answering a read over copies of its distributed tables on the default node (see the
//! planner's `pull` module): in one transaction on home (a scratch connection inside a block),
//! each table gets a temporary table of its name shaped like its shell, every shard's rows
//! stream into it as binary COPY (frame by frame, never held whole), and PostgreSQL answers the
//! query as written over them; the temporary tables are dropped at commit.

use std::sync::Arc;

use pgshard_catalog::{CatalogSnapshot, ColocationId, Shard};
use bytes::Bytes;
use pgshard_planner::{PULL_SCHEMA, PullPlan, PullTable};

use super::fanout::Merged;
use super::relay::Interrupted;
use super::Session;
use super::txn::TxnState;
use crate::error::CoordError;

impl Session {
    /// Runs a pull plan and queues its answer.
    pub(super) async fn pull_on_home(&mut self, catalog: &Arc<CatalogSnapshot>, pull: &PullPlan) -> Result<(), Interrupted> {
        if pull.writes && !matches!(self.txn, TxnState::Idle) {
            let e = CoordError::Unsupported(format!("{} inside a transaction block (a write to an ordinary table that reads distributed tables)", pull.why));
            return self.answer_error(&e).await;
        }
        if !pull.writes && self.try_broadcast(catalog, pull).await? {
            return Ok(());
        }
        let h = match self.merge_conn(catalog).await {
            Ok(h) => h,
            Err(e) => return self.answer_error(&e).await,
        };
        if let Some(e) = self.copies_on_home(catalog, &pull.tables, &[], h).await? {
            return self.end_on_home(h, Merged { error: Some(e), ..Merged::default() }).await;
        }
        let merged = self.final_on_home(h, &pull.query.render(Some(PULL_SCHEMA))).await?;
        self.end_on_home(h, merged).await
    }

    /// Opens a transaction on home (connection `h`) with a temporary table per table of
    /// `tables` (and the statements of `also`), and streams every shard's rows into them.
    /// Returns the first error.
    pub(super) async fn copies_on_home(
        &mut self,
        catalog: &Arc<CatalogSnapshot>,
        tables: &[PullTable],
        also: &[String],
        h: usize,
    ) -> Result<Option<Bytes>, Interrupted> {
        let mut setup = vec!["BEGIN".to_owned()];
        for t in tables {
            setup.push(format!("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS {} WITH NO DATA", t.temp_name, t.rows.render(None)));
        }
        setup.extend_from_slice(also);
        if let (_, Some(e)) = self.rows_on(h, &setup.join(";\n")).await? {
            return Ok(Some(e));
        }
        for t in tables {
            let shards: Vec<&Shard> = catalog.shards_of(ColocationId(t.group)).iter().collect();
            let table = format!("{PULL_SCHEMA}.{}", t.temp_name);
            if let Some(e) = self.copy_shards_to_home(catalog, &t.rows, &table, &shards, h).await? {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }
}
