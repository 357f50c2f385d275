//! EXPLAIN of a statement over distributed tables: the distributed plan (target shards and
//! their nodes, the SQL each shard is sent, the merge step), then the shards' own EXPLAIN of
//! that SQL. With ANALYZE the statement runs on every target shard, and each shard's execution
//! time is listed. A read no shard answers alone shows the way it would be answered now (over
//! copies on the default node, or broadcast to one colocation group's shards) and what moves.

use std::sync::Arc;

use pgshard_catalog::{CatalogSnapshot, ColocationId, Shard};
use pgshard_planner::{Explain, MergeStep, PULL_SCHEMA, Plan, PullPlan, ShardPlan, StmtKind};

use super::broadcast::Choice;
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
        let sp = match e.inner.as_ref() {
            Plan::Shards(sp) => sp,
            Plan::Pull(pull) => {
                let lines = self.explain_read(catalog, pull).await?;
                return self.answer_plan_lines(&lines);
            }
            _ => return self.refuse(CoordError::Unsupported("EXPLAIN of this statement".into())).await,
        };
        let routed = match plan::route(sp, catalog, &[]) {
            Ok(r) => r,
            Err(err) => return self.refuse(err).await,
        };
        // Several shards that cannot answer it themselves: it is a read over copies.
        if let (Err(_), Some(pull), false) = (&sp.multi, &sp.pull, routed.shards.len() == 1)
            && !e.analyze
        {
            let lines = self.explain_read(catalog, pull).await?;
            return self.answer_plan_lines(&lines);
        }
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
        self.answer_plan_lines(&lines)
    }

    /// Queues a `QUERY PLAN` result of `lines`.
    fn answer_plan_lines(&mut self, lines: &[String]) -> Result<(), Interrupted> {
        let extended = self.extended;
        let out = self.client.out();
        if !extended {
            msg::row_description(&[("QUERY PLAN", TEXT)], out);
        }
        for l in lines {
            msg::data_row(&[Some(l.as_bytes())], out);
        }
        msg::command_complete("EXPLAIN", out);
        if !extended {
            let status = self.status().as_byte();
            msg::ready(status, self.client.out());
        }
        Ok(())
    }

    /// The lines of a read no shard answers alone: the way the coordinator would answer it
    /// now (by the tables' current sizes), and what moves.
    async fn explain_read(&mut self, catalog: &Arc<CatalogSnapshot>, pull: &PullPlan) -> Result<Vec<String>, Interrupted> {
        let kb = |b: u64| format!("{} kB", b.div_ceil(1024));
        let mut lines = vec![format!("Read no shard answers alone: {}", pull.why)];
        match self.choose_read(catalog, pull).await? {
            Choice::Broadcast { plan, moved, copies } => {
                let shards = catalog.shards_of(ColocationId(plan.group)).len();
                lines.push(format!(
                    "  Broadcast: on the {shards} shards of colocation group {}, moving {} (copies would move {})",
                    plan.group,
                    kb(moved),
                    kb(copies)
                ));
                for (group, schema, name) in &plan.moved {
                    let from = match (group, schema) {
                        (Some(g), _) => format!("colocation group {g}"),
                        (None, Some(s)) => format!("the default node, schema {s}"),
                        (None, None) => "the default node".to_owned(),
                    };
                    lines.push(format!("    Written in: {name} (from {from})"));
                }
                for sub in &plan.substitute.subqueries {
                    lines.push(format!("    Answered first: {}", sub.query.render(Some(PULL_SCHEMA))));
                }
                lines.push("    Then: the statement, planned again over that group's shards".to_owned());
            }
            Choice::Copies { bytes } => {
                let size = bytes.map(|b| format!(", moving {}", kb(b))).unwrap_or_default();
                lines.push(format!("  Copies: the default node answers over copies of the distributed tables{size}"));
                for t in &pull.tables {
                    let shards = catalog.shards_of(ColocationId(t.group)).len();
                    lines.push(format!("    Copy of {} from {shards} shards: {}", t.name, t.rows.render(Some("<shard>"))));
                }
                lines.push(format!("    Then on the default node: {}", pull.query.render(Some(PULL_SCHEMA))));
            }
        }
        Ok(lines)
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
