//! Planning a statement under the current catalog, and the plans the coordinator runs itself
//! rather than relaying: pgshard's functions and DDL on distributed and reference tables.

use std::collections::HashMap;
use std::sync::Arc;

use pgshard_catalog::{CatalogSnapshot, NodeId};
use pgshard_planner::{ArgValue, DdlPlan, FunctionCall, Plan, plan_sql};
use tokio_postgres::error::SqlState;

use super::plan::Rels;
use super::route::Decision;
use super::txn::{self, TxnState};
use super::{Session, msg};
use crate::distribute::{self, Admin, ConcurrentIndex};
use crate::error::CoordError;
use crate::server::ColumnCache;

/// A function's result value in the client's result format: text as written; binary as
/// PostgreSQL sends it (int8 big-endian, text its bytes, void nothing).
fn cell(ty: u32, text: &str, binary: bool) -> Vec<u8> {
    match (binary, ty) {
        (true, INT8) => text.parse::<i64>().unwrap_or_default().to_be_bytes().to_vec(),
        (true, VOID) => Vec::new(),
        _ => text.as_bytes().to_vec(),
    }
}

/// The columns `recover_prepared_transactions()` answers with.
pub(super) const RECOVERY_COLUMNS: [(&str, u32); 4] = [("node", 25), ("database", 25), ("gid", 25), ("outcome", 25)];

