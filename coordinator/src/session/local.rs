//! Extended-protocol statements the coordinator runs itself: a statement whose Bind reaches
//! several shards, a pgshard function, DDL on distributed tables, a reference-table write,
//! EXPLAIN of a distributed statement. At Bind the parameters are written into the text as
//! literals (text-format parameters only) and the portal is kept here; at Execute the text runs
//! through the same executor as a simple query, answering in the extended protocol's way (no
//! RowDescription, no ReadyForQuery; an error skips to Sync). Describe of such a portal asks
//! PostgreSQL on home for the statement's columns (the shells have the shards' columns).

use std::sync::Arc;

use bytes::Bytes;
use pgshard_catalog::{CatalogSnapshot, NodeId};
use pgshard_planner::{Plan, bind_params, max_param};
use tokio_postgres::error::SqlState;

use super::fanout::Merged;
use super::simple::aborted_block;
use super::relay::Interrupted;
use super::txn::Writes;
use super::route::Decision;
use super::{Session, msg};
use crate::error::CoordError;

/// Binary results where the coordinator relays text rows.
pub(super) fn binary_results_refused() -> CoordError {
    CoordError::Unsupported("binary results of a statement whose rows several shards send (ask for text results)".into())
}

/// A portal the coordinator runs itself.
#[derive(Debug)]
pub struct LocalPortal {
    /// The prepared statement's text, with its `$n`.
    pub stmt_sql: String,
    /// The statement's declared parameter types.
    pub types: Vec<u32>,
    /// The text with the bound values written in.
    pub sql: String,
    /// The plan of a statement that is not a shard plan (its Describe is known here).
    pub planned: Option<Arc<Plan>>,
    /// The client asked for binary results, which only some plans produce.
    pub binary_results: bool,
    /// The result format codes of the client's Bind.
    pub result_formats: Vec<i16>,
    /// Rows of several shards concatenated: each shard binds the client's parameters itself.
    pub bound: Option<Bound>,
}

/// A statement whose shards each run it with the client's own Bind (parameters and result
/// formats as sent, binary included).
#[derive(Debug)]
pub struct Bound {
    /// The catalog the statement was routed with.
    pub catalog: Arc<CatalogSnapshot>,
    /// Each target shard's node and statement.
    pub statements: Vec<(NodeId, String)>,
    /// The statement's declared parameter types.
    pub types: Vec<u32>,
    /// The client's Bind after the portal and statement names.
    pub after_names: Bytes,
    /// An UPDATE or DELETE: committed on every node or on none.
    pub write: bool,
}

const NAME: &str = "pgshard_describe";

/// Describe answers for a statement the coordinator runs itself: ParameterDescription (when
/// describing the statement), then its columns or NoData.
pub fn describe_planned(plan: &Plan, sql: &str, types: &[u32], statement: bool) -> Bytes {
    msg::build(|o| {
        if statement {
            let count = max_param(sql).max(types.len());
            let described: Vec<u32> = (0..count).map(|i| types.get(i).copied().filter(|t| *t != 0).unwrap_or(25)).collect();
            msg::parameter_description(&described, o);
        }
        match plan {
            Plan::Function(call) if call.name == "verify_placement" => {
                msg::row_description(&[("rows_checked", 20), ("rows_misplaced", 20)], o);
            }
            Plan::Function(call) if call.name == "become_primary" => msg::row_description(&[("previous_primary", 25)], o),
            Plan::Function(call) if call.name == "recover_prepared_transactions" => {
                msg::row_description(&super::dispatch::RECOVERY_COLUMNS, o);
            }
            Plan::Function(call) => msg::row_description(&[(super::dispatch::void_name(&call.name), 2278)], o),
            Plan::Explain(_) => msg::row_description(&[("QUERY PLAN", 25)], o),
            _ => msg::empty(b'n', o),
        }
    })
}

