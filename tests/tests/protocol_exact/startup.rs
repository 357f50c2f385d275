//! Startup checks: ParameterStatus and the startup message shape, refused startups (the node's
//! own FATAL), refused SSLRequest/GSSENCRequest, and NegotiateProtocolVersion.

use bytes::{BufMut, BytesMut};
use pgshard_tests::raw::{Msg, RawClient, tags};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{STEP_LIMIT, render, side_by_side, sqlstate};

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

pub(super) async fn check_startup(coord_port: u16, node_port: u16) {
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
pub(super) async fn check_negotiation(coord_port: u16, node_port: u16) {
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
