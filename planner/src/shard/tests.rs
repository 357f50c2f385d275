//! Shard plans as EXPLAIN text: every merge step, final-query names and types, INSERT splitting.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use super::*;
use crate::aggregate::FinalQuery;
use crate::merge::{Limit, SortKey};
use crate::plan::{Plan, plan_sql};
use crate::testing::Catalog;

fn planned(sql: &str) -> String {
    plan_sql(sql, &Catalog).to_string()
}

fn shard_plan(sql: &str) -> ShardPlan {
    match plan_sql(sql, &Catalog) {
        Plan::Shards(p) => p,
        other => panic!("{sql}: {other}"),
    }
}

fn final_query(sql: &str) -> FinalQuery {
    match shard_plan(sql).multi {
        Ok(MultiShard { merge: MergeStep::Final(f), .. }) => f,
        other => panic!("{sql}: {other:?}"),
    }
}

#[track_caller]
fn multi_refused(sql: &str, why: &str) {
    let p = shard_plan(sql);
    let err = p.multi.expect_err(sql);
    assert!(err.contains(why), "{sql}\n  got: {err}\n  want: {why}");
}

#[test]
fn a_pinned_select_runs_as_written_with_qualified_names() {
    assert_eq!(
        planned("SELECT o.o_id, c.c_name FROM orders o JOIN customer c ON o.o_w_id = c.c_w_id AND o.o_c_id = c.c_id WHERE o.o_w_id IN (1, $2) AND c.c_name <> 'it''s $1'"),
        "select on group 1 keys ['1', $2]
  single: SELECT o.o_id, c.c_name FROM pgshard_g1_sN.orders o JOIN pgshard_g1_sN.customer c ON o.o_w_id = c.c_w_id AND o.o_c_id = c.c_id WHERE o.o_w_id IN (1, $2) AND c.c_name <> 'it''s $1'
  multi: concat
    fragment: SELECT o.o_id, c.c_name FROM pgshard_g1_sN.orders o JOIN pgshard_g1_sN.customer c ON o.o_w_id = c.c_w_id AND o.o_c_id = c.c_id WHERE o.o_w_id IN (1, $2) AND c.c_name <> 'it''s $1'"
    );
    assert_eq!(
        shard_plan("SELECT * FROM orders WHERE o_w_id = '7'::int").targets,
        Targets::Keys(vec![DistKey::Literal("7".into())])
    );
    assert_eq!(shard_plan("SELECT * FROM orders WHERE o_id = 7").targets, Targets::All);
}

