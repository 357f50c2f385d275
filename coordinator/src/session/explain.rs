//! EXPLAIN of a statement over distributed tables: the distributed plan (target shards and
//! their nodes, the SQL each shard is sent, the merge step), then the shards' own EXPLAIN of
//! that SQL. With ANALYZE the statement runs on every target shard, and each shard's execution
//! time is listed.

use std::sync::Arc;

use pgshard_catalog::{CatalogSnapshot, Shard};
use pgshard_planner::{Explain, MergeStep, Plan, ShardPlan, StmtKind};

use super::fanout::Merged;
use super::plan::{self, Routed};
use super::relay::Interrupted;
use super::txn::Writes;
use super::{Session, msg};
use crate::error::CoordError;

const TEXT: u32 = 25;

impl Session {
    /// Answers EXPLAIN [ANALYZE] of a shard plan with a `QUERY PLAN` result.
    pub(super) async fn run_explain(&mut self, catalog: &Arc<CatalogSnapshot>, e: &Explain) -> Result<(), Interrupted> {
        let Plan::Shards(sp) = e.inner.as_ref() else {
            return self.refuse(CoordError::Unsupported("EXPLAIN of this statement".into())).await;
        };
        let routed = match plan::route(sp, catalog, &[]) {
            Ok(r) => r,
            Err(err) => return self.refuse(err).await,
        };
        let mut lines = Vec::new();
        let statements: Vec<(Shard, String)> = match self.explained_statements(sp, &routed, &mut lines) {
            Ok(s) => s,
            Err(err) => return self.refuse(err).await,
        };
        let node_name = |s: &Shard| catalog.node(s.node).map_or_else(|| s.node.to_string(), |n| n.name.clone());
        let nodes: Vec<_> = {
            let mut v: Vec<_> = statements.iter().map(|(s, _)| s.node).collect();
            v.sort();
            v.dedup();
            v
        };
        let shown = if e.analyze { statements.len() } else { 1 };
        // EXPLAIN ANALYZE runs the statement: a write on several nodes is atomic like any other.
        let runs = e.analyze && sp.kind != StmtKind::Select;
        let implicit = runs && nodes.len() > 1 && self.begin_implicit();
        let mut conns = Vec::new();
        for (shard, _) in statements.iter().take(shown) {
            match self.conn_to(catalog, shard.node).await {
                Ok(i) => conns.push(i),
                Err(err) => {
                    if implicit {
                        self.end_implicit(false).await;
                    }
                    return self.refuse(err).await;
                }
            }
        }
        let writes = match (runs, e.analyze) {
            (true, _) => Writes::Yes,
            (false, true) => Writes::Unknown,
            (false, false) => Writes::No,
        };
        if let Err(err) = self.join_now(&conns, writes).await {
            if implicit {
                self.end_implicit(false).await;
            }
            return self.finish_merged(&Merged { error: Some(err), ..Merged::default() });
        }
        for (k, ((shard, sql), &i)) in statements.iter().zip(&conns).enumerate() {
            let (rows, error) = self.rows_on(i, &format!("{} {sql}", e.prefix)).await?;
            if let Some(err) = error {
                if implicit {
                    self.end_implicit(false).await;
                }
                return self.finish_merged(&Merged { error: Some(err), ..Merged::default() });
            }
            let text: Vec<String> = rows.into_iter().filter_map(|r| r.into_iter().next().flatten()).collect();
            if k == 0 {
                let of = if statements.len() > 1 {
                    format!(" (the first of {} shards)", statements.len())
                } else {
                    String::new()
                };
                lines.push(format!("  Shard {} on {}{of}:", shard.schema_name(), node_name(shard)));
                lines.extend(text.iter().map(|l| format!("    {l}")));
            } else if let Some(time) = text.iter().find(|l| l.trim_start().starts_with("Execution Time")) {
                lines.push(format!("  Shard {} on {}: {}", shard.schema_name(), node_name(shard), time.trim()));
            }
        }
        if implicit && let Some(err) = self.end_implicit(true).await {
            return self.finish_merged(&Merged { error: Some(err), ..Merged::default() });
        }
        let extended = self.extended;
        let out = self.client.out();
        if !extended {
            msg::row_description(&[("QUERY PLAN", TEXT)], out);
        }
        for l in &lines {
            msg::data_row(&[Some(l.as_bytes())], out);
        }
        msg::command_complete("EXPLAIN", out);
        if !extended {
            let status = self.status().as_byte();
            msg::ready(status, self.client.out());
        }
        Ok(())
    }

    /// The distributed plan's lines, and the statement each target shard is sent.
    fn explained_statements(
        &self,
        sp: &ShardPlan,
        routed: &Routed<'_>,
        lines: &mut Vec<String>,
    ) -> Result<Vec<(Shard, String)>, CoordError> {
        let catalog = self.catalog();
        let total = catalog.shards_of(pgshard_catalog::ColocationId(sp.group)).len();
        let target = routed.shards.len();
        if let [shard] = routed.shards.as_slice() {
            lines.push(format!("pgshard: one shard of {total} (colocation group {}), sent as written", sp.group));
            return Ok(vec![((*shard).clone(), sp.single.render(Some(&shard.schema_name())))]);
        }
        let multi = sp.multi.as_ref().map_err(|why| CoordError::Unsupported(why.clone()))?;
        lines
            .push(format!("pgshard: {target} shards of {total} (colocation group {}), in parallel per node", sp.group));
        lines.push(match &multi.merge {
            MergeStep::Concat if sp.kind == StmtKind::Select => "  Merge: rows of every shard, streamed".to_owned(),
            MergeStep::Concat => "  Merge: row counts summed, RETURNING rows concatenated".to_owned(),
            MergeStep::Sort { .. } | MergeStep::Final(_) => format!("  Merge: {}", multi.merge),
        });
        if let MergeStep::Final(q) = &multi.merge {
            let text = q.render("pg_temp.pgshard_merge", &|i| format!("<type of c{}>", i + 1));
            lines.push(format!("  Final query on the default node: {text}"));
        }
        let mut out = Vec::with_capacity(target);
        for (at, shard) in routed.shards.iter().enumerate() {
            out.push(((*shard).clone(), plan::shard_statement(sp, multi, routed, at)));
        }
        if let Some((_, first)) = out.first() {
            lines.push(format!("  Sent to each shard: {}", first.trim()));
        }
        Ok(out)
    }
}
