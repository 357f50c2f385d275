//! INSERT ... SELECT into a distributed table, and INSERT ... VALUES whose distribution values
//! are computed (see the planner's `insert_select`): on a scratch connection to home, in a
//! transaction of its own, the distributed tables the query reads are copied into temporary
//! tables, the query's rows go into a temporary table shaped like the target (PostgreSQL casts
//! them as its INSERT would, and fills `DEFAULT` and a distribution column left out, once), and
//! that table is read back as text COPY, split by shard and copied into the shards by the
//! session's connections, in the client's block or an implicit one (atomic across nodes). With
//! ON CONFLICT or RETURNING, each shard's rows are copied into a table of the transaction's own
//! in the shard's schema and the shard inserts them from there with the statement's clauses;
//! its rows are the answer.

use std::sync::Arc;

use bytes::Bytes;
use pgshard_catalog::{CatalogSnapshot, ColocationId, NodeId, Shard};
use pgshard_planner::{InsertSelect, PULL_SCHEMA};
use tokio_postgres::error::SqlState;

use super::dispatch::quote_ident;
use super::fanout::Merged;
use super::relay::Interrupted;
use super::txn::Writes;
use super::{Session, msg};
use crate::distribute::copy::ShardRouter;
use crate::error::CoordError;

const STAGE: &str = "pg_temp.pgshard_insert";

/// The table in a shard's schema that receives the shard's rows, inside the transaction of
/// backend `pid` (created and dropped in it, so no other transaction ever sees it; not a
/// temporary table, which PREPARE TRANSACTION refuses).
fn rows_table(shard: &Shard, pid: i32) -> String {
    format!("{}.pgshard_rows_{pid}", shard.schema_name())
}

impl Session {
    /// Runs an INSERT ... SELECT into a distributed table and queues its answer.
    pub(super) async fn run_insert_select(&mut self, catalog: &Arc<CatalogSnapshot>, plan: &InsertSelect) -> Result<(), Interrupted> {
        // Without a column list the query fills the table's first columns, as many as it
        // returns (PostgreSQL's Describe over the shells says how many).
        let mut plan = plan.clone();
        if !plan.listed {
            let n = match self.describe_on_home(&plan.query.render(None)).await? {
                Ok(description) => msg::row_description_names(&description).map_err(Interrupted::Protocol)?.len(),
                Err(e) => {
                    self.fail_block();
                    return self.finish_merged(&Merged { error: Some(e), ..Merged::default() });
                }
            };
            if let Some(columns) = plan.target.columns.as_mut() {
                columns.truncate(n.max(1));
            }
            plan.filled = plan.filled.min(n.max(1));
            if plan.target.dist_index >= n {
                let table = &plan.target.table;
                return self.refuse(CoordError::Unsupported(format!("INSERT ... SELECT into \"{table}\" without a value for its distribution column"))).await;
            }
        }
        let plan = &plan;
        let columns = plan.column_list(None);
        let filled = plan.column_list(Some(plan.filled));
        let home = self.conns.get(0).node;
        let h = match self.scratch_to(catalog, home).await {
            Ok(h) => h,
            Err(e) => return self.refuse(e).await,
        };
        let stage = match plan.defaults {
            true => format!("CREATE TEMPORARY TABLE pgshard_insert (LIKE {} INCLUDING DEFAULTS) ON COMMIT DROP", plan.shell),
            false => format!("CREATE TEMPORARY TABLE pgshard_insert ON COMMIT DROP AS SELECT {columns} FROM {} WITH NO DATA", plan.shell),
        };
        if let Some(e) = self.copies_on_home(catalog, &plan.sources, &[stage], h).await? {
            return self.insert_select_failed(h, e).await;
        }
        let fill = format!("INSERT INTO {STAGE} ({filled}) {}", plan.query.render(Some(PULL_SCHEMA)));
        if let (_, Some(e)) = self.rows_on(h, &fill).await? {
            return self.insert_select_failed(h, e).await;
        }
        // The rows are staged: split them into the shards.
        let group = ColocationId(plan.target.group);
        let Some(g) = catalog.group(group) else {
            let e = msg::build(|o| msg::error(&CoordError::sql(SqlState::INTERNAL_ERROR, "unknown colocation group"), o));
            return self.insert_select_failed(h, e).await;
        };
        let shards = catalog.shards_of(group);
        let mut nodes: Vec<(NodeId, usize)> = Vec::new();
        for s in shards {
            if nodes.iter().any(|(n, _)| *n == s.node) {
                continue;
            }
            match self.conn_to(catalog, s.node).await {
                Ok(i) => nodes.push((s.node, i)),
                Err(e) => return self.insert_select_failed(h, msg::build(|o| msg::error(&e, o))).await,
            }
        }
        let implicit = self.begin_implicit();
        let conns: Vec<usize> = nodes.iter().map(|(_, i)| *i).collect();
        let mut failure = self.join_now(&conns, Writes::Yes).await.err();
        let mut rows = 0u64;
        if failure.is_none() && plan.per_shard.is_some() {
            failure = self.create_rows_tables(plan, shards, &nodes).await?;
        }
        if failure.is_none() {
            let mut router = ShardRouter::new(shards, g.dist_type, plan.target.dist_index);
            failure = self.stream_staged(plan, h, shards, &nodes, &mut router, &mut rows).await?;
        }
        let mut result = Merged { verb: Some("INSERT 0".into()), count: rows, ..Merged::default() };
        if failure.is_none() && plan.per_shard.is_some() {
            result = self.insert_from_rows_tables(plan, shards, &nodes).await?;
            failure = result.error.take();
        }
        if let Some(e) = self.end_write(implicit, failure).await {
            result = Merged { error: Some(e), ..Merged::default() };
        }
        self.end_scratch(h).await?;
        self.finish_merged(&result)
    }

