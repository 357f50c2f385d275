//! Extended-protocol requests: the messages up to a Sync or Flush, each turned into frames for
//! one connection or into an answer made here, in order.
//!
//! Statements the client prepares are kept by name with their text and placement. One that runs
//! as written is prepared on home under the client's own name at Parse (so Parse errors and
//! Describe answers are PostgreSQL's own); when a transaction block runs on another connection
//! it is prepared there under a name of the session's (`pgshard_<id>`) at its first Bind.
//! Transaction control is answered here (see `txn`). Consecutive messages for one connection
//! form a segment, sent in one write; when a request touches only one connection its Sync goes
//! with the last segment and the node's ReadyForQuery reaches the client as it is, which is the
//! common case and costs one round trip. Otherwise each segment ends with a Flush, its answers
//! are relayed before the next segment, and at the end every touched connection gets a Sync
//! and the client one ReadyForQuery. After an error the rest of the request is skipped, as
//! PostgreSQL does, and the other touched connections are failed too so that nothing of the
//! request commits.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use pgshard_catalog::CatalogSnapshot;
use pgshard_planner::{Plan, ShardPlan};

use super::relay::{Interrupted, Owed, Unit};
use super::simple::poison;
use super::txn::{TxnCmd, TxnState, Writes};
use super::local::{self, LocalPortal};
use super::{BatchEnd, Session, msg};
use crate::error::CoordError;

/// A statement the client prepared.
#[derive(Debug, Clone)]
pub struct Stmt {
    pub(super) id: u64,
    /// The text pgshard plans and runs (the client's, with the transaction-time functions made
    /// parameters when `time` is set).
    pub(super) sql: String,
    pub(super) types: Vec<u32>,
    pub(super) kind: StmtKind,
    /// The catalog version it was planned under.
    pub(super) version: i64,
    /// The parameters for the transaction's and the statement's time, bound at each execution,
    /// and the client's own text and types (what Describe answers for).
    pub(super) time: Option<(super::clock::TimeParams, String, Vec<u32>)>,
}

/// What a prepared statement is.
#[derive(Debug, Clone)]
pub(super) enum StmtKind {
    /// Runs as written; prepared on home under the client's name.
    Home,
    /// Transaction control, answered by the session.
    Txn(TxnCmd),
    /// Over distributed tables: prepared on home under the client's name (for Describe), and
    /// at each Bind on the shard its parameters pick, under `pgshard_<id>_<shard>`; a Bind
    /// that reaches several shards makes a local portal.
    Shard(Arc<CatalogSnapshot>, Arc<ShardPlan>),
    /// Run by the coordinator itself at Execute (a pgshard function, DDL on distributed
    /// tables, a reference-table write, EXPLAIN): parsed nowhere; its portals are local.
    Planned(Arc<Plan>),
}

/// Where a portal lives.
#[derive(Debug, Clone)]
pub(super) enum PortalAt {
    /// On the session's connection at this index.
    Conn(usize),
    /// Transaction control, answered by the session.
    Txn(TxnCmd),
    /// Run by the coordinator at Execute as the equivalent simple query.
    Local(Arc<LocalPortal>),
}

/// The client's prepared statements and portals.
#[derive(Default)]
pub struct Statements {
    pub(super) stmts: HashMap<String, Stmt>,
    pub(super) portals: HashMap<String, PortalAt>,
    next_id: u64,
    /// Connections sent extended-protocol messages since the last Sync.
    unsynced: Vec<usize>,
    /// An error ended the request: skip to the next Sync.
    skipping: bool,
    /// A COPY FROM STDIN ran here: the Sync that ended its request is not the one the client
    /// waits an answer to.
    copy_swallowed_sync: bool,
}

impl Statements {
    /// True when no client statement is prepared on home (under the client's name), so the
    /// session could take another home connection.
    pub(super) fn none_on_home(&self) -> bool {
        self.stmts.values().all(|s| matches!(s.kind, StmtKind::Txn(_) | StmtKind::Planned(_))) && self.unsynced.is_empty()
    }
}

/// What to do with one client message.
pub(super) enum Action {
    /// Queue these frames, each with the answer it books, on connection `conn`; `txn` (with
    /// what they may write) when they belong to the client's transaction block (a Parse does
    /// not: it makes no connection a member).
    Send { conn: usize, frames: Vec<(Bytes, Option<(Unit, bool)>)>, txn: Option<Writes> },
    /// Transaction control, run by the session.
    Txn(TxnCmd),
    /// Answer the client with these bytes.
    Answer(Bytes),
    /// Fail the request with this error.
    Fail(CoordError),
    /// Answer a Describe of a statement's result columns from PostgreSQL's Describe on home.
    /// `statement`: a statement's Describe (ParameterDescription first), else a portal's.
    DescribeHome { sql: String, types: Vec<u32>, statement: Option<String> },
    /// Run a local portal.
    RunLocal(Arc<LocalPortal>),
}

