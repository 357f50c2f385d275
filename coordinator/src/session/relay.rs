//! Relaying one data node's answers to the client with exact bookkeeping of what the node still
//! owes. Every message the session sends a node is booked as an [`Expect`]: ReadyForQuery
//! ends a Query, FunctionCall or Sync; ParseComplete, BindComplete, CloseComplete,
//! RowDescription/NoData (after a Describe) and CommandComplete / EmptyQueryResponse /
//! PortalSuspended (after an Execute) end the extended-protocol messages. An ErrorResponse
//! ends the message it answers and cancels everything booked up to the next Sync (the node
//! skips to it). Each expectation says whether its answer reaches the client or is swallowed
//! (the session's own Parse of a routed statement, a Sync the client never sent, ...).
//!
//! COPY FROM STDIN: when the node answers CopyInResponse the relay returns and the session
//! pumps the client's CopyData to the node ([`pump_copy`]), watching the node meanwhile. In
//! the extended protocol a Sync the client pipelined after the COPY's Execute is swallowed by
//! the node while it is in COPY mode, so it is unbooked there.

use std::collections::VecDeque;

use bytes::Bytes;

use super::client::ClientIo;
use super::conns::NodeConn;
use crate::error::CoordError;

/// The message whose answer is awaited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A simple Query: everything up to ReadyForQuery.
    Query,
    /// A FunctionCall: FunctionCallResponse then ReadyForQuery.
    FunctionCall,
    /// Sync: ReadyForQuery.
    Sync,
    /// Parse: ParseComplete.
    Parse,
    /// Bind: BindComplete.
    Bind,
    /// Describe of a statement: ParameterDescription then RowDescription or NoData.
    DescribeStatement,
    /// Describe of a portal: RowDescription or NoData.
    DescribePortal,
    /// Execute: rows, then CommandComplete, EmptyQueryResponse or PortalSuspended.
    Execute,
    /// Close: CloseComplete.
    Close,
}

impl Unit {
    fn ends_with_ready(self) -> bool {
        matches!(self, Unit::Query | Unit::FunctionCall | Unit::Sync)
    }
}

/// One booked answer.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// What is awaited.
    pub unit: Unit,
    /// Whether the answer goes to the client.
    pub forward: bool,
}

/// What a node still owes, in order.
#[derive(Debug, Default)]
pub struct Owed {
    queue: VecDeque<Expect>,
    /// An ErrorResponse ended an extended-protocol message since the last Sync.
    pub errored: bool,
    /// The last ErrorResponse the node sent, raw.
    pub last_error: Option<Bytes>,
    /// The type byte of the last message relayed.
    pub last_tag: u8,
    /// An Execute started a COPY FROM STDIN: the node ignores the Sync the client pipelined
    /// after it, and the client sends another after CopyDone, which the node answers.
    pub extended_copy: bool,
}

/// How a relay stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// Nothing more is owed.
    Settled,
    /// The node is in COPY FROM STDIN and waits for the client's data.
    CopyIn,
}

impl Owed {
    /// Books an answer.
    pub fn push(&mut self, unit: Unit, forward: bool) {
        self.queue.push_back(Expect { unit, forward });
    }

    /// Books `first`'s answers ahead of everything booked here.
    pub fn prepend(&mut self, first: Owed) {
        for e in first.queue.into_iter().rev() {
            self.queue.push_front(e);
        }
    }

    /// Nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Handles one node message: returns whether it goes to the client and whether the node
    /// entered COPY FROM STDIN.
    fn on_message(&mut self, tag: u8, msg: &[u8], conn_status: &mut u8) -> (bool, bool) {
        self.last_tag = tag;
        let Some(head) = self.queue.front().copied() else {
            // Unsolicited (a FATAL before closing, a notice): the client should see it.
            return (true, false);
        };
        match tag {
            b'N' | b'A' | b'S' => (true, false),
            b'Z' => {
                *conn_status = msg.get(5).copied().unwrap_or(b'I');
                self.errored = false;
                while let Some(e) = self.queue.pop_front() {
                    if e.unit.ends_with_ready() {
                        return (e.forward, false);
                    }
                }
                (head.forward, false)
            }
            b'E' => {
                self.last_error = Some(Bytes::copy_from_slice(msg));
                if !head.unit.ends_with_ready() {
                    self.errored = true;
                    while self.queue.front().is_some_and(|e| !e.unit.ends_with_ready()) {
                        self.queue.pop_front();
                    }
                }
                (head.forward, false)
            }
            b'1' | b'2' | b'3' | b'n' => {
                if !head.unit.ends_with_ready() {
                    self.queue.pop_front();
                }
                (head.forward, false)
            }
            b'T' => {
                if matches!(head.unit, Unit::DescribeStatement | Unit::DescribePortal) {
                    self.queue.pop_front();
                }
                (head.forward, false)
            }
            b'C' | b'I' | b's' => {
                if head.unit == Unit::Execute {
                    self.queue.pop_front();
                }
                (head.forward, false)
            }
            b'G' => {
                if head.unit == Unit::Execute {
                    // Whatever was pipelined after the COPY's Execute reaches the node while it
                    // is in COPY mode: Sync and Flush are ignored there.
                    self.extended_copy = true;
                    self.queue.truncate(1);
                }
                (head.forward, true)
            }
            _ => (head.forward, false),
        }
    }
}

/// Why a session cannot go on.
#[derive(Debug)]
pub enum Interrupted {
    /// The client's socket closed or failed.
    ClientGone,
    /// A data node's connection closed or failed; `told` when its last message, already
    /// forwarded, was an ErrorResponse saying why.
    NodeGone { why: String, told: bool },
    /// The client broke the protocol.
    Protocol(CoordError),
}

