//! Merging shards' rows through the default node: ORDER BY / LIMIT and aggregates over several
//! shards. In one transaction on home, a temporary table takes the fragment's shape (from the
//! shells, which have the shards' columns and types); every shard's fragment rows stream into it
//! as binary COPY (shard node -> coordinator -> home, frame by frame, never held whole); then
//! PostgreSQL itself answers the final query over it (sorting with the session's collation,
//! finishing the aggregates), and that answer is relayed. The temporary table is dropped at
//! commit.

use std::sync::Arc;

use bytes::BytesMut;
use pgshard_catalog::{CatalogSnapshot, Shard};
use pgshard_planner::{Limit, MergeStep, MultiShard, ShardTemplate};

use super::dispatch::quote_ident;
use super::fanout::{Merged, by_node};
use super::relay::Interrupted;
use super::txn::{TxnState, Writes};
use super::{Session, msg};
use crate::error::CoordError;

const TABLE: &str = "pg_temp.pgshard_merge";
/// The binary COPY header: signature, flags, header extension length.
const HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// Strips one binary COPY stream of its header and trailer, frame by frame.
#[derive(Default)]
struct Unframe {
    /// Header bytes still to skip.
    skip: usize,
    /// The last two bytes seen, held back: at the end they are the trailer.
    held: Vec<u8>,
}

impl Unframe {
    fn start() -> Self {
        Self { skip: HEADER.len(), held: Vec::new() }
    }

    /// The tuple bytes of one CopyData payload.
    fn feed(&mut self, mut data: &[u8]) -> Vec<u8> {
        let n = self.skip.min(data.len());
        self.skip -= n;
        data = &data[n..];
        let mut all = std::mem::take(&mut self.held);
        all.extend_from_slice(data);
        let keep = all.len().min(2);
        self.held = all.split_off(all.len() - keep);
        all
    }
}

