//! Qualifying distributed-table references in tricky text.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

use super::*;
use crate::refs::collect;
use crate::testing::Catalog;
use crate::text::Source;

/// The statement qualified for shard schema `s5`, and rendered without a schema.
fn qualify(sql: &str) -> (String, String) {
    let (src, tokens) = Source::tokenize(sql).unwrap();
    let stmts = Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(tokens).parse_statements().unwrap();
    assert_eq!(stmts.len(), 1, "{sql}");
    let refs = collect(&stmts[0], &src, &Catalog).unwrap();
    let t = Splicer::new(sql, refs.qualifiers()).whole();
    (t.render(Some("s5")), t.render(None))
}

fn shard(sql: &str) -> String {
    let (s, none) = qualify(sql);
    assert_eq!(none, sql, "rendering without a schema gives the text back");
    s
}

#[test]
fn names_are_qualified_in_place() {
    assert_eq!(shard("SELECT * FROM orders"), "SELECT * FROM s5.orders");
    assert_eq!(shard("SELECT * FROM public.orders o"), "SELECT * FROM s5.orders o");
    assert_eq!(shard("SELECT * FROM \"Orders\""), "SELECT * FROM s5.\"Orders\"");
    assert_eq!(shard("SELECT * FROM public . \"Orders\" AS x"), "SELECT * FROM s5.\"Orders\" AS x");
    assert_eq!(shard("SELECT orders.o_id FROM ORDERS"), "SELECT orders.o_id FROM s5.ORDERS");
    assert_eq!(shard("SELECT public.orders.o_id FROM public.orders"), "SELECT s5.orders.o_id FROM s5.orders");
}

#[test]
fn reference_unknown_and_other_schema_tables_stay() {
    assert_eq!(
        shard("SELECT * FROM orders JOIN item ON i_id = o_id JOIN other.orders x ON true, pg_class"),
        "SELECT * FROM s5.orders JOIN item ON i_id = o_id JOIN other.orders x ON true, pg_class"
    );
}

#[test]
fn literals_comments_and_multibyte_text_are_untouched() {
    assert_eq!(
        shard(
            "SELECT 'it''s orders', $$orders$$, E'\\'orders' /* orders */ FROM -- orders\n orders WHERE x = 'a''''b'"
        ),
        "SELECT 'it''s orders', $$orders$$, E'\\'orders' /* orders */ FROM -- orders\n s5.orders WHERE x = 'a''''b'"
    );
    assert_eq!(
        shard("SELECT 'é€ü' AS \"naïve\", '$1' FROM\n\n  \"Orders\" WHERE c = 'ß'"),
        "SELECT 'é€ü' AS \"naïve\", '$1' FROM\n\n  s5.\"Orders\" WHERE c = 'ß'"
    );
}

#[test]
fn references_at_any_depth_and_every_dml_target() {
    assert_eq!(
        shard(
            "SELECT (SELECT max(c_id) FROM customer c WHERE c.c_w_id = o.o_w_id) FROM orders o WHERE EXISTS (SELECT 1 FROM stock) AND o_id IN (SELECT 1 FROM order_line)"
        ),
        "SELECT (SELECT max(c_id) FROM s5.customer c WHERE c.c_w_id = o.o_w_id) FROM s5.orders o WHERE EXISTS (SELECT 1 FROM s5.stock) AND o_id IN (SELECT 1 FROM s5.order_line)"
    );
    assert_eq!(shard("INSERT INTO orders (o_id) VALUES (1)"), "INSERT INTO s5.orders (o_id) VALUES (1)");
    assert_eq!(
        shard("UPDATE orders o SET x = 1 FROM customer WHERE true"),
        "UPDATE s5.orders o SET x = 1 FROM s5.customer WHERE true"
    );
    assert_eq!(shard("DELETE FROM orders USING customer c"), "DELETE FROM s5.orders USING s5.customer c");
}

#[test]
fn cte_names_shadow_tables_only_where_postgresql_says() {
    assert_eq!(
        shard("WITH orders AS (SELECT * FROM orders) SELECT * FROM orders"),
        "WITH orders AS (SELECT * FROM s5.orders) SELECT * FROM orders"
    );
    assert_eq!(
        shard(
            "WITH a AS (SELECT * FROM customer), customer AS (SELECT * FROM a) SELECT * FROM customer, (SELECT 1 FROM customer) x"
        ),
        "WITH a AS (SELECT * FROM s5.customer), customer AS (SELECT * FROM a) SELECT * FROM customer, (SELECT 1 FROM customer) x"
    );
    assert_eq!(
        shard("SELECT * FROM orders, (WITH orders AS (SELECT 1) SELECT * FROM orders) x"),
        "SELECT * FROM s5.orders, (WITH orders AS (SELECT 1) SELECT * FROM orders) x"
    );
    assert_eq!(
        shard("WITH RECURSIVE orders AS (SELECT 1 UNION ALL SELECT * FROM orders) SELECT * FROM orders"),
        "WITH RECURSIVE orders AS (SELECT 1 UNION ALL SELECT * FROM orders) SELECT * FROM orders"
    );
}

#[test]
fn table_functions_are_not_relations() {
    assert_eq!(
        shard("SELECT * FROM orders, generate_series(1, 3) orders_g"),
        "SELECT * FROM s5.orders, generate_series(1, 3) orders_g"
    );
}

#[test]
fn quoted_identifier_spans_cover_the_quotes() {
    let sql = "SELECT 1 FROM \"Orders\"";
    let (src, _) = Source::tokenize(sql).unwrap();
    let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
    let refs = collect(&stmts[0], &src, &Catalog).unwrap();
    assert_eq!(refs.tables[0].qualifier, 14..14);
    assert_eq!(&sql[14..], "\"Orders\"");
}

#[test]
fn builder_pieces_render_in_order() {
    let sp = Splicer::new("SELECT a FROM t", std::iter::once(14..14).collect());
    let mut b = sp.builder();
    b.copy(0..8);
    b.push(", b");
    b.copy(8..15);
    let t = b.build();
    assert_eq!(t.render(Some("x")), "SELECT a, b FROM x.t");
    assert_eq!(t.render(None), "SELECT a, b FROM t");
    assert!(t.has_qualifiers());
    assert_eq!(t.to_string(), "SELECT a, b FROM <shard>.t");
}
