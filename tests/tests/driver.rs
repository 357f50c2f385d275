//! tokio-postgres as a real client of the coordinator: the extended protocol with binary
//! formats, streaming, pipelining, COPY, errors with all their fields, aborted transactions,
//! cancellation, and session isolation. Where a result is not a constant, it is compared with
//! the same call made directly on data node dn1.
//!
//! One cluster serves every check; the checks run one after another, each to its end, and the
//! test fails listing every check that failed.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is the failure report")]

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt, TryStreamExt, pin_mut};
use pgshard_tests::{TestCluster, connect};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::error::{DbError, ErrorPosition, SqlState};
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Objects the checks share, made once on dn1.
const SETUP: &str = "create type mood as enum ('sad', 'ok', 'happy'); \
     create table people (id int primary key, name text not null unique, m mood); \
     insert into people values (1, 'ann', 'happy'), (2, 'bob', 'sad'), (3, 'cy', null); \
     create table locked (id int primary key, v int); insert into locked values (1, 0); \
     create schema drv; create table drv.only_here (x int); insert into drv.only_here values (7)";

/// Connection strings: through the coordinator, and directly to dn1.
#[derive(Clone)]
struct Dsns {
    coord: String,
    direct: String,
}

/// The SQLSTATE of a failed call, or a panic naming what succeeded instead.
fn code<T: std::fmt::Debug>(r: Result<T, tokio_postgres::Error>) -> SqlState {
    match r {
        Err(e) => e.code().cloned().unwrap_or_else(|| panic!("not a server error: {e}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// The server error of a failed call.
fn db_error<T: std::fmt::Debug>(r: Result<T, tokio_postgres::Error>) -> DbError {
    match r {
        Err(e) => e.as_db_error().cloned().unwrap_or_else(|| panic!("not a server error: {e}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

async fn one_i32(c: &Client, sql: &str) -> i32 {
    c.query_one(sql, &[]).await.unwrap().get(0)
}

/// An enum value as its label, in either direction.
#[derive(Debug, PartialEq)]
struct Label(String);

impl<'a> FromSql<'a> for Label {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Label(String::from_utf8(raw.to_vec())?))
    }
    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_))
    }
}

impl ToSql for Label {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_))
    }
    to_sql_checked!();
}

/// Every scalar type in binary format, NULLs and arrays, round-tripped through a prepared
/// statement; parameter and column types agree with dn1's.
async fn binary_types_round_trip(d: Dsns) {
    let sql = "select $1::int2, $2::int4, $3::int8, $4::float4, $5::float8, $6::bool, $7::text, $8::bytea, \
               $9::int4[], $10::int8, $11::int4[], $12::text[]";
    let bytes: Vec<u8> = vec![0, 255, 0, 10, 13];
    let ints: Vec<i32> = vec![1, -2, i32::MIN, 0];
    let holes: Vec<Option<i32>> = vec![Some(5), None, Some(-5)];
    let texts: Vec<String> = vec!["a,b".into(), "".into(), "\"q\"".into(), "ünï".into()];
    let params: [&(dyn ToSql + Sync); 12] = [
        &i16::MIN,
        &i32::MAX,
        &-9_000_000_000_000i64,
        &1.5f32,
        &-2.5e300f64,
        &true,
        &"héllo 😀",
        &bytes,
        &ints,
        &None::<i64>,
        &holes,
        &texts,
    ];
    let mut shapes = Vec::new();
    for dsn in [&d.coord, &d.direct] {
        let c = connect(dsn).await.unwrap();
        let stmt = c.prepare(sql).await.unwrap();
        let row = c.query_one(&stmt, &params).await.unwrap();
        assert_eq!(row.get::<_, i16>(0), i16::MIN);
        assert_eq!(row.get::<_, i32>(1), i32::MAX);
        assert_eq!(row.get::<_, i64>(2), -9_000_000_000_000);
        assert_eq!(row.get::<_, f32>(3), 1.5);
        assert_eq!(row.get::<_, f64>(4), -2.5e300);
        assert!(row.get::<_, bool>(5));
        assert_eq!(row.get::<_, &str>(6), "héllo 😀");
        assert_eq!(row.get::<_, Vec<u8>>(7), bytes);
        assert_eq!(row.get::<_, Vec<i32>>(8), ints);
        assert_eq!(row.get::<_, Option<i64>>(9), None);
        assert_eq!(row.get::<_, Vec<Option<i32>>>(10), holes);
        assert_eq!(row.get::<_, Vec<String>>(11), texts);
        let columns: Vec<String> = stmt.columns().iter().map(|c| format!("{}:{}", c.name(), c.type_())).collect();
        shapes.push((stmt.params().to_vec(), columns));

        // A user enum: its type (looked up by the driver through the same connection) and values.
        let stmt = c.prepare("select id, m from people where m = $1 or $1 is null order by id").await.unwrap();
        assert_eq!(stmt.params()[0].name(), "mood");
        let kind = stmt.columns()[1].type_().kind().clone();
        assert_eq!(kind, Kind::Enum(vec!["sad".into(), "ok".into(), "happy".into()]));
        let rows = c.query(&stmt, &[&Label("happy".into())]).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| (r.get::<_, i32>(0), r.get::<_, Label>(1))).collect::<Vec<_>>(),
            [(1, Label("happy".into()))]
        );
        let rows = c.query(&stmt, &[&None::<Label>]).await.unwrap();
        assert_eq!(
            rows.iter().map(|r| r.get::<_, Option<Label>>(1)).collect::<Vec<_>>(),
            [Some(Label("happy".into())), Some(Label("sad".into())), None]
        );
    }
    assert_eq!(shapes[0], shapes[1], "statement description differs from dn1's");
}

