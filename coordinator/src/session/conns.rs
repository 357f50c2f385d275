//! The data-node connections of one session: the home connection (the default node, taken at
//! startup, whose ParameterStatus values the client saw) and at most one more per node, taken
//! from the pool the first time a statement is routed there and kept for the session's life,
//! so session state (prepared statements, SET values) stays where it was made. An idle session
//! without such state gives them all back when other sessions wait for connections
//! (`park.rs`) and takes a new home with its next message.

use std::collections::HashSet;

use bytes::{Bytes, BytesMut};
use pgshard_catalog::NodeId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use std::sync::atomic::Ordering;

use tokio_postgres::error::SqlState;

use crate::backend::{NodeAddr, Pooled, Pools, StartupFailure};
use crate::dtx::deadlock::VictimMark;
use crate::error::CoordError;
use crate::wire::take_message;

/// One data-node connection of the session.
pub struct NodeConn {
    /// The node.
    pub node: NodeId,
    /// The pooled connection.
    pub pooled: Pooled,
    /// Bytes to send at the next flush.
    pub out: BytesMut,
    /// Status byte of the node's last ReadyForQuery.
    pub status: u8,
    /// The connection is not at a message boundary (a write or read was cut off): not poolable.
    pub torn: bool,
    /// Statement names the session prepared on this connection for routed statements.
    pub prepared: HashSet<String>,
    /// The connection failed during the coordinator's own exchange (a commit step): it is
    /// replaced the next time the session needs the node.
    pub dead: bool,
    /// A second connection to the node for the coordinator's scratch work (the temporary table
    /// of a merge inside a transaction block), outside the client's transaction.
    pub scratch: bool,
    /// The session's deadlock victim mark (shared by its connections): when set, the next
    /// "canceling statement" error read is the detector's cancel and becomes 40P01.
    pub victim: VictimMark,
}

impl NodeConn {
    /// Wraps a connection just checked out (idle, status `I`).
    pub fn new(node: NodeId, pooled: Pooled) -> Self {
        Self {
            node,
            pooled,
            out: BytesMut::new(),
            status: b'I',
            torn: false,
            prepared: HashSet::new(),
            dead: false,
            scratch: false,
            victim: VictimMark::default(),
        }
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), CoordError> {
        if self.out.is_empty() {
            return Ok(());
        }
        self.torn = true;
        let r = self.pooled.conn.stream.write_all(&self.out).await;
        self.out.clear();
        r.map_err(|e| CoordError::NodeLost(e.to_string()))?;
        self.torn = false;
        Ok(())
    }

    /// The next message from the node.
    pub async fn read(&mut self) -> Result<(u8, Bytes), CoordError> {
        let conn = &mut self.pooled.conn;
        loop {
            if let Some(m) = take_message(&mut conn.read_buf)? {
                return Ok(deadlock_victim(&self.victim, m));
            }
            if conn.read_buf.capacity() - conn.read_buf.len() < 8 * 1024 {
                conn.read_buf.reserve(16 * 1024);
            }
            match conn.stream.read_buf(&mut conn.read_buf).await {
                Ok(0) => return Err(CoordError::NodeLost("the data node closed the connection".into())),
                Ok(_) => {}
                Err(e) => return Err(CoordError::NodeLost(e.to_string())),
            }
        }
    }

    /// A complete message already buffered, without reading.
    pub fn buffered(&mut self) -> Result<Option<(u8, Bytes)>, CoordError> {
        take_message(&mut self.pooled.conn.read_buf)
    }

    /// The next message, for the session's own exchanges: a lost connection ends the session,
    /// and a ReadyForQuery records the node's transaction status.
    pub async fn recv(&mut self) -> Result<(u8, Bytes), super::relay::Interrupted> {
        let (tag, m) = self
            .read()
            .await
            .map_err(|e| super::relay::Interrupted::NodeGone { why: e.to_string(), told: false })?;
        if tag == b'Z' {
            self.status = m.get(5).copied().unwrap_or(b'I');
        }
        Ok((tag, m))
    }

    /// Reads more bytes; `Ok(false)` at end of stream. Cancel-safe.
    pub async fn fill(&mut self) -> Result<bool, CoordError> {
        let conn = &mut self.pooled.conn;
        if conn.read_buf.capacity() - conn.read_buf.len() < 8 * 1024 {
            conn.read_buf.reserve(16 * 1024);
        }
        Ok(conn.stream.read_buf(&mut conn.read_buf).await? > 0)
    }
}

