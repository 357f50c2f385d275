//! The session's transaction block (see `txn`): the status the client sees, members joining,
//! the implicit block around a multi-node autocommit write, and transaction control commands.

use bytes::Bytes;
use pgshard_txn::TxnStatus;
use tokio_postgres::error::SqlState;

use super::relay::{Interrupted, Owed, Unit};
use super::simple::aborted_block;
use super::txn::{Block, Replay, TxnCmd, TxnState, Writes, quote, tag_of};
use super::{Session, msg};
use crate::error::CoordError;

impl Session {
    /// The transaction status the client sees.
    pub(super) fn status(&self) -> TxnStatus {
        match &self.txn {
            TxnState::Idle => TxnStatus::Idle,
            TxnState::Block(_) if self.block_failed() => TxnStatus::Failed,
            TxnState::Block(_) => TxnStatus::InBlock,
        }
    }

    /// Whether the block refuses statements until ROLLBACK (25P02).
    pub(super) fn block_failed(&self) -> bool {
        match &self.txn {
            TxnState::Idle => false,
            TxnState::Block(b) => b.failed || b.doomed || b.members.iter().any(|m| self.conns.peek(m.conn).status == b'E'),
        }
    }

    /// Whether a statement for connection `target` is answered 25P02 here: the block failed,
    /// and the target is not a failed member that answers so itself (with PostgreSQL's own
    /// message fields).
    pub(super) fn aborted_here(&self, target: Option<usize>) -> bool {
        let TxnState::Block(b) = &self.txn else { return false };
        if !self.block_failed() {
            return false;
        }
        let says_so = |i: usize| b.has(i) && self.conns.peek(i).status == b'E';
        b.failed || b.doomed || !target.is_some_and(says_so)
    }

    /// Notes that a statement of the block failed.
    pub(super) fn fail_block(&mut self) {
        if let TxnState::Block(b) = &mut self.txn {
            b.failed = true;
        }
    }

    /// Makes connection `i` a member of the open block before what is queued next: its join
    /// text is queued as a Query whose answer is swallowed.
    pub(super) fn bind_txn(&mut self, i: usize, owed: &mut Owed, writes: Writes) {
        if let Some(text) = self.join_prefix(i, writes) {
            msg::query(&text, &mut self.conns.get(i).out);
            owed.push(Unit::Query, false);
        }
    }

    /// Enlists connection `i` in the open block; the text it must run first when it is new.
    pub(super) fn join_prefix(&mut self, i: usize, writes: Writes) -> Option<String> {
        match &mut self.txn {
            TxnState::Block(b) => b.enlist(i, writes),
            TxnState::Idle => None,
        }
    }