/// `query_raw` streams 100 000 rows; a stream dropped early leaves the session usable.
async fn query_raw_streams_many_rows(d: Dsns) {
    let c = connect(&d.coord).await.unwrap();
    let direct = connect(&d.direct).await.unwrap();
    let sql = "select g, md5(g::text) from generate_series(1, $1) g";
    let n = 100_000i32;
    let stream = c.query_raw(sql, [&n as &(dyn ToSql + Sync)]).await.unwrap();
    pin_mut!(stream);
    let (mut count, mut sum, mut last) = (0i64, 0i64, String::new());
    while let Some(row) = stream.try_next().await.unwrap() {
        count += 1;
        sum += i64::from(row.get::<_, i32>(0));
        last = row.get(1);
        assert_eq!(row.get::<_, i32>(0), i32::try_from(count).unwrap(), "rows arrive in order");
    }
    assert_eq!((count, sum), (100_000, 5_000_050_000));
    assert_eq!(stream.rows_affected(), Some(100_000));
    let expected: String = direct.query_one("select md5('100000')", &[]).await.unwrap().get(0);
    assert_eq!(last, expected);

    let big = 500_000i32;
    let stream = c.query_raw(sql, [&big as &(dyn ToSql + Sync)]).await.unwrap();
    let first: Vec<_> = stream.take(10).try_collect().await.unwrap();
    assert_eq!(first.len(), 10);
    assert_eq!(tokio::time::timeout(Duration::from_secs(30), one_i32(&c, "select 42")).await.unwrap(), 42);
}

/// One statement, prepared once, executed 2 000 times in turn and 500 times pipelined.
async fn prepared_once_executed_many_times(d: Dsns) {
    let c = connect(&d.coord).await.unwrap();
    let stmt = c.prepare("select $1::int4 * 2, $2::text || '!'").await.unwrap();
    for i in 0..2000i32 {
        let s = i.to_string();
        let row = c.query_one(&stmt, &[&i, &s]).await.unwrap();
        assert_eq!((row.get::<_, i32>(0), row.get::<_, String>(1)), (i * 2, format!("{i}!")));
    }
    let inputs: Vec<(i32, String)> = (0..500).map(|i| (i, format!("p{i}"))).collect();
    let (c, stmt) = (&c, &stmt);
    let pipelined = inputs.iter().map(|(i, s)| async move { c.query_one(stmt, &[i, s]).await });
    let results = futures::future::try_join_all(pipelined).await.unwrap();
    for ((i, s), row) in inputs.iter().zip(results) {
        assert_eq!((row.get::<_, i32>(0), row.get::<_, String>(1)), (i * 2, format!("{s}!")));
    }
}

