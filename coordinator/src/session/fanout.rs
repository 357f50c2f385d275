//! Running planned statements in the simple protocol: on one shard (relayed as written, like
//! any statement), or on several nodes at once with the answers merged here. Each node gets
//! one Query holding the statements of all its shards; the nodes work in parallel while their
//! answers are read in turn. Rows are streamed to the client as they arrive; row counts are
//! summed into one CommandComplete. Every node joins the client's transaction block; outside
//! one, a write on several nodes runs in an implicit block (see `txn`), committed atomically
//! when every node succeeded and rolled back everywhere otherwise.

use std::sync::Arc;

use bytes::Bytes;
use pgshard_catalog::{CatalogSnapshot, NodeId, Shard};
use pgshard_planner::{MergeStep, Plan, ShardPlan, StmtKind};

use super::plan;
use super::relay::Interrupted;
use super::simple::aborted_block;
use super::txn::Writes;
use super::{Session, msg};
use crate::backend::NodeAddr;
use crate::error::CoordError;

/// The merged answer of several nodes.
#[derive(Default)]
pub(super) struct Merged {
    /// The first error any node sent, raw.
    pub error: Option<Bytes>,
    /// The command tag without its count (`SELECT`, `UPDATE`, `INSERT 0`).
    pub verb: Option<String>,
    /// The summed row count.
    pub count: u64,
    /// A RowDescription was forwarded.
    pub described: bool,
}

impl Merged {
    fn add_tag(&mut self, tag: &str) {
        let (verb, count) = match tag.rsplit_once(' ') {
            Some((v, c)) if c.bytes().all(|b| b.is_ascii_digit()) => (v, c.parse().unwrap_or(0)),
            _ => (tag, 0),
        };
        if matches!(verb, "BEGIN" | "COMMIT" | "ROLLBACK" | "SET" | "SAVEPOINT") {
            return;
        }
        self.verb.get_or_insert_with(|| verb.to_owned());
        self.count += count;
    }

    /// The merged CommandComplete tag.
    fn tag(&self) -> Option<String> {
        self.verb.as_ref().map(|v| format!("{v} {}", self.count))
    }
}

impl Session {
    /// Runs a plan in the simple protocol and queues its answer with ReadyForQuery.
    pub(super) async fn run_plan_simple(
        &mut self,
        catalog: Arc<CatalogSnapshot>,
        plan: Plan,
        sql: &str,
    ) -> Result<(), Interrupted> {
        if self.block_failed() {
            return self.answer_error(&aborted_block()).await;
        }
        let done = match plan {
            Plan::Function(call) => self.run_function(&call).await,
            Plan::Ddl(ddl) => self.run_ddl(&ddl, &catalog, sql).await,
            Plan::EveryNode => {
                // The default node first: writers of one reference row queue there before they
                // lock its other copies, so copies cannot deadlock across nodes.
                let mut work: Vec<(NodeId, Vec<String>)> = catalog.nodes().iter().map(|n| (n.id, vec![sql.to_owned()])).collect();
                if let Ok(first) = catalog.default_node() {
                    work.sort_by_key(|(n, _)| *n != first.id);
                }
                return self.fan_out_ordered(&catalog, work, Some(Writes::Yes), false, true).await;
            }
            Plan::Shards(sp) => return self.run_shards_simple(&catalog, &sp).await,
            Plan::CopyIn(c) => return self.run_copy_in(&catalog, &c).await,
            Plan::Explain(e) => return self.run_explain(&catalog, &e).await,
            Plan::Pull(p) => return self.pull_on_home(&catalog, &p).await,
            Plan::InsertSelect(p) => return self.run_insert_select(&catalog, &p).await,
            Plan::Substitute(p) => return self.run_substitute(&catalog, &p).await,
            Plan::DefaultNode | Plan::Unsupported(_) => {
                Err(CoordError::Protocol("internal: a default-node plan reached the shard executor".into()))
            }
        };
        match done {
            Ok(()) => {
                if !self.extended {
                    let status = self.status().as_byte();
                    msg::ready(status, self.client.out());
                }
                Ok(())
            }
            Err(e) => self.refuse(e).await,
        }
    }

