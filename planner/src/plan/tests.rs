//! Plans of whole statement texts: routing, pgshard functions, unparseable text, DDL.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use super::*;
use crate::function::ArgValue;
use crate::testing::Catalog;

fn planned(sql: &str) -> String {
    plan_sql(sql, &Catalog).to_string()
}

#[track_caller]
fn refused(sql: &str, why: &str) {
    let got = planned(sql);
    assert!(got.starts_with("unsupported: ") && got.contains(why), "{sql}\n  got: {got}\n  want: {why}");
}

#[test]
fn statements_without_managed_tables_go_to_the_default_node() {
    for sql in [
        "SELECT 1",
        "",
        "-- nothing",
        "SET search_path = public",
        "BEGIN",
        "SHOW server_version",
        "SELECT * FROM accounts WHERE id = 1",
        "SELECT * FROM generate_series(1, 3)",
        "SELECT * FROM pg_catalog.pg_class",
        "SELECT * FROM other.orders",
        "CREATE TABLE t (a int REFERENCES item (i_id))",
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT count(*) FROM orders $$ LANGUAGE sql",
        "WITH orders AS (SELECT 1 AS o_w_id) SELECT * FROM orders",
        "SELECT 1; SELECT 2",
        "DROP TABLE accounts",
        "PREPARE p AS SELECT * FROM item",
        "LISTEN orders",
    ] {
        assert_eq!(planned(sql), "default node", "{sql}");
    }
}

#[test]
fn reference_tables_are_read_on_the_default_node_and_written_everywhere() {
    assert_eq!(planned("SELECT i_price FROM item JOIN accounts ON true"), "default node");
    assert_eq!(planned("UPDATE item SET i_price = 1 WHERE i_id = 7"), "every node");
    assert_eq!(planned("INSERT INTO item (i_id) VALUES (1) RETURNING *"), "every node");
    assert_eq!(planned("DELETE FROM public.item WHERE i_id IN (SELECT i_id FROM warehouse)"), "every node");
    assert_eq!(planned("TRUNCATE item, warehouse"), "every node");
    assert_eq!(planned("ALTER TABLE item ADD COLUMN x int"), "every node");
    assert_eq!(planned("CREATE INDEX ON item (i_name)"), "every node");
    assert_eq!(planned("COPY item FROM STDIN"), "copy in group 0 field 0: COPY \"item\" FROM STDIN (FORMAT text, DELIMITER '\t', NULL '\\N')");
    refused("COPY item FROM '/tmp/x'", "COPY of a reference table from a file or program");
    assert_eq!(planned("COPY item TO STDOUT"), "default node");
    refused("INSERT INTO item SELECT * FROM accounts", "reads \"accounts\", which exists only on the default node");
    refused("INSERT INTO item (i_id, i_name) VALUES (1, random()::text)", "calls random()");
    refused(
        "UPDATE item SET i_price = (SELECT max(o_id) FROM orders)",
        "writes a reference table and reads a distributed table",
    );
}

#[test]
fn several_statements_touching_managed_tables_are_refused() {
    refused("SELECT 1; SELECT * FROM orders", "several statements in one query string");
    refused("UPDATE item SET i_price = 1; SELECT 1", "several statements in one query string");
    assert_eq!(planned("SELECT * FROM item; SELECT 1"), "default node");
}

#[test]
fn text_the_parser_rejects_is_classified_by_its_words() {
    assert_eq!(planned("SELECT * FROM accounts WHERE GARBAGE GARBAGE"), "default node");
    assert_eq!(planned("CLUSTER accounts"), "default node");
    refused("SELECT * FROM orders WHERE o_w_id = 1 GARBAGE GARBAGE", "cannot parse (sql parser error: ");
    refused("REINDEX TABLE \"Orders\"", "names the distributed or reference table \"Orders\"");
    refused("CLUSTER item", "names the distributed or reference table \"item\"");
    refused("CREATE TRIGGER t AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f()", "CREATE TRIGGER naming");
}

#[test]
fn pgshard_functions_are_recognized_alone_with_constant_arguments() {
    let Plan::Function(call) = plan_sql(
        "SELECT pgshard.create_distributed_table('orders'::regclass, 'o_w_id', shard_count => 4, colocate_with := 'none')",
        &Catalog,
    ) else {
        panic!("not a function call")
    };
    assert_eq!(call.name, "create_distributed_table");
    assert_eq!(
        call.args,
        [
            (None, ArgValue::Text("orders".into())),
            (None, ArgValue::Text("o_w_id".into())),
            (Some("shard_count".into()), ArgValue::Int(4)),
            (Some("colocate_with".into()), ArgValue::Text("none".into())),
        ]
    );
    assert_eq!(planned("SELECT create_reference_table('item')"), "function create_reference_table('item')");
    assert_eq!(planned("select PUBLIC.Verify_Placement()"), "function verify_placement()");
    assert_eq!(
        planned("SELECT undistribute_table('it''s', NULL, -2)"),
        "function undistribute_table('it''s', NULL, -2)"
    );
    refused("SELECT create_distributed_table(x, 'o_w_id') FROM t", "create_distributed_table() other than alone");
    refused("SELECT 1, create_reference_table('item')", "create_reference_table() other than alone");
    refused("INSERT INTO t VALUES (undistribute_table('orders'))", "undistribute_table() other than alone");
    assert_eq!(planned("SELECT other.create_reference_table('item')"), "default node");
}