    /// Creates the table that receives each shard's rows, on the shard's node.
    async fn create_rows_tables(&mut self, plan: &InsertSelect, shards: &[Shard], nodes: &[(NodeId, usize)]) -> Result<Option<Bytes>, Interrupted> {
        let columns = plan.column_list(None);
        let table = quote_ident(&plan.target.table);
        let work: Vec<(usize, Vec<String>)> = nodes
            .iter()
            .map(|&(node, i)| {
                let pid = self.conns.peek(i).pooled.conn.backend_pid;
                let creates: Vec<String> = shards
                    .iter()
                    .filter(|s| s.node == node)
                    .map(|s| format!("CREATE TABLE {} AS SELECT {columns} FROM {}.{table} WITH NO DATA", rows_table(s, pid), s.schema_name()))
                    .collect();
                (i, creates)
            })
            .collect();
        let mut merged = Merged::default();
        self.gather(&work, &mut merged, false).await?;
        Ok(merged.error)
    }

    /// Runs each shard's INSERT from its rows table with the statement's ON CONFLICT and
    /// RETURNING (rows reach the client) and drops the table.
    async fn insert_from_rows_tables(&mut self, plan: &InsertSelect, shards: &[Shard], nodes: &[(NodeId, usize)]) -> Result<Merged, Interrupted> {
        let Some(per) = &plan.per_shard else { return Ok(Merged::default()) };
        let columns = plan.column_list(None);
        let work: Vec<(usize, Vec<String>)> = nodes
            .iter()
            .map(|&(node, i)| {
                let pid = self.conns.peek(i).pooled.conn.backend_pid;
                let statements: Vec<String> = shards
                    .iter()
                    .filter(|s| s.node == node)
                    .flat_map(|s| {
                        let schema = s.schema_name();
                        let (head, tail, rows) = (per.head.render(Some(&schema)), per.tail.render(Some(&schema)), rows_table(s, pid));
                        [format!("{head}({columns}) SELECT {columns} FROM {rows} {tail}"), format!("DROP TABLE {rows}")]
                    })
                    .collect();
                (i, statements)
            })
            .collect();
        let mut merged = Merged::default();
        self.gather(&work, &mut merged, true).await?;
        Ok(merged)
    }

    /// Reads the staged rows from `h` as text COPY and copies them into their shards. Returns
    /// the first error.
    async fn stream_staged(
        &mut self,
        plan: &InsertSelect,
        h: usize,
        shards: &[Shard],
        nodes: &[(NodeId, usize)],
        router: &mut ShardRouter<'_>,
        rows: &mut u64,
    ) -> Result<Option<Bytes>, Interrupted> {
        msg::query(&format!("COPY (SELECT {} FROM {STAGE}) TO STDOUT", plan.column_list(None)), &mut self.conns.get(h).out);
        self.flush_conn(h).await?;
        let mut failure = None;
        loop {
            let (tag, m) = self.conns.get(h).recv().await?;
            match tag {
                b'd' if failure.is_none() => {
                    if let Err(e) = router.route(&m[5..]) {
                        failure = Some(msg::build(|o| msg::error(&e, o)));
                        continue;
                    }
                    for shard in router.ready() {
                        let data = router.take(shard);
                        if let Some(e) = self.deliver_staged(plan, shards.get(shard), nodes, data, rows).await? {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                b'E' => {
                    failure.get_or_insert(m);
                }
                b'Z' => break,
                _ => {}
            }
        }
        if failure.is_some() {
            return Ok(failure);
        }
        match router.finish() {
            Ok(left) => {
                for shard in left {
                    let data = router.take(shard);
                    if let Some(e) = self.deliver_staged(plan, shards.get(shard), nodes, data, rows).await? {
                        return Ok(Some(e));
                    }
                }
                Ok(None)
            }
            Err(e) => Ok(Some(msg::build(|o| msg::error(&e, o)))),
        }
    }

    /// Copies lines of one shard into the shard, or into its rows table when the shard inserts
    /// them itself.
    async fn deliver_staged(
        &mut self,
        plan: &InsertSelect,
        shard: Option<&Shard>,
        nodes: &[(NodeId, usize)],
        data: Bytes,
        rows: &mut u64,
    ) -> Result<Option<Bytes>, Interrupted> {
        let Some(shard) = shard.filter(|_| plan.per_shard.is_some()) else {
            return self.deliver(&plan.target, shard, nodes, data, rows).await;
        };
        let Some(&(_, i)) = nodes.iter().find(|(n, _)| *n == shard.node) else {
            return Ok(Some(msg::build(|o| msg::error(&CoordError::sql(SqlState::INTERNAL_ERROR, "shard node not open"), o))));
        };
        let pid = self.conns.peek(i).pooled.conn.backend_pid;
        let copy = format!("COPY {} ({}) FROM STDIN", rows_table(shard, pid), plan.column_list(None));
        self.write_copy(i, &copy, data, rows).await
    }

    /// Ends the staging transaction on the scratch connection (its temporary tables go).
    pub(super) async fn end_scratch(&mut self, h: usize) -> Result<(), Interrupted> {
        if self.conns.get(h).status != b'I' {
            msg::query("ROLLBACK", &mut self.conns.get(h).out);
            self.flush_conn(h).await?;
            let mut ignored = Merged::default();
            self.read_answer(h, &mut ignored, false).await?;
        }
        Ok(())
    }

    async fn insert_select_failed(&mut self, h: usize, e: Bytes) -> Result<(), Interrupted> {
        self.end_scratch(h).await?;
        self.fail_block();
        self.finish_merged(&Merged { error: Some(e), ..Merged::default() })
    }
}
