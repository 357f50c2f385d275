//! Ending a transaction across data nodes. With at most one member that wrote, every member
//! gets a plain COMMIT (one phase). With more, two-phase commit: readers commit, writers run
//! PREPARE TRANSACTION in parallel, the decision record is written to the metadata store (its
//! commit is the commit point), and writers run COMMIT PREPARED. What is lost on the way is
//! never retried blindly: before the decision the transaction is rolled back and the client
//! gets the error; after it the outcome is commit, recovery finishes it, and a client whose
//! commit could not be confirmed everywhere gets 08007 (transaction resolution unknown), as
//! PostgreSQL's drivers report a connection lost during COMMIT.

use bytes::Bytes;
use pgshard_txn::Gid;
use tokio_postgres::error::SqlState;

use super::txn::{Member, Writes};
use super::{Session, msg};
use crate::dtx::DecisionError;
use crate::error::CoordError;

/// One node's answer to a Query the coordinator sent on its own.
#[derive(Debug, Default)]
pub(super) struct Reply {
    /// The first error the node sent.
    pub error: Option<Bytes>,
    /// The connection failed (why): the node's transaction is gone or in doubt.
    pub lost: Option<String>,
    /// Rows, as text.
    pub rows: Vec<Vec<Option<String>>>,
}

impl Session {
    /// Sends each connection its Query at once, then reads every answer. A connection that
    /// fails is marked dead (and replaced when next needed) instead of ending the session.
    pub(super) async fn query_each(&mut self, work: &[(usize, String)]) -> Vec<Reply> {
        let mut replies: Vec<Reply> = work.iter().map(|_| Reply::default()).collect();
        for ((i, sql), reply) in work.iter().zip(replies.iter_mut()) {
            let c = self.conns.get(*i);
            if c.dead {
                reply.lost = Some("the connection was lost earlier".into());
                continue;
            }
            msg::query(sql, &mut c.out);
            if let Err(e) = c.flush().await {
                c.dead = true;
                reply.lost = Some(e.to_string());
            }
        }
        for ((i, _), reply) in work.iter().zip(replies.iter_mut()) {
            if reply.lost.is_some() {
                continue;
            }
            let c = self.conns.get(*i);
            loop {
                match c.read().await {
                    Err(e) => {
                        c.dead = true;
                        reply.lost = Some(e.to_string());
                        break;
                    }
                    Ok((b'Z', m)) => {
                        c.status = m.get(5).copied().unwrap_or(b'I');
                        break;
                    }
                    Ok((b'E', m)) => {
                        reply.error.get_or_insert(m);
                    }
                    Ok((b'D', m)) => {
                        if let Ok(row) = msg::data_row_texts(&m) {
                            reply.rows.push(row);
                        }
                    }
                    Ok(_) => {}
                }
            }
        }
        replies
    }

    /// An error frame saying connection `i`'s node was lost while doing `what`.
    pub(super) fn lost_frame(&mut self, i: usize, why: &str, what: &str) -> Bytes {
        let node = self.node_name(i);
        let e = CoordError::sql(SqlState::CONNECTION_FAILURE, format!("connection to data node {node} lost during {what}"))
            .with_detail(why.to_owned());
        msg::build(|o| msg::error(&e, o))
    }

    fn node_name(&mut self, i: usize) -> String {
        let id = self.conns.get(i).node;
        self.catalog().node(id).map_or_else(|| id.to_string(), |n| n.name.clone())
    }

    /// Rolls back every member; failures only leave connections dead.
    pub(super) async fn rollback_members(&mut self, members: &[Member]) {
        let work: Vec<(usize, String)> =
            members.iter().filter(|m| self.conns.peek(m.conn).status != b'I').map(|m| (m.conn, "ROLLBACK".to_owned())).collect();
        self.query_each(&work).await;
    }

    /// Commits the members' transactions atomically; the error frame the client gets otherwise.
    pub(super) async fn commit_members(&mut self, members: &[Member]) -> Result<(), Bytes> {
        let live: Vec<Member> = members.iter().filter(|m| self.conns.peek(m.conn).status != b'I').cloned().collect();
        if live.is_empty() {
            return Ok(());
        }
        let writers = self.writers(&live).await?;
        if writers.len() <= 1 {
            return self.commit_one_phase(&live, writers.first().copied()).await;
        }
        self.commit_two_phase(&live, &writers).await
    }

    /// The members that wrote. Members whose writes are unknown are asked (one round trip)
    /// when that decides between one and two phases.
    async fn writers(&mut self, live: &[Member]) -> Result<Vec<usize>, Bytes> {
        let mut writers: Vec<usize> = live.iter().filter(|m| m.writes == Writes::Yes).map(|m| m.conn).collect();
        let unknown: Vec<usize> = live.iter().filter(|m| m.writes == Writes::Unknown).map(|m| m.conn).collect();
        if unknown.is_empty() {
            return Ok(writers);
        }
        if writers.len() + unknown.len() < 2 {
            writers.extend(unknown);
            return Ok(writers);
        }
        let ask = "SELECT pg_catalog.pg_current_xact_id_if_assigned() IS NOT NULL";
        let work: Vec<(usize, String)> = unknown.iter().map(|&i| (i, ask.to_owned())).collect();
        let replies = self.query_each(&work).await;
        for (reply, &i) in replies.into_iter().zip(&unknown) {
            if let Some(why) = reply.lost {
                let e = self.lost_frame(i, &why, "COMMIT");
                self.rollback_members(live).await;
                return Err(e);
            }
            if let Some(e) = reply.error {
                self.rollback_members(live).await;
                return Err(e);
            }
            if reply.rows.first().and_then(|r| r.first()).cloned().flatten().as_deref() == Some("t") {
                writers.push(i);
            }
        }
        Ok(writers)
    }