#[test]
fn reads_across_groups_or_with_other_tables_are_answered_over_copies() {
    assert_eq!(
        planned("SELECT * FROM orders JOIN accounts ON true"),
        "pull 1 to the default node: SELECT * FROM pg_temp.orders JOIN accounts ON true"
    );
    assert_eq!(
        planned("SELECT * FROM orders JOIN public.events ON o_w_id = e_tenant"),
        "pull 2 to the default node: SELECT * FROM pg_temp.orders JOIN pg_temp.events ON o_w_id = e_tenant"
    );
    assert_eq!(
        planned("WITH x AS (SELECT o_w_id FROM orders) SELECT * FROM x JOIN accounts ON true"),
        "pull 1 to the default node: WITH x AS (SELECT o_w_id FROM pg_temp.orders) SELECT * FROM x JOIN accounts ON true"
    );
    // The same table twice is copied once.
    assert_eq!(
        planned("SELECT * FROM orders a JOIN orders b ON a.o_id = b.o_id"),
        "pull 1 to the default node: SELECT * FROM pg_temp.orders a JOIN pg_temp.orders b ON a.o_id = b.o_id"
    );
    match plan_sql("SELECT * FROM orders JOIN events ON o_w_id = e_tenant", &Catalog) {
        Plan::Pull(p) => {
            let rows: Vec<String> = p.tables.iter().map(|t| t.rows.render(Some("pgshard_g1_s2"))).collect();
            assert_eq!(rows, ["SELECT * FROM pgshard_g1_s2.\"orders\"", "SELECT * FROM pgshard_g1_s2.\"events\""]);
            assert_eq!(p.tables[0].rows.render(None), "SELECT * FROM \"orders\"");
            assert_eq!(p.tables[0].temp_name, "\"orders\"");
        }
        other => panic!("{other}"),
    }
    refused("SELECT * FROM orders JOIN accounts ON true FOR UPDATE", "FOR UPDATE/SHARE");
    assert_eq!(
        planned("UPDATE orders SET amount = 0 FROM accounts WHERE accounts.id = orders.o_id"),
        "answer first, then plan again: SELECT * FROM accounts"
    );
    // A write to an ordinary table that reads distributed ones runs on the default node.
    assert_eq!(
        planned("INSERT INTO accounts SELECT o_id, o_w_id FROM orders"),
        "pull 1 to the default node: INSERT INTO accounts SELECT o_id, o_w_id FROM pg_temp.orders"
    );
}

#[test]
fn statements_wrapping_queries_run_on_the_default_node_only_for_default_node_queries() {
    assert_eq!(planned("EXPLAIN SELECT * FROM item"), "default node");
    let explained = planned("EXPLAIN (ANALYZE, COSTS off) SELECT * FROM orders WHERE o_w_id = 3");
    assert!(explained.starts_with("explain analyze of "), "{explained}");
    match plan_sql("EXPLAIN VERBOSE SELECT count(*) FROM orders", &Catalog) {
        Plan::Explain(e) => {
            assert!(!e.analyze);
            assert_eq!(e.prefix, "EXPLAIN VERBOSE");
            assert_eq!(e.sql, "SELECT count(*) FROM orders");
        }
        other => panic!("{other}"),
    }
    assert!(matches!(plan_sql("EXPLAIN SELECT * FROM orders a JOIN orders b ON a.o_id = b.o_id", &Catalog), Plan::Explain(ref e) if matches!(*e.inner, Plan::Pull(_))));
    refused("EXPLAIN ANALYZE SELECT * FROM orders a JOIN orders b ON a.o_id = b.o_id", "over copies of its distributed tables");
    refused("PREPARE p AS UPDATE item SET i_price = 0", "EXPLAIN or PREPARE of a statement");
    refused("COPY orders TO STDOUT", "COPY ... TO of a distributed table");
    refused("COPY orders FROM STDIN (FORMAT binary)", "the option FORMAT binary");
    refused("COPY orders FROM STDIN (HEADER true)", "in text format");
    refused("COPY orders FROM '/tmp/x'", "from a file or program");
    refused("COPY orders (o_id) FROM STDIN", "without its distribution column \"o_w_id\"");
    let copy = planned("COPY orders (o_id, o_w_id) FROM STDIN");
    assert!(copy.starts_with("copy in group") && copy.contains("field 1:"), "{copy}");
    assert!(
        copy.ends_with("COPY \"<shard>\".\"orders\" (\"o_id\", \"o_w_id\") FROM STDIN (FORMAT text, DELIMITER '\t', NULL '\\N')"),
        "{copy}"
    );
    let csv = planned("COPY orders (o_w_id, o_id) FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER ';')");
    assert!(csv.ends_with("FROM STDIN (FORMAT csv, DELIMITER ';', QUOTE '\"', ESCAPE '\"', NULL '')"), "{csv}");
    refused("COPY (SELECT * FROM orders) TO STDOUT", "COPY (query) of a statement");
    refused("CREATE VIEW v AS SELECT * FROM orders", "a view over the distributed table \"orders\"");
    refused("CREATE TABLE t AS SELECT * FROM customer", "CREATE TABLE ... AS over the distributed table \"customer\"");
}