pub(super) async fn checkout(addr: &NodeAddr, pools: &Pools, opener: &Opener) -> Result<Pooled, CoordError> {
    match pools.checkout(addr, opener.params.clone(), opener.password.as_deref()).await {
        Ok(p) => Ok(p),
        Err(StartupFailure::Failed(e)) => Err(e),
        Err(StartupFailure::Refused(raw)) => {
            Err(CoordError::NodeLost(String::from_utf8_lossy(raw.get(5..).unwrap_or_default()).replace('\0', " ")))
        }
    }
}

/// The detector canceled this session's statement to break a distributed deadlock: its
/// "canceling statement due to user request" becomes PostgreSQL's deadlock error.
fn deadlock_victim(mark: &VictimMark, (tag, m): (u8, Bytes)) -> (u8, Bytes) {
    if tag != b'E' || !mark.load(Ordering::SeqCst) || super::msg::error_field(&m, b'C').as_deref() != Some("57014") {
        return (tag, m);
    }
    mark.store(false, Ordering::SeqCst);
    let e = CoordError::sql(SqlState::T_R_DEADLOCK_DETECTED, "deadlock detected").with_detail(
        "This transaction and others waited for each other's locks on different data nodes; pgshard canceled the \
         youngest of them.",
    );
    (b'E', super::msg::build(|o| super::msg::error(&e, o)))
}

/// Everything needed to open more connections like the home one.
pub struct Opener {
    /// The client's startup parameters (user, database, options, ...).
    pub params: Vec<(String, String)>,
    /// The client's password, when the coordinator learned it (cleartext/SCRAM).
    pub password: Option<String>,
}

/// The session's connections; index 0 is home.
pub struct Conns {
    list: Vec<NodeConn>,
    /// The session's deadlock victim mark, shared by every connection.
    pub victim: VictimMark,
}

impl Conns {
    /// The session's connections, starting with home.
    pub fn new(mut home: NodeConn) -> Self {
        let victim = VictimMark::default();
        home.victim = victim.clone();
        Self { list: vec![home], victim }
    }

    /// Index of the connection to `node`, if the session has one.
    pub fn find(&self, node: NodeId) -> Option<usize> {
        self.list.iter().position(|c| c.node == node && !c.scratch)
    }

    /// The connection at `i`, to look at.
    pub fn peek(&self, i: usize) -> &NodeConn {
        &self.list[i]
    }

    /// The connection at `i`.
    pub fn get(&mut self, i: usize) -> &mut NodeConn {
        &mut self.list[i]
    }

    /// Index of the connection to `node`, opening one if needed. A dead connection is replaced
    /// in place (`Ok((i, true))`), so indexes stay valid.
    pub async fn open(&mut self, node: NodeId, addr: &NodeAddr, pools: &Pools, opener: &Opener) -> Result<(usize, bool), CoordError> {
        self.open_kind(node, false, addr, pools, opener).await
    }

    /// Index of the session's scratch connection to `node`, opening one if needed.
    pub async fn scratch(&mut self, node: NodeId, addr: &NodeAddr, pools: &Pools, opener: &Opener) -> Result<(usize, bool), CoordError> {
        self.open_kind(node, true, addr, pools, opener).await
    }

    async fn open_kind(
        &mut self,
        node: NodeId,
        scratch: bool,
        addr: &NodeAddr,
        pools: &Pools,
        opener: &Opener,
    ) -> Result<(usize, bool), CoordError> {
        let slot = self.list.iter().position(|c| c.node == node && c.scratch == scratch);
        if let Some(i) = slot
            && !self.list[i].dead
        {
            return Ok((i, false));
        }
        let mut conn = NodeConn::new(node, checkout(addr, pools, opener).await?);
        conn.scratch = scratch;
        conn.victim = self.victim.clone();
        match slot {
            Some(i) => {
                self.list[i] = conn;
                Ok((i, true))
            }
            None => {
                self.list.push(conn);
                Ok((self.list.len() - 1, true))
            }
        }
    }

    /// How many connections the session holds.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Takes every connection out (at the session's end).
    pub fn into_vec(self) -> Vec<NodeConn> {
        self.list
    }

    /// Takes every connection out, leaving the session parked: it holds none until
    /// [`set_home`](Self::set_home).
    pub fn take_all(&mut self) -> Vec<NodeConn> {
        std::mem::take(&mut self.list)
    }

    /// True while the session holds no connection (it gave them back while idle).
    pub fn is_parked(&self) -> bool {
        self.list.is_empty()
    }

    /// Gives a parked session its new home connection.
    pub fn set_home(&mut self, mut home: NodeConn) {
        debug_assert!(self.list.is_empty());
        home.victim = self.victim.clone();
        self.list.push(home);
    }
}