    async fn run_shards_simple(&mut self, catalog: &Arc<CatalogSnapshot>, sp: &ShardPlan) -> Result<(), Interrupted> {
        let routed = match plan::route(sp, catalog, &[]) {
            Ok(r) => r,
            Err(e) => return self.refuse(e).await,
        };
        let write = sp.kind != StmtKind::Select;
        let writes = if write { Writes::Yes } else { Writes::Unknown };
        if let [shard] = routed.shards.as_slice() {
            let sql = sp.single.render(Some(&shard.schema_name()));
            if self.extended {
                // A local portal answers in the extended protocol's form (and formats).
                return self.fan_out(catalog, vec![(shard.node, vec![sql])], write.then_some(writes), true).await;
            }
            let i = match self.conn_to(catalog, shard.node).await {
                Ok(i) => i,
                Err(e) => return self.refuse(e).await,
            };
            let frame = msg::build(|o| msg::query(&sql, o));
            return self.send_query(i, &frame, writes).await;
        }
        let multi = match (&sp.multi, &sp.pull) {
            (Ok(m), _) => m,
            (Err(_), Some(pull)) => return self.pull_on_home(catalog, pull).await,
            (Err(why), None) => return self.refuse(CoordError::Unsupported(why.clone())).await,
        };
        match &multi.merge {
            MergeStep::Concat => {
                let mut per_node: Vec<(NodeId, Vec<String>)> = Vec::new();
                for (at, shard) in routed.shards.iter().enumerate() {
                    push_statement(&mut per_node, shard.node, plan::shard_statement(sp, multi, &routed, at));
                }
                // Shards whose rows no statement touches may not write at all: asked at commit.
                self.fan_out(catalog, per_node, write.then_some(Writes::Unknown), true).await
            }
            MergeStep::Sort { keys, limit, offset, junk } => {
                // Binary results come from a final query on home; the streaming merge relays text.
                if !self.wants_binary() && self.sort_merge(catalog, multi, keys, *limit, *offset, *junk, &routed.shards).await? {
                    return Ok(());
                }
                self.merge_on_home(catalog, multi, &routed.shards).await
            }
            MergeStep::Final(_) => self.merge_on_home(catalog, multi, &routed.shards).await,
        }
    }


    /// The index of the session's connection to `node`, opened (and set up) on first use.
    pub(super) async fn conn_to(&mut self, catalog: &CatalogSnapshot, node: NodeId) -> Result<usize, CoordError> {
        if let Some(i) = self.conns.find(node)
            && !self.conns.get(i).dead
        {
            return Ok(i);
        }
        if self.conns.find(node) == Some(0) {
            return Err(CoordError::NodeLost("the connection to the default node was lost".into()));
        }
        let n = catalog.node(node).ok_or(pgshard_catalog::CatalogError::UndefinedNode(node))?;
        if let Some(dead) = self.conns.find(node) {
            self.forget_backend(dead);
        }
        let (i, _) = self.conns.open(node, &NodeAddr::of(n), &self.shared.pools, &self.opener).await?;
        self.note_backend(i);
        self.setup_conn(i).await?;
        Ok(i)
    }

    /// Registers connection `i`'s backend for deadlock detection and cancel requests.
    pub(super) fn note_backend(&mut self, i: usize) {
        let c = self.conns.peek(i);
        self.shared.backends.register(c.node, c.pooled.conn.backend_pid, &self.conns.victim);
        let target = crate::cancel::CancelTarget {
            addr: c.pooled.key().addr().to_owned(),
            pid: c.pooled.conn.backend_pid,
            secret: c.pooled.conn.backend_secret,
        };
        self.cancel_targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(target);
    }

