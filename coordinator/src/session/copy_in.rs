//! `COPY <distributed or reference table> FROM STDIN`, in the simple or the extended protocol: the coordinator answers the
//! client's COPY itself, splits the incoming lines by the shard their distribution value hashes
//! to (bounded buffers per shard), and writes each full buffer with one `COPY` into that shard on
//! its node. Every node involved joins the client's block, or an implicit one committed
//! atomically when the whole stream is in and rolled back everywhere on any error or CopyFail.

use std::sync::Arc;

use bytes::Bytes;
use pgshard_catalog::{CatalogSnapshot, ColocationId, NodeId};
use pgshard_planner::{CopyFormat, CopyIn};
use tokio_postgres::error::SqlState;

use super::fanout::Merged;
use super::relay::Interrupted;
use super::txn::Writes;
use super::{Session, msg};
use crate::distribute::copy::{LineFormat, ShardRouter};
use crate::error::CoordError;

impl Session {
    /// Serves a COPY FROM STDIN into a distributed table (lines split by shard) or a reference
    /// table (every line to every node, the default node first).
    pub(super) async fn run_copy_in(&mut self, catalog: &Arc<CatalogSnapshot>, plan: &CopyIn) -> Result<(), Interrupted> {
        let mut nodes: Vec<(NodeId, usize)> = Vec::new();
        let (shards, router): (&[pgshard_catalog::Shard], ShardRouter<'_>) = if plan.reference.is_some() {
            let mut all: Vec<NodeId> = catalog.nodes().iter().map(|n| n.id).collect();
            if let Ok(first) = catalog.default_node() {
                all.sort_by_key(|n| *n != first.id);
            }
            for node in all {
                match self.conn_to(catalog, node).await {
                    Ok(i) => nodes.push((node, i)),
                    Err(e) => return self.refuse(e).await,
                }
            }
            (&[], ShardRouter::unrouted())
        } else {
            let group = ColocationId(plan.group);
            let Some(g) = catalog.group(group) else {
                return self.refuse(CoordError::sql(SqlState::INTERNAL_ERROR, "unknown colocation group")).await;
            };
            let shards = catalog.shards_of(group);
            for s in shards {
                if nodes.iter().any(|(n, _)| *n == s.node) {
                    continue;
                }
                match self.conn_to(catalog, s.node).await {
                    Ok(i) => nodes.push((s.node, i)),
                    Err(e) => return self.refuse(e).await,
                }
            }
            (shards, ShardRouter::new(shards, g.dist_type, plan.dist_index))
        };
        let mut router = router.with_format(line_format(&plan.format));
        let implicit = self.begin_implicit();
        let conns: Vec<usize> = nodes.iter().map(|(_, i)| *i).collect();
        if let Err(e) = self.join_now(&conns, Writes::Yes).await {
            if implicit {
                self.end_implicit(false).await;
            }
            return self.finish_merged(&Merged { error: Some(e), ..Merged::default() });
        }
        // CopyInResponse: text format, column formats unknown to the client's eyes (none).
        self.push(&msg::build(|o| {
            o.extend_from_slice(&[b'G', 0, 0, 0, 7, 0, 0, 0]);
        }))
        .await?;
        self.client.flush().await.map_err(|_| Interrupted::ClientGone)?;
        if self.extended {
            // The client pipelined a Sync after its Execute; in COPY mode it does not count, and
            // the Sync it sends after CopyDone ends the request.
            self.copy_swallows_sync();
        }
        let mut rows = 0u64;
        let mut failure: Option<Bytes> = None;
        loop {
            let next = match self.client.next_buffered() {
                Ok(m) => m,
                Err(e) => return Err(Interrupted::Protocol(e)),
            };
            let Some((tag, m)) = next else {
                match self.client.fill().await {
                    Ok(true) => continue,
                    _ => return Err(Interrupted::ClientGone),
                }
            };
            match tag {
                b'd' => {
                    if let Err(e) = router.route(&m[5..]) {
                        failure = Some(msg::build(|o| msg::error(&e, o)));
                        break;
                    }
                    for shard in router.ready() {
                        let data = router.take(shard);
                        if let Some(e) = self.deliver(plan, shards.get(shard), &nodes, data, &mut rows).await? {
                            failure = Some(e);
                            break;
                        }
                    }
                    if failure.is_some() {
                        break;
                    }
                }
                b'c' => {
                    match router.finish() {
                        Ok(left) => {
                            for shard in left {
                                let data = router.take(shard);
                                if let Some(e) = self.deliver(plan, shards.get(shard), &nodes, data, &mut rows).await? {
                                    failure = Some(e);
                                    break;
                                }
                            }
                        }
                        Err(e) => failure = Some(msg::build(|o| msg::error(&e, o))),
                    }
                    break;
                }
                b'f' => {
                    let why = msg::Fields::of(&m).cstr().unwrap_or_default().to_owned();
                    let e = CoordError::sql(SqlState::QUERY_CANCELED, format!("COPY from stdin failed: {why}"));
                    failure = Some(msg::build(|o| msg::error(&e, o)));
                    break;
                }
                b'H' | b'S' => {}
                other => {
                    let e = CoordError::sql(
                        SqlState::PROTOCOL_VIOLATION,
                        format!("unexpected message type 0x{other:02X} during COPY from stdin"),
                    );
                    failure = Some(msg::build(|o| msg::error(&e, o)));
                    break;
                }
            }
        }
        let result = match self.end_write(implicit, failure).await {
            Some(e) => Merged { error: Some(e), ..Merged::default() },
            // A reference table's lines went to every node: the router counted them once.
            None if plan.reference.is_some() => Merged { verb: Some("COPY".into()), count: router.rows, ..Merged::default() },
            None => Merged { verb: Some("COPY".into()), count: rows, ..Merged::default() },
        };
        self.finish_merged(&result)
    }

