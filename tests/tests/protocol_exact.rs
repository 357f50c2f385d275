//! "The answers are the data node's answers, exactly": the same raw frontend message sequences
//! are sent through the coordinator and directly to data node dn1, and the backend messages
//! that come back must be byte-identical (type byte and body), scenario by scenario. Each
//! scenario also asserts its own expected shape (message types, ReadyForQuery statuses and
//! SQLSTATEs), so two identical wrong answers cannot pass.
//!
//! Every scenario runs on a fresh connection on each side and leaves nothing behind but temp
//! objects; the few shared objects (an enum type and a table) are made once before the runs.
//! Per-connection values are not compared: BackendKeyData, and the notifying backend's pid in
//! NotificationResponse (masked).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

use std::fmt::Write as _;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use pgshard_tests::TestCluster;
use pgshard_tests::raw::{Msg, RawClient, tags};
use postgres_protocol::IsNull;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A scenario step that has not answered within this long has failed.
const STEP_LIMIT: Duration = Duration::from_secs(15);

/// Frontend messages to send in one write, built with postgres-protocol.
#[derive(Default)]
struct Wire(BytesMut);

impl Wire {
    fn query(mut self, sql: &str) -> Self {
        frontend::query(sql, &mut self.0).unwrap();
        self
    }

    fn parse(mut self, name: &str, sql: &str, types: &[u32]) -> Self {
        frontend::parse(name, sql, types.iter().copied(), &mut self.0).unwrap();
        self
    }

    /// Bind with raw parameter values (`None` is NULL) already in the given formats.
    fn bind(mut self, portal: &str, stmt: &str, formats: &[i16], values: &[Option<&[u8]>], results: &[i16]) -> Self {
        let put = |v: Option<&[u8]>, buf: &mut BytesMut| match v {
            Some(b) => {
                buf.put_slice(b);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        };
        let bound = frontend::bind(
            portal,
            stmt,
            formats.iter().copied(),
            values.iter().copied(),
            put,
            results.iter().copied(),
            &mut self.0,
        );
        assert!(bound.is_ok(), "cannot encode Bind");
        self
    }

    fn describe(mut self, kind: u8, name: &str) -> Self {
        frontend::describe(kind, name, &mut self.0).unwrap();
        self
    }

    fn execute(mut self, portal: &str, max_rows: i32) -> Self {
        frontend::execute(portal, max_rows, &mut self.0).unwrap();
        self
    }

    fn close(mut self, kind: u8, name: &str) -> Self {
        frontend::close(kind, name, &mut self.0).unwrap();
        self
    }

    fn sync(mut self) -> Self {
        frontend::sync(&mut self.0);
        self
    }

    fn flush(mut self) -> Self {
        frontend::flush(&mut self.0);
        self
    }

    /// FunctionCall with text arguments and a text result.
    fn function_call(mut self, oid: u32, args: &[&str]) -> Self {
        let mut body = BytesMut::new();
        body.put_u32(oid);
        body.put_i16(0);
        body.put_i16(i16::try_from(args.len()).unwrap());
        for a in args {
            body.put_i32(i32::try_from(a.len()).unwrap());
            body.put_slice(a.as_bytes());
        }
        body.put_i16(0);
        self.0.put_u8(b'F');
        self.0.put_i32(i32::try_from(body.len() + 4).unwrap());
        self.0.put_slice(&body);
        self
    }

    fn copy_data(mut self, data: &[u8]) -> Self {
        frontend::CopyData::new(data).unwrap().write(&mut self.0);
        self
    }

    fn copy_done(mut self) -> Self {
        frontend::copy_done(&mut self.0);
        self
    }

    fn copy_fail(mut self, why: &str) -> Self {
        frontend::copy_fail(why, &mut self.0).unwrap();
        self
    }
}

/// How much to read after a step's messages are sent.
#[derive(Clone, Copy)]
enum Until {
    /// Through this many ReadyForQuery messages.
    Ready(usize),
    /// Through the first message with this type byte.
    Tag(u8),
    /// Exactly this many messages.
    Count(usize),
}

/// A step: messages sent in one write, then what to read.
type Step = (Wire, Until);

/// One comparison: steps, and what the answer must look like on both sides.
struct Scenario {
    name: &'static str,
    steps: Vec<Step>,
    /// Type bytes of every message received, in order.
    tags: String,
    /// Status byte of every ReadyForQuery, in order.
    statuses: String,
    /// SQLSTATE of every ErrorResponse, in order.
    codes: &'static [&'static str],
}

