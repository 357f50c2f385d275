//! A client session: after authentication it takes a connection to the data node the plan
//! names, replays that node's startup ParameterStatus to the client, and then relays messages
//! both ways, undecoded, until either side ends.
//!
//! The relay runs the two directions concurrently in one task, so a client that pipelines
//! (pgbench, JDBC batches, COPY) never deadlocks against a node that is writing back. Each
//! direction reads whatever is available and forwards all complete messages in one write, so a
//! pgbench query costs one read and one write per side. Only a few message types are looked at:
//! Terminate (ends the session), ReadyForQuery (transaction status), and the messages that
//! decide whether the node connection is left at a clean boundary and can be pooled again.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};

use bytes::BytesMut;
use pgshard_txn::TxnStatus;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::{BackendKeyData, SecretKey};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::backend::{Pooled, StartupFailure};
use crate::cancel::CancelTarget;
use crate::error::{CoordError, Severity};
use crate::frontend::{self, ClientStartup, Opening};
use crate::server::Shared;
use crate::wire::{complete_prefix, encode};

/// Read buffers grow in steps of this much.
const READ_CHUNK: usize = 16 * 1024;

/// Serves one client connection from its first byte to its end.
pub async fn serve(mut stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let startup = match frontend::open(&mut stream, &mut buf, &shared.auth, &shared.cancels).await {
        Ok(Opening::Session(s)) => s,
        Ok(Opening::Cancelled) => return,
        Err(e) => {
            tracing::info!(%peer, error = %e, "connection refused at startup");
            return;
        }
    };
    let user = startup.user.clone();
    let mut pooled = match attach(&mut stream, &shared, startup).await {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(%peer, %user, error = %e, "session could not start");
            return;
        }
    };
    let target = CancelTarget {
        addr: pooled.key().addr().to_owned(),
        pid: pooled.conn.backend_pid,
        secret: pooled.conn.backend_secret,
    };
    let (pid, secret) = shared.cancels.register(target);
    tracing::debug!(%peer, %user, pid, "session started");
    let end = relay(&mut stream, buf, &mut pooled, pid, secret, shutdown).await;
    shared.cancels.unregister(pid, secret);
    tracing::debug!(%peer, %user, pid, reason = ?end.reason, "session ended");
    if let Some(err) = end.reason.client_error() {
        let mut out = BytesMut::new();
        err.encode(Severity::Fatal, &mut out);
        let _ = stream.write_all(&out).await;
    }
    shared.pools.checkin(pooled, end.clean, end.status != TxnStatus::Idle);
}

/// Plans where the session runs, checks out a node connection and finishes the client's
/// startup with that node's ParameterStatus values. On failure the client has been told.
async fn attach(stream: &mut TcpStream, shared: &Shared, startup: ClientStartup) -> Result<Pooled, CoordError> {
    let node = shared.default_node();
    let checkout = match node {
        Ok(node) => shared.pools.checkout(&node, startup.params, startup.password.as_deref()).await,
        Err(e) => Err(StartupFailure::Failed(e)),
    };
    match checkout {
        Ok(pooled) => Ok(pooled),
        Err(StartupFailure::Refused(raw)) => {
            // The node's own FATAL (unknown database, role, ...), as PostgreSQL sent it.
            stream.write_all(&raw).await?;
            Err(CoordError::Protocol(String::from_utf8_lossy(&raw[5..]).replace('\0', " ")))
        }
        Err(StartupFailure::Failed(e)) => {
            let mut out = BytesMut::new();
            e.encode(Severity::Fatal, &mut out);
            stream.write_all(&out).await?;
            Err(e)
        }
    }
}

/// Why a session ended.
#[derive(Debug)]
enum EndReason {
    /// The client sent Terminate.
    Terminated,
    /// The client closed its socket or it failed.
    ClientGone,
    /// The client sent something that is not a protocol message.
    ClientProtocol(CoordError),
    /// The data node closed the connection or it failed; `told` when its last message, already
    /// forwarded, was an ErrorResponse saying why (a FATAL such as 57P01).
    NodeGone { why: String, told: bool },
    /// The coordinator is shutting down and the session was idle.
    Shutdown,
}

impl EndReason {
    /// The FATAL error to send the client, if any.
    fn client_error(&self) -> Option<CoordError> {
        match self {
            EndReason::Terminated | EndReason::ClientGone => None,
            EndReason::ClientProtocol(e) => Some(CoordError::Protocol(e.to_string())),
            EndReason::NodeGone { told: true, .. } => None,
            EndReason::NodeGone { why, told: false } => Some(CoordError::NodeLost(why.clone())),
            EndReason::Shutdown => Some(CoordError::ShuttingDown),
        }
    }
}

struct RelayEnd {
    reason: EndReason,
    clean: bool,
    status: TxnStatus,
}

/// What the two directions share. Both run in one task; atomics only because the task is Send.
#[derive(Default)]
struct RelayState {
    /// Client messages that await a ReadyForQuery (Query, Sync, FunctionCall) minus those seen.
    awaiting_ready: AtomicI64,
    /// Extended-protocol messages were sent since the last Sync.
    unsynced: AtomicBool,
    /// A write to the node was cut off mid-message.
    torn_write: AtomicBool,
    /// The session may have defined a custom variable, which outlives DISCARD ALL.
    defined_custom_variable: AtomicBool,
    /// The last transaction status the node reported.
    status: AtomicU8,
}

impl RelayState {
    fn status(&self) -> TxnStatus {
        TxnStatus::from_byte(self.status.load(Ordering::Relaxed)).unwrap_or_default()
    }

