use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::*;

/// orders and customer are distributed (group 1, on their warehouse column), item is a
/// reference table, anything else is unknown to the catalog.
struct Catalog;

impl Relations for Catalog {
    fn kind_of(&self, schema: Option<&str>, name: &str) -> Option<RelationKind> {
        if schema.is_some_and(|s| s != "public") {
            return None;
        }
        match name {
            "orders" => Some(RelationKind::Distributed { column: "o_w_id".into(), group: 1 }),
            "customer" => Some(RelationKind::Distributed { column: "c_w_id".into(), group: 1 }),
            "item" => Some(RelationKind::Reference),
            _ => None,
        }
    }
}

fn placed(sql: &str) -> String {
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
    assert_eq!(stmts.len(), 1, "{sql}");
    place(&stmts[0], &Catalog).to_string()
}

#[test]
fn tables_outside_the_catalog_go_to_the_default_node() {
    assert_eq!(placed("SELECT * FROM accounts WHERE id = 1"), "default node");
    assert_eq!(placed("SELECT 1"), "default node");
    assert_eq!(placed("SELECT * FROM generate_series(1, 3)"), "default node");
    assert_eq!(placed("CREATE TABLE t (a int)"), "default node");
    assert_eq!(placed("SELECT * FROM pg_catalog.pg_class"), "default node");
}

#[test]
fn reference_tables_read_on_the_default_node_and_write_everywhere() {
    assert_eq!(placed("SELECT i_price FROM item WHERE i_id = 7"), "reference read on the default node");
    assert_eq!(placed("SELECT * FROM item JOIN accounts ON true"), "reference read on the default node");
    assert_eq!(placed("UPDATE item SET i_price = 1 WHERE i_id = 7"), "reference write on every node");
    assert_eq!(placed("INSERT INTO item (i_id) VALUES (1)"), "reference write on every node");
    assert_eq!(placed("DELETE FROM item"), "reference write on every node");
}

#[test]
fn equality_and_in_on_the_distribution_column_pin_the_shards() {
    assert_eq!(placed("SELECT * FROM orders WHERE o_w_id = 3"), "group 1 shards of keys ['3']");
    assert_eq!(placed("SELECT * FROM orders WHERE 3 = o_w_id AND o_id > 5"), "group 1 shards of keys ['3']");
    assert_eq!(placed("SELECT * FROM orders WHERE o_id > 5 AND (o_w_id = $2)"), "group 1 shards of keys [$2]");
    assert_eq!(placed("SELECT * FROM orders o WHERE o.o_w_id IN (1, '2', -3)"), "group 1 shards of keys ['1', '2', '-3']");
    assert_eq!(placed("SELECT * FROM orders WHERE orders.o_w_id = '7'::int"), "group 1 shards of keys ['7']");
    assert_eq!(placed("SELECT * FROM orders WHERE O_W_ID = 1"), "group 1 shards of keys ['1']");
    assert_eq!(placed("UPDATE orders SET o_carrier_id = 1 WHERE o_w_id = $1 AND o_id = $2"), "group 1 shards of keys [$1]");
    assert_eq!(placed("DELETE FROM orders WHERE o_w_id = 4"), "group 1 shards of keys ['4']");
    assert_eq!(placed("SELECT o_id FROM orders JOIN item ON true WHERE o_w_id = 1"), "group 1 shards of keys ['1']");
}

#[test]
fn anything_else_reaches_every_shard() {
    assert_eq!(placed("SELECT count(*) FROM orders"), "group 1 all shards");
    assert_eq!(placed("SELECT * FROM orders WHERE o_w_id = 1 OR o_id = 2"), "group 1 all shards");
    assert_eq!(placed("SELECT * FROM orders WHERE o_w_id > 1"), "group 1 all shards");
    assert_eq!(placed("SELECT * FROM orders WHERE o_w_id NOT IN (1)"), "group 1 all shards");
    assert_eq!(placed("SELECT * FROM orders WHERE o_w_id = o_id"), "group 1 all shards");
    assert_eq!(placed("SELECT * FROM orders o WHERE orders.o_w_id = 1"), "group 1 all shards");
    assert_eq!(placed("DELETE FROM orders WHERE o_id = 1"), "group 1 all shards");
}

#[test]
fn insert_values_pin_each_row() {
    assert_eq!(
        placed("INSERT INTO orders (o_id, o_w_id) VALUES (1, 10), (2, $1), (3, '12')"),
        "group 1 shards of keys ['10', $1, '12']"
    );
}

#[test]
fn what_is_not_supported_yet_says_so() {
    let refused = [
        ("INSERT INTO orders VALUES (1, 2)", "without a column list"),
        ("INSERT INTO orders (o_id) VALUES (1)", "without a value for its distribution column"),
        ("INSERT INTO orders (o_id, o_w_id) VALUES (1, random())", "not a constant or a parameter"),
        ("INSERT INTO orders (o_id, o_w_id) SELECT 1, 2", "INSERT ... SELECT"),
        ("UPDATE orders SET o_w_id = 2 WHERE o_w_id = 1", "updating the distribution column"),
        ("SELECT * FROM orders JOIN customer ON o_w_id = c_w_id", "more than one distributed table"),
        ("SELECT * FROM orders a JOIN orders b ON a.o_id = b.o_id", "more than one distributed table"),
        ("SELECT * FROM orders JOIN accounts ON true", "not distributed"),
        ("INSERT INTO item (i_id) SELECT o_id FROM orders", "writes a reference table"),
    ];
    for (sql, why) in refused {
        let got = placed(sql);
        assert!(got.starts_with("unsupported: ") && got.contains(why), "{sql}: {got}");
    }
}

#[test]
fn cte_names_are_not_catalog_tables() {
    assert_eq!(placed("WITH orders AS (SELECT 1 AS o_w_id) SELECT * FROM orders"), "default node");
    assert_eq!(
        placed("WITH x AS (SELECT o_id FROM orders WHERE o_w_id = 2) SELECT * FROM x"),
        "unsupported: a statement mixing the distributed table \"orders\" with \"x\", which is not distributed"
    );
}