#[test]
fn ddl_on_distributed_tables_runs_on_every_node_and_every_shard() {
    assert_eq!(
        planned("ALTER TABLE public.orders ADD COLUMN x int"),
        "ddl on every node: ALTER TABLE public.orders ADD COLUMN x int\n  group 1: ALTER TABLE pgshard_g1_sN.orders ADD COLUMN x int"
    );
    assert_eq!(
        planned("CREATE INDEX CONCURRENTLY idx ON \"Orders\" (o_c_id)"),
        "ddl on every node: CREATE INDEX CONCURRENTLY idx ON \"Orders\" (o_c_id)\n  group 1: CREATE INDEX CONCURRENTLY idx ON pgshard_g1_sN.\"Orders\" (o_c_id)\n  concurrently\n  creates index"
    );
    assert_eq!(
        planned("CREATE UNIQUE INDEX idx ON orders (o_id, o_w_id)"),
        "ddl on every node: CREATE UNIQUE INDEX idx ON orders (o_id, o_w_id)\n  group 1: CREATE UNIQUE INDEX idx ON pgshard_g1_sN.orders (o_id, o_w_id)\n  creates index"
    );
    assert_eq!(
        planned("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (o_w_id, o_c_id) REFERENCES customer (c_w_id, c_id)"),
        "ddl on every node: ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (o_w_id, o_c_id) REFERENCES customer (c_w_id, c_id)\n  group 1: ALTER TABLE pgshard_g1_sN.orders ADD CONSTRAINT fk FOREIGN KEY (o_w_id, o_c_id) REFERENCES pgshard_g1_sN.customer (c_w_id, c_id)"
    );
    assert_eq!(
        planned("ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (o_id) REFERENCES item (i_id)"),
        "ddl on every node: ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (o_id) REFERENCES item (i_id)\n  group 1: ALTER TABLE pgshard_g1_sN.orders ADD CONSTRAINT fk FOREIGN KEY (o_id) REFERENCES item (i_id)"
    );
    assert_eq!(
        planned("LOCK TABLE orders, customer IN ACCESS EXCLUSIVE MODE"),
        "ddl on every node: LOCK TABLE orders, customer IN ACCESS EXCLUSIVE MODE\n  group 1: LOCK TABLE pgshard_g1_sN.orders, pgshard_g1_sN.customer IN ACCESS EXCLUSIVE MODE"
    );
    assert_eq!(
        planned("COMMENT ON COLUMN orders.o_id IS 'the id'"),
        "ddl on every node: COMMENT ON COLUMN orders.o_id IS 'the id'"
    );
    assert_eq!(planned("ANALYZE orders"), "ddl on every node: ANALYZE orders\n  group 1: ANALYZE pgshard_g1_sN.orders");
}

#[test]
fn table_lists_give_each_group_only_its_tables() {
    assert_eq!(
        planned("TRUNCATE orders, item, events, customer RESTART IDENTITY"),
        "ddl on every node: TRUNCATE orders, item, events, customer RESTART IDENTITY\n  group 1: TRUNCATE TABLE pgshard_g1_sN.orders, pgshard_g1_sN.customer RESTART IDENTITY\n  group 2: TRUNCATE TABLE pgshard_g2_sN.events RESTART IDENTITY"
    );
    assert_eq!(
        planned("DROP TABLE IF EXISTS orders, item, accounts CASCADE"),
        "ddl on every node: DROP TABLE IF EXISTS orders, item, accounts CASCADE\n  group 1: DROP TABLE IF EXISTS pgshard_g1_sN.orders CASCADE\n  drops: orders, item"
    );
    assert_eq!(planned("DROP TABLE public.item"), "ddl on every node: DROP TABLE public.item\n  drops: public.item");
    refused("TRUNCATE orders, accounts", "TRUNCATE of a distributed or reference table together with \"accounts\"");
}

