//! The extended query protocol on distributed tables, compared with a plain PostgreSQL holding
//! the same rows: statements whose Bind reaches several shards (run by the coordinator with the
//! text parameters written in), pgshard's functions and reference writes through
//! Parse/Bind/Execute, and binary parameters there refused with 0A000.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

#[path = "protocol_exact/wire.rs"]
#[allow(dead_code, reason = "shared with protocol_exact, which uses every builder")]
mod wire;

use pgshard_tests::raw::{Msg, RawClient, tags};
use pgshard_tests::{PlainPg, TestCluster};
use wire::Wire;

const SETUP: &str = "CREATE TABLE t (w int NOT NULL, id int NOT NULL, note text, PRIMARY KEY (w, id));
    INSERT INTO t SELECT g % 7, g, 'n' || g FROM generate_series(1, 300) g;
    CREATE TABLE r (k int PRIMARY KEY, v text);";

/// What must match between the two sides: message types, column names, and the rows of each
/// result as a sorted set (shards answer in any order), command tags, SQLSTATEs.
fn comparable(msgs: &[Msg]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rows: Vec<String> = Vec::new();
    for m in msgs {
        if m.tag != b'D' && !rows.is_empty() {
            rows.sort();
            out.append(&mut rows);
        }
        match m.tag {
            b'D' => rows.push(format!("D {:?}", m.body)),
            b'T' => {
                let n = u16::from_be_bytes([m.body[0], m.body[1]]) as usize;
                let mut names = Vec::new();
                let mut at = 2;
                for _ in 0..n {
                    let end = at + m.body[at..].iter().position(|&b| b == 0).unwrap();
                    names.push(String::from_utf8_lossy(&m.body[at..end]).into_owned());
                    at = end + 1 + 18;
                }
                out.push(format!("T {names:?}"));
            }
            b'C' => out.push(format!("C {}", String::from_utf8_lossy(&m.body))),
            b'E' => out.push(format!("E {}", sqlstate(&m.body))),
            other => out.push((other as char).to_string()),
        }
    }
    out
}

fn sqlstate(body: &[u8]) -> String {
    let at = body.windows(1).position(|w| w[0] == b'C').unwrap_or(0);
    String::from_utf8_lossy(&body[at + 1..at + 6]).into_owned()
}

async fn run(client: &mut RawClient, wire: Wire, syncs: usize) -> Vec<Msg> {
    client.send(&wire.0).await.unwrap();
    let mut all = Vec::new();
    for _ in 0..syncs {
        all.extend(client.read_until_ready().await.unwrap());
    }
    all
}