pub(super) fn send(conn: usize, m: &Bytes, unit: Unit) -> Action {
    let txn = (!matches!(unit, Unit::Parse | Unit::DescribeStatement | Unit::Close)).then_some(Writes::Unknown);
    Action::Send { conn, frames: vec![(m.clone(), Some((unit, true)))], txn }
}

pub(super) fn answer(tag: u8) -> Action {
    Action::Answer(msg::build(|o| msg::empty(tag, o)))
}

/// The segment being built: its connection and what it owes.
#[derive(Default)]
struct Segment {
    conn: Option<usize>,
    owed: Owed,
    /// The client's block has been bound to the segment's connection.
    bound: bool,
}

impl Session {
    /// Serves the extended-protocol messages of one request.
    pub(super) async fn run_batch(&mut self, msgs: Vec<(u8, Bytes)>, end: BatchEnd) -> Result<(), Interrupted> {
        let mut seg = Segment::default();
        let mut failed_here = false;
        for (tag, m) in msgs {
            if self.statements.skipping {
                continue;
            }
            let action = match self.translate(tag, &m).await {
                Ok(a) => a,
                Err(Interrupted::Protocol(e)) => Action::Fail(e),
                Err(i) => return Err(i),
            };
            match action {
                Action::Send { conn, frames, txn } => {
                    if seg.conn != Some(conn) {
                        self.close_segment(&mut seg).await?;
                        if self.statements.skipping {
                            continue;
                        }
                        seg.conn = Some(conn);
                        seg.bound = false;
                        if !self.statements.unsynced.contains(&conn) {
                            self.statements.unsynced.push(conn);
                        }
                    }
                    if let Some(writes) = txn
                        && !seg.bound
                    {
                        // A new member's join text goes ahead of what this segment already queued.
                        let queued = self.conns.get(conn).out.split();
                        let mut ahead = Owed::default();
                        self.bind_txn(conn, &mut ahead, writes);
                        self.conns.get(conn).out.extend_from_slice(&queued);
                        seg.bound = true;
                        seg.owed.prepend(ahead);
                    } else if let Some(writes) = txn {
                        self.join_prefix(conn, writes);
                    }
                    let c = self.conns.get(conn);
                    for (bytes, unit) in frames {
                        c.out.extend_from_slice(&bytes);
                        if let Some((u, fwd)) = unit {
                            seg.owed.push(u, fwd);
                        }
                    }
                }
                Action::Answer(bytes) => {
                    self.close_segment(&mut seg).await?;
                    if !self.statements.skipping {
                        self.client.push(&bytes).await.map_err(|_| Interrupted::ClientGone)?;
                    }
                }
                Action::Fail(e) => {
                    self.close_segment(&mut seg).await?;
                    self.fail_request(e, &mut failed_here).await?;
                }
                Action::DescribeHome { sql, types, statement } => {
                    self.close_segment(&mut seg).await?;
                    if !self.statements.skipping {
                        let described = self.describe_on_home_for_client(&sql, &types, statement.is_some()).await?;
                        // Binary parameters the client sends by these types are decoded at Bind
                        // (the time parameters keep theirs).
                        if let (Some(name), Some(mut described)) = (statement, described)
                            && let Some(stmt) = self.statements.stmts.get_mut(&name)
                        {
                            if stmt.time.is_some() {
                                described.resize(stmt.types.len().saturating_sub(2), 0);
                                described.extend([TIMESTAMPTZ, TIMESTAMPTZ]);
                            }
                            stmt.types = described;
                        }
                    }
                }
                Action::Txn(cmd) => {
                    self.close_segment(&mut seg).await?;
                    if !self.statements.skipping && self.run_txn_cmd(&cmd).await? {
                        failed_here = true;
                        self.skip_to_sync();
                    }
                }
                Action::RunLocal(portal) => {
                    self.close_segment(&mut seg).await?;
                    if !self.statements.skipping {
                        failed_here |= self.run_local(&portal).await?;
                    }
                }
            }
        }
        match end {
            BatchEnd::Flush => {
                if let Some(i) = seg.conn {
                    msg::flush(&mut self.conns.get(i).out);
                    self.exchange(i, &mut seg.owed).await?;
                    self.statements.skipping |= seg.owed.errored;
                }
                Ok(())
            }
            BatchEnd::Sync => self.sync(seg, failed_here).await,
        }
    }

