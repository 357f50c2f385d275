//! Choosing how to answer a read across colocation groups (or with tables of the default
//! node), by the sizes of the tables each way moves: over copies on the default node (every
//! distributed table it reads moves there), or on the shards of one group with the other
//! tables' rows written into the statement (see the planner's `Broadcast`), which moves the
//! small tables to every shard of the big one and lets the shards work in parallel. Sizes are
//! the tables' on-disk bytes on every node (`pg_relation_size`), read at most every few
//! seconds; a broadcast also stops at a row count (`reads.broadcast_max_rows`), and falls back
//! to the copies when it cannot finish (too many rows, a correlated subquery, a statement the
//! shards still cannot run). `reads.strategy` can also fix the choice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pgshard_catalog::{CatalogSnapshot, ColocationId};
use pgshard_planner::{Broadcast, Plan, PullPlan};

use super::Session;
use crate::config::ReadStrategy;
use super::relay::Interrupted;
use super::route::Decision;

/// How long sizes are trusted.
const FRESH: Duration = Duration::from_secs(10);

/// A table: its colocation group (`None`: a table of the default node, by schema), and name.
type SizeKey = (Option<i32>, String, String);

/// How a read across colocation groups is answered.
pub(super) enum Choice<'p> {
    /// Over copies on the default node (`bytes`: what they move, when known).
    Copies { bytes: Option<u64> },
    /// On the shards of one group, the other tables written in.
    Broadcast { plan: &'p Broadcast, moved: u64, copies: u64 },
}

/// Table sizes in bytes, summed over shards, with when they were read.
#[derive(Debug, Default)]
pub struct SizeCache {
    read: Option<(Instant, i64)>,
    bytes: Arc<HashMap<SizeKey, u64>>,
}

/// Each node's tables and sizes: shard tables by their shard schema, the default node's by
/// their own.
const SIZES_SQL: &str = "SELECT n.nspname::text, c.relname::text, pg_catalog.pg_total_relation_size(c.oid)::int8 \
     FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_%'";

