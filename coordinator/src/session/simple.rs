//! Simple-protocol requests: a Query (placed, then sent as written to home or to the
//! connection its transaction block runs on, or answered here for transaction control) and a
//! FunctionCall (home).

use bytes::Bytes;
use tokio_postgres::error::SqlState;

use std::sync::Arc;

use pgshard_catalog::CatalogSnapshot;
use pgshard_planner::{Plan, ShardPlan};

use super::plan::{self, ParamValue};
use super::relay::{Interrupted, Owed, Unit};
use super::shape::{self, Fast, Literal};
use super::route::Decision;
use super::txn::{self, TxnState, Writes};
use super::{Session, msg};
use crate::error::CoordError;

/// 25P02, as PostgreSQL words it.
pub fn aborted_block() -> CoordError {
    CoordError::sql(
        SqlState::IN_FAILED_SQL_TRANSACTION,
        "current transaction is aborted, commands ignored until end of transaction block",
    )
}

impl Session {
    /// Serves a request that is one message: Query, FunctionCall, or something unknown.
    pub(super) async fn run_single(&mut self, tag: u8, m: Bytes) -> Result<(), Interrupted> {
        match tag {
            b'Q' => self.run_query(m).await,
            b'F' => {
                // Fast-path calls (large objects, ...) may keep backend state: stay put.
                self.pinned = true;
                if self.aborted_here(Some(0)) {
                    return self.answer_error(&aborted_block()).await;
                }
                let i = 0;
                let mut owed = Owed::default();
                self.bind_txn(i, &mut owed, Writes::Unknown);
                self.conns.get(i).out.extend_from_slice(&m);
                owed.push(Unit::FunctionCall, true);
                self.exchange(i, &mut owed).await?;
                self.settle_txn();
                Ok(())
            }
            _ => Err(Interrupted::Protocol(CoordError::Protocol(format!("invalid frontend message type {tag}")))),
        }
    }

    async fn run_query(&mut self, m: Bytes) -> Result<(), Interrupted> {
        let sql = msg::query_text(&m).map_err(Interrupted::Protocol)?;
        if crate::guc::may_define_custom_variable(sql.as_bytes()) {
            self.custom_variable = true;
        }
        if !self.pinned && crate::guc::pins_session(sql.as_bytes(), false) {
            self.pinned = true;
        }
        let timed = self.with_times(sql).await;
        let sql = timed.as_deref().unwrap_or(sql);
        let decision = match self.fast_decision(sql).await {
            Some(FastDecision::Home) => Ok(Decision::Home),
            Some(FastDecision::Shard(catalog, sp, literals)) => {
                if self.run_fast_shard(&catalog, &sp, &literals).await? {
                    return Ok(());
                }
                self.decide(sql).await
            }
            None => self.decide(sql).await,
        };
        let decision = match decision {
            Ok(d) => d,
            Err(e) => return self.refuse(e).await,
        };
        match decision {
            Decision::Txn(cmd) => {
                self.run_txn_cmd(&cmd).await?;
                let status = self.status().as_byte();
                msg::ready(status, self.client.out());
                Ok(())
            }
            Decision::Refuse(why) => self.refuse(CoordError::Unsupported(why)).await,
            Decision::Plan(catalog, plan) => {
                let sql = sql.to_owned();
                self.run_plan_simple(catalog, *plan, &sql).await
            }
            Decision::Home => {
                if self.aborted_here(Some(0)) {
                    return self.answer_error(&aborted_block()).await;
                }
                let i = 0;
                // A read of reference tables runs here: with the transaction's time written in.
                let frame = match &timed {
                    Some(text) => msg::build(|o| msg::query(text, o)),
                    None => m.clone(),
                };
                self.send_query(i, &frame, Writes::Unknown).await?;
                if self.last_query_failed {
                    return Ok(());
                }
                if matches!(self.txn, TxnState::Idle) && crate::guc::is_session_setting(sql) {
                    let sql = sql.to_owned();
                    self.spread_setting(i, sql).await?;
                } else if crate::guc::is_block_setting(sql) {
                    self.spread_block_setting(sql).await;
                }
                Ok(())
            }
        }
    }

    /// Sends a Query to connection `i` (a member of the open block from then on) and relays
    /// the answer.
    pub(super) async fn send_query(&mut self, i: usize, m: &[u8], writes: Writes) -> Result<(), Interrupted> {
        let mut owed = Owed::default();
        self.bind_txn(i, &mut owed, writes);
        self.conns.get(i).out.extend_from_slice(m);
        owed.push(Unit::Query, true);
        self.exchange(i, &mut owed).await?;
        self.last_query_failed = owed.last_error.is_some();
        self.settle_txn();
        Ok(())
    }

