//! The nine TPC-C tables (clause 1.3) with the keys of TPCC.md, their secondary indexes, and
//! how they are spread over pgshard's data nodes: every warehouse-keyed table distributed on
//! its warehouse column, colocated with `warehouse`, and `item` a reference table.

use tokio_postgres::Client;

use crate::conn::{execute, text_rows};

/// Where the tables live: behind pgshard's coordinator or on a plain PostgreSQL.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// pgshard when `pgshard.nodes` can be read, plain PostgreSQL otherwise.
    Auto,
    /// pgshard: the tables are distributed after they are created.
    Pgshard,
    /// Plain PostgreSQL: ordinary tables.
    Postgres,
}

impl Target {
    /// Resolves `Auto` by asking the server: pgshard answers `SELECT count(*) FROM
    /// pgshard.nodes` (its catalog mirror on the default node). A fresh cluster has no mirror
    /// until its first table is distributed, so `SELECT recover_prepared_transactions()`, a
    /// function only pgshard knows (it runs a recovery round, which pgshard also runs every
    /// few seconds by itself), decides then.
    pub async fn resolve(self, client: &Client) -> Target {
        if self != Target::Auto {
            return self;
        }
        for probe in ["SELECT count(*) FROM pgshard.nodes", "SELECT recover_prepared_transactions()"] {
            match client.simple_query(probe).await {
                Ok(_) => return Target::Pgshard,
                Err(e) => tracing::debug!(probe, error = %e, "not answered as pgshard would"),
            }
        }
        Target::Postgres
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Target::Auto => "auto",
            Target::Pgshard => "pgshard",
            Target::Postgres => "PostgreSQL",
        })
    }
}

/// The tables in load order, with the warehouse column of the warehouse-keyed ones.
pub const TABLES: [(&str, Option<&str>); 9] = [
    ("warehouse", Some("w_id")),
    ("district", Some("d_w_id")),
    ("customer", Some("c_w_id")),
    ("history", Some("h_w_id")),
    ("orders", Some("o_w_id")),
    ("new_order", Some("no_w_id")),
    ("order_line", Some("ol_w_id")),
    ("stock", Some("s_w_id")),
    ("item", None),
];

/// CREATE TABLE statements, one per table, in the order of [`TABLES`].
const CREATE: [&str; 9] = [
    "CREATE TABLE warehouse (
        w_id integer NOT NULL, w_name varchar(10), w_street_1 varchar(20), w_street_2 varchar(20),
        w_city varchar(20), w_state char(2), w_zip char(9), w_tax numeric(4,4), w_ytd numeric(12,2),
        PRIMARY KEY (w_id))",
    "CREATE TABLE district (
        d_id integer NOT NULL, d_w_id integer NOT NULL, d_name varchar(10), d_street_1 varchar(20),
        d_street_2 varchar(20), d_city varchar(20), d_state char(2), d_zip char(9), d_tax numeric(4,4),
        d_ytd numeric(12,2), d_next_o_id integer,
        PRIMARY KEY (d_w_id, d_id))",
    "CREATE TABLE customer (
        c_id integer NOT NULL, c_d_id integer NOT NULL, c_w_id integer NOT NULL, c_first varchar(16),
        c_middle char(2), c_last varchar(16), c_street_1 varchar(20), c_street_2 varchar(20),
        c_city varchar(20), c_state char(2), c_zip char(9), c_phone char(16), c_since timestamp,
        c_credit char(2), c_credit_lim numeric(12,2), c_discount numeric(4,4), c_balance numeric(12,2),
        c_ytd_payment numeric(12,2), c_payment_cnt integer, c_delivery_cnt integer, c_data varchar(500),
        PRIMARY KEY (c_w_id, c_d_id, c_id))",
    "CREATE TABLE history (
        h_c_id integer, h_c_d_id integer, h_c_w_id integer, h_d_id integer, h_w_id integer NOT NULL,
        h_date timestamp, h_amount numeric(6,2), h_data varchar(24))",
    "CREATE TABLE orders (
        o_id integer NOT NULL, o_d_id integer NOT NULL, o_w_id integer NOT NULL, o_c_id integer,
        o_entry_d timestamp, o_carrier_id integer, o_ol_cnt integer, o_all_local integer,
        PRIMARY KEY (o_w_id, o_d_id, o_id))",
    "CREATE TABLE new_order (
        no_o_id integer NOT NULL, no_d_id integer NOT NULL, no_w_id integer NOT NULL,
        PRIMARY KEY (no_w_id, no_d_id, no_o_id))",
    "CREATE TABLE order_line (
        ol_o_id integer NOT NULL, ol_d_id integer NOT NULL, ol_w_id integer NOT NULL,
        ol_number integer NOT NULL, ol_i_id integer, ol_supply_w_id integer, ol_delivery_d timestamp,
        ol_quantity integer, ol_amount numeric(6,2), ol_dist_info char(24),
        PRIMARY KEY (ol_w_id, ol_d_id, ol_o_id, ol_number))",
    "CREATE TABLE stock (
        s_i_id integer NOT NULL, s_w_id integer NOT NULL, s_quantity integer,
        s_dist_01 char(24), s_dist_02 char(24), s_dist_03 char(24), s_dist_04 char(24), s_dist_05 char(24),
        s_dist_06 char(24), s_dist_07 char(24), s_dist_08 char(24), s_dist_09 char(24), s_dist_10 char(24),
        s_ytd integer, s_order_cnt integer, s_remote_cnt integer, s_data varchar(50),
        PRIMARY KEY (s_w_id, s_i_id))",
    "CREATE TABLE item (
        i_id integer NOT NULL, i_im_id integer, i_name varchar(24), i_price numeric(5,2), i_data varchar(50),
        PRIMARY KEY (i_id))",
];