#[test]
fn ddl_that_would_break_distribution_is_refused() {
    refused(
        "ALTER TABLE orders ALTER COLUMN o_w_id TYPE bigint",
        "changing the type of the distribution column \"o_w_id\"",
    );
    refused("ALTER TABLE orders RENAME COLUMN o_w_id TO w", "renaming the distribution column");
    refused("ALTER TABLE orders DROP COLUMN o_w_id", "dropping the distribution column");
    refused("ALTER TABLE orders RENAME TO x", "renaming a distributed table");
    refused("ALTER TABLE orders ADD PRIMARY KEY (o_id)", "a primary key without the distribution column");
    refused("ALTER TABLE orders ADD CONSTRAINT u UNIQUE (o_id)", "a unique constraint without the distribution column");
    refused(
        "CREATE UNIQUE INDEX idx ON orders (o_id)",
        "a unique index on \"orders\" that does not include its distribution column",
    );
    refused(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (o_c_id) REFERENCES customer (c_id)",
        "does not pair their distribution columns",
    );
    refused(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (o_w_id) REFERENCES customer",
        "does not pair their distribution columns",
    );
    refused(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (o_w_id) REFERENCES events (e_tenant)",
        "different colocation groups",
    );
    refused(
        "ALTER TABLE item ADD CONSTRAINT fk FOREIGN KEY (i_id) REFERENCES orders (o_id)",
        "a foreign key from a reference table to a distributed table",
    );
    refused(
        "ALTER TABLE accounts ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES orders (o_id)",
        "from \"accounts\", which is not distributed",
    );
    refused(
        "ALTER TABLE orders ADD CONSTRAINT fk FOREIGN KEY (o_id) REFERENCES accounts (a)",
        "to \"accounts\", which is not distributed",
    );
    refused(
        "ALTER TABLE orders ADD COLUMN c int REFERENCES customer (c_id)",
        "does not pair their distribution columns",
    );
    refused(
        "CREATE TABLE t (a int REFERENCES orders (o_id))",
        "from \"t\", which is not distributed, to a distributed table",
    );
}

#[test]
fn insert_select_into_a_distributed_table_is_split_by_shard() {
    assert_eq!(
        planned("INSERT INTO orders (o_w_id, o_id) SELECT e_tenant, 7 FROM events WHERE e_tenant > 2;"),
        "insert into \"orders\" (\"o_w_id\", \"o_id\") split by shard, pulling 1: SELECT e_tenant, 7 FROM pg_temp.events WHERE e_tenant > 2"
    );
    assert_eq!(
        planned("insert into public.orders AS o (o_id, o_w_id) (SELECT o_id + 1, o_w_id FROM orders JOIN accounts ON true)"),
        "insert into public.\"orders\" (\"o_id\", \"o_w_id\") split by shard, pulling 1: (SELECT o_id + 1, o_w_id FROM pg_temp.orders JOIN accounts ON true)"
    );
    match plan_sql("INSERT INTO orders (o_id, o_w_id) SELECT a, b FROM accounts", &Catalog) {
        Plan::InsertSelect(p) => {
            assert_eq!(p.target.dist_index, 1);
            assert_eq!(p.target.columns.as_deref(), Some(&["o_id".to_owned(), "o_w_id".to_owned()][..]));
            assert!(p.sources.is_empty());
            assert_eq!(p.target.render("pgshard_g1_s0"), "COPY \"pgshard_g1_s0\".\"orders\" (\"o_id\", \"o_w_id\") FROM STDIN (FORMAT text, DELIMITER '\t', NULL '\\N')");
        }
        other => panic!("{other}"),
    }
    refused("INSERT INTO orders (o_id, o_w_id) SELECT a, b FROM accounts WHERE true ON CONFLICT (o_id) DO UPDATE SET o_w_id = 3", "changes the distribution column");
    refused("INSERT INTO orders (o_id, o_w_id) SELECT 1, 2 RETURNING (SELECT 1 FROM accounts)", "RETURNING that reads a table");
    // ON CONFLICT and RETURNING run on each shard over the rows delivered to it.
    match plan_sql("INSERT INTO orders AS o (o_id, o_w_id) SELECT a, b FROM accounts WHERE true ON CONFLICT DO NOTHING RETURNING o.o_id", &Catalog) {
        Plan::InsertSelect(p) => {
            assert_eq!(p.query.render(Some("pg_temp")), "SELECT a, b FROM accounts WHERE true ");
            let per = p.per_shard.unwrap();
            assert_eq!(per.head.render(Some("s1")), "INSERT INTO s1.\"orders\" AS \"o\" ");
            assert_eq!(per.tail.render(Some("s1")), "ON CONFLICT DO NOTHING RETURNING o.o_id");
            assert!(!p.defaults);
        }
        other => panic!("{other}"),
    }
}