fn scenario(
    name: &'static str,
    steps: Vec<Step>,
    tags: impl Into<String>,
    statuses: impl Into<String>,
    codes: &'static [&'static str],
) -> Scenario {
    Scenario { name, steps, tags: tags.into(), statuses: statuses.into(), codes }
}

/// A non-NULL parameter value.
fn v(bytes: &[u8]) -> Option<&[u8]> {
    Some(bytes)
}

/// A simple Query step read through its ReadyForQuery.
fn q(sql: &str) -> Step {
    (Wire::default().query(sql), Until::Ready(1))
}

/// Objects shared by both runs, made once on dn1 before them.
const SETUP: &str = "create type mood as enum ('sad', 'ok', 'happy'); \
     create table people (id int primary key, name text not null unique, m mood); \
     insert into people values (1, 'ann', 'happy'), (2, 'bob', 'sad'), (3, 'cy', null)";

fn simple_scenarios() -> Vec<Scenario> {
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

fn extended_scenarios() -> Vec<Scenario> {
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

fn pipeline_scenarios(int4pl: u32) -> Vec<Scenario> {
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

fn copy_scenarios() -> Vec<Scenario> {
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

/// The SQLSTATE of an ErrorResponse body.
fn sqlstate(body: &[u8]) -> String {
    let mut fields = body.split(|&b| b == 0);
    fields.find_map(|f| f.strip_prefix(b"C")).map(|c| String::from_utf8_lossy(c).into_owned()).unwrap_or_default()
}

/// Masks per-connection values: the notifying backend's pid in NotificationResponse.
fn normalize(mut msgs: Vec<Msg>) -> Vec<Msg> {
    for m in &mut msgs {
        if m.tag == b'A' && m.body.len() >= 4 {
            let mut body = BytesMut::from(&m.body[..]);
            body[..4].fill(0);
            m.body = body.freeze();
        }
    }
    msgs
}

/// One message, with non-printable bytes escaped.
fn render(m: &Msg) -> String {
    let body: String = m.body.iter().flat_map(|&b| std::ascii::escape_default(b)).map(char::from).collect();
    format!("{}:{body}", m.tag as char)
}

/// Both sequences side by side, differing lines marked; long runs of equal messages elided.
fn side_by_side(coord: &[Msg], direct: &[Msg]) -> String {
    let n = coord.len().max(direct.len());
    let same = |i: usize| coord.get(i) == direct.get(i);
    let near_difference = |i: usize| (i.saturating_sub(2)..(i + 3).min(n)).any(|j| !same(j));
    let mut out = String::new();
    let mut elided = 0;
    for i in 0..n {
        if n > 12 && !near_difference(i) {
            elided += 1;
            continue;
        }
        if elided > 0 {
            let _ = writeln!(out, "   ... {elided} identical messages ...");
            elided = 0;
        }
        let c = coord.get(i).map(render).unwrap_or_else(|| "(none)".into());
        let d = direct.get(i).map(render).unwrap_or_else(|| "(none)".into());
        let mark = if same(i) { "  " } else { "!=" };
        let _ = writeln!(out, "{mark} #{i}\n     coordinator: {c}\n     dn1 direct:  {d}");
    }
    if elided > 0 {
        let _ = writeln!(out, "   ... {elided} identical messages ...");
    }
    out
}

async fn run_steps(port: u16, steps: &[Step]) -> anyhow::Result<Vec<Msg>> {
    let mut client = RawClient::connect(port, "postgres", "postgres").await?;
    let mut got = Vec::new();
    for (wire, until) in steps {
        client.send(&wire.0).await?;
        tokio::time::timeout(STEP_LIMIT, read_step(&mut client, *until, &mut got)).await??;
    }
    let mut bye = BytesMut::new();
    frontend::terminate(&mut bye);
    client.send(&bye).await?;
    Ok(normalize(got))
}

async fn read_step(client: &mut RawClient, until: Until, got: &mut Vec<Msg>) -> anyhow::Result<()> {
    let mut seen = 0;
    loop {
        let m = client.read().await?;
        let done = match until {
            Until::Ready(n) => {
                m.tag == b'Z' && {
                    seen += 1;
                    seen == n
                }
            }
            Until::Tag(t) => m.tag == t,
            Until::Count(n) => {
                seen += 1;
                seen == n
            }
        };
        got.push(m);
        if done {
            return Ok(());
        }
    }
}

/// Runs a scenario on both sides; returns a description of everything wrong, if anything is.
async fn compare(s: &Scenario, coord_port: u16, node_port: u16) -> Option<String> {
    let coord = run_steps(coord_port, &s.steps).await;
    let direct = run_steps(node_port, &s.steps).await;
    let (coord, direct) = match (coord, direct) {
        (Ok(c), Ok(d)) => (c, d),
        (c, d) => return Some(format!("run failed: coordinator {:?}, direct {:?}", c.err(), d.err())),
    };
    let mut problems = Vec::new();
    if coord != direct {
        problems.push(format!("messages differ:\n{}", side_by_side(&coord, &direct)));
    }
    for (side, msgs) in [("coordinator", &coord), ("dn1 direct", &direct)] {
        let statuses: String = msgs.iter().filter(|m| m.tag == b'Z').map(|m| m.body[0] as char).collect();
        let codes: Vec<String> = msgs.iter().filter(|m| m.tag == b'E').map(|m| sqlstate(&m.body)).collect();
        if tags(msgs) != s.tags || statuses != s.statuses || codes != s.codes {
            problems.push(format!(
                "{side}: tags {:?} statuses {statuses:?} codes {codes:?}, expected {:?} {:?} {:?}",
                tags(msgs),
                s.tags,
                s.statuses,
                s.codes
            ));
        }
    }
    if problems.is_empty() {
        return None;
    }
    if coord != direct {
        problems.push(format!("direct run:\n{}", direct.iter().map(render).collect::<Vec<_>>().join("\n")));
    }
    Some(problems.join("\n"))
}

/// Connects with a startup packet the server refuses, and returns every message until it closes.
async fn refused_startup(port: u16, user: &str, database: &str) -> anyhow::Result<Vec<Msg>> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let mut out = BytesMut::new();
    frontend::startup_message([("user", user), ("database", database)], &mut out)?;
    stream.write_all(&out).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(STEP_LIMIT, stream.read_to_end(&mut raw)).await??;
    let mut msgs = Vec::new();
    let mut at = 0;
    while raw.len() >= at + 5 {
        let len = u32::from_be_bytes([raw[at + 1], raw[at + 2], raw[at + 3], raw[at + 4]]) as usize;
        anyhow::ensure!(raw.len() > at + len, "truncated message at {at}");
        msgs.push(Msg { tag: raw[at], body: raw[at + 5..at + 1 + len].to_vec().into() });
        at += 1 + len;
    }
    anyhow::ensure!(at == raw.len(), "trailing bytes");
    Ok(msgs)
}

async fn check_startup(coord_port: u16, node_port: u16) {
    let coord = RawClient::connect(coord_port, "postgres", "postgres").await.unwrap();
    let direct = RawClient::connect(node_port, "postgres", "postgres").await.unwrap();
    let params = |c: &RawClient| c.startup.iter().filter(|m| m.tag == b'S').map(render).collect::<Vec<_>>();
    assert_eq!(params(&coord), params(&direct), "startup ParameterStatus differs");
    assert!(params(&coord).iter().any(|p| p.starts_with("S:server_version\\x0015.")), "{:?}", params(&coord));
    assert_eq!(params(&coord).len(), 13, "PostgreSQL 15 reports 13 parameters at startup: {:?}", params(&coord));
    // Same shape: AuthenticationOk, the parameters, one BackendKeyData, ReadyForQuery idle.
    assert_eq!(tags(&coord.startup), tags(&direct.startup));
    assert_eq!(tags(&coord.startup), format!("R{}KZ", "S".repeat(13)));
    assert_eq!(&coord.startup[0].body[..], &[0, 0, 0, 0], "AuthenticationOk");
    let key = coord.startup.iter().find(|m| m.tag == b'K').unwrap();
    assert_eq!(key.body.len(), 8, "BackendKeyData: pid and 4-byte secret");
    assert_eq!(&coord.startup.last().unwrap().body[..], b"I");

    // A refused startup is the node's own FATAL, after the same AuthenticationOk.
    for (user, db, code) in [("postgres", "no_such_db", "3D000"), ("no_such_role", "postgres", "28000")] {
        let through = refused_startup(coord_port, user, db).await.unwrap();
        let plain = refused_startup(node_port, user, db).await.unwrap();
        assert!(through == plain, "refused startup ({user}, {db}) differs:\n{}", side_by_side(&through, &plain));
        assert_eq!(tags(&plain), "RE");
        assert_eq!(sqlstate(&plain[1].body), code);
    }
}

/// Reads messages until a ReadyForQuery (`stop_at_ready`) or until the server closes.
async fn read_msgs(stream: &mut TcpStream, stop_at_ready: bool) -> anyhow::Result<Vec<Msg>> {
    let mut raw = BytesMut::new();
    let mut msgs = Vec::new();
    loop {
        while raw.len() >= 5 {
            let len = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]) as usize;
            if raw.len() <= len {
                break;
            }
            let m = raw.split_to(1 + len).freeze();
            msgs.push(Msg { tag: m[0], body: m.slice(5..) });
            if stop_at_ready && m[0] == b'Z' {
                return Ok(msgs);
            }
        }
        if tokio::time::timeout(STEP_LIMIT, stream.read_buf(&mut raw)).await?? == 0 {
            anyhow::ensure!(raw.is_empty(), "{} trailing bytes", raw.len());
            return Ok(msgs);
        }
    }
}

/// A startup packet with any protocol version and parameters.
fn startup_packet(version: u32, params: &[(&str, &str)]) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_u32(version);
    for (k, v) in params {
        body.put_slice(k.as_bytes());
        body.put_u8(0);
        body.put_slice(v.as_bytes());
        body.put_u8(0);
    }
    body.put_u8(0);
    let mut out = BytesMut::new();
    out.put_u32(u32::try_from(body.len() + 4).unwrap());
    out.put_slice(&body);
    out
}