    /// Ends the request at the client's Sync.
    async fn sync(&mut self, mut seg: Segment, failed_here: bool) -> Result<(), Interrupted> {
        if std::mem::take(&mut self.statements.copy_swallowed_sync) {
            self.close_segment(&mut seg).await?;
            self.statements.skipping = false;
            return Ok(());
        }
        let unsynced = std::mem::take(&mut self.statements.unsynced);
        let errored = self.statements.skipping;
        self.statements.skipping = false;
        let direct = match unsynced.as_slice() {
            [only] if seg.conn.is_none_or(|i| i == *only) && !failed_here => {
                // The node's ReadyForQuery can go to the client as it is when its status is the
                // session's: no block, or a block where only this member can change it.
                let alone = match &self.txn {
                    TxnState::Idle => true,
                    TxnState::Block(b) => b.has(*only) && !self.block_failed(),
                };
                alone.then_some(*only)
            }
            _ => None,
        };
        if let Some(i) = direct {
            msg::sync(&mut self.conns.get(i).out);
            seg.owed.push(Unit::Sync, true);
            self.exchange(i, &mut seg.owed).await?;
            if seg.owed.extended_copy {
                // A COPY swallowed this Sync: the client answers with another after CopyDone.
                self.statements.unsynced.push(i);
            }
            self.settle_txn();
            return Ok(());
        }
        let swallowed = self.close_segment(&mut seg).await?;
        if errored || self.statements.skipping {
            self.fail_block();
        }
        self.statements.skipping = false;
        if swallowed {
            self.statements.unsynced = unsynced;
            return Ok(());
        }
        for i in unsynced {
            let mut owed = Owed::default();
            msg::sync(&mut self.conns.get(i).out);
            owed.push(Unit::Sync, false);
            self.exchange(i, &mut owed).await?;
        }
        self.settle_txn();
        let status = self.status().as_byte();
        msg::ready(status, self.client.out());
        Ok(())
    }

    /// Sends the open segment with a Flush and relays its answers.
    /// Returns whether a COPY in the segment swallowed the Sync that ends the request.
    async fn close_segment(&mut self, seg: &mut Segment) -> Result<bool, Interrupted> {
        let mut swallowed = false;
        if let Some(i) = seg.conn.take() {
            msg::flush(&mut self.conns.get(i).out);
            self.exchange(i, &mut seg.owed).await?;
            self.statements.skipping |= seg.owed.errored;
            swallowed = seg.owed.extended_copy;
            seg.owed = Owed::default();
        }
        Ok(swallowed)
    }

    /// Answers an error made here, fails what the request already sent to the nodes, and
    /// skips the rest of the request.
    async fn fail_request(&mut self, err: CoordError, failed_here: &mut bool) -> Result<(), Interrupted> {
        *failed_here = true;
        self.statements.skipping = true;
        msg::error(&err, self.client.out());
        self.fail_block();
        for i in self.statements.unsynced.clone() {
            let mut owed = Owed::default();
            poison(self.conns.get(i), &mut owed);
            msg::flush(&mut self.conns.get(i).out);
            self.exchange(i, &mut owed).await?;
        }
        Ok(())
    }

    /// Keeps a portal the coordinator runs itself.
    pub(super) fn insert_local_portal(&mut self, name: &str, portal: Arc<LocalPortal>) {
        self.statements.portals.insert(name.to_owned(), PortalAt::Local(portal));
    }

    /// Connection `i` was sent extended-protocol messages: it gets a Sync at the request's end.
    pub(super) fn mark_unsynced(&mut self, i: usize) {
        if !self.statements.unsynced.contains(&i) {
            self.statements.unsynced.push(i);
        }
    }

    /// A COPY FROM STDIN the coordinator runs started in the extended protocol.
    pub(super) fn copy_swallows_sync(&mut self) {
        self.statements.copy_swallowed_sync = true;
    }

    /// An error ended the request: the rest of it is skipped up to Sync.
    pub(super) fn skip_to_sync(&mut self) {
        self.statements.skipping = true;
    }

    /// Whether the request is skipping to Sync.
    pub(super) fn skipping(&self) -> bool {
        self.statements.skipping
    }

