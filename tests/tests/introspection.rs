//! Introspection through the coordinator answers as on one PostgreSQL: psql's `\dt`, `\d`,
//! `\d+`, `\di` and the catalog queries of drivers and ORMs show each distributed or reference
//! table once, as the user created it, with its columns, keys and indexes; shard tables do not
//! appear (the default node, where introspection is answered, holds no shard). Known
//! difference, filtered here and written in the README: `\d` lists the shell's guard trigger.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::time::Duration;

use pgshard_tests::{PlainPg, TestCluster, run_pg_tool};

const SCHEMA: &str = "CREATE TABLE item (i_id int PRIMARY KEY, name text NOT NULL);
    INSERT INTO item VALUES (1, 'a'), (2, 'b');
    CREATE TABLE orders (
        o_w_id int NOT NULL,
        o_id int NOT NULL,
        amount numeric(10,2) DEFAULT 0 CHECK (amount >= 0),
        item_id int REFERENCES item (i_id),
        note varchar(20),
        PRIMARY KEY (o_w_id, o_id)
    );
    CREATE INDEX orders_note_idx ON orders (note);
    CREATE UNIQUE INDEX orders_item_uq ON orders (o_w_id, item_id, o_id);
    INSERT INTO orders VALUES (1, 1, 5, 1, 'x'), (2, 2, 6, 2, 'y');";

const DISTRIBUTE: [&str; 2] =
    ["SELECT create_reference_table('item')", "SELECT create_distributed_table('orders', 'o_w_id')"];

const LOOKS: [&str; 7] = [
    "\\dt",
    "\\d orders",
    "\\d+ orders",
    "\\d item",
    "\\di",
    "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns \
     WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    "SELECT tc.table_name, tc.constraint_name, tc.constraint_type FROM information_schema.table_constraints tc \
     WHERE tc.table_schema = 'public' AND tc.constraint_type <> 'CHECK' ORDER BY 1, 2",
];

fn psql(port: u16, sql: &str) -> String {
    let port = port.to_string();
    let args = ["-X", "-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-c", sql];
    let out = run_pg_tool("psql", &args, None, Duration::from_secs(60)).unwrap();
    assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Drops the `Triggers:` section (the shell's guard) from `\d` output.
fn without_triggers(text: &str) -> String {
    let mut out = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        if line == "Triggers:" {
            skipping = true;
            continue;
        }
        if skipping && line.starts_with("    ") {
            continue;
        }
        skipping = false;
        out.push(line);
    }
    out.join("\n")
}

#[test]
fn psql_and_catalog_queries_see_each_table_once_as_created() {
    let plain = PlainPg::start().unwrap();
    let cluster = TestCluster::start(2).unwrap();
    psql(plain.port(), SCHEMA);
    psql(cluster.port(), SCHEMA);
    for f in DISTRIBUTE {
        psql(cluster.port(), f);
    }
    let mut failures = Vec::new();
    for look in LOOKS {
        let direct = without_triggers(&psql(plain.port(), look));
        let through = without_triggers(&psql(cluster.port(), look));
        if direct != through {
            failures.push(format!("{look}\n--- plain PostgreSQL\n{direct}\n--- pgshard\n{through}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The filtered differences are there, and nothing else.
    let d = psql(cluster.port(), "\\d orders");
    assert!(d.contains("pgshard_shell_guard"), "{d}");
    // No shard table anywhere in the catalogs clients read.
    for sql in [
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'orders'",
        "SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'orders'",
        "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname LIKE 'pgshard\\_g%'",
    ] {
        assert_eq!(psql(plain.port(), sql), psql(cluster.port(), sql), "{sql}");
    }
}