    /// Forgets connection `i`'s backend (it is being replaced or given back).
    pub(super) fn forget_backend(&mut self, i: usize) {
        let c = self.conns.peek(i);
        let pid = c.pooled.conn.backend_pid;
        self.shared.backends.unregister(c.node, pid);
        let addr = c.pooled.key().addr();
        self.cancel_targets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|t| !(t.pid == pid && t.addr == addr));
    }

    /// A scratch connection to `node`, outside the client's transaction.
    pub(super) async fn scratch_to(&mut self, catalog: &CatalogSnapshot, node: NodeId) -> Result<usize, CoordError> {
        let n = catalog.node(node).ok_or(pgshard_catalog::CatalogError::UndefinedNode(node))?;
        let dead = (0..self.conns.len()).find(|&j| {
            let c = self.conns.peek(j);
            c.node == node && c.scratch && c.dead
        });
        if let Some(j) = dead {
            self.forget_backend(j);
        }
        let (i, fresh) = self.conns.scratch(node, &NodeAddr::of(n), &self.shared.pools, &self.opener).await?;
        if fresh {
            self.note_backend(i);
            self.setup_conn(i).await?;
        }
        Ok(i)
    }

    /// Replays the session's settings on a new connection.
    pub(super) async fn setup_conn(&mut self, i: usize) -> Result<(), CoordError> {
        for sql in self.settings.clone() {
            self.apply_setting(i, &sql).await.map_err(|_| CoordError::NodeLost("while applying session settings".into()))?;
        }
        Ok(())
    }

    /// Sends each node its statements (`;`-separated) in one Query and merges the answers.
    /// `writes`: what a write may have done on each node (`None` for a read). A write on
    /// several nodes outside a block runs in an implicit block, committed atomically when every
    /// node succeeded. `all_rows`: rows of every node reach the client (else only the first
    /// node's, for reference writes whose copies answer alike).
    pub(super) async fn fan_out(
        &mut self,
        catalog: &CatalogSnapshot,
        work: Vec<(NodeId, Vec<String>)>,
        writes: Option<Writes>,
        all_rows: bool,
    ) -> Result<(), Interrupted> {
        self.fan_out_ordered(catalog, work, writes, all_rows, false).await
    }

    /// [`fan_out`](Self::fan_out); with `first_alone`, the first node runs its statements
    /// before the others start (and alone, when it fails).
    pub(super) async fn fan_out_ordered(
        &mut self,
        catalog: &CatalogSnapshot,
        work: Vec<(NodeId, Vec<String>)>,
        writes: Option<Writes>,
        all_rows: bool,
        first_alone: bool,
    ) -> Result<(), Interrupted> {
        let mut conns = Vec::with_capacity(work.len());
        for (node, _) in &work {
            match self.conn_to(catalog, *node).await {
                Ok(i) => conns.push(i),
                Err(e) => return self.refuse(e).await,
            }
        }
        let implicit = writes.is_some() && conns.len() > 1 && self.begin_implicit();
        let mut merged = Merged::default();
        let split = if first_alone { 1 } else { 0 };
        for (phase, range) in [(0, 0..split), (1, split..conns.len())] {
            if phase == 1 && merged.error.is_some() {
                break;
            }
            // Binary results: each statement bound with the client's result formats (after
            // the join, sent as a Query of its own); else one Query of them all.
            let binary = self.wants_binary();
            let mut joined = vec![false; conns.len()];
            for k in range.clone() {
                let (i, statements) = (conns[k], &work[k].1);
                let join = self.join_prefix(i, writes.unwrap_or(Writes::Unknown));
                let formats = binary.then_some(self.result_formats.as_slice());
                let out = &mut self.conns.get(i).out;
                joined[k] = queue_statements(join.as_deref(), statements, formats, out);
                self.flush_conn(i).await?;
            }
            for k in range {
                if joined[k] {
                    self.read_answer(conns[k], &mut merged, false).await?;
                }
                self.read_answer(conns[k], &mut merged, all_rows || k == 0).await?;
            }
        }
        if implicit && let Some(e) = self.end_implicit(merged.error.is_none()).await {
            merged.error = Some(e);
        }
        self.finish_merged(&merged)
    }

    /// Queues the merged answer's end: the error, or the summed CommandComplete; then
    /// ReadyForQuery.
    pub(super) fn finish_merged(&mut self, merged: &Merged) -> Result<(), Interrupted> {
        let out = self.client.out();
        match (&merged.error, merged.tag()) {
            (Some(e), _) => out.extend_from_slice(e),
            (None, Some(tag)) => msg::command_complete(&tag, out),
            (None, None) => msg::empty(b'I', out),
        }
        if self.extended {
            if merged.error.is_some() {
                self.skip_to_sync();
            }
            return Ok(());
        }
        let status = self.status().as_byte();
        msg::ready(status, self.client.out());
        Ok(())
    }

    /// Whether the running local portal asked for any binary result column.
    pub(super) fn wants_binary(&self) -> bool {
        self.extended && self.result_formats.contains(&1)
    }

    /// Runs the final query of a merge or pull on home (connection `h`) and relays its rows: as
    /// a simple Query, or bound with the client's result formats when it asked for binary ones.
    pub(super) async fn final_on_home(&mut self, h: usize, sql: &str) -> Result<Merged, Interrupted> {
        let binary = self.wants_binary();
        let out = &mut self.conns.get(h).out;
        if binary {
            msg::parse("", sql, &[], out);
            msg::bind_results("", "", &self.result_formats, out);
            msg::execute("", out);
            msg::sync(out);
        } else {
            msg::query(sql, out);
        }
        self.flush_conn(h).await?;
        let mut merged = Merged::default();
        self.read_answer(h, &mut merged, true).await?;
        Ok(merged)
    }

    /// Sends each connection its statements (the connections are in the block already) and
    /// reads the answers into `merged`, forwarding rows when `rows`: one Query per connection,
    /// or, when the client asked for binary results, each statement bound with its result
    /// formats and one Sync.
    pub(super) async fn gather(&mut self, work: &[(usize, Vec<String>)], merged: &mut Merged, rows: bool) -> Result<(), Interrupted> {
        let binary = self.wants_binary();
        for (i, statements) in work {
            let formats = binary.then_some(self.result_formats.as_slice());
            let out = &mut self.conns.get(*i).out;
            queue_statements(None, statements, formats, out);
            self.flush_conn(*i).await?;
        }
        for (i, _) in work {
            self.read_answer(*i, merged, rows).await?;
        }
        Ok(())
    }

    /// Reads one node's answer to a Query up to ReadyForQuery, forwarding its rows (when
    /// `rows`) and its first RowDescription, and folding its tags and errors into `merged`.
    pub(super) async fn read_answer(&mut self, i: usize, merged: &mut Merged, rows: bool) -> Result<(), Interrupted> {
        loop {
            let conn = self.conns.get(i);
            let (tag, m) = conn.recv().await?;
            match tag {
                b'T' if rows && !merged.described && merged.error.is_none() => {
                    merged.described = true;
                    if !self.extended {
                        self.push(&m).await?;
                    }
                }
                b'D' if rows && merged.error.is_none() => self.push(&m).await?,
                b'C' if rows => merged.add_tag(msg::command_tag(&m)),
                b'E' => {
                    merged.error.get_or_insert(m);
                }
                b'N' | b'A' | b'S' if rows => self.push(&m).await?,
                b'Z' => {
                    return Ok(());
                }
                _ => {}
            }
        }
    }

    pub(super) async fn push(&mut self, m: &[u8]) -> Result<(), Interrupted> {
        self.client.push(m).await.map_err(|_| Interrupted::ClientGone)
    }
}