fn render_simple(msgs: &[SimpleQueryMessage]) -> Vec<String> {
    msgs.iter()
        .map(|m| match m {
            SimpleQueryMessage::RowDescription(cols) => {
                format!("cols {}", cols.iter().map(|c| c.name()).collect::<Vec<_>>().join(","))
            }
            SimpleQueryMessage::Row(r) => {
                format!("row {}", (0..r.len()).map(|i| r.get(i).unwrap_or("NULL")).collect::<Vec<_>>().join(","))
            }
            SimpleQueryMessage::CommandComplete(n) => format!("done {n}"),
            _ => "other".into(),
        })
        .collect()
}

/// Several statements in one simple Query: rows and counts from each, as on dn1.
async fn simple_query_several_statements(d: Dsns) {
    let sql = "select 1 as a, 'x' as b; select g from generate_series(1, 3) g; \
               create temp table sq (id int, v text); insert into sq values (1, 'p'), (2, null) returning id, v; \
               update sq set v = 'q' where id = 2; select * from sq order by id";
    let expected = [
        "cols a,b",
        "row 1,x",
        "done 1",
        "cols g",
        "row 1",
        "row 2",
        "row 3",
        "done 3",
        "done 0",
        "cols id,v",
        "row 1,p",
        "row 2,NULL",
        "done 2",
        "done 1",
        "cols id,v",
        "row 1,p",
        "row 2,q",
        "done 2",
    ];
    for dsn in [&d.coord, &d.direct] {
        let c = connect(dsn).await.unwrap();
        assert_eq!(render_simple(&c.simple_query(sql).await.unwrap()), expected);
    }
}

/// A data node's errors reach the driver with every field; the session goes on after each.
async fn errors_keep_their_fields(d: Dsns) {
    let c = connect(&d.coord).await.unwrap();
    let direct = connect(&d.direct).await.unwrap();
    let dup = "insert into people values (1, 'dup', 'ok')";
    let e = db_error(c.execute(dup, &[]).await);
    assert_eq!(e.code(), &SqlState::UNIQUE_VIOLATION);
    assert_eq!(e.severity(), "ERROR");
    assert_eq!(e.message(), "duplicate key value violates unique constraint \"people_pkey\"");
    assert_eq!(e.detail(), Some("Key (id)=(1) already exists."));
    assert_eq!((e.constraint(), e.table(), e.schema()), (Some("people_pkey"), Some("people"), Some("public")));
    assert_eq!(format!("{e:?}"), format!("{:?}", db_error(direct.execute(dup, &[]).await)));
    assert_eq!(one_i32(&c, "select 1").await, 1);

    let e = db_error(c.query("select 1/0", &[]).await);
    assert_eq!((e.code(), e.message()), (&SqlState::DIVISION_BY_ZERO, "division by zero"));
    let e = db_error(c.prepare("select * from people where").await);
    assert_eq!(e.code(), &SqlState::SYNTAX_ERROR);
    assert_eq!(e.position(), Some(&ErrorPosition::Original(27)));
    let e = db_error(c.query("select nme from people", &[]).await);
    assert_eq!(e.code(), &SqlState::UNDEFINED_COLUMN);
    assert_eq!(e.hint(), Some("Perhaps you meant to reference the column \"people.name\"."));
    let e = db_error(c.query("select $1::text::int", &[&"x"]).await);
    assert_eq!(
        (e.code(), e.message()),
        (&SqlState::INVALID_TEXT_REPRESENTATION, "invalid input syntax for type integer: \"x\"")
    );
    assert_eq!(code(c.simple_query("select * from no_such_table").await), SqlState::UNDEFINED_TABLE);
    assert_eq!(
        code(c.batch_execute("select 1; select 'nope'::mood; select 2").await),
        SqlState::INVALID_TEXT_REPRESENTATION
    );
    assert_eq!(one_i32(&c, "select count(*)::int from people").await, 3, "nothing was inserted");
}