/// A plain startup after an encryption request the server refused with 'N'.
async fn refused_encryption(port: u16, code: u32) -> Vec<Msg> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut request = BytesMut::new();
    request.put_u32(8);
    request.put_u32(code);
    stream.write_all(&request).await.unwrap();
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[0], b'N', "request {code} on port {port}");
    stream.write_all(&startup_packet(196_608, &[("user", "postgres"), ("database", "postgres")])).await.unwrap();
    read_msgs(&mut stream, true).await.unwrap().into_iter().filter(|m| m.tag != b'K').collect()
}

/// SSLRequest is refused the same way, and a newer protocol minor version or a `_pq_` option
/// gets the same NegotiateProtocolVersion. (GSSENCRequest is refused by the coordinator; the
/// data node's build may accept it, so it is not compared.)
async fn check_negotiation(coord_port: u16, node_port: u16) {
    let mut answers = Vec::new();
    for port in [coord_port, node_port] {
        let mut got = refused_encryption(port, 80_877_103).await;
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let packet =
            startup_packet(196_609, &[("user", "postgres"), ("database", "postgres"), ("_pq_.no_such_option", "on")]);
        stream.write_all(&packet).await.unwrap();
        got.extend(read_msgs(&mut stream, true).await.unwrap().into_iter().filter(|m| m.tag != b'K'));
        answers.push(got);
    }
    let (coord, direct) = (&answers[0], &answers[1]);
    assert_eq!(tags(direct), format!("R{0}ZvR{0}Z", "S".repeat(13)));
    assert!(coord == direct, "negotiation differs:\n{}", side_by_side(coord, direct));
    assert_eq!(tags(&refused_encryption(coord_port, 80_877_104).await), format!("R{}Z", "S".repeat(13)));
}