    /// Decides what one client message becomes.
    async fn translate(&mut self, tag: u8, m: &Bytes) -> Result<Action, Interrupted> {
        let protocol = Interrupted::Protocol;
        Ok(match tag {
            b'P' => self.on_parse(m).await.map_err(protocol)?,
            b'B' => self.on_bind(m).await.map_err(protocol)?,
            b'D' => {
                let (kind, name) = msg::target_of(m).map_err(protocol)?;
                if kind == b'S' {
                    match self.statements.stmts.get(name) {
                        Some(Stmt { kind: StmtKind::Txn(_), .. }) => Action::Answer(msg::build(|o| {
                            msg::parameter_description(&[], o);
                            msg::empty(b'n', o);
                        })),
                        // Reads over copies and writes the coordinator runs itself have the
                        // parameters and columns PostgreSQL gives them over the shells.
                        Some(Stmt { kind: StmtKind::Planned(plan), sql, types, time, .. }) if described_on_home(plan) => {
                            // The client's own text: its parameters, not the time ones.
                            let (sql, types) = match time {
                                Some((_, own, own_types)) => (own.clone(), own_types.clone()),
                                None => (sql.clone(), types.clone()),
                            };
                            Action::DescribeHome { sql, types, statement: Some(name.to_owned()) }
                        }
                        Some(Stmt { kind: StmtKind::Planned(plan), sql, types, .. }) => {
                            Action::Answer(local::describe_planned(plan, sql, types, true))
                        }
                        _ => send(0, m, Unit::DescribeStatement),
                    }
                } else {
                    match self.statements.portals.get(name) {
                        Some(PortalAt::Conn(i)) => send(*i, m, Unit::DescribePortal),
                        Some(PortalAt::Txn(_)) => answer(b'n'),
                        Some(PortalAt::Local(p)) => match &p.planned {
                            Some(plan) if !described_on_home(plan) => {
                                Action::Answer(local::describe_planned(plan, &p.stmt_sql, &[], false))
                            }
                            _ => Action::DescribeHome { sql: p.stmt_sql.clone(), types: p.types.clone(), statement: None },
                        },
                        None => send(0, m, Unit::DescribePortal),
                    }
                }
            }
            b'E' => {
                let portal = msg::execute_portal(m).map_err(protocol)?;
                match self.statements.portals.get(portal).cloned() {
                    Some(PortalAt::Conn(i)) => send(i, m, Unit::Execute),
                    Some(PortalAt::Txn(cmd)) => self.execute_txn(&cmd),
                    Some(PortalAt::Local(p)) => Action::RunLocal(p),
                    None => send(0, m, Unit::Execute),
                }
            }
            b'C' => {
                let (kind, name) = msg::target_of(m).map_err(protocol)?;
                if kind == b'S' {
                    match self.statements.stmts.remove(name).map(|s| s.kind) {
                        Some(StmtKind::Txn(_) | StmtKind::Planned(_)) => answer(b'3'),
                        _ => send(0, m, Unit::Close),
                    }
                } else {
                    match self.statements.portals.remove(name) {
                        Some(PortalAt::Conn(i)) => send(i, m, Unit::Close),
                        Some(PortalAt::Txn(_) | PortalAt::Local(_)) => answer(b'3'),
                        None => send(0, m, Unit::Close),
                    }
                }
            }
            _ => return Err(protocol(CoordError::Protocol(format!("invalid frontend message type {tag}")))),
        })
    }

    async fn on_parse(&mut self, m: &Bytes) -> Result<Action, CoordError> {
        let p = msg::ParseMsg::read(m)?;
        let version = self.catalog().version();
        // now() and its kin become parameters, bound with the transaction's time each run.
        let (sql, types, time) = match self.with_time_params(p.sql).await {
            Some((fixed, time)) => {
                let mut types = p.param_types.clone();
                types.resize(time.first - 1, 0);
                types.extend([TIMESTAMPTZ, TIMESTAMPTZ]);
                (fixed, types, Some((time, p.sql.to_owned(), p.param_types.clone())))
            }
            None => (p.sql.to_owned(), p.param_types.clone(), None),
        };
        let kind = match self.stmt_kind(&sql).await {
            Ok(k) => k,
            Err(e) => return Ok(Action::Fail(e)),
        };
        // A statement home runs as the client prepared it keeps home's own time (see the
        // README's limits): the client's Parse and Binds go there unchanged.
        let (sql, types, time) = match (&kind, time) {
            (StmtKind::Home, Some((_, own, own_types))) => (own, own_types, None),
            (_, time) => (sql, types, time),
        };
        if !p.name.is_empty() && self.statements.stmts.contains_key(p.name) {
            // PostgreSQL says the statement exists; keep ours as it was.
            return Ok(send(0, m, Unit::Parse));
        }
        self.statements.next_id += 1;
        let stmt = Stmt { id: self.statements.next_id, sql, types, kind, version, time };
        let home = matches!(stmt.kind, StmtKind::Home | StmtKind::Shard(..));
        self.statements.stmts.insert(p.name.to_owned(), stmt);
        Ok(if home { send(0, m, Unit::Parse) } else { answer(b'1') })
    }

    /// Executes a portal of transaction control.
    fn execute_txn(&mut self, cmd: &TxnCmd) -> Action {
        Action::Txn(cmd.clone())
    }
}

/// The type OID of timestamptz.
const TIMESTAMPTZ: u32 = 1184;

/// Whether PostgreSQL describes a planned statement over the shells on home (a read over
/// copies, a write the coordinator runs itself or binds itself, maybe with RETURNING).
fn described_on_home(plan: &Plan) -> bool {
    matches!(plan, Plan::Pull(_) | Plan::InsertSelect(_) | Plan::Substitute(_) | Plan::Shards(_))
}
