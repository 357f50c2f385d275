//! A table's definition read from the default node's `pg_catalog`, and the statements that
//! recreate it on another node: its schema, the sequences its columns own or its defaults call,
//! the table with its columns (type with modifier, collation, NOT NULL, default, generated,
//! identity), its CHECK,
//! PRIMARY KEY, UNIQUE and EXCLUDE constraints, its other indexes; foreign keys come apart,
//! since they are added once both ends exist.
//!
//! Names are read with `search_path = pg_catalog`, so every user object PostgreSQL prints
//! (`format_type`, `pg_get_expr`, `pg_get_constraintdef`, `pg_get_indexdef`) is
//! schema-qualified. What the table uses but does not own (types, functions, collations,
//! sequences of other tables) must already exist on the other node; if it does not, the
//! node's CREATE fails and that error is returned as the node sent it.
//!
//! Not reproduced: comments, privileges, ownership (the creating user owns the copy),
//! triggers, row-level security, per-column storage/statistics settings, tablespaces, identity
//! sequence options. A sequence is recreated empty on each node; the `sequences` step then gives
//! each node's copy a range of its own.

use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::admin::run;
use super::ddl_read;
use super::sql::{ident, literal, qualified};
use crate::error::CoordError;

/// A column of the table.
#[derive(Debug, Clone)]
pub struct Column {
    /// `pg_attribute.attnum`.
    pub attnum: i16,
    /// Name.
    pub name: String,
    /// `format_type(type, typmod)`, qualified when not in `pg_catalog`.
    pub type_name: String,
    /// NOT NULL.
    pub not_null: bool,
    /// `a` (GENERATED ALWAYS AS IDENTITY), `d` (BY DEFAULT) or empty.
    pub identity: String,
    /// GENERATED ALWAYS AS (...) STORED: its value cannot be written by COPY.
    pub generated: bool,
    /// The default or generation expression.
    pub default: Option<String>,
    /// `COLLATE` clause target when the collation is not the type's default.
    pub collation: Option<String>,
    /// False for a nondeterministic collation (equal strings with different bytes).
    pub deterministic: bool,
}

/// A foreign key of the table.
#[derive(Debug, Clone)]
pub struct ForeignKey {
    /// Constraint name.
    pub name: String,
    /// `pg_get_constraintdef` text (`FOREIGN KEY (a) REFERENCES s.t(b) ...`).
    pub definition: String,
    /// OID of the referenced table on the default node.
    pub referenced_oid: u32,
    /// Schema of the referenced table.
    pub referenced_schema: String,
    /// Name of the referenced table.
    pub referenced_name: String,
    /// Referencing columns (attnums of this table).
    pub columns: Vec<i16>,
    /// Referenced columns (attnums of the referenced table), in the same order.
    pub referenced_columns: Vec<i16>,
    /// The referenced table as `definition` spells it.
    pub(crate) referenced_sql: String,
}

impl ForeignKey {
    /// `ALTER TABLE <table> ADD CONSTRAINT ...` pointing at `target` (a qualified, quoted
    /// table name) instead of the referenced table, or at the referenced table itself.
    pub fn statement(&self, table: &str, target: Option<&str>) -> Result<String, CoordError> {
        let definition = match target {
            None => self.definition.clone(),
            Some(target) => {
                let from = format!(" REFERENCES {}(", self.referenced_sql);
                if !self.definition.contains(&from) {
                    return Err(CoordError::sql(
                        SqlState::INTERNAL_ERROR,
                        format!("cannot read the definition of foreign key \"{}\": {}", self.name, self.definition),
                    ));
                }
                self.definition.replacen(&from, &format!(" REFERENCES {target}("), 1)
            }
        };
        Ok(format!("ALTER TABLE {table} ADD CONSTRAINT {} {definition}", ident(&self.name)))
    }
}

/// A CHECK, PRIMARY KEY, UNIQUE or EXCLUDE constraint.
#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    pub name: String,
    /// `c`, `p`, `u` or `x`.
    pub kind: String,
    pub definition: String,
    /// Constrained columns (0 for an expression element of an EXCLUDE).
    pub columns: Vec<i16>,
    /// EXCLUDE operators, parallel to `columns`.
    pub operators: Vec<String>,
}

/// An index that backs no constraint.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    pub name: String,
    pub definition: String,
    pub unique: bool,
    /// Key columns (0 for an expression), INCLUDE columns left out.
    pub key_columns: Vec<i16>,
}

/// A sequence owned by one of the table's columns (`serial`) or named by a column's default,
/// with its options as SQL.
#[derive(Debug, Clone)]
pub(crate) struct Sequence {
    pub schema: String,
    pub name: String,
    /// The column that owns it (`None`: a sequence of its own a default calls).
    pub column: Option<String>,
    pub options: String,
}