#[test]
fn inserts_whose_distribution_value_is_computed_are_staged() {
    // Left out, the distribution column takes its default on the default node, once.
    match plan_sql("INSERT INTO orders (o_id) VALUES (1), (2) RETURNING o_w_id", &Catalog) {
        Plan::InsertSelect(p) => {
            assert_eq!(p.target.columns.as_deref(), Some(&["o_id".to_owned(), "o_w_id".to_owned()][..]));
            assert_eq!((p.target.dist_index, p.filled, p.defaults), (1, 1, true));
            assert_eq!(p.query.render(Some("pg_temp")), "VALUES (1), (2) ");
        }
        other => panic!("{other}"),
    }
    for sql in [
        "INSERT INTO orders (o_id, o_w_id) VALUES (1, 2), (2, DEFAULT)",
        "INSERT INTO orders (o_id, o_w_id) VALUES (1, nextval('s'))",
        "INSERT INTO orders (o_id, o_w_id) VALUES (1, (SELECT max(c_w_id) FROM customer))",
    ] {
        assert!(matches!(plan_sql(sql, &Catalog), Plan::InsertSelect(ref p) if p.defaults && p.filled == 2), "{sql}");
    }
    // Constants and parameters are split by the coordinator as before.
    assert!(matches!(plan_sql("INSERT INTO orders (o_id, o_w_id) VALUES (1, 2), ($1, $2)", &Catalog), Plan::Shards(_)));
}

#[test]
fn writes_with_subqueries_over_other_groups_answer_them_first() {
    let sql = "UPDATE orders SET amount = 0 WHERE o_id IN (SELECT e_tenant FROM events WHERE e_tenant > 3) AND o_w_id > 1";
    assert_eq!(planned(sql), "answer first, then plan again: SELECT e_tenant FROM pg_temp.events WHERE e_tenant > 3");
    match plan_sql(sql, &Catalog) {
        Plan::Substitute(p) => {
            assert_eq!(p.subqueries.len(), 1);
            assert_eq!(
                p.rewrite(&["(VALUES (4))".to_owned()]),
                "UPDATE orders SET amount = 0 WHERE o_id IN (VALUES (4)) AND o_w_id > 1"
            );
        }
        other => panic!("{other}"),
    }
    assert_eq!(
        planned("DELETE FROM orders WHERE o_id = (SELECT max(id) FROM accounts)"),
        "answer first, then plan again: SELECT max(id) FROM accounts"
    );
    // A table of another group in UPDATE ... FROM is answered whole, keeping its name.
    let sql = "UPDATE orders SET amount = 0 FROM events WHERE events.e_tenant = orders.o_id";
    assert_eq!(planned(sql), "answer first, then plan again: SELECT * FROM pg_temp.events");
    match plan_sql(sql, &Catalog) {
        Plan::Substitute(p) => assert_eq!(
            p.rewrite(&["(VALUES (1))".to_owned()]),
            "UPDATE orders SET amount = 0 FROM (VALUES (1)) AS \"events\" WHERE events.e_tenant = orders.o_id"
        ),
        other => panic!("{other}"),
    }
    match plan_sql("DELETE FROM orders o USING public.events AS e WHERE e.e_tenant = o.o_id", &Catalog) {
        Plan::Substitute(p) => assert_eq!(
            p.rewrite(&["(VALUES (1))".to_owned()]),
            "DELETE FROM orders o USING (VALUES (1)) AS e WHERE e.e_tenant = o.o_id"
        ),
        other => panic!("{other}"),
    }
}

#[test]
fn insert_select_keeping_rows_in_their_shard_is_pushed_down() {
    match plan_sql("INSERT INTO orders (o_w_id, o_id) SELECT o.o_w_id, o.o_id + 1000 FROM orders o WHERE o.o_id < 5 ON CONFLICT DO NOTHING RETURNING o_id", &Catalog) {
        Plan::Shards(sp) => {
            assert_eq!(sp.kind, crate::shard::StmtKind::Insert);
            assert_eq!(
                sp.multi.as_ref().map(|m| m.fragment.render(Some("s1"))).as_deref(),
                Ok("INSERT INTO s1.orders (o_w_id, o_id) SELECT o.o_w_id, o.o_id + 1000 FROM s1.orders o WHERE o.o_id < 5 ON CONFLICT DO NOTHING RETURNING o_id")
            );
        }
        other => panic!("{other}"),
    }
    // The distribution column from another column, or rows that must be combined: staged.
    for sql in [
        "INSERT INTO orders (o_w_id, o_id) SELECT o_id, o_w_id FROM orders",
        "INSERT INTO orders (o_w_id, o_id) SELECT o_w_id, max(o_id) + 1 FROM orders GROUP BY o_w_id",
        "INSERT INTO orders (o_w_id, o_id) SELECT o_w_id, o_id FROM orders ORDER BY o_id LIMIT 3",
    ] {
        assert!(planned(sql).starts_with("insert into"), "{sql}: {}", planned(sql));
    }
}

