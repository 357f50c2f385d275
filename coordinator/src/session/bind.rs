//! Bind in the extended protocol: a statement planned under an older catalog is planned
//! again; over distributed tables the bound values pick the shard (the statement is prepared
//! there under `pgshard_<id>_<shard>`), or the coordinator keeps a local portal when they
//! reach several shards; statements as written go to home.

use std::sync::Arc;

use bytes::Bytes;
use pgshard_planner::Plan;

use super::extended::{Action, PortalAt, StmtKind, answer, send};
use super::relay::Unit;
use super::plan::{self, ParamValue};
use super::route::Decision;
use super::simple::aborted_block;
use super::txn::Writes;
use super::{Session, local, msg};
use crate::error::CoordError;

impl Session {
    /// What a statement's text is under the current catalog.
    pub(super) async fn stmt_kind(&mut self, sql: &str) -> Result<StmtKind, CoordError> {
        Ok(match self.decide(sql).await? {
            Decision::Txn(cmd) => StmtKind::Txn(cmd),
            Decision::Home => StmtKind::Home,
            Decision::Refuse(why) => return Err(CoordError::Unsupported(why)),
            Decision::Plan(catalog, plan) => match *plan {
                Plan::Shards(sp) => StmtKind::Shard(catalog, Arc::new(sp)),
                other => StmtKind::Planned(Arc::new(other)),
            },
        })
    }

    pub(super) async fn on_bind(&mut self, m: &Bytes) -> Result<Action, CoordError> {
        let b = msg::BindMsg::read(m)?;
        let Some(stmt) = self.statements.stmts.get(b.statement) else {
            return Ok(send(0, m, Unit::Bind));
        };
        // A statement prepared under an older catalog is planned again: a table it names may
        // have been distributed (or brought back) since.
        let current = self.catalog().version();
        if matches!(stmt.kind, StmtKind::Shard(..) | StmtKind::Home) && stmt.version != current {
            let sql = stmt.sql.clone();
            let kind = match self.stmt_kind(&sql).await {
                Ok(k) => k,
                Err(e) => return Ok(Action::Fail(e)),
            };
            if let Some(s) = self.statements.stmts.get_mut(b.statement) {
                s.kind = kind;
                s.version = current;
            }
        }
        let Some(stmt) = self.statements.stmts.get(b.statement) else {
            return Ok(send(0, m, Unit::Bind));
        };
        // The transaction's and the statement's time, for a statement that calls now().
        let extra: Vec<String> = if stmt.time.is_some() { self.time_values().to_vec() } else { Vec::new() };
        let after = if extra.is_empty() { Bytes::copy_from_slice(b.after_names) } else { msg::bind_tail_with(&b, &extra) };
        match &stmt.kind {
            StmtKind::Planned(plan) => {
                let (sql, types, plan) = (stmt.sql.clone(), stmt.types.clone(), plan.clone());
                Ok(self.bind_local(&b, &sql, &types, Some(plan), &extra))
            }
            StmtKind::Shard(catalog, sp) => {
                if self.block_failed() {
                    return Ok(Action::Fail(aborted_block()));
                }
                let (catalog, sp, stmt) = (catalog.clone(), sp.clone(), stmt.clone());
                let params: Vec<ParamValue<'_>> = b
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| ParamValue { value: *v, binary: b.is_binary(i) })
                    .collect();
                let routed = match plan::route(&sp, &catalog, &params) {
                    Ok(r) => r,
                    Err(e) => return Ok(Action::Fail(e)),
                };
                let [shard] = routed.shards.as_slice() else {
                    // Rows of every shard, concatenated: each shard binds the client's own
                    // parameters (any format); otherwise the values are written into the text.
                    if let (Ok(multi), true) = (&sp.multi, sp.kind != pgshard_planner::StmtKind::Insert)
                        && matches!(multi.merge, pgshard_planner::MergeStep::Concat)
                    {
                        let statements =
                            routed.shards.iter().map(|s| (s.node, multi.fragment.render(Some(&s.schema_name())))).collect();
                        let bound = local::Bound {
                            catalog: catalog.clone(),
                            statements,
                            types: stmt.types.clone(),
                            after_names: after.clone(),
                            write: sp.kind != pgshard_planner::StmtKind::Select,
                        };
                        return Ok(self.bind_local_bound(&b, &stmt.sql, bound));
                    }
                    return Ok(self.bind_local(&b, &stmt.sql, &stmt.types, None, &extra));
                };
                let (schema, index, node) = (shard.schema_name(), shard.index, shard.node);
                let conn = match self.conn_to(&catalog, node).await {
                    Ok(i) => i,
                    Err(e) => return Ok(Action::Fail(e)),
                };
                self.statements.portals.insert(b.portal.to_owned(), PortalAt::Conn(conn));
                let name = if b.statement.is_empty() { String::new() } else { format!("pgshard_{}_{index}", stmt.id) };
                let sql = sp.single.render(Some(&schema));
                let writes = if sp.kind == pgshard_planner::StmtKind::Select { Writes::Unknown } else { Writes::Yes };
                Ok(self.bind_elsewhere(conn, &name, &sql, &stmt.types, b.portal, &after, writes))
            }
            StmtKind::Txn(cmd) => {
                self.statements.portals.insert(b.portal.to_owned(), PortalAt::Txn(cmd.clone()));
                Ok(answer(b'2'))
            }
            StmtKind::Home => {
                if self.aborted_here(Some(0)) {
                    return Ok(Action::Fail(aborted_block()));
                }
                self.statements.portals.insert(b.portal.to_owned(), PortalAt::Conn(0));
                Ok(send(0, m, Unit::Bind))
            }
        }
    }

    /// Frames that bind `portal` on connection `conn` to statement `name` (prepared there
    /// first if needed; the unnamed statement is parsed every time).
    #[allow(clippy::too_many_arguments)]
    fn bind_elsewhere(
        &mut self,
        conn: usize,
        name: &str,
        sql: &str,
        types: &[u32],
        portal: &str,
        after: &[u8],
        writes: Writes,
    ) -> Action {
        let c = self.conns.get(conn);
        let mut frames = Vec::with_capacity(2);
        if name.is_empty() || !c.prepared.contains(name) {
            frames.push((msg::build(|o| msg::parse(name, sql, types, o)), Some((Unit::Parse, false))));
            if !name.is_empty() {
                c.prepared.insert(name.to_owned());
            }
        }
        frames.push((msg::build(|o| msg::bind_with(portal, name, after, o)), Some((Unit::Bind, true))));
        Action::Send { conn, frames, txn: Some(writes) }
    }
}
