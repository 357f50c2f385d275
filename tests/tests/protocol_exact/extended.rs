//! Extended-protocol scenarios: Parse/Bind/Describe/Execute/Close with text and binary formats,
//! row limits and portals, errors in a pipeline, Flush without Sync, and enum OIDs.

use super::wire::Wire;
use super::{Scenario, Until, q, scenario, v};

pub(super) fn extended_scenarios() -> Vec<Scenario> {
    let w = Wire::default;
    let int4 = 42i32.to_be_bytes();
    let int8 = (-7_000_000_000i64).to_be_bytes();
    let float8 = 1.25f64.to_be_bytes();
    vec![
        scenario(
            "unnamed statement, text formats",
            vec![(
                w().parse("", "select $1::int + 1 as n, $2::text as t", &[])
                    .bind("", "", &[], &[v(b"41"), v(b"x")], &[])
                    .describe(b'P', "")
                    .execute("", 0)
                    .sync(),
                Until::Ready(1),
            )],
            "12TDCZ",
            "I",
            &[],
        ),
        scenario(
            "named statement, binary formats, Describe statement and portal",
            vec![
                (w().parse("s1", "select $1::int4 as a, $2::int8 as b, $3::float8 as c, $4::bool as d, $5::bytea as e, $6::text as f", &[23, 20, 701, 16, 17, 25])
                    .describe(b'S', "s1")
                    .sync(), Until::Ready(1)),
                (w().bind("p1", "s1", &[1], &[v(&int4), v(&int8), v(&float8), v(&[1]), v(&[0, 255, 10]), v("é".as_bytes())], &[1])
                    .describe(b'P', "p1")
                    .execute("p1", 0)
                    .bind("", "s1", &[1, 1, 1, 1, 1, 0], &[None, None, v(&float8), v(&[0]), None, v(b"t")], &[0, 1, 0, 1, 0, 1])
                    .describe(b'P', "")
                    .execute("", 0)
                    .close(b'S', "s1")
                    .sync(), Until::Ready(1)),
                (w().describe(b'S', "s1").sync(), Until::Ready(1)),
            ],
            "1tTZ2TDC2TDC3ZEZ",
            "III",
            &["26000"],
        ),
        scenario(
            "row limit, PortalSuspended, continuing and closing portals",
            vec![
                (w().parse("lim", "select g from generate_series(1, 5) g", &[])
                    .bind("c1", "lim", &[], &[], &[1])
                    .execute("c1", 2)
                    .execute("c1", 2)
                    .execute("c1", 2)
                    .execute("c1", 2)
                    .bind("c2", "lim", &[], &[], &[])
                    .execute("c2", 1)
                    .close(b'P', "c2")
                    .execute("c2", 1)
                    .sync(), Until::Ready(1)),
                q("BEGIN"),
                (w().bind("c3", "lim", &[], &[], &[]).execute("c3", 3).sync(), Until::Ready(1)),
                (w().execute("c3", 0).sync(), Until::Ready(1)),
                q("COMMIT"),
                (w().execute("c3", 0).sync(), Until::Ready(1)),
                (w().close(b'S', "lim").close(b'S', "never_made").close(b'P', "c9").sync(), Until::Ready(1)),
            ],
            "12DDsDDsDCC2Ds3EZCZ2DDDsZDDCZCZEZ333Z",
            "ITTTIII",
            &["34000", "34000"],
        ),
        scenario(
            "error in a pipeline skips to Sync",
            vec![
                (w().parse("", "select 1/0", &[]).bind("", "", &[], &[], &[]).execute("", 0)
                    .parse("", "select 2", &[]).bind("", "", &[], &[], &[]).execute("", 0).sync()
                    .parse("", "select 3", &[]).bind("", "", &[], &[], &[]).execute("", 0).sync(), Until::Ready(2)),
                (w().parse("bad", "selec 1", &[]).bind("", "bad", &[], &[], &[]).execute("", 0).sync(), Until::Ready(1)),
                (w().parse("", "select 1; select 2", &[]).sync(), Until::Ready(1)),
                (w().parse("two", "select $1::int", &[]).bind("", "two", &[], &[v(b"1"), v(b"2")], &[]).sync(), Until::Ready(1)),
                (w().parse("", "select $1::int", &[]).bind("", "", &[], &[v(b"x")], &[]).execute("", 0).sync(), Until::Ready(1)),
                (w().parse("", "", &[]).bind("", "", &[], &[], &[]).describe(b'P', "").execute("", 0).sync(), Until::Ready(1)),
            ],
            "1EZ12DCZEZEZ1EZ1EZ12nIZ",
            "IIIIIII",
            &["22012", "42601", "42601", "08P01", "22P02"],
        ),
        scenario(
            "Flush without Sync",
            vec![
                (w().parse("fl", "select $1::int4 as a, 'x'::text as b", &[]).describe(b'S', "fl").flush(), Until::Count(3)),
                (w().sync(), Until::Ready(1)),
                (w().bind("", "fl", &[], &[v(b"7")], &[]).execute("", 0).flush(), Until::Count(3)),
                (w().close(b'S', "fl").sync(), Until::Ready(1)),
                (w().parse("", "set application_name = 'ext'", &[]).describe(b'S', "").flush(), Until::Count(3)),
                (w().bind("", "", &[], &[], &[]).execute("", 0).sync(), Until::Ready(1)),
            ],
            "1tTZ2DC3Z1tn2CSZ",
            "III",
            &[],
        ),
        scenario(
            "enum type OIDs in extended protocol",
            vec![(
                w().parse("", "select id, m from people where m = $1", &[])
                    .describe(b'S', "")
                    .bind("", "", &[], &[v(b"happy")], &[1])
                    .describe(b'P', "")
                    .execute("", 0)
                    .sync(),
                Until::Ready(1),
            )],
            "1tT2TDCZ",
            "I",
            &[],
        ),
    ]
}
