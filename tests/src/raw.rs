//! A minimal raw protocol client for tests that must see every message exactly as the server
//! sent it (type bytes, order, ReadyForQuery status), which no driver exposes. Messages are
//! built with postgres-protocol and read back undecoded.

use std::time::Duration;

use anyhow::Context;
use bytes::{Bytes, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One backend message: its type byte and its body (without the length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    /// Type byte.
    pub tag: u8,
    /// Body bytes.
    pub body: Bytes,
}

impl Msg {
    /// A readable rendering for assertion messages.
    pub fn render(&self) -> String {
        format!("{}:{}", self.tag as char, String::from_utf8_lossy(&self.body).replace('\0', "|"))
    }
}

/// A connected, authenticated raw client.
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    /// Messages received during startup, up to and including the first ReadyForQuery.
    pub startup: Vec<Msg>,
}

const IO_LIMIT: Duration = Duration::from_secs(30);

impl RawClient {
    /// Connects to 127.0.0.1:`port` with trust authentication.
    pub async fn connect(port: u16, user: &str, database: &str) -> anyhow::Result<Self> {
        let stream = tokio::time::timeout(IO_LIMIT, TcpStream::connect(("127.0.0.1", port))).await??;
        let mut client = Self { stream, buf: BytesMut::new(), startup: Vec::new() };
        let mut out = BytesMut::new();
        frontend::startup_message([("user", user), ("database", database)], &mut out)?;
        client.send(&out).await?;
        client.startup = client.read_until_ready().await?;
        Ok(client)
    }

    /// Sends raw bytes (one or more built messages).
    pub async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        tokio::time::timeout(IO_LIMIT, self.stream.write_all(bytes)).await??;
        Ok(())
    }

    /// Reads one message.
    pub async fn read(&mut self) -> anyhow::Result<Msg> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
                if self.buf.len() > len {
                    let msg = self.buf.split_to(1 + len).freeze();
                    return Ok(Msg { tag: msg[0], body: msg.slice(5..) });
                }
            }
            let n = tokio::time::timeout(IO_LIMIT, self.stream.read_buf(&mut self.buf))
                .await
                .context("no message within the time limit")??;
            if n == 0 {
                anyhow::bail!("server closed the connection");
            }
        }
    }

    /// Reads messages up to and including the next ReadyForQuery.
    pub async fn read_until_ready(&mut self) -> anyhow::Result<Vec<Msg>> {
        let mut msgs = Vec::new();
        loop {
            let m = self.read().await?;
            let done = m.tag == b'Z';
            msgs.push(m);
            if done {
                return Ok(msgs);
            }
        }
    }

    /// Sends a simple Query and reads its answer through ReadyForQuery.
    pub async fn query(&mut self, sql: &str) -> anyhow::Result<Vec<Msg>> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out)?;
        self.send(&out).await?;
        self.read_until_ready().await
    }
}

/// The transaction status byte of the last ReadyForQuery in `msgs`.
pub fn ready_status(msgs: &[Msg]) -> Option<u8> {
    msgs.iter().rev().find(|m| m.tag == b'Z').and_then(|m| m.body.first().copied())
}

/// Type bytes of `msgs`, as a string (`"TDDCZ"`), for compact assertions.
pub fn tags(msgs: &[Msg]) -> String {
    msgs.iter().map(|m| m.tag as char).collect()
}