    /// Ends a write over several nodes: its implicit block commits when nothing failed (else
    /// rolls back), or the client's block is failed by the failure. Returns the error to answer.
    pub(super) async fn end_write(&mut self, implicit: bool, failure: Option<Bytes>) -> Option<Bytes> {
        if implicit {
            let ended = self.end_implicit(failure.is_none()).await;
            return failure.or(ended);
        }
        if failure.is_some() {
            self.fail_block();
        }
        failure
    }

    /// Writes whole lines into `shard`, or into every node's copy of a reference table (in
    /// `nodes` order). Returns the first error a node sent.
    pub(super) async fn deliver(
        &mut self,
        plan: &CopyIn,
        shard: Option<&pgshard_catalog::Shard>,
        nodes: &[(NodeId, usize)],
        data: Bytes,
        rows: &mut u64,
    ) -> Result<Option<Bytes>, Interrupted> {
        let Some(shard) = shard else {
            for &(_, i) in nodes {
                if let Some(e) = self.write_copy(i, &plan.render(""), data.clone(), rows).await? {
                    return Ok(Some(e));
                }
            }
            return Ok(None);
        };
        let Some(&(_, i)) = nodes.iter().find(|(n, _)| *n == shard.node) else {
            return Ok(Some(msg::build(|o| msg::error(&CoordError::sql(SqlState::INTERNAL_ERROR, "shard node not open"), o))));
        };
        self.write_copy(i, &plan.render(&shard.schema_name()), data, rows).await
    }

    /// Runs `sql` (a COPY FROM STDIN) on connection `i` with `data` as its input, adding the
    /// rows it reports to `rows`. Returns the node's error, if it sent one.
    pub(super) async fn write_copy(&mut self, i: usize, sql: &str, data: Bytes, rows: &mut u64) -> Result<Option<Bytes>, Interrupted> {
        let conn = self.conns.get(i);
        msg::query(sql, &mut conn.out);
        self.flush_conn(i).await?;
        let mut error = None;
        loop {
            let (tag, m) = self.conns.get(i).recv().await?;
            match tag {
                b'G' => {
                    let out = &mut self.conns.get(i).out;
                    msg::copy_data(&data, out);
                    msg::copy_done(out);
                    self.flush_conn(i).await?;
                }
                b'C' => {
                    let tag = msg::command_tag(&m);
                    *rows += tag.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
                }
                b'E' => error = Some(m),
                b'Z' => {
                    return Ok(error);
                }
                _ => {}
            }
        }
    }
}

/// The router's view of a COPY's format (delimiters and quotes are single bytes, as
/// PostgreSQL requires).
fn line_format(format: &CopyFormat) -> LineFormat {
    let byte = |c: &char| u8::try_from(u32::from(*c)).unwrap_or(b'?');
    match format {
        CopyFormat::Text { delimiter, null } => LineFormat::Text { delimiter: byte(delimiter), null: null.as_bytes().to_vec() },
        CopyFormat::Csv { delimiter, quote, escape, null, header } => LineFormat::Csv {
            delimiter: byte(delimiter),
            quote: byte(quote),
            escape: byte(escape),
            null: null.as_bytes().to_vec(),
            header: *header,
        },
    }
}
