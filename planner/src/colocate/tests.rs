//! The colocation proof on joins, subqueries, CTEs and DML: what is accepted, what pins, what is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::*;
use crate::testing::Catalog;

/// "pins [..]", "all", or the refusal.
fn proved(sql: &str) -> String {
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
    match prove(&stmts[0], &Catalog) {
        Ok(Proof { pins: Some(keys), single_only }) => {
            let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
            let only = if single_only.is_some() { " on one shard only" } else { "" };
            format!("pins [{}]{only}", keys.join(", "))
        }
        Ok(Proof { pins: None, .. }) => "all".into(),
        Err(e) => e,
    }
}

#[track_caller]
fn refused(sql: &str, why: &str) {
    let got = proved(sql);
    assert_eq!(got, why, "{sql}");
}

#[test]
fn joins_on_distribution_columns_are_colocated() {
    assert_eq!(proved("SELECT * FROM orders o JOIN customer c ON o.o_w_id = c.c_w_id AND o.o_c_id = c.c_id"), "all");
    assert_eq!(proved("SELECT * FROM orders, customer WHERE o_w_id = c_w_id AND o_w_id = 3"), "pins ['3']");
    assert_eq!(
        proved("SELECT * FROM orders o JOIN customer c ON o.o_w_id = c.c_w_id WHERE c.c_w_id IN (1, $2)"),
        "pins ['1', $2]"
    );
    assert_eq!(
        proved(
            "SELECT * FROM orders o JOIN customer c ON o.o_w_id = c.c_w_id JOIN stock s ON s.s_w_id = c.c_w_id JOIN item ON true"
        ),
        "all"
    );
    assert_eq!(proved("SELECT * FROM orders o, customer c WHERE o.o_w_id = 5 AND c.c_w_id = 5"), "pins ['5']");
    assert_eq!(proved("SELECT * FROM orders o LEFT JOIN customer c ON o.o_w_id = c.c_w_id AND c.c_id = 1"), "all");
    assert_eq!(proved("SELECT * FROM orders JOIN (SELECT c_w_id AS o_w_id FROM customer) c USING (o_w_id)"), "all");
    refused("SELECT * FROM orders JOIN (SELECT c_w_id AS o_w_id FROM customer) c USING (o_id)", JOIN);
}

#[test]
fn joins_off_the_distribution_column_are_refused() {
    refused("SELECT * FROM orders a JOIN orders b ON a.o_id = b.o_id", JOIN);
    refused("SELECT * FROM orders a JOIN orders b ON a.o_w_id = b.o_id", JOIN);
    refused("SELECT * FROM orders o, customer c WHERE o.o_w_id = c.c_w_id OR o.o_id = 1", JOIN);
    refused("SELECT * FROM orders o, customer c WHERE o.o_w_id IN (1, 2) AND c.c_w_id IN (1, 2)", JOIN);
    refused("SELECT * FROM orders o LEFT JOIN customer c ON c.c_w_id = 1 WHERE o.o_w_id = 1", JOIN);
    refused("SELECT * FROM orders o JOIN customer c ON o.o_w_id::text = c.c_w_id::text", JOIN);
}

#[test]
fn tables_tied_to_different_constants_run_only_where_both_land() {
    assert_eq!(
        proved("SELECT * FROM orders o, customer c WHERE o.o_w_id = 1 AND c.c_w_id = 2"),
        "pins ['1', '2'] on one shard only"
    );
    assert_eq!(
        proved(
            "SELECT count(DISTINCT s_i_id) FROM order_line, stock WHERE ol_w_id = $1 AND ol_d_id = $2 AND s_w_id = $5 AND s_i_id = ol_i_id"
        ),
        "pins [$1, $5] on one shard only"
    );
    assert_eq!(
        proved("SELECT * FROM orders o WHERE o_w_id = $1 AND o_id IN (SELECT c_id FROM customer WHERE c_w_id = $2)"),
        "pins [$1, $2] on one shard only"
    );
    refused("SELECT * FROM orders o, customer c WHERE o.o_w_id = 1 AND c.c_id = 2", JOIN);
}

#[test]
fn outer_joins_may_not_keep_unmatched_reference_rows() {
    refused("SELECT * FROM item LEFT JOIN orders ON o_id = i_id", OUTER);
    refused("SELECT * FROM orders RIGHT JOIN item ON o_id = i_id", OUTER);
    refused("SELECT * FROM orders FULL JOIN item ON o_id = i_id", OUTER);
    assert_eq!(proved("SELECT * FROM orders LEFT JOIN item ON o_id = i_id"), "all");
}

#[test]
fn subqueries_must_be_correlated_on_the_distribution_column() {
    assert_eq!(
        proved("SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM customer c WHERE c.c_w_id = o.o_w_id)"),
        "all"
    );
    assert_eq!(
        proved(
            "SELECT * FROM orders o WHERE NOT EXISTS (SELECT 1 FROM customer c WHERE c.c_w_id = o_w_id AND c.c_id = 1)"
        ),
        "all"
    );
    assert_eq!(proved("SELECT * FROM orders WHERE o_w_id IN (SELECT c_w_id FROM customer WHERE c_id = 1)"), "all");
    assert_eq!(
        proved("SELECT *, (SELECT max(c_id) FROM customer c WHERE c.c_w_id = o.o_w_id) FROM orders o WHERE o_w_id = 2"),
        "pins ['2']"
    );
    assert_eq!(proved("SELECT * FROM orders WHERE o_id IN (SELECT i_id FROM item)"), "all");
    assert_eq!(
        proved("SELECT * FROM orders WHERE o_w_id = 7 AND o_id > (SELECT avg(c_id) FROM customer WHERE c_w_id = 7)"),
        "pins ['7']"
    );
    refused("SELECT * FROM orders WHERE o_id IN (SELECT c_id FROM customer)", SUBLINK);
    refused("SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM customer c WHERE c.c_id = o.o_id)", SUBLINK);
    refused("SELECT * FROM orders WHERE o_id > (SELECT avg(c_id) FROM customer WHERE c_w_id = 7)", SUBLINK);
    refused("SELECT * FROM item WHERE EXISTS (SELECT 1 FROM orders WHERE o_id = i_id)", TOP);
    refused("WITH x AS (SELECT * FROM orders) SELECT 1", TOP);
}