/// BEGIN; error; every statement fails with 25P02 until ROLLBACK; then the session works.
async fn aborted_transaction(d: Dsns) {
    let mut c = connect(&d.coord).await.unwrap();
    c.batch_execute("BEGIN").await.unwrap();
    c.execute("insert into locked values (2, 2)", &[]).await.unwrap();
    assert_eq!(code(c.query("select 1/0", &[]).await), SqlState::DIVISION_BY_ZERO);
    for _ in 0..2 {
        assert_eq!(code(c.query("select 1", &[]).await), SqlState::IN_FAILED_SQL_TRANSACTION);
        assert_eq!(code(c.simple_query("select 1").await), SqlState::IN_FAILED_SQL_TRANSACTION);
    }
    c.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(one_i32(&c, "select 1").await, 1);
    assert_eq!(one_i32(&c, "select count(*)::int from locked").await, 1, "the insert was rolled back");

    // The driver's transaction API: a failed transaction dropped is rolled back.
    {
        let tx = c.transaction().await.unwrap();
        assert_eq!(code(tx.execute("insert into locked values (1, 1)", &[]).await), SqlState::UNIQUE_VIOLATION);
        assert_eq!(code(tx.query("select 1", &[]).await), SqlState::IN_FAILED_SQL_TRANSACTION);
    }
    assert_eq!(one_i32(&c, "select 2").await, 2);
    let tx = c.transaction().await.unwrap();
    tx.execute("insert into locked values (3, 3)", &[]).await.unwrap();
    tx.commit().await.unwrap();
    let other = connect(&d.direct).await.unwrap();
    assert_eq!(one_i32(&other, "select v from locked where id = 3").await, 3, "committed on dn1");
    other.execute("delete from locked where id = 3", &[]).await.unwrap();
}

/// The pg_sleep queries running on dn1.
async fn sleeping_on_dn1(direct: &Client) -> Vec<String> {
    let sql =
        "select query from pg_stat_activity where state = 'active' and query like 'select pg_sleep%' order by query";
    direct.query(sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

/// A CancelRequest through the coordinator stops the data node's query and nothing else.
async fn cancel_stops_the_node_query(d: Dsns) {
    let direct = connect(&d.direct).await.unwrap();
    let c = connect(&d.coord).await.unwrap();
    let bystander = connect(&d.coord).await.unwrap();
    let token = c.cancel_token();
    // Cancelling an idle session does nothing (the request is asynchronous: give it time).
    token.cancel_query(NoTls).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(one_i32(&c, "select 1").await, 1);

    let started = Instant::now();
    let victim = tokio::spawn(async move {
        let r = c.query("select pg_sleep(30)", &[]).await.map(|_| ());
        (c, r, started.elapsed())
    });
    let other = tokio::spawn(async move { bystander.query("select pg_sleep(1)", &[]).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sleeping_on_dn1(&direct).await, ["select pg_sleep(1)", "select pg_sleep(30)"], "both run on dn1");
    token.cancel_query(NoTls).await.unwrap();
    let (c, result, took) =
        tokio::time::timeout(Duration::from_secs(5), victim).await.expect("cancel took effect").unwrap();
    assert_eq!(code(result), SqlState::QUERY_CANCELED);
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert_eq!(one_i32(&c, "select 1").await, 1);
    other.await.unwrap().expect("the other session's query was not cancelled");
    assert_eq!(sleeping_on_dn1(&direct).await, Vec::<String>::new(), "no backend still sleeping on dn1");
}

/// COPY in (text and binary) and out, with row counts and content checked, and a failed COPY.
async fn copy_in_and_out(d: Dsns) {
    let c = connect(&d.coord).await.unwrap();
    c.batch_execute("create temp table cp (id int, v text)").await.unwrap();
    let sink = c.copy_in("copy cp from stdin").await.unwrap();
    pin_mut!(sink);
    for chunk in 0..10 {
        let rows: String = (chunk * 100..(chunk + 1) * 100).map(|i| format!("{i}\ttext {i}\n")).collect();
        sink.send(Bytes::from(rows)).await.unwrap();
    }
    assert_eq!(sink.finish().await.unwrap(), 1000);

    let sink = c.copy_in("copy cp from stdin (format binary)").await.unwrap();
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT4, Type::TEXT]);
    pin_mut!(writer);
    for i in 1000..1500i32 {
        let v = (i % 7 != 0).then(|| format!("bin {i}"));
        writer.as_mut().write(&[&i, &v]).await.unwrap();
    }
    assert_eq!(writer.finish().await.unwrap(), 500);
    let row = c.query_one("select count(*), sum(id), count(v), max(v) from cp", &[]).await.unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (1500, 1_124_250, 1500 - 72));
    assert_eq!(row.get::<_, String>(3), "text 999");

    let sink = c.copy_in("copy cp from stdin").await.unwrap();
    pin_mut!(sink);
    sink.send(Bytes::from_static(b"1\tok\nnot a number\tbad\n")).await.unwrap();
    assert_eq!(code(sink.finish().await), SqlState::INVALID_TEXT_REPRESENTATION);
    assert_eq!(one_i32(&c, "select count(*)::int from cp").await, 1500);

    let sql = "copy (select g, 'v' || g, null from generate_series(1, 5000) g) to stdout";
    let mut outs = Vec::new();
    for client in [&c, &connect(&d.direct).await.unwrap()] {
        let data: Vec<Bytes> = client.copy_out(sql).await.unwrap().try_collect().await.unwrap();
        outs.push(data.concat());
    }
    let expected: String = (1..=5000).map(|g| format!("{g}\tv{g}\t\\N\n")).collect();
    assert_eq!(String::from_utf8_lossy(&outs[0]), expected);
    assert_eq!(outs[0], outs[1]);
}