#[test]
fn order_by_and_limit_merge_sorted_streams_with_junk_keys() {
    assert_eq!(
        planned("SELECT o_id AS id, o_note FROM orders WHERE o_note <> 'a''b' ORDER BY o_entry_d DESC, id, 2 NULLS FIRST LIMIT 10 OFFSET 5 FOR UPDATE"),
        "select on group 1 all shards
  single: SELECT o_id AS id, o_note FROM pgshard_g1_sN.orders WHERE o_note <> 'a''b' ORDER BY o_entry_d DESC, id, 2 NULLS FIRST LIMIT 10 OFFSET 5 FOR UPDATE
  multi: sort [junk 1 desc nulls first, junk 2 asc nulls last, junk 3 asc nulls first] limit 10 offset 5 junk 3
    fragment: SELECT o_id AS id, o_note, o_entry_d AS pgshard_sort_1, o_id AS pgshard_sort_2, o_note AS pgshard_sort_3 FROM pgshard_g1_sN.orders WHERE o_note <> 'a''b' ORDER BY o_entry_d DESC, id, 2 NULLS FIRST LIMIT 15 FOR UPDATE"
    );
    let p = shard_plan("SELECT o_id FROM orders ORDER BY o_id LIMIT $1 OFFSET $2");
    let m = p.multi.unwrap();
    assert_eq!(
        m.merge,
        MergeStep::Sort {
            keys: vec![SortKey { junk_index: 0, descending: false, nulls_first: false }],
            limit: Some(Limit::Param(1)),
            offset: Limit::Param(2),
            junk: 1
        }
    );
    assert_eq!(
        m.fragment.render(Some("s3")),
        "SELECT o_id, o_id AS pgshard_sort_1 FROM s3.orders ORDER BY o_id LIMIT ($1::bigint + $2::bigint)"
    );
    assert_eq!(
        shard_plan("SELECT o_id FROM orders LIMIT ALL OFFSET 3;").multi.unwrap().explain("s"),
        "sort [] limit all offset 3 junk 0\n    fragment: SELECT o_id FROM s.orders;"
    );
    assert_eq!(
        shard_plan("SELECT o_id FROM orders ORDER BY o_id FETCH FIRST 2 ROWS ONLY").multi.unwrap().explain("s"),
        "sort [junk 1 asc nulls last] limit 2 offset 0 junk 1\n    fragment: SELECT o_id, o_id AS pgshard_sort_1 FROM s.orders ORDER BY o_id LIMIT 2"
    );
    multi_refused("SELECT *, o_id AS x FROM orders ORDER BY x", "after *");
    multi_refused("SELECT o_id FROM orders ORDER BY o_id LIMIT o_id", "LIMIT or OFFSET o_id");
    multi_refused("SELECT o_id FROM orders ORDER BY o_id USING <", "USING");
}

#[test]
fn aggregates_combine_partials_in_a_final_query() {
    assert_eq!(
        planned("SELECT o_d_id, count(*), sum(o_ol_cnt) AS total, avg(o_ol_cnt), min(o_entry_d), max(o_note), bool_and(o_id > 0), every(o_id > 1) FROM orders WHERE o_note <> '$1' GROUP BY o_d_id"),
        "select on group 1 all shards
  single: SELECT o_d_id, count(*), sum(o_ol_cnt) AS total, avg(o_ol_cnt), min(o_entry_d), max(o_note), bool_and(o_id > 0), every(o_id > 1) FROM pgshard_g1_sN.orders WHERE o_note <> '$1' GROUP BY o_d_id
  multi: final
    fragment: SELECT o_d_id AS c1, count(*) AS c2, sum(o_ol_cnt) AS c3, sum(o_ol_cnt) AS c4, count(o_ol_cnt) AS c5, min(o_entry_d) AS c6, max(o_note) AS c7, bool_and(o_id > 0) AS c8, every(o_id > 1) AS c9 FROM pgshard_g1_sN.orders WHERE o_note <> '$1' GROUP BY 1
    final: SELECT c1 AS \"o_d_id\", sum(c2)::bigint AS \"count\", sum(c3)::{type c3} AS \"total\", (sum(c4) / NULLIF(sum(c5), 0)) AS \"avg\", min(c6) AS \"min\", max(c7) AS \"max\", bool_and(c8) AS \"bool_and\", bool_and(c9) AS \"every\" FROM {T} GROUP BY c1"
    );
    let f = final_query("SELECT sum(o_ol_cnt) FROM orders");
    assert_eq!(f.typed_columns(), [0]);
    assert_eq!(f.render("\"t 1\"", &|i| format!("type{i}")), "SELECT sum(c1)::type0 AS \"sum\" FROM \"t 1\"");
}