/// The result column of a function call: its name, type OID and text value.
type Cell = (&'static str, u32, String);

impl Session {
    /// Decides what to do with a statement's text under the current catalog.
    pub(super) async fn decide(&mut self, sql: &str) -> Result<Decision, CoordError> {
        if let Some(cmd) = txn::classify(sql) {
            return Ok(match cmd {
                txn::TxnCmd::Refuse(why) => Decision::Refuse(why),
                cmd => Decision::Txn(cmd),
            });
        }
        if let Some(what) = crate::guc::schema_change(sql) {
            crate::lease::ensure_primary(&self.shared, &what).await?;
        }
        let catalog = self.catalog();
        if catalog.tables().next().is_none() && !names_a_function(sql) {
            return Ok(Decision::Home);
        }
        let columns = self.columns(&catalog).await?;
        let rels = Rels { catalog: &catalog, columns: &columns };
        Ok(match plan_sql(sql, &rels) {
            Plan::DefaultNode => Decision::Home,
            Plan::Unsupported(why) => Decision::Refuse(why),
            plan => Decision::Plan(catalog, Box::new(plan)),
        })
    }

    /// The client's identity for the coordinator's own data-node connections.
    fn identity(&self) -> (String, String, Option<String>) {
        let get = |k: &str| self.opener.params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let user = get("user").unwrap_or_default();
        let database = get("database").unwrap_or_else(|| user.clone());
        (user, database, self.opener.password.clone())
    }

    /// Column names of the managed tables for `catalog`'s version, read from the default
    /// node's shells once per version.
    pub(super) async fn columns(&self, catalog: &CatalogSnapshot) -> Result<Arc<HashMap<(String, String), Vec<String>>>, CoordError> {
        {
            let cache = self.shared.columns.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if cache.version == catalog.version() {
                return Ok(cache.columns.clone());
            }
        }
        let (user, database, password) = self.identity();
        let admin = Admin { shared: &self.shared, user: &user, database: &database, password: password.as_deref() };
        let client = distribute::connect(&admin, catalog.default_node()?).await?;
        let (schemas, names): (Vec<String>, Vec<String>) =
            catalog.tables().filter(|t| t.kind.is_spread()).map(|t| (t.schema.clone(), t.name.clone())).unzip();
        let rows = client
            .query(
                "SELECT n.nspname::text, c.relname::text, array_agg(a.attname::text ORDER BY a.attnum), \
                 array_agg(CASE WHEN a.attgenerated = '' THEN coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '') ELSE '' END ORDER BY a.attnum) \
                 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
                 JOIN unnest($1::text[], $2::text[]) AS t(s, r) ON t.s = n.nspname AND t.r = c.relname \
                 WHERE a.attnum > 0 AND NOT a.attisdropped GROUP BY 1, 2",
                &[&schemas, &names],
            )
            .await
            .map_err(CoordError::from_pg)?;
        let map: HashMap<(String, String), Vec<String>> =
            rows.iter().map(|r| ((r.get(0), r.get(1)), r.get::<_, Vec<String>>(2))).collect();
        // Defaults that call now() and its kin: the coordinator writes them in (see `clock`).
        let mut time_defaults = crate::server::TimeDefaults::new();
        for r in &rows {
            let (names, defaults) = (r.get::<_, Vec<String>>(2), r.get::<_, Vec<String>>(3));
            let timed: Vec<(String, String)> =
                names.into_iter().zip(defaults).filter(|(_, d)| pgshard_planner::times::mentions_time(d)).collect();
            if !timed.is_empty() {
                time_defaults.insert((r.get(0), r.get(1)), timed);
            }
        }
        let map = Arc::new(map);
        let mut cache = self.shared.columns.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.version < catalog.version() {
            *cache = ColumnCache { version: catalog.version(), columns: map.clone(), time_defaults: Arc::new(time_defaults) };
        }
        Ok(map)
    }

    /// The managed tables' columns whose defaults call now() and its kin, by (schema, name),
    /// for `catalog`'s version.
    pub(super) async fn time_defaults(&self, catalog: &CatalogSnapshot) -> Arc<crate::server::TimeDefaults> {
        if catalog.tables().next().is_none() || self.columns(catalog).await.is_err() {
            return Arc::default();
        }
        self.shared.columns.read().unwrap_or_else(std::sync::PoisonError::into_inner).time_defaults.clone()
    }

    /// Refuses work that must commit on its own while a transaction block is open.
    fn outside_block(&self, what: &str) -> Result<(), CoordError> {
        match self.txn {
            TxnState::Idle => Ok(()),
            _ => Err(CoordError::sql(SqlState::ACTIVE_SQL_TRANSACTION, format!("{what} cannot run inside a transaction block"))),
        }
    }

    /// Runs one of pgshard's functions and queues its one-row answer.
    pub(super) async fn run_function(&mut self, call: &FunctionCall) -> Result<(), CoordError> {
        self.outside_block(&call.name)?;
        match call.name.as_str() {
            "recover_prepared_transactions" => return self.run_recovery(call).await,
            "become_primary" => return self.run_become_primary(call).await,
            "verify_placement" => {}
            name => crate::lease::ensure_primary(&self.shared, &format!("{name}()")).await?,
        }
        let (user, database, password) = self.identity();
        let admin = Admin { shared: &self.shared, user: &user, database: &database, password: password.as_deref() };
        let args = Args::new(call)?;
        let cells: Vec<Cell> = match call.name.as_str() {
            "create_distributed_table" => {
                args.check(&["table", "column", "shard_count", "colocate_with"])?;
                let table = args.text(0, "table")?;
                let column = args.text(1, "column")?;
                let shard_count = args.int(2, "shard_count")?;
                let colocate = args.opt_text(3, "colocate_with")?;
                distribute::create_distributed_table(&admin, &table, &column, shard_count, colocate.as_deref()).await?;
                vec![(void_name(&call.name), VOID, String::new())]
            }
            "create_reference_table" => {
                args.check(&["table"])?;
                distribute::create_reference_table(&admin, &args.text(0, "table")?).await?;
                vec![(void_name(&call.name), VOID, String::new())]
            }
            "undistribute_table" => {
                args.check(&["table"])?;
                distribute::undistribute_table(&admin, &args.text(0, "table")?).await?;
                vec![(void_name(&call.name), VOID, String::new())]
            }
            "verify_placement" => {
                args.check(&["table"])?;
                let (checked, misplaced) = distribute::verify_placement(&admin, &args.text(0, "table")?).await?;
                vec![("rows_checked", INT8, checked.to_string()), ("rows_misplaced", INT8, misplaced.to_string())]
            }
            other => return Err(CoordError::Unsupported(format!("the function {other}()"))),
        };
        let (extended, binary) = (self.extended, self.binary_results);
        let out = self.client.out();
        if !extended {
            msg::row_description(&cells.iter().map(|(n, t, _)| (*n, *t)).collect::<Vec<_>>(), out);
        }
        let values: Vec<Vec<u8>> = cells.iter().map(|(_, t, v)| cell(*t, v, binary)).collect();
        msg::data_row(&values.iter().map(|v| Some(v.as_slice())).collect::<Vec<_>>(), out);
        msg::command_complete("SELECT 1", out);
        Ok(())
    }

    /// Runs a recovery round now and answers one row per prepared transaction it settled.
    async fn run_recovery(&mut self, call: &FunctionCall) -> Result<(), CoordError> {
        Args::new(call)?.check(&[])?;
        let settled = crate::dtx::recover::recover(&self.shared).await?;
        let extended = self.extended;
        let out = self.client.out();
        if !extended {
            msg::row_description(&RECOVERY_COLUMNS, out);
        }
        for r in &settled {
            let outcome = if r.committed { "committed" } else { "rolled back" };
            let row = [r.node.as_str(), r.database.as_str(), r.gid.as_str(), outcome];
            msg::data_row(&row.map(|v| Some(v.as_bytes())), out);
        }
        msg::command_complete(&format!("SELECT {}", settled.len()), out);
        Ok(())
    }

    /// Takes the primary lease now, even from a live primary; answers who held it before.
    async fn run_become_primary(&mut self, call: &FunctionCall) -> Result<(), CoordError> {
        Args::new(call)?.check(&[])?;
        let client = crate::lease::connect(&self.shared.config.metadata.dsn).await?;
        let (_, before) = self.shared.lease.take(&client, true).await?;
        tracing::warn!(previous = before.as_deref().unwrap_or("none"), "took the primary lease on request");
        let cells: Vec<Cell> = vec![("previous_primary", TEXT, before.unwrap_or_default())];
        let (extended, binary) = (self.extended, self.binary_results);
        let out = self.client.out();
        if !extended {
            msg::row_description(&[("previous_primary", TEXT)], out);
        }
        let values: Vec<Vec<u8>> = cells.iter().map(|(_, t, v)| cell(*t, v, binary)).collect();
        msg::data_row(&values.iter().map(|v| Some(v.as_slice())).collect::<Vec<_>>(), out);
        msg::command_complete("SELECT 1", out);
        Ok(())
    }

    /// Applies DDL on distributed tables everywhere (all or nothing) and queues its CommandComplete.
    pub(super) async fn run_ddl(&mut self, ddl: &DdlPlan, catalog: &CatalogSnapshot, sql: &str) -> Result<(), CoordError> {
        let tag = command_tag_of(sql);
        self.outside_block(&tag)?;
        crate::lease::ensure_primary(&self.shared, &tag).await?;
        let (user, database, password) = self.identity();
        let admin = Admin { shared: &self.shared, user: &user, database: &database, password: password.as_deref() };
        let mut work: Vec<(NodeId, Vec<String>)> = catalog.nodes().iter().map(|n| (n.id, Vec::new())).collect();
        if !ddl.on_every_node.is_empty() {
            for (_, list) in &mut work {
                list.push(ddl.on_every_node.clone());
            }
        }
        for (group, template) in &ddl.shards {
            for shard in catalog.shards_of(pgshard_catalog::ColocationId(*group)) {
                if let Some((_, list)) = work.iter_mut().find(|(n, _)| *n == shard.node) {
                    list.push(template.render(Some(&shard.schema_name())));
                }
            }
        }
        if !ddl.concurrently && !ddl.shards.is_empty() {
            // A column added as serial brings sequences on the shards: give them their ranges
            // (crate::distribute::SEQUENCE_RANGES_SQL leaves the others alone).
            let nodes: Vec<NodeId> = ddl
                .shards
                .iter()
                .flat_map(|(group, _)| catalog.shards_of(pgshard_catalog::ColocationId(*group)).iter().map(|s| s.node))
                .collect();
            for (node, list) in &mut work {
                if nodes.contains(node) {
                    list.push(crate::distribute::SEQUENCE_RANGES_SQL.to_owned());
                }
            }
        }
        work.retain(|(_, list)| !list.is_empty());
        if ddl.concurrently {
            let name = index_name(sql).ok_or_else(|| {
                CoordError::Unsupported("CREATE INDEX CONCURRENTLY without an index name on a distributed table".into())
            })?;
            let concurrent = work
                .into_iter()
                .map(|(node, list)| {
                    let items = list
                        .into_iter()
                        .map(|sql| {
                            let schema = shard_schema_in(&sql);
                            let index = match schema {
                                Some(s) => format!("{}.{}", quote_ident(&s), quote_ident(&name)),
                                None => quote_ident(&name),
                            };
                            ConcurrentIndex { sql, index }
                        })
                        .collect();
                    (node, items)
                })
                .collect();
            distribute::apply_each_without_transaction(&admin, concurrent).await?;
        } else {
            let drops: Vec<(String, String)> = ddl
                .drops
                .iter()
                .filter_map(|(schema, name)| {
                    let rels = Rels { catalog, columns: &HashMap::new() };
                    rels.lookup(schema.as_deref(), name).map(|t| (t.schema.clone(), t.name.clone()))
                })
                .collect();
            distribute::apply_everywhere_dropping(&admin, work, &drops).await?;
        }
        msg::command_complete(&tag, self.client.out());
        Ok(())
    }
}

const VOID: u32 = 2278;
const INT8: u32 = 20;
const TEXT: u32 = 25;

/// The result column name PostgreSQL gives a call of a void pgshard function: its name.
pub(super) fn void_name(name: &str) -> &'static str {
    match name {
        "create_distributed_table" => "create_distributed_table",
        "create_reference_table" => "create_reference_table",
        _ => "undistribute_table",
    }
}