/// Everything needed to recreate a table elsewhere and to check it can be distributed.
#[derive(Debug, Clone)]
pub struct TableDdl {
    /// OID on the node it was read from.
    pub oid: u32,
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// `schema.name` quoted the way PostgreSQL prints it in index and constraint definitions.
    pg_name: String,
    /// Columns in attnum order (dropped ones left out).
    pub columns: Vec<Column>,
    /// Statements creating the table (and its schema, sequences, constraints, indexes) on a
    /// node that lacks it; no foreign keys.
    pub create: Vec<String>,
    /// Foreign keys, to add once the referenced tables exist.
    pub foreign_keys: Vec<ForeignKey>,
    pub(crate) constraints: Vec<Constraint>,
    pub(crate) indexes: Vec<Index>,
}

impl TableDdl {
    /// `schema.name`, quoted.
    pub fn qualified(&self) -> String {
        qualified(&self.schema, &self.name)
    }

    /// The statements that give a shard table (created `LIKE` the shell, without indexes)
    /// the table's PRIMARY KEY, UNIQUE and EXCLUDE constraints and its other indexes under
    /// their own names, so a shard's errors name the user's constraints.
    pub(crate) fn shard_index_statements(&self, shard_table: &str) -> Result<Vec<String>, CoordError> {
        let mut out: Vec<String> = self
            .constraints
            .iter()
            .filter(|c| c.kind != "c")
            .map(|c| format!("ALTER TABLE {shard_table} ADD CONSTRAINT {} {}", ident(&c.name), c.definition))
            .collect();
        let from = format!(" ON {} USING ", self.pg_name);
        for index in &self.indexes {
            if !index.definition.contains(&from) {
                return Err(CoordError::sql(
                    SqlState::INTERNAL_ERROR,
                    format!("cannot read the definition of index \"{}\": {}", index.name, index.definition),
                ));
            }
            out.push(index.definition.replacen(&from, &format!(" ON {shard_table} USING "), 1));
        }
        Ok(out)
    }

    /// The column named exactly `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The columns COPY reads and writes (generated columns left out), quoted, in order.
    pub fn copy_columns(&self) -> String {
        super::sql::column_list(self.columns.iter().filter(|c| !c.generated).map(|c| c.name.as_str()))
    }

    /// Position of `attnum` among [`TableDdl::copy_columns`].
    pub(crate) fn copy_position(&self, attnum: i16) -> Option<usize> {
        self.columns.iter().filter(|c| !c.generated).position(|c| c.attnum == attnum)
    }
}

/// Reads the definition of `schema.name` (exact names) from `client`, which must not be in a
/// transaction. A missing table is 42P01.
pub async fn table_ddl(client: &Client, schema: &str, name: &str) -> Result<TableDdl, CoordError> {
    let row = client
        .query_opt(
            "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &name],
        )
        .await
        .map_err(CoordError::from_pg)?;
    let oid: u32 = match row {
        Some(row) => row.try_get(0).map_err(CoordError::from_pg)?,
        None => {
            let shown = qualified(schema, name);
            return Err(CoordError::sql(SqlState::UNDEFINED_TABLE, format!("relation \"{shown}\" does not exist")));
        }
    };
    run(client, "BEGIN READ ONLY; SET LOCAL search_path = pg_catalog").await?;
    let read = read_definition(client, oid, schema, name).await;
    let end = run(client, if read.is_ok() { "COMMIT" } else { "ROLLBACK" }).await;
    let ddl = read?;
    end?;
    Ok(ddl)
}

async fn read_definition(client: &Client, oid: u32, schema: &str, name: &str) -> Result<TableDdl, CoordError> {
    let columns = ddl_read::columns(client, oid).await?;
    let (constraints, foreign_keys) = ddl_read::constraints(client, oid).await?;
    let indexes = ddl_read::indexes(client, oid).await?;
    let sequences = ddl_read::sequences(client, oid).await?;
    let row = client
        .query_one(
            "SELECT c.relpersistence::text, c.reloptions, format('%I.%I', n.nspname, c.relname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1",
            &[&oid],
        )
        .await
        .map_err(CoordError::from_pg)?;
    let persistence: String = row.try_get(0).map_err(CoordError::from_pg)?;
    let options: Option<Vec<String>> = row.try_get(1).map_err(CoordError::from_pg)?;
    let pg_name: String = row.try_get(2).map_err(CoordError::from_pg)?;
    let mut ddl = TableDdl {
        oid,
        schema: schema.to_owned(),
        name: name.to_owned(),
        pg_name,
        columns,
        create: Vec::new(),
        foreign_keys,
        constraints,
        indexes,
    };
    ddl.create = create_statements(&ddl, &sequences, persistence == "u", options.as_deref());
    Ok(ddl)
}