#[test]
fn having_order_by_and_limit_apply_after_combining() {
    assert_eq!(
        final_query("SELECT o_d_id, count(*) AS n FROM orders GROUP BY o_d_id HAVING count(*) > 10 AND max(o_id) < 5 ORDER BY n DESC, sum(o_id), o_d_id LIMIT 3 OFFSET 1").to_string(),
        "SELECT c1 AS \"o_d_id\", sum(c2)::bigint AS \"n\" FROM {T} GROUP BY c1 HAVING sum(c2)::bigint > 10 AND max(c3) < 5 ORDER BY n DESC, sum(c4)::{type c4}, o_d_id LIMIT 3 OFFSET 1"
    );
    assert_eq!(
        shard_plan("SELECT count(*) FROM orders HAVING count(*) > 10").multi.unwrap().explain("s"),
        "final\n    fragment: SELECT count(*) AS c1 FROM s.orders\n    final: SELECT sum(c1)::bigint AS \"count\" FROM {T} HAVING sum(c1)::bigint > 10"
    );
}

#[test]
fn final_columns_carry_postgresql_names() {
    assert_eq!(
        final_query("SELECT o_w_id AS \"W\", orders.o_d_id, count(*)::int, 'a'::text, o_d_id::text, CASE WHEN count(*) > 1 THEN 1 END, count(*) + 1, 1 FROM orders GROUP BY 1, o_d_id").to_string(),
        "SELECT c1 AS \"W\", c2 AS \"o_d_id\", sum(c3)::bigint::int AS \"count\", 'a'::text AS \"text\", c2::text AS \"o_d_id\", CASE WHEN sum(c3)::bigint > 1 THEN 1 END AS \"case\", sum(c3)::bigint + 1 AS \"?column?\", 1 AS \"?column?\" FROM {T} GROUP BY c1, c2"
    );
}

#[test]
fn distinct_aggregates_and_ordered_aggregates_use_raw_rows() {
    assert_eq!(
        shard_plan("SELECT o_w_id, count(DISTINCT o_c_id), max(o_id) FROM orders GROUP BY o_w_id")
            .multi
            .unwrap()
            .explain("s"),
        "final
    fragment: SELECT DISTINCT o_w_id AS c1, o_c_id AS c2, o_id AS c3 FROM s.orders
    final: SELECT c1 AS \"o_w_id\", count(DISTINCT c2) AS \"count\", max(c3) AS \"max\" FROM {T} GROUP BY c1"
    );
    assert_eq!(
        shard_plan("SELECT count(*), string_agg(o_note, ', ' ORDER BY o_id DESC) FILTER (WHERE o_id > 1), array_agg(DISTINCT o_id ORDER BY o_id) FROM orders").multi.unwrap().explain("s"),
        "final
    fragment: SELECT o_note AS c1, ', ' AS c2, o_id AS c3, o_id > 1 AS c4 FROM s.orders
    final: SELECT count(*) AS \"count\", string_agg(c1, c2 ORDER BY c3 DESC) FILTER (WHERE c4) AS \"string_agg\", array_agg(DISTINCT c3 ORDER BY c3) AS \"array_agg\" FROM {T}"
    );
    assert_eq!(
        shard_plan("SELECT o_d_id, sum(o_id) FILTER (WHERE o_id > 3), avg(o_id) FILTER (WHERE o_note = 'x') FROM orders GROUP BY o_d_id").multi.unwrap().explain("s"),
        "final
    fragment: SELECT o_d_id AS c1, sum(o_id) FILTER (WHERE o_id > 3) AS c2, sum(o_id) FILTER (WHERE o_note = 'x') AS c3, count(o_id) FILTER (WHERE o_note = 'x') AS c4 FROM s.orders GROUP BY 1
    final: SELECT c1 AS \"o_d_id\", sum(c2)::{type c2} AS \"sum\", (sum(c3) / NULLIF(sum(c4), 0)) AS \"avg\" FROM {T} GROUP BY c1"
    );
}

#[test]
fn select_distinct_deduplicates_again_after_combining() {
    assert_eq!(
        shard_plan("SELECT DISTINCT o_d_id, o_carrier_id AS c FROM orders ORDER BY c, o_d_id LIMIT 4")
            .multi
            .unwrap()
            .explain("s"),
        "final
    fragment: SELECT DISTINCT o_d_id AS c1, o_carrier_id AS c2 FROM s.orders
    final: SELECT DISTINCT c1 AS \"o_d_id\", c2 AS \"c\" FROM {T} ORDER BY c, o_d_id LIMIT 4"
    );
}