/// A notification from another session reaches an idle listener without any request.
async fn check_async_notification(coord_port: u16, node_port: u16) {
    let mut answers = Vec::new();
    for port in [coord_port, node_port] {
        let mut listener = RawClient::connect(port, "postgres", "postgres").await.unwrap();
        assert_eq!(tags(&listener.query("LISTEN async_chan").await.unwrap()), "CZ");
        let mut notifier = RawClient::connect(node_port, "postgres", "postgres").await.unwrap();
        let pid = notifier.query("select pg_backend_pid()").await.unwrap();
        let pid: i32 = String::from_utf8_lossy(&pid[1].body[6..]).parse().unwrap();
        assert_eq!(tags(&notifier.query("NOTIFY async_chan, 'from elsewhere'").await.unwrap()), "CZ");
        let note = tokio::time::timeout(Duration::from_secs(5), listener.read()).await.unwrap().unwrap();
        assert_eq!(note.tag, b'A', "{}", render(&note));
        assert_eq!(&note.body[..4], &pid.to_be_bytes(), "the notifier's pid");
        answers.push(note);
    }
    // The notifiers differ, so their pids do (each was checked above); the rest is the same.
    assert_eq!(answers[0].body[4..], answers[1].body[4..], "{} vs {}", render(&answers[0]), render(&answers[1]));
}