    /// Repeats a setting that succeeded on connection `done` on the session's other
    /// connections (their answers, ParameterStatus included, are not the client's) and keeps
    /// it for connections opened later.
    async fn spread_setting(&mut self, done: usize, sql: String) -> Result<(), Interrupted> {
        for j in 0..self.conns.len() {
            if j != done {
                self.apply_setting(j, &sql).await?;
            }
        }
        if sql.trim_start().to_ascii_lowercase().starts_with("discard") {
            // DISCARD ALL / PLANS dropped the statements the session prepared on its nodes.
            for j in 0..self.conns.len() {
                self.conns.get(j).prepared.clear();
            }
        }
        self.settings.push(sql);
        Ok(())
    }

    /// Runs a setting on connection `j`; a node that refuses it is logged, not fatal.
    pub(super) async fn apply_setting(&mut self, j: usize, sql: &str) -> Result<(), Interrupted> {
        let mut merged = super::fanout::Merged::default();
        msg::query(sql, &mut self.conns.get(j).out);
        self.flush_conn(j).await?;
        self.read_answer(j, &mut merged, false).await?;
        if merged.error.is_some() {
            tracing::warn!(node = %self.conns.get(j).node, setting = sql, "a data node refused a session setting");
        }
        Ok(())
    }

    /// Answers a statement the coordinator refuses; in a block, the block fails as after any
    /// error.
    pub(super) async fn refuse(&mut self, err: CoordError) -> Result<(), Interrupted> {
        self.answer_error(&err).await
    }
}

/// What the shape cache says of a query.
enum FastDecision {
    /// Run as written on home.
    Home,
    /// Route by the literals.
    Shard(Arc<CatalogSnapshot>, Arc<ShardPlan>, Vec<Literal>),
}

impl Session {
    /// The fast path's decision for a simple-protocol query, planning its shape on first sight;
    /// `None` sends it down the full path.
    async fn fast_decision(&mut self, sql: &str) -> Option<FastDecision> {
        if txn::classify(sql).is_some() || crate::guc::schema_change(sql).is_some() {
            return None;
        }
        let shape = shape::shape_of(sql)?;
        let catalog = self.catalog();
        let version = catalog.version();
        let fast = match self.shared.shapes.get(version, &shape.key) {
            Some(f) => f,
            None => {
                let f = match self.decide(&shape.key).await {
                    Ok(Decision::Home) => Fast::Home,
                    Ok(Decision::Plan(c, plan)) if c.version() == version => match *plan {
                        Plan::Shards(sp) => Fast::Shard(Arc::new(sp)),
                        _ => Fast::Slow,
                    },
                    // A failure to plan may be passing (a node down): not kept.
                    Err(_) => return None,
                    _ => Fast::Slow,
                };
                self.shared.shapes.put(version, shape.key.clone(), f.clone());
                f
            }
        };
        match fast {
            Fast::Home => Some(FastDecision::Home),
            Fast::Shard(sp) => Some(FastDecision::Shard(catalog, sp, shape.literals)),
            Fast::Slow => None,
        }
    }

    /// Runs a shape planned over distributed tables when its literals pick one shard: the
    /// shard gets the query as written. Returns whether it ran (else the full path takes it).
    async fn run_fast_shard(&mut self, catalog: &Arc<CatalogSnapshot>, sp: &ShardPlan, literals: &[Literal]) -> Result<bool, Interrupted> {
        let params: Vec<ParamValue<'_>> =
            literals.iter().map(|l| ParamValue { value: Some(l.value.as_bytes()), binary: false }).collect();
        let Ok(routed) = plan::route(sp, catalog, &params) else { return Ok(false) };
        let [shard] = routed.shards.as_slice() else { return Ok(false) };
        let Some(sql) = shape::unshape(&sp.single.render(Some(&shard.schema_name())), literals) else { return Ok(false) };
        if self.block_failed() {
            self.answer_error(&aborted_block()).await?;
            return Ok(true);
        }
        let i = match self.conn_to(catalog, shard.node).await {
            Ok(i) => i,
            Err(e) => {
                self.refuse(e).await?;
                return Ok(true);
            }
        };
        let writes = if sp.kind == pgshard_planner::StmtKind::Select { Writes::Unknown } else { Writes::Yes };
        let frame = msg::build(|o| msg::query(&sql, o));
        self.send_query(i, &frame, writes).await?;
        Ok(true)
    }
}

/// Queues a message that fails on the node (a Bind of a statement that cannot exist), so its
/// transaction aborts as after any error; the answer is swallowed.
pub fn poison(conn: &mut super::conns::NodeConn, owed: &mut Owed) {
    msg::bind_plain("", "pgshard_no_such_statement", &mut conn.out);
    owed.push(Unit::Bind, false);
}