/// Queues `statements` (after `join`, the text that makes the connection a member of the
/// block): one Query of them all, or, with result `formats`, the join as a Query of its own
/// and each statement bound with the formats, then one Sync. Returns whether the join went as
/// a Query of its own (its answer comes first).
fn queue_statements(join: Option<&str>, statements: &[String], formats: Option<&[i16]>, out: &mut bytes::BytesMut) -> bool {
    let Some(formats) = formats else {
        // On lines of their own: a trailing `--` comment must not swallow the separator.
        let sql = statements.join("\n;\n");
        msg::query(&join.map_or_else(|| sql.clone(), |j| format!("{j};{sql}")), out);
        return false;
    };
    if let Some(join) = join {
        msg::query(join, out);
    }
    for sql in statements {
        msg::parse("", sql, &[], out);
        msg::bind_results("", "", formats, out);
        msg::execute("", out);
    }
    msg::sync(out);
    join.is_some()
}

/// Appends a statement to its node's list.
pub(super) fn push_statement(per_node: &mut Vec<(NodeId, Vec<String>)>, node: NodeId, text: String) {
    match per_node.iter_mut().find(|(n, _)| *n == node) {
        Some((_, statements)) => statements.push(text),
        None => per_node.push((node, vec![text])),
    }
}

/// The shards of `shards` on each node, in order.
pub(super) fn by_node<'c>(shards: &[&'c Shard]) -> Vec<(NodeId, Vec<&'c Shard>)> {
    let mut out: Vec<(NodeId, Vec<&Shard>)> = Vec::new();
    for s in shards {
        match out.iter_mut().find(|(n, _)| *n == s.node) {
            Some((_, list)) => list.push(s),
            None => out.push((s.node, vec![s])),
        }
    }
    out
}