#[test]
fn data_modifying_with_runs_on_the_shards_when_each_shard_stands_alone() {
    use crate::shard::Targets;
    let shards = |sql: &str| match plan_sql(sql, &Catalog) {
        Plan::Shards(p) => p,
        other => panic!("{sql}: {other}"),
    };
    // Every part tied to one value: that value's shard, whatever the parts do.
    let p = shards("WITH d AS (DELETE FROM orders WHERE o_w_id = 1 RETURNING *) INSERT INTO customer (c_id, c_w_id) SELECT o_id, o_w_id FROM d WHERE false");
    assert!(matches!(p.targets, Targets::Keys(ref k) if k.len() == 1));
    let p = shards("WITH n AS (INSERT INTO orders (o_id, o_w_id) VALUES (1, $1) RETURNING o_id) UPDATE customer SET c_balance = 0 WHERE c_w_id = $1 AND c_id IN (SELECT o_id FROM n)");
    assert_eq!((p.targets.clone(), p.kind), (Targets::Keys(vec![crate::route::DistKey::Param(1)]), crate::shard::StmtKind::Insert));
    assert!(p.multi.is_err());
    assert_eq!(p.single.render(Some("s")), "WITH n AS (INSERT INTO s.orders (o_id, o_w_id) VALUES (1, $1) RETURNING o_id) UPDATE s.customer SET c_balance = 0 WHERE c_w_id = $1 AND c_id IN (SELECT o_id FROM n)");
    // UPDATE and DELETE keep rows in their shard: every shard, rows concatenated.
    let p = shards("WITH u AS (UPDATE orders SET o_carrier_id = 1 WHERE o_carrier_id IS NULL RETURNING o_id, o_w_id) SELECT o_id FROM u WHERE o_w_id > 2");
    assert_eq!(p.targets, Targets::All);
    assert!(matches!(p.multi, Ok(ref m) if m.merge == crate::merge::MergeStep::Concat));
    // Parts tied to different values: the shards of those values, each on its own rows.
    let p = shards("WITH d AS (DELETE FROM orders WHERE o_w_id = 1 RETURNING *) DELETE FROM customer WHERE c_w_id = 2");
    assert_eq!(p.targets, Targets::Keys(vec![crate::route::DistKey::Literal("1".into()), crate::route::DistKey::Literal("2".into())]));
    assert!(p.multi.is_ok());
    // Rows moved from one table to another keep their distribution value: every shard moves
    // its own (`RETURNING *` and `SELECT *` line up by the tables' column order too).
    let p = shards("WITH d AS (DELETE FROM orders WHERE o_carrier_id = 3 RETURNING *) INSERT INTO customer (c_id, c_w_id) SELECT o_id, d.o_w_id FROM d");
    assert_eq!(p.targets, Targets::All);
    let p = shards("WITH d AS (DELETE FROM customer RETURNING *) INSERT INTO customer SELECT * FROM d");
    assert!(p.multi.is_ok());
    // Refused: an aggregate over every shard's rows, an INSERT of rows from elsewhere, parts
    // tied to different values, other groups, tables of the default node, recursion.
    for (sql, why) in [
        ("WITH u AS (UPDATE orders SET o_carrier_id = 1 RETURNING o_id) SELECT count(*) FROM u", "aggregates"),
        ("WITH d AS (DELETE FROM orders RETURNING *) INSERT INTO customer (c_id, c_w_id) SELECT o_w_id, o_id FROM d", "INSERT"),
        ("WITH d AS (DELETE FROM orders RETURNING o_id) UPDATE customer SET c_balance = 0 WHERE c_id IN (SELECT o_id FROM d)", "joins or filters"),
        ("WITH d AS (DELETE FROM orders RETURNING o_id, o_w_id) SELECT * FROM d JOIN customer ON c_id = o_id", "joins or filters"),
        ("WITH d AS (DELETE FROM orders RETURNING *), e AS (SELECT * FROM d) SELECT * FROM d WHERE o_id IN (SELECT o_id FROM e)", "joins or filters"),
        ("WITH d AS (DELETE FROM orders RETURNING *) INSERT INTO customer (c_id, c_w_id) SELECT o_id, o_w_id + 0 FROM d", "INSERT"),
        ("WITH d AS (DELETE FROM orders WHERE o_w_id = 1 RETURNING *) DELETE FROM events WHERE e_tenant = 1", "different colocation groups"),
        ("WITH d AS (DELETE FROM orders WHERE o_w_id = 1 RETURNING *) INSERT INTO plain SELECT * FROM d", "not distributed"),
        ("WITH u AS (UPDATE orders SET o_w_id = 2 WHERE o_w_id = 1 RETURNING *) SELECT * FROM u", "distribution column"),
    ] {
        refused(sql, why);
    }
}