/// A function call's arguments, by position or by name (`name => value`).
struct Args<'a> {
    call: &'a FunctionCall,
}

impl<'a> Args<'a> {
    fn new(call: &'a FunctionCall) -> Result<Self, CoordError> {
        let mut named = false;
        for (name, _) in &call.args {
            if name.is_some() {
                named = true;
            } else if named {
                return Err(CoordError::sql(
                    SqlState::SYNTAX_ERROR,
                    "positional argument cannot follow named argument",
                ));
            }
        }
        Ok(Self { call })
    }

    /// Refuses unknown argument names and too many arguments, as PostgreSQL does (42883).
    fn check(&self, names: &[&str]) -> Result<(), CoordError> {
        let unknown = self.call.args.iter().any(|(n, _)| n.as_deref().is_some_and(|n| !names.contains(&n)));
        if unknown || self.call.args.len() > names.len() {
            return Err(CoordError::sql(
                SqlState::UNDEFINED_FUNCTION,
                format!("function {}({}) does not exist", self.call.name, vec!["unknown"; self.call.args.len()].join(", ")),
            )
            .with_hint("No function matches the given name and argument types. You might need to add explicit type casts."));
        }
        Ok(())
    }

    fn get(&self, pos: usize, name: &str) -> Option<&ArgValue> {
        self.call
            .args
            .iter()
            .find(|(n, _)| n.as_deref() == Some(name))
            .map(|(_, v)| v)
            .or_else(|| self.call.args.get(pos).filter(|(n, _)| n.is_none()).map(|(_, v)| v))
    }