impl Session {
    /// How a read across colocation groups is answered, by the sizes of what each way moves.
    pub(super) async fn choose_read<'p>(&mut self, catalog: &Arc<CatalogSnapshot>, pull: &'p PullPlan) -> Result<Choice<'p>, Interrupted> {
        let strategy = self.shared.config.reads.strategy;
        if pull.broadcast.is_empty() || pull.writes || strategy == ReadStrategy::Copies {
            return Ok(Choice::Copies { bytes: None });
        }
        let Some(sizes) = self.table_sizes(catalog).await? else { return Ok(Choice::Copies { bytes: None }) };
        let size = |k: &SizeKey| sizes.get(k).copied();
        let copies: u64 = pull.tables.iter().map(|t| size(&(Some(t.group), String::new(), t.name.clone())).unwrap_or(0)).sum();
        let cost = |b: &Broadcast| -> Option<u64> {
            let shards = catalog.shards_of(ColocationId(b.group)).len() as u64;
            let mut moved = 0u64;
            for (group, schema, name) in &b.moved {
                let key = match group {
                    Some(g) => (Some(*g), String::new(), name.clone()),
                    None => (None, schema.clone().unwrap_or_else(|| "public".into()), name.clone()),
                };
                moved += size(&key)?;
            }
            Some(moved.saturating_mul(shards))
        };
        let best = pull.broadcast.iter().filter_map(|b| cost(b).map(|c| (b, c))).min_by_key(|(_, c)| *c);
        Ok(match best {
            Some((b, moved)) if moved < copies || strategy == ReadStrategy::Broadcast => Choice::Broadcast { plan: b, moved, copies },
            _ => Choice::Copies { bytes: Some(copies) },
        })
    }

    /// Answers a read by its cheapest broadcast when that moves fewer bytes than the copies
    /// would; `Ok(false)` when it did not answer (the caller answers over copies).
    pub(super) async fn try_broadcast(&mut self, catalog: &Arc<CatalogSnapshot>, pull: &PullPlan) -> Result<bool, Interrupted> {
        let Choice::Broadcast { plan: best, moved, copies } = self.choose_read(catalog, pull).await? else { return Ok(false) };
        let max_rows = self.shared.config.reads.broadcast_max_rows;
        // Answer the other tables first, on a scratch connection to home.
        let home = self.conns.get(0).node;
        let Ok(h) = self.scratch_to(catalog, home).await else { return Ok(false) };
        let mut answers = Vec::with_capacity(best.substitute.subqueries.len());
        for sub in &best.substitute.subqueries {
            let answer = self.answer_subquery(catalog, h, sub, &best.substitute.why, max_rows).await?;
            self.end_scratch(h).await?;
            match answer {
                Ok(text) => answers.push(text),
                Err(_) => {
                    tracing::debug!(anchor = best.group, "broadcast read falls back to copies: a table or subquery to write in failed or has too many rows");
                    return Ok(false);
                }
            }
        }
        let sql = best.substitute.rewrite(&answers);
        match self.decide(&sql).await {
            Ok(Decision::Plan(catalog, plan)) if matches!(&*plan, Plan::Shards(sp) if sp.multi.is_ok()) => {
                tracing::debug!(anchor = best.group, moved, copies, "read across colocation groups on one group's shards");
                Box::pin(self.run_plan_simple(catalog, *plan, &sql)).await?;
                Ok(true)
            }
            _ => {
                tracing::debug!(anchor = best.group, "broadcast read falls back to copies: the shards cannot run it");
                Ok(false)
            }
        }
    }

    /// The tables' sizes on the nodes, read again when older than [`FRESH`] or the catalog
    /// changed; `None` when a node could not say.
    async fn table_sizes(&mut self, catalog: &Arc<CatalogSnapshot>) -> Result<Option<Arc<HashMap<SizeKey, u64>>>, Interrupted> {
        {
            let cache = self.shared.sizes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some((at, version)) = cache.read
                && at.elapsed() < FRESH
                && version == catalog.version()
            {
                return Ok(Some(cache.bytes.clone()));
            }
        }
        let default = catalog.default_node().ok().map(|n| n.id);
        let mut bytes: HashMap<SizeKey, u64> = HashMap::new();
        for node in catalog.nodes() {
            let Ok(i) = self.conn_to(catalog, node.id).await else { return Ok(None) };
            let (rows, error) = self.rows_on(i, SIZES_SQL).await?;
            if error.is_some() {
                return Ok(None);
            }
            for row in rows {
                let (Some(Some(schema)), Some(Some(name)), Some(Some(size))) = (row.first(), row.get(1), row.get(2)) else { continue };
                let size: u64 = size.parse().unwrap_or(0);
                let key = match shard_group(schema) {
                    Some(g) => (Some(g), String::new(), name.clone()),
                    None if Some(node.id) == default => (None, schema.clone(), name.clone()),
                    None => continue,
                };
                *bytes.entry(key).or_default() += size;
            }
        }
        let bytes = Arc::new(bytes);
        let mut cache = self.shared.sizes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *cache = SizeCache { read: Some((Instant::now(), catalog.version())), bytes: bytes.clone() };
        Ok(Some(bytes))
    }
}

/// The colocation group of a shard schema (`pgshard_g3_s7` is group 3).
fn shard_group(schema: &str) -> Option<i32> {
    let rest = schema.strip_prefix("pgshard_g")?;
    let (group, shard) = rest.split_once("_s")?;
    shard.bytes().all(|b| b.is_ascii_digit()).then(|| group.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::shard_group;

    #[test]
    fn shard_schemas_name_their_group() {
        assert_eq!(shard_group("pgshard_g3_s7"), Some(3));
        assert_eq!(shard_group("pgshard_g12_s0"), Some(12));
        assert_eq!(shard_group("public"), None);
        assert_eq!(shard_group("pgshard_gx_s1"), None);
    }
}