#[test]
fn reads_over_several_groups_offer_a_broadcast_per_group() {
    let sql = "SELECT o.o_id, e.note FROM orders o JOIN events e ON e.e_tenant = o.o_id JOIN plain p ON p.k = o.o_w_id WHERE o.o_w_id > 1";
    let Plan::Pull(pull) = plan_sql(sql, &Catalog) else { panic!("{sql}") };
    let groups: Vec<i32> = pull.broadcast.iter().map(|b| b.group).collect();
    assert_eq!(groups, [1, 2]);
    // Anchored on orders' group: events and the default node's table are answered first.
    let b = &pull.broadcast[0];
    assert_eq!(b.moved, [(Some(2), None, "events".to_owned()), (None, None, "plain".to_owned())]);
    let answers = ["(SELECT 1 AS e_tenant, 'n' AS note)".to_owned(), "(SELECT 2 AS k)".to_owned()];
    let rewritten = b.substitute.rewrite(&answers);
    assert_eq!(rewritten, "SELECT o.o_id, e.note FROM orders o JOIN (SELECT 1 AS e_tenant, 'n' AS note) e ON e.e_tenant = o.o_id JOIN (SELECT 2 AS k) p ON p.k = o.o_w_id WHERE o.o_w_id > 1");
    assert!(matches!(plan_sql(&rewritten, &Catalog), Plan::Shards(ref s) if s.multi.is_ok()), "{rewritten}");
    // Unaliased tables keep their name; one group without default-node tables offers none.
    let Plan::Pull(pull) = plan_sql("SELECT count(*) FROM orders JOIN events ON e_tenant = o_id", &Catalog) else { panic!() };
    assert_eq!(pull.broadcast[0].substitute.rewrite(&["(SELECT 1 AS e_tenant)".to_owned()]), "SELECT count(*) FROM orders JOIN (SELECT 1 AS e_tenant) AS \"events\" ON e_tenant = o_id");
    let Plan::Shards(sp) = plan_sql("SELECT row_number() OVER (), o_id FROM orders", &Catalog) else { panic!() };
    assert!(sp.pull.is_some_and(|p| p.broadcast.is_empty()));
}

#[test]
fn copies_and_broadcasts_move_only_rows_the_where_clause_keeps() {
    let sql = "SELECT * FROM orders o JOIN events e ON e.e_tenant = o.o_id WHERE o.o_carrier_id = 3 AND e.note LIKE 'a%' AND o.o_id < e.e_tenant";
    let Plan::Pull(pull) = plan_sql(sql, &Catalog) else { panic!("{sql}") };
    let rows: Vec<String> = pull.tables.iter().map(|t| t.rows.render(Some("s"))).collect();
    assert_eq!(rows, ["SELECT * FROM s.\"orders\" AS \"o\" WHERE (o.o_carrier_id = 3)", "SELECT * FROM s.\"events\" AS \"e\" WHERE (e.note LIKE 'a%')"]);
    let b = &pull.broadcast[0];
    assert_eq!(b.substitute.subqueries[0].query.render(Some("s")), "SELECT * FROM s.events AS \"e\" WHERE (e.note LIKE 'a%')");
    // A table named twice is copied whole (one copy serves both).
    let Plan::Pull(pull) = plan_sql("SELECT * FROM orders a JOIN orders b ON a.o_id = b.o_w_id WHERE a.o_id = 1", &Catalog) else { panic!() };
    assert_eq!(pull.tables[0].rows.render(None), "SELECT * FROM \"orders\"");
}