#[test]
fn extended_protocol_over_several_shards_answers_as_postgres() {
    let plain = PlainPg::start().unwrap();
    let cluster = TestCluster::start(2).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut p = RawClient::connect(plain.port(), "postgres", "postgres").await.unwrap();
        let mut c = RawClient::connect(cluster.port(), "postgres", "postgres").await.unwrap();
        for client in [&mut p, &mut c] {
            assert!(!tags(&client.query(SETUP).await.unwrap()).contains('E'));
        }
        // pgshard's functions through Parse/Bind/Execute with text parameters.
        let distribute = Wire::default()
            .parse("", "SELECT create_distributed_table($1, $2)", &[])
            .bind("", "", &[], &[Some(b"t"), Some(b"w")], &[])
            .describe(b'P', "")
            .execute("", 0)
            .sync();
        let got = run(&mut c, distribute, 1).await;
        assert_eq!(tags(&got), "12TDCZ", "{got:?}");
        let reference = Wire::default()
            .parse("refs", "SELECT create_reference_table($1)", &[25])
            .describe(b'S', "refs")
            .bind("", "refs", &[], &[Some(b"r")], &[])
            .execute("", 0)
            .sync();
        assert_eq!(tags(&run(&mut c, reference, 1).await), "1tT2DCZ");

        let scenarios: Vec<(&str, Wire, usize)> = vec![
            (
                "join off the distribution column, answered over copies, portal described",
                Wire::default()
                    .parse("", "SELECT a.id, b.note FROM t a JOIN t b ON b.id = a.w WHERE a.id < $1 ORDER BY 1, 2", &[])
                    .bind("", "", &[], &[Some(b"20")], &[])
                    .describe(b'P', "")
                    .execute("", 0)
                    .sync(),
                1,
            ),
            (
                "window function over several shards, statement described",
                Wire::default()
                    .parse("win", "SELECT id, rank() OVER (PARTITION BY w ORDER BY id) FROM t WHERE id < $1 ORDER BY id", &[23])
                    .describe(b'S', "win")
                    .bind("", "win", &[], &[Some(b"15")], &[])
                    .execute("", 0)
                    .sync(),
                1,
            ),
            (
                "aggregate over every shard, unnamed statement",
                Wire::default()
                    .parse("", "SELECT w, count(*), max(note) FROM t WHERE id > $1 GROUP BY w ORDER BY w", &[])
                    .bind("", "", &[], &[Some(b"10")], &[])
                    .describe(b'P', "")
                    .execute("", 0)
                    .sync(),
                1,
            ),
            (
                "named statement bound twice, plain rows",
                Wire::default()
                    .parse("s1", "SELECT id, note FROM t WHERE id BETWEEN $1 AND $2", &[23, 23])
                    .describe(b'S', "s1")
                    .bind("p1", "s1", &[], &[Some(b"5"), Some(b"9")], &[])
                    .describe(b'P', "p1")
                    .execute("p1", 0)
                    .bind("p2", "s1", &[], &[Some(b"290"), Some(b"1000")], &[])
                    .execute("p2", 0)
                    .close(b'S', "s1")
                    .sync(),
                1,
            ),
            (
                "sorted with LIMIT, and a pinned Bind of the same statement",
                Wire::default()
                    .parse("s2", "SELECT id FROM t WHERE w = $1 OR id < $2 ORDER BY id DESC LIMIT 3", &[])
                    .bind("", "s2", &[], &[Some(b"3"), Some(b"50")], &[])
                    .execute("", 0)
                    .parse("s3", "SELECT id FROM t WHERE w = $1 ORDER BY id LIMIT 2", &[])
                    .bind("", "s3", &[], &[Some(b"4")], &[])
                    .execute("", 0)
                    .sync(),
                1,
            ),
            (
                "writes over every shard and a reference table, then read back",
                Wire::default()
                    .parse("", "UPDATE t SET note = $1 WHERE id <= $2", &[])
                    .bind("", "", &[], &[Some(b"changed"), Some(b"20")], &[])
                    .execute("", 0)
                    .parse("", "INSERT INTO r VALUES ($1, $2), ($3, $4)", &[])
                    .bind("", "", &[], &[Some(b"1"), Some(b"one"), Some(b"2"), None], &[])
                    .execute("", 0)
                    .sync()
                    .query("SELECT count(*) FROM t WHERE note = 'changed'")
                    .query("SELECT k, v FROM r ORDER BY k"),
                3,
            ),
            (
                "an error on the shards skips the rest of the request",
                Wire::default()
                    .parse("", "SELECT count(*) FROM t WHERE id / ($1::int - w) > 0", &[])
                    .bind("", "", &[], &[Some(b"3")], &[])
                    .execute("", 0)
                    .parse("", "SELECT 1", &[])
                    .bind("", "", &[], &[], &[])
                    .execute("", 0)
                    .sync()
                    .query("SELECT count(*) FROM t"),
                2,
            ),
        ];
        let mut failures = Vec::new();
        for (name, wire, syncs) in scenarios {
            let bytes = wire.0.clone();
            let direct = comparable(&run(&mut p, Wire(bytes.clone()), syncs).await);
            let through = comparable(&run(&mut c, Wire(bytes), syncs).await);
            if direct != through {
                failures.push(format!("{name}:\n  plain:   {direct:?}\n  pgshard: {through:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));

        // Plain rows of several shards take the client's Bind as sent: binary parameters and
        // binary results.
        let low = 40i32.to_be_bytes();
        let binary_rows = Wire::default()
            .parse("b1", "SELECT id, note FROM t WHERE id > $1 AND id < $2", &[23, 23])
            .bind("", "b1", &[1], &[Some(&low), Some(&48i32.to_be_bytes())], &[1, 0])
            .execute("", 0)
            .parse("", "UPDATE t SET note = note || '!' WHERE id > $1 AND id < $2 RETURNING id", &[23, 23])
            .bind("", "", &[1], &[Some(&low), Some(&45i32.to_be_bytes())], &[1])
            .execute("", 0)
            .sync();
        let bytes = binary_rows.0.clone();
        let direct = comparable(&run(&mut p, Wire(bytes.clone()), 1).await);
        let through = comparable(&run(&mut c, Wire(bytes), 1).await);
        assert_eq!(through, direct);
        assert_eq!(direct.iter().filter(|m| m.starts_with('D')).count(), 7 + 4);
        // Binary parameters where the coordinator must write them into the text (an aggregate
        // over several shards) are decoded by their type, as PostgreSQL reads them.
        let binary = Wire::default()
            .parse("", "SELECT count(*), max(note) FROM t WHERE id > $1 AND note <> $2", &[23, 25])
            .bind("", "", &[1, 1], &[Some(&5i32.to_be_bytes()), Some(b"x'y")], &[])
            .execute("", 0)
            .sync();
        let direct = comparable(&run(&mut p, Wire(binary.0.clone()), 1).await);
        let through = comparable(&run(&mut c, binary, 1).await);
        assert_eq!(through, direct);
        assert_eq!(direct.len(), 5, "{direct:?}");
        // A type the coordinator does not decode (numeric) is refused, not misread.
        let binary = Wire::default()
            .parse("", "SELECT count(*) FROM t WHERE id > $1", &[1700])
            .bind("", "", &[1], &[Some(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 5])], &[])
            .execute("", 0)
            .sync();
        let got = comparable(&run(&mut c, binary, 1).await);
        assert_eq!(got, ["1", "E 0A000", "Z"]);
        // The session goes on.
        assert_eq!(tags(&c.query("SELECT count(*) FROM t").await.unwrap()), "TDCZ");

        // A statement prepared while its table was ordinary is planned again at Bind once the
        // table is distributed: it reads the shards, not the empty shell.
        assert!(!tags(&c.query("CREATE TABLE t2 (x int PRIMARY KEY); INSERT INTO t2 SELECT generate_series(1, 100)").await.unwrap()).contains('E'));
        let prepare = Wire::default().parse("cnt", "SELECT count(*), sum(x) FROM t2 WHERE x > $1", &[23]).sync();
        assert_eq!(tags(&run(&mut c, prepare, 1).await), "1Z");
        assert_eq!(tags(&c.query("SELECT create_distributed_table('t2', 'x')").await.unwrap()), "TDCZ");
        let execute = Wire::default().bind("", "cnt", &[], &[Some(b"10")], &[]).execute("", 0).sync();
        let got = comparable(&run(&mut c, execute, 1).await);
        assert_eq!(got, ["2", "D b\"\\0\\x02\\0\\0\\0\\x0290\\0\\0\\0\\x044995\"", "C SELECT 1\0", "Z"]);

        // tokio-postgres (binary parameters and results) on a distributed table.
        let sql = "SELECT id, w, note FROM t WHERE id % $1 = 0 ORDER BY id";
        let mut answers = Vec::new();
        for dsn in [plain.dsn("postgres"), cluster.dsn("postgres")] {
            let client = pgshard_tests::connect(&dsn).await.unwrap();
            let rows = client.query("SELECT id, w, note FROM t WHERE id % $1 = 0", &[&37i32]).await.unwrap();
            let mut got: Vec<(i32, i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
            got.sort();
            let sorted = client.query(sql, &[&50i32]).await;
            answers.push((got, sorted.map(|r| r.len()).map_err(|e| e.code().cloned())));
        }
        assert_eq!(answers[0].0, answers[1].0);
        assert_eq!(answers[0].0.len(), 8);
        // Sorted over several shards with a binary parameter: refused (0A000), not misread.
        assert_eq!(answers[0].1, Ok(6));
        assert_eq!(answers[1].1, Err(Some(tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED)));

        // pgshard's functions answer in binary when the driver asks for it.
        let client = pgshard_tests::connect(&cluster.dsn("postgres")).await.unwrap();
        let row = client.query_one("SELECT verify_placement('t')", &[]).await.unwrap();
        let (checked, misplaced): (i64, i64) = (row.get("rows_checked"), row.get("rows_misplaced"));
        let count = client.simple_query("SELECT count(*) FROM t").await.unwrap();
        let count: i64 = count
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(|v| v.parse().unwrap()),
                _ => None,
            })
            .unwrap();
        assert_eq!((checked, misplaced), (count, 0));
        let rows = client.query("SELECT recover_prepared_transactions()", &[]).await.unwrap();
        assert!(rows.is_empty(), "nothing was left prepared");

        // Binary results of statements answered by a final query on the default node
        // (aggregates, sorts, reads over copies), as tokio-postgres asks for them.
        let mut answers = Vec::new();
        for dsn in [plain.dsn("postgres"), cluster.dsn("postgres")] {
            let client = pgshard_tests::connect(&dsn).await.unwrap();
            let row = client.query_one("SELECT count(*), sum(id), max(note) FROM t", &[]).await.unwrap();
            let totals: (i64, i64, String) = (row.get(0), row.get(1), row.get(2));
            let sorted = client.query("SELECT id, note FROM t ORDER BY note DESC, id LIMIT 4", &[]).await.unwrap();
            let sorted: Vec<(i32, String)> = sorted.iter().map(|r| (r.get(0), r.get(1))).collect();
            let by_id = client.query("SELECT id FROM t ORDER BY id DESC LIMIT 3", &[]).await.unwrap();
            let by_id: Vec<i32> = by_id.iter().map(|r| r.get(0)).collect();
            let joined = client.query("SELECT a.id, b.note FROM t a JOIN t b ON b.id = a.w WHERE a.id < 12 ORDER BY 1", &[]).await.unwrap();
            let joined: Vec<(i32, String)> = joined.iter().map(|r| (r.get(0), r.get(1))).collect();
            answers.push((totals, sorted, by_id, joined));
        }
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0].3.len(), 10, "ids 1..11 whose w is an id (w = 0 is none)");
    });
}