    async fn commit_one_phase(&mut self, live: &[Member], writer: Option<usize>) -> Result<(), Bytes> {
        let work: Vec<(usize, String)> = live.iter().map(|m| (m.conn, "COMMIT".to_owned())).collect();
        let replies = self.query_each(&work).await;
        for (reply, (i, _)) in replies.into_iter().zip(&work) {
            if Some(*i) != writer {
                continue;
            }
            if let Some(why) = reply.lost {
                let node = self.node_name(*i);
                return Err(unknown_outcome(
                    format!("connection to data node {node} lost during COMMIT"),
                    format!("{why}; whether the transaction committed on {node} is unknown"),
                ));
            }
            if let Some(e) = reply.error {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn commit_two_phase(&mut self, live: &[Member], writers: &[usize]) -> Result<(), Bytes> {
        let dtx = self.shared.dtx.clone();
        let gid = dtx.next_gid();
        let guard = dtx.in_flight.enter(gid.clone());
        let node_gid = |s: &mut Self, i: usize| gid.on_node(s.conns.get(i).node.0);
        let mut work = Vec::with_capacity(live.len());
        for m in live {
            let sql = if writers.contains(&m.conn) {
                format!("PREPARE TRANSACTION '{}'", node_gid(self, m.conn))
            } else {
                "COMMIT".to_owned()
            };
            work.push((m.conn, sql));
        }
        let replies = self.query_each(&work).await;
        let mut failure = None;
        let mut prepared = Vec::new();
        for (reply, (i, _)) in replies.into_iter().zip(&work) {
            if !writers.contains(i) {
                continue;
            }
            match (reply.lost, reply.error) {
                (Some(why), _) => {
                    let e = self.lost_frame(*i, &why, "PREPARE TRANSACTION; the transaction was rolled back");
                    failure.get_or_insert(e);
                }
                (None, Some(e)) => {
                    failure.get_or_insert(e);
                }
                (None, None) => prepared.push(*i),
            }
        }
        if let Some(e) = failure {
            self.rollback_prepared(&gid, &prepared).await;
            return Err(e);
        }
        match dtx.record(&gid).await {
            Ok(()) => {}
            Err(DecisionError::Refused(e)) => {
                self.rollback_prepared(&gid, &prepared).await;
                return Err(msg::build(|o| msg::error(&e, o)));
            }
            Err(DecisionError::Unknown(why)) => {
                tracing::warn!(%gid, error = %why, "commit decision may not be recorded; recovery settles the transaction");
                return Err(unknown_outcome(
                    "lost the metadata store while recording the commit decision".into(),
                    format!("{why}; recovery commits or rolls back every data node alike"),
                ));
            }
        }
        let work: Vec<(usize, String)> =
            writers.iter().map(|&i| (i, format!("COMMIT PREPARED '{}'", node_gid(self, i)))).collect();
        let replies = self.query_each(&work).await;
        let mut missed = Vec::new();
        for (reply, (i, _)) in replies.into_iter().zip(&work) {
            if let Some(why) = reply.lost.or_else(|| reply.error.map(|e| msg::error_message(&e))) {
                let node = self.node_name(*i);
                tracing::warn!(%gid, %node, error = %why, "COMMIT PREPARED failed; recovery completes it");
                missed.push(node);
            }
        }
        drop(guard);
        if missed.is_empty() {
            dtx.finished(gid);
            return Ok(());
        }
        Err(unknown_outcome(
            format!("connection to data node {} lost during COMMIT PREPARED", missed.join(", ")),
            "The commit decision is recorded: the transaction commits on every data node, and the ones named apply it \
             when recovery reaches them."
                .into(),
        ))
    }

    /// Rolls back what was prepared under `gid` on `conns` (whatever fails is left to
    /// recovery, which rolls back a transaction without a decision record).
    async fn rollback_prepared(&mut self, gid: &Gid, conns: &[usize]) {
        let work: Vec<(usize, String)> = conns
            .iter()
            .map(|&i| {
                let node = self.conns.get(i).node.0;
                (i, format!("ROLLBACK PREPARED '{}'", gid.on_node(node)))
            })
            .collect();
        self.query_each(&work).await;
    }
}

/// 08007: the transaction's outcome cannot be confirmed to the client.
fn unknown_outcome(message: String, detail: String) -> Bytes {
    let e = CoordError::sql(SqlState::TRANSACTION_RESOLUTION_UNKNOWN, message).with_detail(detail);
    msg::build(|o| msg::error(&e, o))
}