impl Interrupted {
    fn node(e: CoordError, owed: &Owed) -> Self {
        Interrupted::NodeGone { why: e.to_string(), told: owed.last_tag == b'E' }
    }
}

/// Relays the node's answers until nothing is owed or the node starts COPY FROM STDIN.
pub async fn relay(conn: &mut NodeConn, owed: &mut Owed, client: &mut ClientIo) -> Result<Stop, Interrupted> {
    if let Err(e) = conn.flush().await {
        return Err(Interrupted::node(e, owed));
    }
    while !owed.is_empty() {
        if conn.pooled.conn.read_buf.is_empty() {
            client.flush().await.map_err(|_| Interrupted::ClientGone)?;
        }
        let (tag, msg) = conn.read().await.map_err(|e| Interrupted::node(e, owed))?;
        let (forward, copy_in) = owed.on_message(tag, &msg, &mut conn.status);
        if forward {
            client.push(&msg).await.map_err(|_| Interrupted::ClientGone)?;
        }
        if copy_in {
            return Ok(Stop::CopyIn);
        }
    }
    Ok(Stop::Settled)
}

/// Pumps the client's COPY data to the node until the client ends the copy (CopyDone or
/// CopyFail, forwarded) or the node ends it (an error), relaying what the node says meanwhile.
pub async fn pump_copy(conn: &mut NodeConn, owed: &mut Owed, client: &mut ClientIo) -> Result<(), Interrupted> {
    client.flush().await.map_err(|_| Interrupted::ClientGone)?;
    loop {
        while let Some((tag, msg)) = client.next_buffered().map_err(Interrupted::Protocol)? {
            conn.out.extend_from_slice(&msg);
            match tag {
                b'd' | b'S' | b'H' => {}
                // CopyDone, CopyFail, or anything else (which the node refuses, ending the copy).
                _ => {
                    if owed.queue.front().is_some_and(|e| e.unit == Unit::Execute) {
                        // In the extended protocol the node holds the COPY's CommandComplete
                        // until a Sync or Flush; the client's Sync may not come before it.
                        super::msg::flush(&mut conn.out);
                    }
                    conn.flush().await.map_err(|e| Interrupted::node(e, owed))?;
                    return Ok(());
                }
            }
            if conn.out.len() >= 64 * 1024 {
                conn.flush().await.map_err(|e| Interrupted::node(e, owed))?;
            }
        }
        conn.flush().await.map_err(|e| Interrupted::node(e, owed))?;
        while let Some((tag, msg)) = conn.buffered().map_err(|e| Interrupted::node(e, owed))? {
            let (forward, _) = owed.on_message(tag, &msg, &mut conn.status);
            if forward {
                client.push(&msg).await.map_err(|_| Interrupted::ClientGone)?;
            }
        }
        if owed.is_empty() || owed.errored {
            // The node ended the copy with an error; what the client still sends of it is
            // ignored, as PostgreSQL does.
            return Ok(());
        }
        client.flush().await.map_err(|_| Interrupted::ClientGone)?;
        tokio::select! {
            r = client.fill() => match r {
                Ok(true) => {}
                _ => return Err(Interrupted::ClientGone),
            },
            r = conn.fill() => match r {
                Ok(true) => {}
                Ok(false) => return Err(Interrupted::NodeGone { why: "the data node closed the connection".into(), told: false }),
                Err(e) => return Err(Interrupted::node(e, owed)),
            },
        }
    }
}

/// Relays until settled, pumping COPY data whenever the node asks for it.
pub async fn relay_all(conn: &mut NodeConn, owed: &mut Owed, client: &mut ClientIo) -> Result<(), Interrupted> {
    while relay(conn, owed, client).await? == Stop::CopyIn {
        pump_copy(conn, owed, client).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn z(status: u8) -> Vec<u8> {
        vec![b'Z', 0, 0, 0, 5, status]
    }

    #[test]
    fn an_error_cancels_the_rest_up_to_sync() {
        let mut owed = Owed::default();
        for u in [Unit::Parse, Unit::Bind, Unit::Execute, Unit::Sync] {
            owed.push(u, true);
        }
        let mut st = b'I';
        assert_eq!(owed.on_message(b'E', b"E\0\0\0\x04", &mut st), (true, false));
        assert!(owed.errored);
        assert_eq!(owed.queue.len(), 1);
        assert_eq!(owed.on_message(b'Z', &z(b'I'), &mut st), (true, false));
        assert!(owed.is_empty());
    }

    #[test]
    fn sync_after_copy_execute_is_swallowed_by_the_node() {
        let mut owed = Owed::default();
        for u in [Unit::Bind, Unit::Execute, Unit::Sync] {
            owed.push(u, true);
        }
        let mut st = b'I';
        owed.on_message(b'2', b"2\0\0\0\x04", &mut st);
        assert_eq!(owed.on_message(b'G', b"G", &mut st), (true, true));
        owed.on_message(b'C', b"C", &mut st);
        assert!(owed.is_empty());
        assert!(owed.extended_copy);
    }

    #[test]
    fn swallowed_units_are_not_forwarded() {
        let mut owed = Owed::default();
        owed.push(Unit::Parse, false);
        owed.push(Unit::Bind, true);
        let mut st = b'I';
        assert_eq!(owed.on_message(b'1', b"1", &mut st), (false, false));
        assert_eq!(owed.on_message(b'2', b"2", &mut st), (true, false));
    }
}