#[test]
fn what_the_final_query_cannot_compute_is_refused() {
    multi_refused("SELECT o_d_id, o_id, count(*) FROM orders GROUP BY o_d_id", "the column \"o_id\" outside GROUP BY");
    multi_refused("SELECT o_d_id, count(*) FROM orders GROUP BY o_d_id HAVING count(*) > $1", "a parameter");
    multi_refused("SELECT o_d_id, count(*) FROM orders GROUP BY o_d_id LIMIT $1", "a parameter");
    multi_refused("SELECT *, count(*) FROM orders", "SELECT *");
    multi_refused("SELECT o_d_id, rank() OVER (ORDER BY o_id) FROM orders", "window functions");
    multi_refused(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY o_id) FROM orders",
        "ordered-set aggregate percentile_cont",
    );
    multi_refused("SELECT count(*) FROM orders GROUP BY ROLLUP (o_d_id)", "ROLLUP");
    multi_refused("SELECT DISTINCT ON (o_d_id) o_id FROM orders", "DISTINCT ON");
    multi_refused("SELECT count(*), (SELECT max(i_id) FROM item) FROM orders", "a subquery in the select list");
    multi_refused("SELECT o_id FROM orders UNION SELECT c_id FROM customer", "UNION, INTERSECT or EXCEPT without ALL");
    assert!(shard_plan("SELECT o_id FROM orders UNION ALL SELECT c_id FROM customer").multi.is_ok());
}

#[test]
fn insert_rows_are_split_by_shard() {
    let sql = "INSERT INTO orders (o_id, o_w_id, o_note) VALUES (1, 10, 'a''b'), (2, $1, '$1 é'), (3, '12', 'c') ON CONFLICT (o_w_id, o_id) DO UPDATE SET o_note = EXCLUDED.o_note RETURNING o_id";
    let p = shard_plan(sql);
    assert_eq!(
        p.targets,
        Targets::Keys(vec![DistKey::Literal("10".into()), DistKey::Param(1), DistKey::Literal("12".into())])
    );
    let split = p.insert.unwrap();
    assert!(split.column_list);
    assert_eq!(split.dist_index, 1);
    assert_eq!(
        split.render(&[0, 2], "pgshard_g1_s4"),
        "INSERT INTO pgshard_g1_s4.orders (o_id, o_w_id, o_note) VALUES (1, 10, 'a''b'), (3, '12', 'c') ON CONFLICT (o_w_id, o_id) DO UPDATE SET o_note = EXCLUDED.o_note RETURNING o_id"
    );
    assert_eq!(
        split.render(&[1, 9], "s"),
        "INSERT INTO s.orders (o_id, o_w_id, o_note) VALUES (2, $1, '$1 é') ON CONFLICT (o_w_id, o_id) DO UPDATE SET o_note = EXCLUDED.o_note RETURNING o_id"
    );
    assert_eq!(p.single.render(Some("s")), sql.replacen("orders", "s.orders", 1));
}

#[test]
fn insert_without_a_column_list_uses_the_catalog_column_order() {
    assert_eq!(
        planned("INSERT INTO public.customer VALUES (1, 2, 7, 'x''y'),\n  (2, 2, -8, 'é')"),
        "insert on group 1 keys ['7', '-8']
  single: INSERT INTO pgshard_g1_sN.customer VALUES (1, 2, 7, 'x''y'),\n  (2, 2, -8, 'é')
  multi: concat, each shard its own rows
  insert: split by value 3 of each row (catalog column order)
    row 1 key '7': (1, 2, 7, 'x''y')
    row 2 key '-8': (2, 2, -8, 'é')"
    );
    let split = shard_plan("INSERT INTO customer AS c VALUES (1, 2, 7), (2, 2, 8) RETURNING c.c_id").insert.unwrap();
    assert_eq!(split.render(&[1], "s"), "INSERT INTO s.customer AS c VALUES (2, 2, 8) RETURNING c.c_id");
}

