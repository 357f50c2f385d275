//! COPY FROM STDIN into a distributed table through the coordinator (psql's `\copy`, simple
//! protocol): every row lands in the shard its value hashes to, with or without a column list;
//! a bad row or a NULL distribution value fails the whole COPY and leaves nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::io::Write;
use std::time::Duration;

use pgshard_tests::{TestCluster, run_pg_tool, temp_dir};

fn psql(port: &str, args: &[&str], stdin: Option<&std::path::Path>) -> (bool, String, String) {
    let conn = ["-X", "-At", "-h", "127.0.0.1", "-p", port, "-U", "postgres"];
    let out = run_pg_tool("psql", &[&conn[..], args].concat(), stdin, Duration::from_secs(60)).unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

/// psql's output; a failure fails the test.
fn psql_ok(port: &str, args: &[&str]) -> String {
    let (success, out, err) = psql(port, args, None);
    assert!(success, "{args:?}: {err}");
    out
}

#[test]
fn copy_from_stdin_splits_rows_by_shard() {
    let cluster = TestCluster::start(2).unwrap();
    let port = cluster.port().to_string();
    let dir = temp_dir().unwrap();
    let ok = |args: &[&str]| psql_ok(&port, args);
    ok(&["-c", "CREATE TABLE cp (id int PRIMARY KEY, v text, n int)"]);
    ok(&["-c", "INSERT INTO cp VALUES (0, 'before', 0)"]);
    ok(&["-c", "SELECT create_distributed_table('cp', 'id')"]);

    let rows = dir.path().join("rows.txt");
    let mut f = std::fs::File::create(&rows).unwrap();
    for i in 1..=3000 {
        writeln!(f, "{i}\tvalue {i}\\twith tab\t{}", i * 2).unwrap();
    }
    drop(f);
    let copied = ok(&["-c", &format!("\\copy cp FROM '{}'", rows.display())]);
    assert_eq!(copied, "COPY 3000");
    assert_eq!(ok(&["-c", "SELECT count(*), sum(n) FROM cp"]), "3001|9003000");
    assert_eq!(ok(&["-c", "SELECT v FROM cp WHERE id = 7"]), "value 7\twith tab");

    // A column list that puts the distribution column second.
    let listed = dir.path().join("listed.txt");
    std::fs::write(&listed, "x\t5001\ny\t5002\n").unwrap();
    assert_eq!(ok(&["-c", &format!("\\copy cp (v, id) FROM '{}'", listed.display())]), "COPY 2");
    assert_eq!(ok(&["-c", "SELECT id, v FROM cp WHERE id IN (5001, 5002) ORDER BY id"]), "5001|x\n5002|y");

    // A bad row anywhere fails the whole COPY: nothing of it stays, on any node.
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "6001\ta\t1\n6002\tb\tnot a number\n").unwrap();
    let (success, _, err) = psql(&port, &["-c", &format!("\\copy cp FROM '{}'", bad.display())], None);
    assert!(!success && err.contains("invalid input syntax for type integer"), "{err}");
    let null_key = dir.path().join("null.txt");
    std::fs::write(&null_key, "6003\tc\t1\n\\N\td\t2\n").unwrap();
    let (success, _, err) = psql(&port, &["-c", &format!("\\copy cp FROM '{}'", null_key.display())], None);
    assert!(!success && err.contains("NULL"), "{err}");
    assert_eq!(ok(&["-c", "SELECT count(*) FROM cp WHERE id > 6000"]), "0");
    // A duplicate key is the shard's own error (23505).
    let dup = dir.path().join("dup.txt");
    std::fs::write(&dup, "7001\te\t1\n7\tdup\t1\n").unwrap();
    let (success, _, err) = psql(&port, &["-v", "VERBOSITY=verbose", "-c", &format!("\\copy cp FROM '{}'", dup.display())], None);
    assert!(!success && err.contains("23505"), "{err}");
    assert_eq!(ok(&["-c", "SELECT count(*) FROM cp WHERE id = 7001"]), "0");

    assert_eq!(ok(&["-c", "SELECT verify_placement('cp')"]), "3003|0");

    // CSV with a header, quoted fields holding the delimiter and a newline, NULLs.
    let csv = dir.path().join("rows.csv");
    std::fs::write(&csv, "id,v,n\n8001,\"a, b\",1\n8002,\"two\nlines\",\n\"8003\",\"\",3\n").unwrap();
    assert_eq!(ok(&["-c", &format!("\\copy cp FROM '{}' WITH (FORMAT csv, HEADER true)", csv.display())]), "COPY 3");
    assert_eq!(
        ok(&["-c", "SELECT id, v, coalesce(n, -1), v IS NULL FROM cp WHERE id > 8000 ORDER BY id"]),
        "8001|a, b|1|f\n8002|two\nlines|-1|f\n8003||3|f"
    );
    // Text with another delimiter and NULL marker.
    let piped = dir.path().join("piped.txt");
    std::fs::write(&piped, "9001|x|nil\n9002|nil|4\n").unwrap();
    assert_eq!(ok(&["-c", &format!("\\copy cp FROM '{}' WITH (DELIMITER '|', NULL 'nil')", piped.display())]), "COPY 2");
    assert_eq!(ok(&["-c", "SELECT count(*) FROM cp WHERE id > 9000 AND (n IS NULL OR v IS NULL)"]), "2");
    assert_eq!(ok(&["-c", "SELECT verify_placement('cp')"]), "3008|0");
    // Binary COPY is refused, not misread.
    let (success, _, err) = psql(&port, &["-c", &format!("\\copy cp FROM '{}' WITH (FORMAT binary)", rows.display())], None);
    assert!(!success && err.contains("FORMAT binary"), "{err}");
}