    fn opt_text(&self, pos: usize, name: &str) -> Result<Option<String>, CoordError> {
        Ok(match self.get(pos, name) {
            None | Some(ArgValue::Null) => None,
            Some(ArgValue::Text(t)) => Some(t.clone()),
            Some(ArgValue::Int(i)) => Some(i.to_string()),
            Some(ArgValue::Param(n)) => return Err(no_parameter(*n)),
        })
    }

    fn text(&self, pos: usize, name: &str) -> Result<String, CoordError> {
        self.opt_text(pos, name)?.ok_or_else(|| {
            CoordError::sql(SqlState::NULL_VALUE_NOT_ALLOWED, format!("{name} of {}() must not be NULL", self.call.name))
        })
    }

    fn int(&self, pos: usize, name: &str) -> Result<Option<i64>, CoordError> {
        match self.get(pos, name) {
            None | Some(ArgValue::Null) => Ok(None),
            Some(ArgValue::Int(i)) => Ok(Some(*i)),
            Some(ArgValue::Param(n)) => Err(no_parameter(*n)),
            Some(ArgValue::Text(t)) => t.trim().parse().map(Some).map_err(|_| {
                CoordError::sql(SqlState::INVALID_TEXT_REPRESENTATION, format!("invalid input syntax for type integer: \"{t}\""))
            }),
        }
    }
}