impl Session {
    /// Binds a portal the coordinator runs itself and answers BindComplete.
    pub(super) fn bind_local(
        &mut self,
        b: &msg::BindMsg<'_>,
        stmt_sql: &str,
        types: &[u32],
        planned: Option<Arc<Plan>>,
        extra: &[String],
    ) -> super::extended::Action {
        use super::extended::Action;
        let mut values = Vec::with_capacity(b.values.len() + extra.len());
        for (i, v) in b.values.iter().enumerate() {
            if b.is_binary(i) {
                let ty = types.get(i).copied().unwrap_or(0);
                match v.map(|v| super::binval::to_text(ty, v)) {
                    None => values.push(None),
                    Some(Some(text)) => values.push(Some(text)),
                    Some(None) => {
                        return Action::Fail(CoordError::Unsupported(format!(
                            "a binary-format parameter of type {ty} in a statement that reaches several shards or that pgshard runs itself (send it as text)"
                        )));
                    }
                }
                continue;
            }
            match v.map(std::str::from_utf8) {
                None => values.push(None),
                Some(Ok(text)) => values.push(Some(text.to_owned())),
                Some(Err(_)) => {
                    return Action::Fail(CoordError::sql(SqlState::CHARACTER_NOT_IN_REPERTOIRE, "invalid UTF-8 in a parameter"));
                }
            }
        }
        values.extend(extra.iter().map(|e| Some(e.clone())));
        let sql = match bind_params(stmt_sql, &values) {
            Ok(s) => s,
            Err(why) => return Action::Fail(CoordError::sql(SqlState::PROTOCOL_VIOLATION, why)),
        };
        let portal = LocalPortal {
            stmt_sql: stmt_sql.to_owned(),
            types: types.to_vec(),
            sql,
            planned,
            binary_results: b.result_formats.contains(&1),
            result_formats: b.result_formats.clone(),
            bound: None,
        };
        self.insert_local_portal(b.portal, Arc::new(portal));
        Action::Answer(msg::build(|o| msg::empty(b'2', o)))
    }

    /// Binds a portal whose shards each take the client's Bind, and answers BindComplete.
    pub(super) fn bind_local_bound(&mut self, b: &msg::BindMsg<'_>, stmt_sql: &str, bound: Bound) -> super::extended::Action {
        let portal = LocalPortal {
            stmt_sql: stmt_sql.to_owned(),
            types: bound.types.clone(),
            sql: String::new(),
            planned: None,
            binary_results: false,
            result_formats: Vec::new(),
            bound: Some(bound),
        };
        self.insert_local_portal(b.portal, Arc::new(portal));
        super::extended::Action::Answer(msg::build(|o| msg::empty(b'2', o)))
    }

    /// Runs a bound portal: on each node, Parse/Bind/Execute of every shard's statement and one
    /// Sync, nodes in parallel; rows stream to the client, counts are summed. Every node joins
    /// the client's block; outside one, a write on several nodes runs in an implicit block.
    async fn run_bound(&mut self, bound: &Bound) -> Result<(), Interrupted> {
        if self.block_failed() {
            return self.answer_error(&aborted_block()).await;
        }
        let mut per_node: Vec<(NodeId, usize, Vec<&str>)> = Vec::new();
        for (node, sql) in &bound.statements {
            match per_node.iter_mut().find(|(n, _, _)| n == node) {
                Some((_, _, list)) => list.push(sql),
                None => {
                    let i = match self.conn_to(&bound.catalog, *node).await {
                        Ok(i) => i,
                        Err(e) => return self.answer_error(&e).await,
                    };
                    per_node.push((*node, i, vec![sql]));
                }
            }
        }
        let implicit = bound.write && per_node.len() > 1 && self.begin_implicit();
        // Shards whose rows the statement does not touch may not write: asked at commit.
        let writes = Writes::Unknown;
        let mut merged = Merged::default();
        let mut joined = Vec::new();
        for (_, i, list) in &per_node {
            let join = self.join_prefix(*i, writes);
            let out = &mut self.conns.get(*i).out;
            if let Some(text) = &join {
                msg::query(text, out);
            }
            joined.push(join.is_some());
            for sql in list {
                msg::parse("", sql, &bound.types, out);
                msg::bind_with("", "", &bound.after_names, out);
                msg::execute("", out);
            }
            msg::sync(out);
            self.flush_conn(*i).await?;
        }
        for ((_, i, _), joined) in per_node.iter().zip(joined) {
            if joined {
                self.read_answer(*i, &mut merged, false).await?;
            }
            self.read_answer(*i, &mut merged, true).await?;
        }
        if implicit && let Some(e) = self.end_implicit(merged.error.is_none()).await {
            merged.error = Some(e);
        }
        self.finish_merged(&merged)
    }