    /// Looks at the text of a Query or Parse message (`msg` starts at its type byte).
    fn note_statement(&self, msg: &[u8]) {
        let len = u32::from_be_bytes([msg[1], msg[2], msg[3], msg[4]]) as usize;
        if crate::guc::may_define_custom_variable(&msg[5..1 + len]) {
            self.defined_custom_variable.store(true, Ordering::Relaxed);
        }
    }

    fn idle(&self) -> bool {
        self.awaiting_ready.load(Ordering::Relaxed) <= 0 && !self.unsynced.load(Ordering::Relaxed)
    }
}

async fn relay(
    client: &mut TcpStream,
    client_buf: BytesMut,
    pooled: &mut Pooled,
    pid: i32,
    secret: i32,
    shutdown: watch::Receiver<bool>,
) -> RelayEnd {
    let state = RelayState::default();
    state.status.store(b'I', Ordering::Relaxed);
    let mut hello = BytesMut::new();
    for p in &pooled.conn.startup_params {
        hello.extend_from_slice(p);
    }
    encode(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(pid, SecretKey::I32(secret))), &mut hello);
    encode(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(TransactionStatus::Idle)), &mut hello);
    if client.write_all(&hello).await.is_err() {
        return RelayEnd { reason: EndReason::ClientGone, clean: true, status: TxnStatus::Idle };
    }
    let conn = &mut pooled.conn;
    let (mut client_rd, mut client_wr) = client.split();
    let (mut node_rd, mut node_wr) = conn.stream.split();
    let reason = tokio::select! {
        r = client_to_node(&mut client_rd, client_buf, &mut node_wr, &state) => r,
        r = node_to_client(&mut node_rd, &mut conn.read_buf, &mut client_wr, &state, shutdown) => r,
    };
    let clean = matches!(reason, EndReason::Terminated | EndReason::ClientGone | EndReason::Shutdown)
        && state.idle()
        && !state.torn_write.load(Ordering::Relaxed)
        && !state.defined_custom_variable.load(Ordering::Relaxed);
    RelayEnd { reason, clean, status: state.status() }
}

async fn client_to_node<R, W>(client: &mut R, mut buf: BytesMut, node: &mut W, state: &RelayState) -> EndReason
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut tags = Vec::new();
    loop {
        let complete = match complete_prefix(&buf, &mut tags) {
            Ok(n) => n,
            Err(e) => return EndReason::ClientProtocol(e),
        };
        let mut forward = complete;
        let mut terminated = false;
        for &(tag, at) in &tags {
            match tag {
                b'X' => {
                    forward = at;
                    terminated = true;
                    break;
                }
                b'Q' => {
                    state.awaiting_ready.fetch_add(1, Ordering::Relaxed);
                    state.note_statement(&buf[at..]);
                }
                b'F' => {
                    state.awaiting_ready.fetch_add(1, Ordering::Relaxed);
                }
                b'S' => {
                    state.awaiting_ready.fetch_add(1, Ordering::Relaxed);
                    state.unsynced.store(false, Ordering::Relaxed);
                }
                b'P' => {
                    state.unsynced.store(true, Ordering::Relaxed);
                    state.note_statement(&buf[at..]);
                }
                b'B' | b'D' | b'E' | b'C' | b'H' => state.unsynced.store(true, Ordering::Relaxed),
                _ => {}
            }
        }
        if forward > 0 {
            let chunk = buf.split_to(forward);
            state.torn_write.store(true, Ordering::Relaxed);
            if let Err(e) = node.write_all(&chunk).await {
                return EndReason::NodeGone { why: e.to_string(), told: false };
            }
            state.torn_write.store(false, Ordering::Relaxed);
        }
        if terminated {
            return EndReason::Terminated;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        match client.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return EndReason::ClientGone,
            Ok(_) => {}
        }
    }
}

async fn node_to_client<R, W>(
    node: &mut R,
    buf: &mut BytesMut,
    client: &mut W,
    state: &RelayState,
    mut shutdown: watch::Receiver<bool>,
) -> EndReason
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut tags = Vec::new();
    let mut stopping = *shutdown.borrow();
    let mut last_tag = 0u8;
    loop {
        let complete = match complete_prefix(buf, &mut tags) {
            Ok(n) => n,
            Err(e) => return EndReason::NodeGone { why: e.to_string(), told: false },
        };
        if let Some(&(tag, _)) = tags.last() {
            last_tag = tag;
        }
        for &(tag, at) in &tags {
            if tag == b'Z' {
                state.status.store(buf[at + 5], Ordering::Relaxed);
                state.awaiting_ready.fetch_sub(1, Ordering::Relaxed);
            }
        }
        if complete > 0 {
            let chunk = buf.split_to(complete);
            if client.write_all(&chunk).await.is_err() {
                return EndReason::ClientGone;
            }
        }
        if stopping && state.idle() && state.status() == TxnStatus::Idle && buf.is_empty() {
            return EndReason::Shutdown;
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        tokio::select! {
            r = node.read_buf(buf) => match r {
                Ok(0) => return EndReason::NodeGone {
                    why: "the data node closed the connection".into(),
                    told: last_tag == b'E',
                },
                Err(e) => return EndReason::NodeGone { why: e.to_string(), told: last_tag == b'E' },
                Ok(_) => {}
            },
            r = shutdown.changed(), if !stopping => {
                stopping = r.is_err() || *shutdown.borrow();
            }
        }
    }
}