#[test]
fn a_correlation_inside_a_subquery_does_not_join_outer_tables() {
    refused(
        "SELECT * FROM orders o, customer c WHERE NOT EXISTS (SELECT 1 FROM stock s WHERE s.s_w_id = o.o_w_id AND s.s_w_id = c.c_w_id)",
        JOIN,
    );
}

#[test]
fn derived_tables_and_ctes_carry_their_distribution_columns() {
    assert_eq!(
        proved(
            "SELECT * FROM (SELECT o_w_id AS w, o_id FROM orders) s JOIN customer c ON s.w = c.c_w_id WHERE s.w = 4"
        ),
        "pins ['4']"
    );
    assert_eq!(
        proved(
            "SELECT * FROM (SELECT o_w_id, count(*) FROM orders GROUP BY o_w_id) s JOIN customer c ON s.o_w_id = c.c_w_id"
        ),
        "all"
    );
    assert_eq!(
        proved("WITH x AS (SELECT o_w_id FROM orders) SELECT * FROM x JOIN customer ON x.o_w_id = c_w_id"),
        "all"
    );
    assert_eq!(proved("SELECT * FROM (SELECT * FROM orders) s(a, b, w) JOIN customer c ON s.w = c.c_w_id"), "all");
    refused("WITH x AS (SELECT o_w_id, o_id FROM orders) SELECT * FROM x a JOIN x b ON a.o_id = b.o_id", JOIN);
    refused("SELECT * FROM (SELECT o_w_id AS w FROM orders) s JOIN customer c ON s.w + 0 = c.c_w_id", JOIN);
    refused(
        "WITH RECURSIVE r AS (SELECT o_w_id FROM orders UNION ALL SELECT o_w_id FROM r) SELECT * FROM r",
        "a recursive WITH query over a distributed table",
    );
}

#[test]
fn aggregating_subqueries_must_stay_within_one_distribution_value() {
    assert_eq!(
        proved(
            "SELECT * FROM orders o JOIN (SELECT c_w_id, max(c_id) m FROM customer GROUP BY c_w_id) c ON c.c_w_id = o.o_w_id"
        ),
        "all"
    );
    assert_eq!(
        proved("SELECT * FROM orders o WHERE o_id = (SELECT max(c_id) FROM customer c WHERE c.c_w_id = o.o_w_id)"),
        "all"
    );
    assert_eq!(proved("SELECT * FROM (SELECT DISTINCT o_w_id FROM orders) s"), "all");
    refused("SELECT * FROM (SELECT count(*) FROM orders) s", SINGLE);
    refused("SELECT * FROM (SELECT o_id FROM orders ORDER BY o_id LIMIT 10) s", SINGLE);
    refused("SELECT * FROM (SELECT DISTINCT o_id FROM orders) s", SINGLE);
    refused("SELECT * FROM (SELECT o_id, row_number() OVER () FROM orders) s", SINGLE);
    refused("SELECT * FROM (SELECT o_d_id, count(*) FROM orders GROUP BY o_d_id) s", SINGLE);
}

#[test]
fn updates_and_deletes_pin_from_their_where_clause() {
    assert_eq!(proved("UPDATE orders SET o_carrier_id = 1 WHERE o_w_id = $1 AND o_id = $2"), "pins [$1]");
    assert_eq!(
        proved("UPDATE orders o SET o_carrier_id = c.c_id FROM customer c WHERE c.c_w_id = o.o_w_id AND c.c_w_id = 9"),
        "pins ['9']"
    );
    assert_eq!(proved("DELETE FROM orders USING customer WHERE o_w_id = c_w_id"), "all");
    refused("DELETE FROM orders USING customer WHERE o_id = c_id", JOIN);
    refused("UPDATE orders SET o_id = (SELECT max(c_id) FROM customer)", SINGLE);
    refused("UPDATE orders SET o_id = 1 WHERE o_id IN (SELECT c_id FROM customer)", SUBLINK);
}

#[test]
fn a_scalar_aggregate_confined_to_a_constant_targets_that_constant() {
    // Without GROUP BY the subquery yields a row on every shard: only its constant's shard may run.
    assert_eq!(proved("SELECT * FROM (SELECT count(*) FROM orders WHERE o_w_id = 1) s"), "pins ['1']");
    assert_eq!(
        proved("SELECT * FROM (SELECT o_w_id FROM orders) s JOIN customer c ON s.o_w_id = c.c_w_id WHERE c.c_w_id = 4"),
        "pins ['4']"
    );
    refused("SELECT * FROM (SELECT count(*) FROM orders WHERE o_w_id = 1 AND o_w_id = 2) s", SINGLE);
    refused("SELECT * FROM (SELECT count(*) FROM orders WHERE o_w_id = 1) s UNION ALL SELECT 1 FROM customer", SINGLE);
}