/// Runs every check, each to its end; fails listing those that failed.
#[test]
fn tokio_postgres_through_the_coordinator() {
    let cluster = TestCluster::start(2).unwrap();
    let d = Dsns {
        coord: cluster.dsn("postgres"),
        direct: format!("host=127.0.0.1 port={} user=postgres dbname=postgres", cluster.node_port(1)),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        connect(&d.direct).await.unwrap().batch_execute(SETUP).await.unwrap();
        type Check = Pin<Box<dyn Future<Output = ()> + Send>>;
        let checks: Vec<(&str, Check)> = vec![
            ("binary types round trip", Box::pin(binary_types_round_trip(d.clone()))),
            ("query_raw streams many rows", Box::pin(query_raw_streams_many_rows(d.clone()))),
            ("prepared once, executed many times", Box::pin(prepared_once_executed_many_times(d.clone()))),
            ("simple_query with several statements", Box::pin(simple_query_several_statements(d.clone()))),
            ("errors keep their fields", Box::pin(errors_keep_their_fields(d.clone()))),
            ("aborted transaction", Box::pin(aborted_transaction(d.clone()))),
            ("cancel", Box::pin(cancel_stops_the_node_query(d.clone()))),
            ("COPY in and out", Box::pin(copy_in_and_out(d.clone()))),
            ("session state", Box::pin(session_state_is_per_session(d.clone()))),
            ("concurrent sessions and row locks", Box::pin(sessions_have_their_own_node_connections(d.clone()))),
            ("refused connections", Box::pin(refused_connections(d.clone()))),
        ];
        let total = checks.len();
        let mut failures = Vec::new();
        for (name, check) in checks {
            let started = Instant::now();
            let result = tokio::spawn(check).await;
            eprintln!("{name}: {:?}", started.elapsed());
            if let Err(e) = result {
                let text = match e.try_into_panic() {
                    Ok(p) => {
                        p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    }
                    Err(e) => Some(e.to_string()),
                };
                failures.push(format!("=== {name} ===\n{}", text.unwrap_or_default()));
            }
        }
        assert!(failures.is_empty(), "{} of {total} checks failed:\n{}", failures.len(), failures.join("\n\n"));
    });
}