#[test]
fn correlated_exists_in_writes_become_membership_tests() {
    let subs = |sql: &str| match plan_sql(sql, &Catalog) {
        Plan::Substitute(p) => (p.sql.clone(), p.subqueries.iter().map(|s| s.query.render(Some("pg_temp"))).collect::<Vec<_>>()),
        other => panic!("{sql}: {other}"),
    };
    let (sql, answered) = subs("UPDATE orders SET o_carrier_id = 0 WHERE EXISTS (SELECT 1 FROM events e WHERE e.e_tenant = orders.o_id AND e.note = 'x') AND o_w_id > 0");
    assert_eq!(sql, "UPDATE orders SET o_carrier_id = 0 WHERE ((orders.o_id) IN (SELECT e.e_tenant FROM events e WHERE (e.note = 'x'))) AND o_w_id > 0");
    assert_eq!(answered, ["SELECT e.e_tenant FROM pg_temp.events e WHERE (e.note = 'x')"]);
    let (sql, _) = subs("DELETE FROM orders o WHERE NOT EXISTS (SELECT 1 FROM events e WHERE o.o_id = e.e_tenant AND e.note = o.o_d_id::text)");
    assert!(sql.starts_with("DELETE FROM orders o WHERE NOT EXISTS"), "a second correlation that is not an equality of columns is left alone: {sql}");
    let (sql, answered) = subs("DELETE FROM orders o WHERE NOT EXISTS (SELECT 1 FROM events e, plain p WHERE o.o_id = e.e_tenant AND o.o_w_id = p.k)");
    assert_eq!(sql, "DELETE FROM orders o WHERE (o.o_id IS NULL OR o.o_w_id IS NULL OR NOT ((o.o_id, o.o_w_id) IN (SELECT e.e_tenant, p.k FROM events e, plain p WHERE e.e_tenant IS NOT NULL AND p.k IS NOT NULL)))");
    assert_eq!(answered.len(), 1);
    // An unqualified name in a table whose columns are unknown could be the target's: left.
    let (sql, _) = subs("DELETE FROM orders WHERE EXISTS (SELECT 1 FROM plain WHERE plain.k = orders.o_id AND o_w_id = 3)");
    assert!(sql.contains("EXISTS"), "{sql}");
}

#[test]
fn windows_partitioned_by_the_distribution_column_run_per_shard() {
    let multi = |sql: &str| match plan_sql(sql, &Catalog) {
        Plan::Shards(sp) => sp.multi.map(|m| m.merge),
        other => panic!("{sql}: {other}"),
    };
    let concat = Ok(crate::merge::MergeStep::Concat);
    assert_eq!(multi("SELECT o_id, row_number() OVER (PARTITION BY o_w_id ORDER BY o_id) FROM orders"), concat);
    assert_eq!(multi("SELECT o.o_id, sum(c.c_balance) OVER w FROM orders o JOIN customer c ON c.c_w_id = o.o_w_id WINDOW w AS (PARTITION BY c.c_w_id, o.o_d_id)"), concat);
    assert_eq!(multi("SELECT o_id, rank() OVER (w ORDER BY o_id) FROM orders WINDOW w AS (PARTITION BY o_w_id)"), concat);
    assert!(matches!(multi("SELECT o_id, rank() OVER (PARTITION BY o_w_id ORDER BY o_id) FROM orders ORDER BY o_id LIMIT 3"), Ok(crate::merge::MergeStep::Sort { .. })));
    // Not partitioned by it, or over the whole result: over copies.
    for sql in [
        "SELECT o_id, row_number() OVER (PARTITION BY o_d_id) FROM orders",
        "SELECT o_id, row_number() OVER () FROM orders",
        "SELECT o_id, count(*) OVER (PARTITION BY o_w_id), row_number() OVER (ORDER BY o_id) FROM orders",
        "SELECT o_w_id, count(*), rank() OVER (PARTITION BY o_w_id) FROM orders GROUP BY o_w_id",
    ] {
        assert!(multi(sql).is_err(), "{sql}");
    }
}

#[test]
fn copies_carry_only_the_columns_the_statement_may_read() {
    let rows = |sql: &str| match plan_sql(sql, &Catalog) {
        Plan::Pull(p) => p.tables.iter().map(|t| t.rows.render(Some("s"))).collect::<Vec<_>>(),
        other => panic!("{sql}: {other}"),
    };
    assert_eq!(
        rows("SELECT o.o_id, e.note FROM orders o JOIN events e ON e.e_tenant = o.o_id WHERE o.o_carrier_id = 3")[0],
        "SELECT \"o_id\", \"o_carrier_id\" FROM s.\"orders\" AS \"o\" WHERE (o.o_carrier_id = 3)"
    );
    // Unqualified names count for every table that has them; a table read whole keeps all.
    assert_eq!(rows("SELECT count(*) FROM orders o JOIN events e ON e_tenant = o_d_id")[0], "SELECT \"o_d_id\" FROM s.\"orders\"");
    assert_eq!(rows("SELECT o.*, e.note FROM orders o JOIN events e ON e.e_tenant = o.o_id")[0], "SELECT * FROM s.\"orders\"");
    assert_eq!(rows("SELECT row_to_json(o) FROM orders o JOIN events e ON e.e_tenant = o.o_id")[0], "SELECT * FROM s.\"orders\"");
    assert_eq!(rows("SELECT 1 FROM orders JOIN events USING (o_id)")[0], "SELECT \"o_id\" FROM s.\"orders\"");
    assert_eq!(rows("SELECT count(*) FROM orders, events WHERE events.x = 1")[0], "SELECT \"o_id\" FROM s.\"orders\"");
}