/// COPY FROM STDIN into a distributed table in the extended protocol (tokio-postgres'
/// `copy_in`, what drivers and loaders use): rows land in their shards, a bad row fails the
/// whole COPY, and the session goes on with exactly one ReadyForQuery per request.
#[test]
fn copy_in_through_the_extended_protocol() {
    use futures::SinkExt;

    let cluster = TestCluster::start(2).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let c = pgshard_tests::connect(&cluster.dsn("postgres")).await.unwrap();
        c.batch_execute("CREATE TABLE ex (id int PRIMARY KEY, v text)").await.unwrap();
        c.batch_execute("SELECT create_distributed_table('ex', 'id', shard_count => 6)").await.unwrap();
        let sink = c.copy_in("COPY ex FROM STDIN").await.unwrap();
        futures::pin_mut!(sink);
        for chunk in 0..10 {
            let rows: String = (chunk * 100 + 1..=(chunk + 1) * 100).map(|i| format!("{i}\tv{i}\n")).collect();
            sink.send(bytes::Bytes::from(rows)).await.unwrap();
        }
        assert_eq!(sink.finish().await.unwrap(), 1000);
        let one = |sql: &'static str| {
            let c = &c;
            async move {
                let msgs = c.simple_query(sql).await.unwrap();
                msgs.iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|i| r.get(i).unwrap_or("")).collect::<Vec<_>>().join("|"))
                        }
                        _ => None,
                    })
                    .unwrap()
            }
        };
        assert_eq!(one("SELECT count(*), sum(id) FROM ex").await, "1000|500500");
        assert_eq!(one("SELECT verify_placement('ex')").await, "1000|0");
        // Prepared: the statement planned once, copied into twice.
        let stmt = c.prepare("COPY ex (v, id) FROM STDIN").await.unwrap();
        for base in [2000, 3000] {
            let sink = c.copy_in(&stmt).await.unwrap();
            futures::pin_mut!(sink);
            sink.send(bytes::Bytes::from(format!("a\t{}\nb\t{}\n", base + 1, base + 2))).await.unwrap();
            assert_eq!(sink.finish().await.unwrap(), 2);
        }
        // A bad row fails everything the COPY sent, on every node.
        let sink = c.copy_in("COPY ex FROM STDIN").await.unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"5001\tok\n5002\tok\nnot a number\tbad\n")).await.unwrap();
        let err = sink.finish().await.unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some("22P02"), "{err:?}");
        assert_eq!(one("SELECT count(*) FROM ex").await, "1004");
        // Inside a block the COPY joins the transaction.
        c.batch_execute("BEGIN").await.unwrap();
        let sink = c.copy_in("COPY ex FROM STDIN").await.unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"7001\tx\n7002\ty\n7003\tz\n")).await.unwrap();
        assert_eq!(sink.finish().await.unwrap(), 3);
        c.batch_execute("ROLLBACK").await.unwrap();
        assert_eq!(one("SELECT count(*) FROM ex").await, "1004");
        let n: i32 = c.query_one("SELECT id FROM ex WHERE id = $1", &[&2002i32]).await.unwrap().get(0);
        assert_eq!(n, 2002);
    });
}

/// COPY FROM STDIN into a reference table: every line reaches every node's copy (simple and
/// extended protocol), the count is the lines', and a bad line leaves no copy changed.
#[test]
fn copy_into_a_reference_table_reaches_every_copy() {
    use futures::SinkExt;

    let cluster = TestCluster::start(2).unwrap();
    let port = cluster.port().to_string();
    let dir = temp_dir().unwrap();
    let ok = |args: &[&str]| psql_ok(&port, args);
    ok(&["-c", "CREATE TABLE ref (id int PRIMARY KEY, name text)"]);
    ok(&["-c", "SELECT create_reference_table('ref')"]);
    let csv = dir.path().join("ref.csv");
    let mut f = std::fs::File::create(&csv).unwrap();
    writeln!(f, "id,name").unwrap();
    for i in 1..=500 {
        writeln!(f, "{i},\"name, {i}\"").unwrap();
    }
    drop(f);
    assert_eq!(ok(&["-c", &format!("\\copy ref FROM '{}' (FORMAT csv, HEADER)", csv.display())]), "COPY 500");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let c = pgshard_tests::connect(&cluster.dsn("postgres")).await.unwrap();
        let sink = c.copy_in("COPY ref (name, id) FROM STDIN").await.unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"x\t501\n\\N\t502\n")).await.unwrap();
        assert_eq!(sink.finish().await.unwrap(), 2, "counted once, not once per copy");
        let sink = c.copy_in("COPY ref FROM STDIN").await.unwrap();
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"600\tok\n1\tduplicate\n")).await.unwrap();
        let err = sink.finish().await.unwrap_err();
        assert_eq!(err.code().map(|c| c.code()), Some("23505"), "{err:?}");
    });
    for node in 1..=3 {
        let (success, out, err) =
            psql(&cluster.node_port(node).to_string(), &["-c", "SELECT count(*), sum(id), count(name) FROM ref"], None);
        assert!(success, "{err}");
        assert_eq!(out, "502|126253|501", "the copy on node {node}");
    }
}