/// SET search_path, a temp table and a SQL prepared statement last through the session and are
/// invisible to a concurrent session and to the next session on the same pooled connection.
async fn session_state_is_per_session(d: Dsns) {
    // A pool key of its own (application_name), so the next session gets this connection back.
    let dsn = format!("{} application_name=state_check", d.coord);
    let s1 = connect(&dsn).await.unwrap();
    s1.batch_execute("set search_path = drv, public").await.unwrap();
    s1.batch_execute("create temp table tt (x int); insert into tt values (1), (2)").await.unwrap();
    s1.batch_execute("prepare p (int) as select $1 + 1").await.unwrap();
    s1.batch_execute("set myapp.flag = 'on'").await.unwrap();
    assert_eq!(one_i32(&s1, "select x from only_here").await, 7, "search_path applies");
    assert_eq!(one_i32(&s1, "select count(*)::int from tt").await, 2);
    assert_eq!(one_i32(&s1, "execute p(41)").await, 42);
    let shown = s1.simple_query("show search_path").await.unwrap();
    assert_eq!(render_simple(&shown), ["cols search_path", "row drv, public", "done 0"]);

    let pid1 = one_i32(&s1, "select pg_backend_pid()").await;
    let s2 = connect(&dsn).await.unwrap();
    assert_ne!(one_i32(&s2, "select pg_backend_pid()").await, pid1, "a concurrent session has its own node backend");
    assert_fresh(&s2).await;
    drop(s2);
    drop(s1);

    // s1 defined a custom variable, which DISCARD ALL cannot undefine: its node connection is
    // closed rather than pooled, and the next session starts on a fresh backend.
    let direct = connect(&d.direct).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = direct.query("select 1 from pg_stat_activity where pid = $1", &[&pid1]).await.unwrap();
        if rows.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "s1's node connection was neither closed nor reset");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s3 = connect(&dsn).await.unwrap();
    assert_ne!(one_i32(&s3, "select pg_backend_pid()").await, pid1);
    assert_fresh(&s3).await;
}

/// What a brand-new PostgreSQL session sees.
async fn assert_fresh(c: &Client) {
    let shown = c.simple_query("show search_path").await.unwrap();
    assert_eq!(render_simple(&shown), ["cols search_path", "row \"$user\", public", "done 0"]);
    assert_eq!(code(c.query("select * from only_here", &[]).await), SqlState::UNDEFINED_TABLE);
    assert_eq!(code(c.query("select * from tt", &[]).await), SqlState::UNDEFINED_TABLE);
    assert_eq!(code(c.simple_query("execute p(1)").await), SqlState::INVALID_SQL_STATEMENT_NAME);
    let flag: Option<String> = c.query_one("select current_setting('myapp.flag', true)", &[]).await.unwrap().get(0);
    assert_eq!(flag, None, "a custom setting of an earlier session is visible");
}

/// Two sessions at once: one holds a row lock in an open transaction, the other times out on it.
async fn sessions_have_their_own_node_connections(d: Dsns) {
    let mut a = connect(&d.coord).await.unwrap();
    let b = connect(&d.coord).await.unwrap();
    assert_ne!(one_i32(&a, "select pg_backend_pid()").await, one_i32(&b, "select pg_backend_pid()").await);
    let tx = a.transaction().await.unwrap();
    assert_eq!(tx.query("select v from locked where id = 1 for update", &[]).await.unwrap().len(), 1);
    b.batch_execute("set lock_timeout = '200ms'").await.unwrap();
    let started = Instant::now();
    assert_eq!(code(b.execute("update locked set v = v + 1 where id = 1", &[]).await), SqlState::LOCK_NOT_AVAILABLE);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(3), "waited {waited:?}");
    assert_eq!(one_i32(&b, "select 1").await, 1);
    tx.execute("update locked set v = 10 where id = 1", &[]).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(b.execute("update locked set v = v + 1 where id = 1", &[]).await.unwrap(), 1);
    assert_eq!(one_i32(&a, "select v from locked where id = 1").await, 11);
}

/// An unknown database or role gets the data node's own FATAL, as a direct connection does.
async fn refused_connections(d: Dsns) {
    let cases = [
        ("dbname=no_such_db", SqlState::INVALID_CATALOG_NAME, "database \"no_such_db\" does not exist"),
        ("user=no_such_role", SqlState::INVALID_AUTHORIZATION_SPECIFICATION, "role \"no_such_role\" does not exist"),
    ];
    for (change, state, message) in cases {
        let mut seen = Vec::new();
        for dsn in [&d.coord, &d.direct] {
            let dsn = format!("{dsn} {change}");
            let err = connect(&dsn).await.err().unwrap_or_else(|| panic!("{dsn} connected"));
            let e = err
                .downcast_ref::<tokio_postgres::Error>()
                .and_then(|e| e.as_db_error())
                .unwrap_or_else(|| panic!("{err:#}"))
                .clone();
            assert_eq!((e.code(), e.severity(), e.message()), (&state, "FATAL", message));
            seen.push(format!("{e:?}"));
        }
        assert_eq!(seen[0], seen[1]);
    }
    assert_eq!(one_i32(&connect(&d.coord).await.unwrap(), "select 1").await, 1);
}