/// 42P02, as PostgreSQL says it of a `$n` in a simple query.
fn no_parameter(n: usize) -> CoordError {
    CoordError::sql(SqlState::UNDEFINED_PARAMETER, format!("there is no parameter ${n}"))
}

/// Whether the text may call one of pgshard's functions (which the planner must see even
/// while the catalog holds no table).
fn names_a_function(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    pgshard_planner::FUNCTION_NAMES.iter().any(|n| lower.contains(n))
}

/// PostgreSQL's command tag for a utility statement, from its leading keywords.
pub fn command_tag_of(sql: &str) -> String {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty())
        .take(4)
        .map(str::to_uppercase)
        .collect();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    match (w(0), w(1), w(2)) {
        ("CREATE", "UNIQUE", "INDEX") => "CREATE INDEX".into(),
        ("CREATE", "INDEX", _) => "CREATE INDEX".into(),
        ("TRUNCATE", _, _) => "TRUNCATE TABLE".into(),
        ("LOCK", _, _) => "LOCK TABLE".into(),
        ("ANALYZE" | "ANALYSE", _, _) => "ANALYZE".into(),
        ("VACUUM", _, _) => "VACUUM".into(),
        ("COMMENT", _, _) => "COMMENT".into(),
        (a, b, _) => format!("{a} {b}"),
    }
}

/// The index name of `CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON ...`.
fn index_name(sql: &str) -> Option<String> {
    let lower = sql.to_lowercase();
    let at = lower.find("concurrently")? + "concurrently".len();
    let mut rest = sql[at..].trim_start();
    if rest.to_lowercase().starts_with("if not exists") {
        rest = rest["if not exists".len()..].trim_start();
    }
    if rest.to_lowercase().starts_with("on ") {
        return None;
    }
    if let Some(q) = rest.strip_prefix('"') {
        return q.split('"').next().map(str::to_owned);
    }
    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$').collect();
    (!name.is_empty()).then(|| name.to_lowercase())
}

/// The shard schema a rendered statement names (`pgshard_g1_s5`), if any.
fn shard_schema_in(sql: &str) -> Option<String> {
    let at = sql.find("pgshard_g")?;
    let name: String = sql[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    Some(name)
}

/// An identifier quoted for SQL text.
pub(super) fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_tags() {
        assert_eq!(command_tag_of("create unique index i on t (a)"), "CREATE INDEX");
        assert_eq!(command_tag_of("ALTER TABLE t ADD COLUMN x int"), "ALTER TABLE");
        assert_eq!(command_tag_of("drop table t"), "DROP TABLE");
        assert_eq!(command_tag_of("truncate t"), "TRUNCATE TABLE");
    }

    #[test]
    fn concurrent_index_names() {
        assert_eq!(index_name("create index concurrently o_idx on o (a)").as_deref(), Some("o_idx"));
        assert_eq!(index_name("CREATE INDEX CONCURRENTLY IF NOT EXISTS \"O x\" ON o (a)").as_deref(), Some("O x"));
        assert_eq!(index_name("create index concurrently on o (a)"), None);
    }
}
