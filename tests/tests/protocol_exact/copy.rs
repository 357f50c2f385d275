//! COPY scenarios: COPY FROM STDIN (large, split, failed, in the extended protocol) and COPY TO
//! STDOUT.

use super::wire::Wire;
use super::{Scenario, Until, q, scenario};

pub(super) fn copy_scenarios() -> Vec<Scenario> {
    let w = Wire::default;
    let big: String = (0..30_000).map(|i| format!("{i}\t{}\n", "z".repeat(90))).collect();
    vec![
        scenario(
            "COPY FROM STDIN, 3 MB in one CopyData and in many",
            vec![
                q("create temp table cp (id int, v text)"),
                (w().query("copy cp from stdin"), Until::Tag(b'G')),
                (w().copy_data(big.as_bytes()).copy_done(), Until::Ready(1)),
                (w().query("copy cp from stdin"), Until::Tag(b'G')),
                (big.as_bytes().chunks(1000).fold(w(), |w, c| w.copy_data(c)).copy_done(), Until::Ready(1)),
                q("select count(*), sum(id), sum(length(v)) from cp"),
            ],
            "CZGCZGCZTDCZ",
            "IIII",
            &[],
        ),
        scenario(
            "COPY FROM STDIN",
            vec![
                q("create temp table cp (id int, v text)"),
                (w().query("copy cp from stdin"), Until::Tag(b'G')),
                (
                    w().copy_data(b"1\tone\n").copy_data(b"2\ttwo\n3\tth").copy_data(b"ree\n").copy_done(),
                    Until::Ready(1),
                ),
                q("select count(*), string_agg(id || '=' || v, ',' order by id) from cp"),
            ],
            "CZGCZTDCZ",
            "III",
            &[],
        ),
        scenario(
            "COPY FROM STDIN with CopyFail and with a bad row",
            vec![
                q("create temp table cp (id int, v text)"),
                (w().query("copy cp from stdin"), Until::Tag(b'G')),
                (w().copy_data(b"1\tone\n").copy_fail("client gave up"), Until::Ready(1)),
                (w().query("copy cp from stdin"), Until::Tag(b'G')),
                (w().copy_data(b"2\ttwo\nx\tbad\n").copy_done(), Until::Ready(1)),
                q("select count(*) from cp"),
            ],
            "CZGEZGEZTDCZ",
            "IIII",
            &["57014", "22P02"],
        ),
        scenario(
            "COPY FROM STDIN in the extended protocol",
            vec![
                q("create temp table cp (id int, v text)"),
                (
                    w().parse("", "copy cp from stdin", &[]).bind("", "", &[], &[], &[]).execute("", 0).flush(),
                    Until::Tag(b'G'),
                ),
                (w().copy_data(b"1\tone\n").copy_done().sync(), Until::Ready(1)),
                q("select count(*), string_agg(id || '=' || v, ',' order by id) from cp"),
            ],
            "CZ12GCZTDCZ",
            "III",
            &[],
        ),
        scenario(
            "COPY TO STDOUT",
            vec![
                q("copy (select g, 'v' || g from generate_series(1, 3) g) to stdout"),
                q("copy people to stdout with (format binary)"),
                q("copy people (id, m) to stdout with (format csv, header)"),
                (
                    w().parse("", "copy people to stdout", &[]).bind("", "", &[], &[], &[]).execute("", 0).sync(),
                    Until::Ready(1),
                ),
            ],
            "HdddcCZHddddcCZHddddcCZ12HdddcCZ",
            "IIII",
            &[],
        ),
    ]
}