fn create_statements(
    ddl: &TableDdl,
    sequences: &[Sequence],
    unlogged: bool,
    options: Option<&[String]>,
) -> Vec<String> {
    let table = ddl.qualified();
    let mut out = Vec::new();
    let mut schemas = vec![ddl.schema.as_str()];
    schemas.extend(sequences.iter().map(|s| s.schema.as_str()));
    schemas.sort_unstable();
    schemas.dedup();
    for schema in schemas.into_iter().filter(|s| *s != "public") {
        out.push(format!("CREATE SCHEMA IF NOT EXISTS {}", ident(schema)));
    }
    for seq in sequences {
        out.push(format!("CREATE SEQUENCE IF NOT EXISTS {} {}", qualified(&seq.schema, &seq.name), seq.options));
    }
    let columns: Vec<String> = ddl.columns.iter().map(column_definition).collect();
    let mut create =
        format!("CREATE {}TABLE {table} ({})", if unlogged { "UNLOGGED " } else { "" }, columns.join(", "));
    if let Some(options) = options.filter(|o| !o.is_empty()) {
        let options: Vec<String> = options
            .iter()
            .map(|o| match o.split_once('=') {
                Some((k, v)) => format!("{k} = {}", literal(v)),
                None => o.clone(),
            })
            .collect();
        create.push_str(&format!(" WITH ({})", options.join(", ")));
    }
    out.push(create);
    for seq in sequences {
        let Some(column) = &seq.column else { continue };
        out.push(format!("ALTER SEQUENCE {} OWNED BY {table}.{}", qualified(&seq.schema, &seq.name), ident(column)));
    }
    for con in &ddl.constraints {
        out.push(format!("ALTER TABLE {table} ADD CONSTRAINT {} {}", ident(&con.name), con.definition));
    }
    out.extend(ddl.indexes.iter().map(|i| i.definition.clone()));
    out
}

fn column_definition(c: &Column) -> String {
    let mut def = format!("{} {}", ident(&c.name), c.type_name);
    if let Some(collation) = &c.collation {
        def.push_str(&format!(" COLLATE {collation}"));
    }
    match (c.identity.as_str(), c.generated, &c.default) {
        ("a", ..) => def.push_str(" GENERATED ALWAYS AS IDENTITY"),
        ("d", ..) => def.push_str(" GENERATED BY DEFAULT AS IDENTITY"),
        (_, true, Some(expr)) => def.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED")),
        (_, false, Some(expr)) => def.push_str(&format!(" DEFAULT {expr}")),
        _ => {}
    }
    if c.not_null {
        def.push_str(" NOT NULL");
    }
    def
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fk() -> ForeignKey {
        ForeignKey {
            name: "lines_order_fk".into(),
            definition: "FOREIGN KEY (w, o) REFERENCES public.orders(w, id) ON DELETE CASCADE".into(),
            referenced_oid: 1,
            referenced_schema: "public".into(),
            referenced_name: "orders".into(),
            columns: vec![1, 2],
            referenced_columns: vec![1, 2],
            referenced_sql: "public.orders".into(),
        }
    }

    #[test]
    fn foreign_keys_can_point_at_a_shard() {
        let fk = fk();
        assert_eq!(
            fk.statement("pgshard_g1_s0.lines", Some("pgshard_g1_s0.orders")).unwrap(),
            "ALTER TABLE pgshard_g1_s0.lines ADD CONSTRAINT lines_order_fk \
             FOREIGN KEY (w, o) REFERENCES pgshard_g1_s0.orders(w, id) ON DELETE CASCADE"
        );
        assert!(
            fk.statement("public.lines", None).unwrap().ends_with("REFERENCES public.orders(w, id) ON DELETE CASCADE")
        );
    }

    #[test]
    fn columns_are_defined_with_their_clauses() {
        let col = Column {
            attnum: 1,
            name: "Id".into(),
            type_name: "bigint".into(),
            not_null: true,
            identity: String::new(),
            generated: false,
            default: Some("nextval('public.\"t_Id_seq\"'::regclass)".into()),
            collation: None,
            deterministic: true,
        };
        assert_eq!(column_definition(&col), "\"Id\" bigint DEFAULT nextval('public.\"t_Id_seq\"'::regclass) NOT NULL");
        let generated = Column { generated: true, default: Some("(a * 2)".into()), not_null: false, ..col.clone() };
        assert_eq!(column_definition(&generated), "\"Id\" bigint GENERATED ALWAYS AS ((a * 2)) STORED");
        let identity = Column { identity: "a".into(), default: None, ..col };
        assert_eq!(column_definition(&identity), "\"Id\" bigint GENERATED ALWAYS AS IDENTITY NOT NULL");
    }
}