    /// Answers a Describe of a local portal's columns with PostgreSQL's own, from home.
    /// Returns the parameter types PostgreSQL described (for a statement).
    pub(super) async fn describe_on_home_for_client(&mut self, sql: &str, types: &[u32], statement: bool) -> Result<Option<Vec<u32>>, Interrupted> {
        let home = self.conns.get(0);
        msg::parse(NAME, sql, types, &mut home.out);
        msg::describe_statement(NAME, &mut home.out);
        msg::close_statement(NAME, &mut home.out);
        msg::flush(&mut home.out);
        self.flush_conn(0).await?;
        self.mark_unsynced(0);
        let mut described = None;
        loop {
            let (tag, m) =
                self.conns.get(0).recv().await?;
            match tag {
                b'T' | b'n' => self.push(&m).await?,
                b't' if statement => {
                    described = msg::parameter_types(&m).ok();
                    self.push(&m).await?;
                }
                b'E' => {
                    self.push(&m).await?;
                    self.skip_to_sync();
                    return Ok(None);
                }
                b'3' => return Ok(described),
                b'N' => self.push(&m).await?,
                _ => {}
            }
        }
    }

    /// Executes a local portal; returns whether it failed (the request then skips to Sync).
    pub(super) async fn run_local(&mut self, p: &LocalPortal) -> Result<bool, Interrupted> {
        self.extended = true;
        let done = self.run_local_inner(p).await;
        self.extended = false;
        self.binary_results = false;
        self.result_formats.clear();
        done?;
        Ok(self.skipping())
    }

    async fn run_local_inner(&mut self, p: &LocalPortal) -> Result<(), Interrupted> {
        if let Some(bound) = &p.bound {
            return self.run_bound(bound).await;
        }
        // Statements without result rows (COPY FROM, DDL) take any result format; pgshard's
        // functions answer in binary when asked.
        let any_format = matches!(p.planned.as_deref(), Some(Plan::CopyIn(_) | Plan::Ddl(_) | Plan::Function(_)));
        self.binary_results = p.binary_results;
        self.result_formats.clone_from(&p.result_formats);
        let timed = self.with_times(&p.sql).await;
        let sql = timed.as_deref().unwrap_or(&p.sql);
        let decision = match self.decide(sql).await {
            Ok(d) => d,
            Err(e) => return self.answer_error(&e).await,
        };
        // Shard plans, reads over copies and staged inserts check the formats where they
        // answer (a final query on the default node, or a shard's bound INSERT ... RETURNING,
        // answers in any format); substitutions are planned again.
        let checked_later = matches!(&decision, Decision::Plan(_, plan)
            if matches!(**plan, Plan::Shards(_) | Plan::Pull(_) | Plan::InsertSelect(_) | Plan::Substitute(_)));
        if p.binary_results && !any_format && !checked_later {
            return self.answer_error(&binary_results_refused()).await;
        }
        match decision {
            Decision::Plan(catalog, plan) => self.run_plan_simple(catalog, *plan, sql).await,
            Decision::Refuse(why) => self.answer_error(&CoordError::Unsupported(why)).await,
            Decision::Home | Decision::Txn(_) => {
                let e = CoordError::sql(
                    SqlState::FEATURE_NOT_SUPPORTED,
                    "the catalog changed since this statement was prepared; prepare it again",
                );
                self.answer_error(&e).await
            }
        }
    }
}
