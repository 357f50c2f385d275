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

mod copy;
mod extended;
mod simple;
mod startup;
mod unsolicited;
mod wire;

use std::fmt::Write as _;
use std::time::Duration;

use bytes::BytesMut;
use pgshard_tests::TestCluster;
use pgshard_tests::raw::{Msg, RawClient, tags};
use postgres_protocol::message::frontend;

use copy::copy_scenarios;
use extended::extended_scenarios;
use simple::{pipeline_scenarios, simple_scenarios};
use startup::{check_negotiation, check_startup};
use unsolicited::{check_async_notification, check_node_fatal};
use wire::Wire;

/// A scenario step that has not answered within this long has failed.
const STEP_LIMIT: Duration = Duration::from_secs(15);

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