impl Session {
    /// Runs a Sort or Final merge over `shards` through a temporary table on home.
    pub(super) async fn merge_on_home(
        &mut self,
        catalog: &Arc<CatalogSnapshot>,
        multi: &MultiShard,
        shards: &[&Shard],
    ) -> Result<(), Interrupted> {
        let h = match self.merge_conn(catalog).await {
            Ok(h) => h,
            Err(e) => return self.answer_error(&e).await,
        };
        let shell = inner(&multi.fragment.render(None));
        // The fragment's output names may repeat (`SELECT a.name, b.name`): the table's columns
        // are c1..cn, and the final query gives them their names back.
        let names = match self.describe_on_home(&format!("SELECT * FROM ({shell}) pgshard_f")).await? {
            Ok(description) => msg::row_description_names(&description).map_err(Interrupted::Protocol)?,
            Err(e) => return self.end_on_home(h, Merged { error: Some(e), ..Merged::default() }).await,
        };
        let aliases: Vec<String> = (1..=names.len()).map(|i| format!("c{i}")).collect();
        let setup = format!(
            "BEGIN;\nCREATE TEMPORARY TABLE pgshard_merge ON COMMIT DROP AS SELECT * FROM ({shell}) pgshard_f({}) WITH NO DATA;\n\
             SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = '{TABLE}'::pg_catalog.regclass AND a.attnum > 0 ORDER BY a.attnum",
            aliases.join(", ")
        );
        let (columns, error) = self.rows_on(h, &setup).await?;
        if let Some(e) = error {
            return self.end_on_home(h, Merged { error: Some(e), ..Merged::default() }).await;
        }
        let types: Vec<String> = columns.iter().map(|r| r.get(1).cloned().flatten().unwrap_or_default()).collect();
        let final_sql = match &multi.merge {
            MergeStep::Final(fq) => fq.render(TABLE, &|i| types.get(i).cloned().unwrap_or_else(|| "text".into())),
            MergeStep::Sort { keys, limit, offset, junk } => {
                let visible = names.len().saturating_sub(*junk);
                let cols: Vec<String> =
                    names[..visible].iter().enumerate().map(|(i, n)| format!("c{} AS {}", i + 1, quote_ident(n))).collect();
                let order: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let col = format!("c{}", visible + k.junk_index + 1);
                        let dir = if k.descending { "DESC" } else { "ASC" };
                        let nulls = if k.nulls_first { "FIRST" } else { "LAST" };
                        format!("{col} {dir} NULLS {nulls}")
                    })
                    .collect();
                let mut q = format!("SELECT {} FROM {TABLE}", cols.join(", "));
                if !order.is_empty() {
                    q.push_str(&format!(" ORDER BY {}", order.join(", ")));
                }
                match limit {
                    Some(Limit::Value(n)) => q.push_str(&format!(" LIMIT {n}")),
                    Some(Limit::Param(_)) => return self.fail_on_home(h, param_limit()).await,
                    None => {}
                }
                match offset {
                    Limit::Value(0) => {}
                    Limit::Value(n) => q.push_str(&format!(" OFFSET {n}")),
                    Limit::Param(_) => return self.fail_on_home(h, param_limit()).await,
                }
                q
            }
            MergeStep::Concat => {
                return self.fail_on_home(h, CoordError::Protocol("internal: concat merge on home".into())).await;
            }
        };
        if let Some(e) = self.copy_shards_to_home(catalog, &multi.fragment, TABLE, shards, h).await? {
            return self.end_on_home(h, Merged { error: Some(e), ..Merged::default() }).await;
        }
        let merged = self.final_on_home(h, &final_sql).await?;
        self.end_on_home(h, merged).await
    }

    /// The connection to home where temporary tables of a merge live: home itself outside a
    /// block; inside one a scratch connection to home, in a transaction of its own (a
    /// transaction that touched a temporary table cannot be prepared), while the shards are
    /// read by the block's members.
    pub(super) async fn merge_conn(&mut self, catalog: &Arc<CatalogSnapshot>) -> Result<usize, CoordError> {
        if matches!(self.txn, TxnState::Idle) {
            return Ok(0);
        }
        let home = self.conns.get(0).node;
        self.scratch_to(catalog, home).await
    }

    /// PostgreSQL's RowDescription of a query, from a Describe on home; or its error.
    pub(super) async fn describe_on_home(&mut self, sql: &str) -> Result<Result<bytes::Bytes, bytes::Bytes>, Interrupted> {
        let out = &mut self.conns.get(0).out;
        msg::parse("", sql, &[], out);
        msg::describe_statement("", out);
        msg::sync(out);
        self.flush_conn(0).await?;
        let mut result = Err(bytes::Bytes::new());
        loop {
            let (tag, m) = self.conns.get(0).recv().await?;
            match tag {
                b'T' => result = Ok(m),
                b'E' => result = Err(m),
                b'Z' => return Ok(result),
                _ => {}
            }
        }
    }

    /// Runs a Query on connection `i` and returns its rows as text, and the error it sent.
    pub(super) async fn rows_on(
        &mut self,
        i: usize,
        sql: &str,
    ) -> Result<(Vec<Vec<Option<String>>>, Option<bytes::Bytes>), Interrupted> {
        msg::query(sql, &mut self.conns.get(i).out);
        self.flush_conn(i).await?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let (tag, m) = self.conns.get(i).recv().await?;
            match tag {
                b'D' => rows.push(msg::data_row_texts(&m).map_err(Interrupted::Protocol)?),
                b'E' => {
                    error.get_or_insert(m);
                }
                b'Z' => {
                    return Ok((rows, error));
                }
                _ => {}
            }
        }
    }

    /// Streams every shard's `fragment` rows into the temporary table `table` on home
    /// (connection `h`). Returns the first error a node sent.
    pub(super) async fn copy_shards_to_home(
        &mut self,
        catalog: &Arc<CatalogSnapshot>,
        fragment: &ShardTemplate,
        table: &str,
        shards: &[&Shard],
        h: usize,
    ) -> Result<Option<bytes::Bytes>, Interrupted> {
        let mut conns = Vec::new();
        let home_node = self.conns.get(0).node;
        let mut local = Vec::new();
        let mut copies = Vec::new();
        for (node, list) in by_node(shards) {
            if node == home_node && h == 0 {
                // Home's own shards fill the table right there.
                local = list
                    .iter()
                    .map(|s| format!("INSERT INTO {table} {}", inner(&fragment.render(Some(&s.schema_name())))))
                    .collect();
                continue;
            }
            let i = match self.conn_to(catalog, node).await {
                Ok(i) => i,
                Err(e) => return Ok(Some(msg::build(|o| msg::error(&e, o)))),
            };
            let text: Vec<String> = list
                .iter()
                .map(|s| format!("COPY ({}) TO STDOUT (FORMAT binary)", inner(&fragment.render(Some(&s.schema_name())))))
                .collect();
            conns.push(i);
            copies.push(text.join(";\n"));
        }
        if let Err(e) = self.join_now(&conns, Writes::Unknown).await {
            return Ok(Some(e));
        }
        for (&i, text) in conns.iter().zip(&copies) {
            msg::query(text, &mut self.conns.get(i).out);
            self.flush_conn(i).await?;
        }
        local.push(format!("COPY {table} FROM STDIN (FORMAT binary)"));
        msg::query(&local.join(";\n"), &mut self.conns.get(h).out);
        self.flush_conn(h).await?;
        let mut home_error = None;
        loop {
            let (tag, m) = self.conns.get(h).recv().await?;
            match tag {
                b'G' => break,
                b'E' => {
                    home_error = Some(m);
                }
                b'Z' => {
                    for &i in &conns {
                        let mut ignored = Merged::default();
                        self.read_answer(i, &mut ignored, false).await?;
                    }
                    return Ok(home_error);
                }
                _ => {}
            }
        }
        let mut out = BytesMut::new();
        msg::copy_data(HEADER, &mut out);
        let mut error = None;
        for &i in &conns {
            let mut stream = Unframe::default();
            loop {
                let (tag, m) = self.conns.get(i).recv().await?;
                match tag {
                    b'H' => stream = Unframe::start(),
                    b'd' if error.is_none() => {
                        let tuples = stream.feed(&m[5..]);
                        if !tuples.is_empty() {
                            msg::copy_data(&tuples, &mut out);
                        }
                        if out.len() >= 64 * 1024 {
                            let home = self.conns.get(h);
                            home.out.extend_from_slice(&out.split());
                            self.flush_conn(h).await?;
                        }
                    }
                    b'E' => {
                        error.get_or_insert(m);
                    }
                    b'Z' => {
                        break;
                    }
                    _ => {}
                }
            }
        }
        match &error {
            None => {
                msg::copy_data(&(-1i16).to_be_bytes(), &mut out);
                msg::copy_done(&mut out);
            }
            Some(_) => msg::copy_fail("a shard failed", &mut out),
        }
        self.conns.get(h).out.extend_from_slice(&out);
        self.flush_conn(h).await?;
        loop {
            let (tag, m) = self.conns.get(h).recv().await?;
            match tag {
                b'E' if error.is_none() => error = Some(m),
                b'Z' => {
                    return Ok(error);
                }
                _ => {}
            }
        }
    }

    /// Ends the merge's transaction on home (COMMIT, or ROLLBACK after an error) and queues
    /// the answer; in a block, an error fails the block.
    pub(super) async fn end_on_home(&mut self, h: usize, merged: Merged) -> Result<(), Interrupted> {
        let end = if merged.error.is_none() && self.conns.get(h).status == b'T' { "COMMIT" } else { "ROLLBACK" };
        if self.conns.get(h).status != b'I' {
            msg::query(end, &mut self.conns.get(h).out);
            self.flush_conn(h).await?;
            let mut ignored = Merged::default();
            self.read_answer(h, &mut ignored, false).await?;
        }
        if merged.error.is_some() {
            self.fail_block();
        }
        self.finish_merged(&merged)
    }

    async fn fail_on_home(&mut self, h: usize, e: CoordError) -> Result<(), Interrupted> {
        self.end_on_home(h, Merged { error: Some(msg::build(|o| msg::error(&e, o))), ..Merged::default() }).await
    }

    pub(super) async fn flush_conn(&mut self, i: usize) -> Result<(), Interrupted> {
        self.conns.get(i).flush().await.map_err(|e| Interrupted::NodeGone { why: e.to_string(), told: false })
    }
}

fn param_limit() -> CoordError {
    CoordError::Unsupported("a LIMIT or OFFSET given as a parameter over several shards".into())
}

/// A statement's text made fit to nest in parentheses or follow INSERT: without its final
/// semicolons, and on lines of its own (a trailing `--` comment must not swallow what follows).
pub(super) fn inner(sql: &str) -> String {
    format!("\n{}\n", sql.trim_end_matches(|c: char| c == ';' || c.is_whitespace()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unframe_strips_header_and_trailer_across_frames() {
        let mut stream: Vec<u8> = HEADER.to_vec();
        stream.extend_from_slice(b"TUPLES");
        stream.extend_from_slice(&(-1i16).to_be_bytes());
        for cut in 1..stream.len() {
            let mut u = Unframe::start();
            let mut got = u.feed(&stream[..cut]);
            got.extend(u.feed(&stream[cut..]));
            assert_eq!(got, b"TUPLES", "cut at {cut}");
        }
    }
}
