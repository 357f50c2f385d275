//! Simple-query scenarios: single and multi-statement Query messages, errors, notices,
//! ParameterStatus, transaction status, enum OIDs, LISTEN/NOTIFY, large results, many Query
//! messages in one write, and FunctionCall.

use super::wire::Wire;
use super::{Scenario, Until, q, scenario};

pub(super) fn simple_scenarios() -> Vec<Scenario> {
    vec![
        scenario(
            "simple query with rows",
            vec![q(
                "select g as n, 'row ' || g as label, null::int as nothing, g * 1.5 as num from generate_series(1, 3) g",
            )],
            "TDDDCZ",
            "I",
            &[],
        ),
        scenario(
            "several statements in one Query",
            vec![q("select 1; select 'a'; create temp table multi (id int, v text); \
                 insert into multi values (1, 'x'), (2, 'y') returning id * 10 as id10, upper(v) as up")],
            "TDCTDCCTDDCZ",
            "I",
            &[],
        ),
        scenario(
            "an error ends a multi-statement Query",
            vec![q("select 1; select 1/0; select 2")],
            "TDCEZ",
            "I",
            &["22012"],
        ),
        scenario("empty queries", vec![q(""), q(";"), q(" ; ; "), q("select 1;;")], "IZIZIZTDCZ", "IIII", &[]),
        scenario(
            "notices in order before CommandComplete",
            vec![
                q("DO $$ BEGIN RAISE NOTICE 'one'; RAISE NOTICE 'two' USING DETAIL = 'd', HINT = 'h'; END $$"),
                q("drop table if exists no_such_table"),
            ],
            "NNCZNCZ",
            "II",
            &[],
        ),
        scenario(
            "ParameterStatus after SET",
            vec![
                q("SET application_name = 'x'"),
                q("SET DateStyle = 'German'"),
                q("select '2024-02-03'::date, '2024-02-03 04:05:06'::timestamp"),
                q("SET TimeZone = 'Asia/Kolkata'"),
                q("select '2024-01-02 03:04:05+00'::timestamptz"),
                q("SET extra_float_digits = 0"),
                q("RESET ALL"),
            ],
            "CSZCSZTDCZCSZTDCZCZCSSSZ",
            "IIIIIII",
            &[],
        ),
        scenario(
            "transaction status I, T, E, I",
            vec![
                q("select 1"),
                q("BEGIN"),
                q("select 2"),
                q("select 1/0"),
                q("select 3"),
                q("select 4"),
                q("ROLLBACK"),
                q("select 5"),
            ],
            "TDCZCZTDCZEZEZEZCZTDCZ",
            "ITTEEEII",
            &["22012", "25P02", "25P02"],
        ),
        scenario(
            "COMMIT of a failed transaction rolls back",
            vec![q("BEGIN; select 1/0"), q("COMMIT"), q("select 1")],
            "CEZCZTDCZ",
            "EII",
            &["22012"],
        ),
        scenario(
            "errors with detail, hint and position",
            vec![
                q("insert into people values (1, 'dup', 'ok')"),
                q("insert into people values (9, 'ann', 'ok')"),
                q("select 1/0"),
                q("selec 1"),
                q("select nosuchfunc(1)"),
                q("select nme from people"),
                q("select 'nope'::mood"),
                q("select 1"),
            ],
            "EZEZEZEZEZEZEZTDCZ",
            "IIIIIIII",
            &["23505", "23505", "22012", "42601", "42883", "42703", "22P02"],
        ),
        scenario(
            "user enum type OIDs in RowDescription",
            vec![
                q("select id, name, m, m::text as t from people order by id"),
                q("select m from people where m > 'sad' order by m"),
            ],
            "TDDDCZTDCZ",
            "II",
            &[],
        ),
        scenario(
            "LISTEN/NOTIFY on the same connection",
            vec![
                q("LISTEN chan_exact"),
                q("NOTIFY chan_exact, 'payload'"),
                q("select pg_notify('chan_exact', 'second')"),
                q("BEGIN; NOTIFY chan_exact, 'third'; NOTIFY chan_exact, 'fourth'; COMMIT"),
                q("UNLISTEN *"),
            ],
            "CZCAZTDCAZCCCCAAZCZ",
            "IIIII",
            &[],
        ),
        scenario(
            "large result and large query",
            vec![
                q("select g, repeat('x', g % 100) from generate_series(1, 20000) g"),
                q(&format!("select length('{}')", "y".repeat(1 << 20))),
            ],
            format!("T{}CZTDCZ", "D".repeat(20000)),
            "II",
            &[],
        ),
    ]
}

pub(super) fn pipeline_scenarios(int4pl: u32) -> Vec<Scenario> {
    let mut fifty = Wire::default();
    let mut expected = String::new();
    for i in 0..50 {
        if i == 25 {
            fifty = fifty.query("select 1/0");
            expected.push_str("EZ");
        } else {
            fifty = fifty.query(&format!("select {i}"));
            expected.push_str("TDCZ");
        }
    }
    vec![
        scenario(
            "fifty Query messages in one write",
            vec![(fifty, Until::Ready(50))],
            expected,
            "I".repeat(50),
            &["22012"],
        ),
        scenario(
            "FunctionCall",
            vec![
                (Wire::default().function_call(int4pl, &["2", "40"]), Until::Ready(1)),
                (Wire::default().function_call(int4pl, &["2147483647", "1"]), Until::Ready(1)),
            ],
            "VZEZ",
            "II",
            &["22003"],
        ),
    ]
}