#[test]
fn inserts_that_cannot_be_routed_are_refused() {
    let refused = [
        ("INSERT INTO stock VALUES (1, 2)", "whose column order the planner does not know"),
        ("INSERT INTO orders DEFAULT VALUES", "INSERT without VALUES"),
        (
            "INSERT INTO orders (o_id, o_w_id) VALUES (1, 2) ON CONFLICT (o_w_id, o_id) DO UPDATE SET o_w_id = 5",
            "changes the distribution column",
        ),
    ];
    for (sql, why) in refused {
        let got = planned(sql);
        assert!(got.starts_with("unsupported: ") && got.contains(why), "{sql}: {got}");
    }
    assert!(planned("INSERT INTO orders (o_id, o_w_id) VALUES (1, 2) ON CONFLICT (o_w_id, o_id) DO UPDATE SET o_w_id = EXCLUDED.o_w_id").starts_with("insert"));
}

#[test]
fn updates_keep_rows_in_their_shard() {
    assert_eq!(
        planned("UPDATE orders SET o_w_id = $2, o_carrier_id = 1 WHERE o_w_id = $2 AND o_id = $1 RETURNING *"),
        "update on group 1 keys [$2]
  single: UPDATE pgshard_g1_sN.orders SET o_w_id = $2, o_carrier_id = 1 WHERE o_w_id = $2 AND o_id = $1 RETURNING *
  multi: concat
    fragment: UPDATE pgshard_g1_sN.orders SET o_w_id = $2, o_carrier_id = 1 WHERE o_w_id = $2 AND o_id = $1 RETURNING *"
    );
    assert_eq!(
        planned("DELETE FROM orders o USING customer c WHERE o.o_w_id = c.c_w_id AND c.c_name = 'x'"),
        "delete on group 1 all shards
  single: DELETE FROM pgshard_g1_sN.orders o USING pgshard_g1_sN.customer c WHERE o.o_w_id = c.c_w_id AND c.c_name = 'x'
  multi: concat
    fragment: DELETE FROM pgshard_g1_sN.orders o USING pgshard_g1_sN.customer c WHERE o.o_w_id = c.c_w_id AND c.c_name = 'x'"
    );
    for sql in [
        "UPDATE orders SET o_w_id = 4 WHERE o_w_id = 3",
        "UPDATE orders SET o_w_id = 4 WHERE o_w_id IN (4, 5)",
        "UPDATE orders SET (o_w_id, o_id) = (1, 2) WHERE o_w_id = 1",
    ] {
        let got = planned(sql);
        assert!(got.starts_with("unsupported: updating the distribution column \"o_w_id\""), "{sql}: {got}");
    }
}

#[test]
fn uncolocated_tables_tied_to_constants_run_on_one_shard_only() {
    let p = shard_plan(
        "UPDATE stock SET s_quantity = 1 FROM order_line WHERE s_w_id = $1 AND ol_w_id = $2 AND s_i_id = ol_i_id",
    );
    assert_eq!(p.targets, Targets::Keys(vec![DistKey::Param(1), DistKey::Param(2)]));
    assert!(p.multi.unwrap_err().ends_with("unless all its distribution values hash to one shard"));
}

#[test]
fn union_all_concatenates_only_plain_branches() {
    multi_refused(
        "SELECT count(*) FROM orders WHERE o_w_id = 1 UNION ALL SELECT count(*) FROM customer WHERE c_w_id = 2",
        "a UNION ALL branch that aggregates",
    );
    multi_refused("SELECT DISTINCT o_id FROM orders UNION ALL SELECT c_id FROM customer", "a UNION ALL branch");
}