/// Secondary indexes, created after the load.
const INDEXES: [&str; 2] = [
    "CREATE INDEX customer_name ON customer (c_w_id, c_d_id, c_last, c_first)",
    "CREATE INDEX orders_customer ON orders (o_w_id, o_d_id, o_c_id, o_id)",
];

/// Drops the TPC-C tables that exist in the current schema, one statement per table.
pub async fn drop_tables(client: &Client) -> anyhow::Result<()> {
    let names: Vec<String> = TABLES.iter().map(|(t, _)| format!("'{t}'")).collect();
    let sql = format!(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname IN ({})",
        names.join(", ")
    );
    let existing: Vec<String> = text_rows(client, &sql).await?.into_iter().filter_map(|mut r| r.swap_remove(0)).collect();
    for (table, _) in TABLES.iter().rev().filter(|(t, _)| existing.iter().any(|e| e == t)) {
        tracing::info!(table, "dropping the existing table");
        execute(client, &format!("DROP TABLE {table}")).await?;
    }
    Ok(())
}

/// Creates the (empty) tables and, on pgshard, distributes them: `warehouse` on `w_id`, every
/// other warehouse-keyed table on its warehouse column colocated with it, `item` as a
/// reference table. Each catalog call is a statement of its own.
pub async fn create_tables(client: &Client, target: Target) -> anyhow::Result<()> {
    for sql in CREATE {
        execute(client, sql).await?;
    }
    if target != Target::Pgshard {
        return Ok(());
    }
    for (table, column) in TABLES {
        let sql = match (table, column) {
            ("warehouse", Some(column)) => format!("SELECT create_distributed_table('{table}', '{column}')"),
            (_, Some(column)) => {
                format!("SELECT create_distributed_table('{table}', '{column}', colocate_with => 'warehouse')")
            }
            (_, None) => format!("SELECT create_reference_table('{table}')"),
        };
        execute(client, &sql).await?;
    }
    Ok(())
}

/// Creates the secondary indexes, then ANALYZEs every table.
pub async fn index_and_analyze(client: &Client) -> anyhow::Result<()> {
    for sql in INDEXES {
        execute(client, sql).await?;
    }
    for (table, _) in TABLES {
        execute(client, &format!("ANALYZE {table}")).await?;
    }
    Ok(())
}
