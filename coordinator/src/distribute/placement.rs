//! The create-before phase shared by the placement operations: the guard function, empty
//! copies of a table under the user's name on other nodes (shells of distributed tables,
//! copies of reference tables before their rows arrive), empty shard tables.
//!
//! Crash rule: everything here commits at once, one transaction per node, before the catalog
//! names it. A crash leaves empty orphans that a retry replaces: an empty table of the same
//! name on another node is dropped and recreated, a shard table the catalog does not name is
//! dropped and recreated. A table of the same name holding rows is never touched (55000).

use pgshard_catalog::{Node, Shard};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::GUARD_TRIGGER;
use super::admin::run;
use super::checks::FkTarget;
use super::ddl_gen::TableDdl;
use super::sql::qualified;
use crate::error::CoordError;

/// Creates `pgshard.shell_guard()` where it is missing: the trigger function that makes a
/// write to a distributed table's shell fail with 0A000 instead of vanishing into it.
pub(crate) const GUARD_FUNCTION: &str = r#"DO $pgshard$
BEGIN
  IF pg_catalog.to_regprocedure('pgshard.shell_guard()') IS NULL THEN
    CREATE SCHEMA IF NOT EXISTS pgshard;
    CREATE FUNCTION pgshard.shell_guard() RETURNS trigger LANGUAGE plpgsql AS $guard$
    BEGIN
      RAISE EXCEPTION 'table "%" is distributed: its rows live in shards', TG_TABLE_NAME
        USING ERRCODE = 'feature_not_supported',
              HINT = 'The statement was planned before the table was distributed; run it again.';
    END
    $guard$;
  END IF;
END
$pgshard$"#;

/// Installs (again) the guard trigger on a shell.
pub(crate) fn guard_trigger(table: &str) -> String {
    format!(
        "DROP TRIGGER IF EXISTS {GUARD_TRIGGER} ON {table}; \
         CREATE TRIGGER {GUARD_TRIGGER} BEFORE INSERT OR UPDATE OR DELETE ON {table} \
         FOR EACH STATEMENT EXECUTE FUNCTION pgshard.shell_guard()"
    )
}

/// Removes the guard trigger from a shell.
pub(crate) fn drop_guard_trigger(table: &str) -> String {
    format!("DROP TRIGGER IF EXISTS {GUARD_TRIGGER} ON {table}")
}

/// Inside the caller's transaction on `node`: makes sure the table of `ddl` exists there,
/// empty, under the user's schema and name, with its foreign keys as on the default node
/// (which must exist there already). An empty one is replaced; one with rows is refused
/// (55000).
pub(crate) async fn ensure_empty_copy(client: &Client, node: &Node, ddl: &TableDdl) -> Result<(), CoordError> {
    let table = ddl.qualified();
    let exists = client
        .query_one("SELECT pg_catalog.to_regclass($1) IS NOT NULL", &[&table])
        .await
        .map_err(CoordError::from_pg)?
        .try_get::<_, bool>(0)
        .map_err(CoordError::from_pg)?;
    if exists {
        let has_rows = client
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM ONLY {table})"), &[])
            .await
            .map_err(CoordError::from_pg)?
            .try_get::<_, bool>(0)
            .map_err(CoordError::from_pg)?;
        if has_rows {
            return Err(CoordError::sql(
                SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
                format!("table \"{}\" already exists on data node {} and holds rows", ddl.name, node.name),
            )
            .with_hint("Drop or rename that table on the data node first."));
        }
        run(client, &format!("DROP TABLE {table}")).await?;
    }
    for statement in &ddl.create {
        run(client, statement).await?;
    }
    for fk in &ddl.foreign_keys {
        run(client, &fk.statement(&table, None)?).await?;
    }
    Ok(())
}

/// Statements dropping what a crashed attempt may have left of the shard tables of `ddl` in
/// `shards` (orphans: the catalog names no table of that name in the group), creating their
/// schemas if missing. Run before the shell is (re)created, since orphan shards may depend on
/// its sequences.
pub(crate) fn clear_shard_tables(ddl: &TableDdl, shards: &[&Shard]) -> Vec<String> {
    let mut out = Vec::new();
    for shard in shards {
        let schema = shard.schema_name();
        out.push(format!("CREATE SCHEMA IF NOT EXISTS {}", super::sql::ident(&schema)));
        out.push(format!("DROP TABLE IF EXISTS {} CASCADE", qualified(&schema, &ddl.name)));
    }
    out
}

/// Statements creating the (cleared) shard tables of `ddl` in `shards` on their node: `LIKE`
/// the shell there, the unique constraints and indexes under their own names, and the foreign
/// keys pointing at the same shard (colocated) or at the reference table.
pub(crate) fn create_shard_tables(
    ddl: &TableDdl,
    shards: &[&Shard],
    fk_targets: &[FkTarget],
) -> Result<Vec<String>, CoordError> {
    let mut out = Vec::new();
    for shard in shards {
        let schema = shard.schema_name();
        let table = qualified(&schema, &ddl.name);
        out.push(format!("CREATE TABLE {table} (LIKE {} INCLUDING ALL EXCLUDING INDEXES)", ddl.qualified()));
        out.extend(ddl.shard_index_statements(&table)?);
        for (fk, target) in ddl.foreign_keys.iter().zip(fk_targets) {
            let target = match target {
                FkTarget::SameShard => qualified(&schema, &fk.referenced_name),
                FkTarget::Reference => qualified(&fk.referenced_schema, &fk.referenced_name),
            };
            out.push(fk.statement(&table, Some(&target))?);
        }
    }
    Ok(out)
}

/// The shard tables of `table` named by `shards`, quoted, comma-separated (for TRUNCATE,
/// LOCK, DROP).
pub(crate) fn shard_table_list(name: &str, shards: &[&Shard]) -> String {
    shards.iter().map(|s| qualified(&s.schema_name(), name)).collect::<Vec<_>>().join(", ")
}