    /// Makes `conns` members of the open block now, one round trip for those that are new.
    /// On failure the block is failed and the error frame returned.
    pub(super) async fn join_now(&mut self, conns: &[usize], writes: Writes) -> Result<(), Bytes> {
        let work: Vec<(usize, String)> = conns.iter().filter_map(|&i| self.join_prefix(i, writes).map(|t| (i, t))).collect();
        if work.is_empty() {
            return Ok(());
        }
        let replies = self.query_each(&work).await;
        let mut first = None;
        for (reply, (i, _)) in replies.into_iter().zip(&work) {
            if let Some(why) = reply.lost {
                self.doom_block();
                first.get_or_insert_with(|| self.lost_frame(*i, &why, "joining the transaction"));
            } else if let Some(e) = reply.error {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => {
                self.fail_block();
                Err(e)
            }
            None => Ok(()),
        }
    }

    /// A member's connection was lost: the block can only roll back.
    pub(super) fn doom_block(&mut self) {
        if let TxnState::Block(b) = &mut self.txn {
            b.doomed = true;
            b.failed = true;
        }
    }

    /// Opens an implicit block when none is open; returns whether it did.
    pub(super) fn begin_implicit(&mut self) -> bool {
        if matches!(self.txn, TxnState::Idle) {
            self.txn = TxnState::Block(Block::implicit());
            return true;
        }
        false
    }

    /// Ends the implicit block: commits it when `ok`, else rolls it back. Returns the commit's
    /// error, if any.
    pub(super) async fn end_implicit(&mut self, ok: bool) -> Option<Bytes> {
        let TxnState::Block(block) = std::mem::take(&mut self.txn) else { return None };
        let ok = ok && !block.failed && !block.members.iter().any(|m| self.conns.peek(m.conn).status == b'E');
        if ok {
            self.commit_members(&block.members).await.err()
        } else {
            self.rollback_members(&block.members).await;
            None
        }
    }

    /// After a request: a block whose members all went back to idle (the client's own COMMIT
    /// inside a multi-statement query) is over; a statement that opened a block itself (`BEGIN;
    /// ...` in one query string) opens the session's block with that connection as member.
    pub(super) fn settle_txn(&mut self) {
        match &self.txn {
            TxnState::Block(b) if !b.members.is_empty() && b.members.iter().all(|m| self.conns.peek(m.conn).status == b'I') => {
                self.txn = TxnState::Idle;
            }
            TxnState::Idle => {
                if let Some(i) = (0..self.conns.len()).find(|&i| self.conns.peek(i).status != b'I' && !self.conns.peek(i).scratch) {
                    let mut block = Block::new("BEGIN");
                    block.enlist(i, Writes::Unknown);
                    self.txn = TxnState::Block(block);
                }
            }
            _ => {}
        }
    }

    /// Runs transaction control and queues its answer (CommandComplete or an error), without
    /// ReadyForQuery. Returns whether it answered an error.
    pub(super) async fn run_txn_cmd(&mut self, cmd: &TxnCmd) -> Result<bool, Interrupted> {
        let answer = self.txn_cmd(cmd).await;
        match answer {
            Ok((warning, tag)) => {
                let out = self.client.out();
                if let Some((code, text)) = warning {
                    msg::warning(code, text, out);
                }
                msg::command_complete(tag, out);
                Ok(false)
            }
            Err(frame) => {
                self.client.out().extend_from_slice(&frame);
                self.fail_block();
                Ok(true)
            }
        }
    }

    /// The effect of a transaction command: a warning and the tag, or an error frame.
    async fn txn_cmd(&mut self, cmd: &TxnCmd) -> Result<(Option<(&'static str, &'static str)>, &'static str), Bytes> {
        let frame = |e: CoordError| msg::build(|o| msg::error(&e, o));
        let outside = |what: &str| {
            frame(CoordError::sql(SqlState::NO_ACTIVE_SQL_TRANSACTION, format!("{what} can only be used in transaction blocks")))
        };
        let failed = self.block_failed();
        let tag = tag_of(cmd, false);
        match (cmd, &mut self.txn) {
            (TxnCmd::Refuse(why), _) => Err(frame(CoordError::Unsupported(why.clone()))),
            (TxnCmd::Begin(text), TxnState::Idle) => {
                self.txn = TxnState::Block(Block::new(text));
                Ok((None, tag))
            }
            (TxnCmd::Begin(_), TxnState::Block(_)) if failed => Err(frame(aborted_block())),
            (TxnCmd::Begin(_), TxnState::Block(_)) => Ok((Some(("25001", "there is already a transaction in progress")), tag)),
            (TxnCmd::Commit { chain: true }, TxnState::Idle) => Err(outside("COMMIT AND CHAIN")),
            (TxnCmd::Rollback { chain: true }, TxnState::Idle) => Err(outside("ROLLBACK AND CHAIN")),
            (TxnCmd::Commit { .. } | TxnCmd::Rollback { .. }, TxnState::Idle) => {
                Ok((Some(("25P01", "there is no transaction in progress")), tag))
            }
            (TxnCmd::Commit { chain } | TxnCmd::Rollback { chain }, TxnState::Block(_)) => {
                let TxnState::Block(block) = std::mem::take(&mut self.txn) else { return Ok((None, tag)) };
                let commit = matches!(cmd, TxnCmd::Commit { .. }) && !failed;
                let result = if commit {
                    let done = self.commit_members(&block.members).await.map(|()| tag);
                    if done.is_ok() {
                        self.keep_block_settings(&block).await;
                    }
                    done
                } else {
                    self.rollback_members(&block.members).await;
                    Ok("ROLLBACK")
                };
                if *chain && result.is_ok() {
                    self.txn = TxnState::Block(Block::new(&block.begin));
                }
                result.map(|t| (None, t))
            }
            (TxnCmd::Savepoint(_), TxnState::Idle) => Err(outside("SAVEPOINT")),
            (TxnCmd::Release(_), TxnState::Idle) => Err(outside("RELEASE SAVEPOINT")),
            (TxnCmd::RollbackTo(_), TxnState::Idle) => Err(outside("ROLLBACK TO SAVEPOINT")),
            (TxnCmd::SetTransaction(_), TxnState::Idle) => {
                Ok((Some(("25P01", "SET TRANSACTION can only be used in transaction blocks")), tag))
            }
            (TxnCmd::Savepoint(_) | TxnCmd::Release(_) | TxnCmd::SetTransaction(_), TxnState::Block(_)) if failed => {
                Err(frame(aborted_block()))
            }
            (TxnCmd::RollbackTo(_), TxnState::Block(b)) if b.doomed => Err(frame(CoordError::sql(
                SqlState::IN_FAILED_SQL_TRANSACTION,
                "a data node's connection was lost in this transaction: only ROLLBACK can end it",
            ))),
            (TxnCmd::Release(name) | TxnCmd::RollbackTo(name), TxnState::Block(b)) if b.savepoint(name).is_none() => {
                Err(frame(CoordError::sql(SqlState::S_E_INVALID_SPECIFICATION, format!("savepoint \"{name}\" does not exist"))))
            }
            (TxnCmd::Savepoint(name), TxnState::Block(b)) => {
                let sql = format!("SAVEPOINT {}", quote(name));
                b.push_savepoint(name);
                self.on_members(&sql).await.map(|()| (None, tag))
            }
            (TxnCmd::Release(name), TxnState::Block(b)) => {
                let at = b.savepoint(name).unwrap_or_default();
                b.release(at);
                self.on_members(&format!("RELEASE SAVEPOINT {}", quote(name))).await.map(|()| (None, tag))
            }
            (TxnCmd::RollbackTo(name), TxnState::Block(b)) => {
                let at = b.savepoint(name).unwrap_or_default();
                b.rollback_to(at);
                self.on_members(&format!("ROLLBACK TO SAVEPOINT {}", quote(name))).await?;
                if let TxnState::Block(b) = &mut self.txn {
                    b.failed = false;
                }
                Ok((None, tag))
            }
            (TxnCmd::SetTransaction(text), TxnState::Block(b)) => {
                b.begin.push(';');
                b.begin.push_str(text);
                self.on_members(text).await.map(|()| (None, tag))
            }
        }
    }

    /// A setting that succeeded on home inside the block: the other members run it too, and
    /// members that join later replay it. A member that refuses it is logged.
    pub(super) async fn spread_block_setting(&mut self, sql: &str) {
        let TxnState::Block(b) = &mut self.txn else { return };
        b.replay.push(Replay::Setting(sql.to_owned()));
        let work: Vec<(usize, String)> = b.members.iter().filter(|m| m.conn != 0).map(|m| (m.conn, sql.to_owned())).collect();
        for (reply, (i, _)) in self.query_each(&work).await.into_iter().zip(&work) {
            if reply.error.is_some() || reply.lost.is_some() {
                tracing::warn!(node = %self.conns.peek(*i).node, setting = sql, "a block member refused a setting");
            }
        }
    }

    /// After a block committed: its session-level settings outlive it, so the session's other
    /// connections get them too and new ones replay them.
    async fn keep_block_settings(&mut self, block: &Block) {
        let settings: Vec<String> = block.session_settings().map(str::to_owned).collect();
        for sql in settings {
            let work: Vec<(usize, String)> = (0..self.conns.len()).filter(|&i| !block.has(i)).map(|i| (i, sql.clone())).collect();
            self.query_each(&work).await;
            self.settings.push(sql);
        }
    }

    /// Runs `sql` on every member of the block; the first error (or a lost member) fails it.
    async fn on_members(&mut self, sql: &str) -> Result<(), Bytes> {
        let TxnState::Block(b) = &self.txn else { return Ok(()) };
        let work: Vec<(usize, String)> = b.members.iter().map(|m| (m.conn, sql.to_owned())).collect();
        let replies = self.query_each(&work).await;
        let mut first = None;
        for (reply, (i, _)) in replies.into_iter().zip(&work) {
            if let Some(why) = reply.lost {
                self.doom_block();
                first.get_or_insert_with(|| self.lost_frame(*i, &why, sql));
            } else if let Some(e) = reply.error {
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