/// When the data-node backend is terminated, the client sees what PostgreSQL sends (one FATAL
/// 57P01) and then the end of the connection, nothing else.
async fn check_node_fatal(coord_port: u16, node_port: u16) {
    let mut answers = Vec::new();
    for port in [coord_port, node_port] {
        let mut victim = RawClient::connect(port, "postgres", "postgres").await.unwrap();
        let pid = victim.query("select pg_backend_pid()").await.unwrap();
        let pid = String::from_utf8_lossy(&pid[1].body[6..]).into_owned();
        let mut admin = RawClient::connect(node_port, "postgres", "postgres").await.unwrap();
        let killed = admin.query(&format!("select pg_terminate_backend({pid}, 5000)")).await.unwrap();
        assert_eq!(render(&killed[1]), "D:\\x00\\x01\\x00\\x00\\x00\\x01t");
        let mut rest = Vec::new();
        while let Ok(m) = victim.read().await {
            rest.push(m);
        }
        answers.push(rest);
    }
    let (coord, direct) = (&answers[0], &answers[1]);
    assert_eq!(tags(direct), "E");
    assert_eq!(sqlstate(&direct[0].body), "57P01");
    assert!(coord == direct, "after the node's FATAL:\n{}", side_by_side(coord, direct));
}

type BoxFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// The message of a check that panicked.
fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn answers_are_the_data_nodes_answers_exactly() {
    let cluster = TestCluster::start(2).unwrap();
    let (coord_port, node_port) = (cluster.port(), cluster.node_port(1));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut setup = RawClient::connect(node_port, "postgres", "postgres").await.unwrap();
        let answer = setup.query(SETUP).await.unwrap();
        assert_eq!(tags(&answer), "CCCZ", "setup failed: {:?}", answer.iter().map(render).collect::<Vec<_>>());

        let oid = setup.query("select 'int4pl'::regproc::oid").await.unwrap();
        let int4pl: u32 = String::from_utf8_lossy(&oid[1].body[6..]).parse().unwrap();

        // Each check runs to its end even when an earlier one failed; all failures are listed.
        let checks: Vec<(&str, BoxFuture)> = vec![
            ("startup", Box::pin(check_startup(coord_port, node_port))),
            ("negotiation", Box::pin(check_negotiation(coord_port, node_port))),
            ("asynchronous notification", Box::pin(check_async_notification(coord_port, node_port))),
            ("data-node backend terminated", Box::pin(check_node_fatal(coord_port, node_port))),
        ];
        let mut failures = Vec::new();
        for (name, check) in checks {
            if let Err(e) = tokio::spawn(check).await {
                failures.push(format!("=== {name} ===\n{}", panic_text(e)));
            }
        }
        let all: Vec<Scenario> =
            [simple_scenarios(), extended_scenarios(), pipeline_scenarios(int4pl), copy_scenarios()]
                .into_iter()
                .flatten()
                .collect();
        for s in &all {
            if let Some(problem) = compare(s, coord_port, node_port).await {
                failures.push(format!("=== {} ===\n{problem}", s.name));
            }
        }
        let total = all.len() + 4;
        assert!(failures.is_empty(), "{} of {total} checks failed:\n{}", failures.len(), failures.join("\n\n"));
    });
}
