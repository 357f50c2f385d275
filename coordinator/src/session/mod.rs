//! A client session: after authentication it takes a connection to the default data node
//! (home), replays that node's startup ParameterStatus to the client, and then serves requests
//! one at a time until either side ends.
//!
//! A request is a simple Query, a FunctionCall, or the extended-protocol messages up to a Sync
//! or Flush. Each statement is placed (see `route`): most go to home as written; transaction
//! control is handled here (`txn`). The messages of a request that go to one connection are sent
//! in one write and that node's answers relayed back undecoded (`relay`), with exact bookkeeping
//! of what it still owes, so a pgbench query costs one read and one write on each side. While
//! no request runs, home is still watched, so a NOTIFY or a FATAL reaches an idle client at once.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pgshard_catalog::CatalogSnapshot;
use pgshard_txn::TxnStatus;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::startup::{BackendKeyData, SecretKey};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::backend::{Pooled, StartupFailure};
use crate::cancel::CancelTarget;
use crate::error::{CoordError, Severity};
use crate::frontend::{self, ClientStartup, Opening};
use crate::server::Shared;
use crate::wire::encode;

mod bind;
mod binval;
pub(crate) mod broadcast;
mod block;
mod client;
mod clock;
mod commit;
mod conns;
mod copy_in;
mod dispatch;
mod explain;
mod extended;
mod fanout;
mod insert_select;
mod local;
mod merge;
mod msg;
mod park;
mod plan;
mod pull;
mod relay;
mod route;
pub(crate) mod shape;
mod simple;
mod sortmerge;
mod substitute;
mod txn;

use client::{ClientIo, READ_CHUNK};
use conns::{Conns, NodeConn, Opener};
use extended::Statements;
use relay::{Interrupted, Owed};
use txn::TxnState;

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
    let opener = Opener { params: startup.params.clone(), password: startup.password.clone() };
    let pooled = match attach(&mut stream, &shared, startup).await {
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
    let (pid, secret, cancel_targets) = shared.cancels.register(target);
    tracing::debug!(%peer, %user, pid, "session started");
    let home_node = match shared.catalog().default_node() {
        Ok(n) => n.id,
        Err(e) => {
            tracing::warn!(error = %e, "catalog lost its default node");
            shared.cancels.unregister(pid, secret);
            return;
        }
    };
    let mut session = Session {
        client: ClientIo::new(stream, buf),
        conns: Conns::new(NodeConn::new(home_node, pooled)),
        shared: shared.clone(),
        opener,
        txn: TxnState::Idle,
        statements: Statements::default(),
        custom_variable: false,
        pinned: false,
        busy: false,
        settings: Vec::new(),
        last_query_failed: false,
        extended: false,
        cancel_targets,
        binary_results: false,
        result_formats: Vec::new(),
    };
    session.shared.backends.register(home_node, session.conns.peek(0).pooled.conn.backend_pid, &session.conns.victim);
    let reason = session.run(pid, secret, shutdown).await;
    shared.cancels.unregister(pid, secret);
    tracing::debug!(%peer, %user, pid, reason = ?reason, "session ended");
    session.finish(reason).await;
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
    /// A data node closed the connection or it failed; `told` when its last message, already
    /// forwarded, was an ErrorResponse saying why (a FATAL such as 57P01).
    NodeGone { why: String, told: bool },
    /// The coordinator is shutting down and the session was idle.
    Shutdown,
    /// A parked session could not get a connection back for its next message.
    NoConnection(CoordError),
}

impl From<Interrupted> for EndReason {
    fn from(i: Interrupted) -> Self {
        match i {
            Interrupted::ClientGone => EndReason::ClientGone,
            Interrupted::NodeGone { why, told } => EndReason::NodeGone { why, told },
            Interrupted::Protocol(e) => EndReason::ClientProtocol(e),
        }
    }
}

impl EndReason {
    /// The FATAL error to send the client, if any.
    fn client_error(self) -> Option<CoordError> {
        match self {
            EndReason::Terminated | EndReason::ClientGone | EndReason::NodeGone { told: true, .. } => None,
            EndReason::ClientProtocol(e) => Some(CoordError::Protocol(e.to_string())),
            EndReason::NodeGone { why, told: false } => Some(CoordError::NodeLost(why)),
            EndReason::Shutdown => Some(CoordError::ShuttingDown),
            EndReason::NoConnection(e) => Some(e),
        }
    }
}

/// How a client request ended (extended-protocol batches end at Sync or Flush).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchEnd {
    Sync,
    Flush,
}

/// One client session.
pub(crate) struct Session {
    client: ClientIo,
    conns: Conns,
    shared: Arc<Shared>,
    opener: Opener,
    txn: TxnState,
    statements: Statements,
    /// The session may have defined a custom variable, which outlives DISCARD ALL.
    custom_variable: bool,
    /// The session may hold state on its connections that it could not rebuild on others: it
    /// keeps them while idle (see `park.rs`).
    pinned: bool,
    /// A request is in flight: connections are not at a clean boundary.
    busy: bool,
    /// Session-level settings run on home (SET, RESET, DISCARD), in order: repeated on the
    /// session's other data-node connections, and on each one it opens later.
    settings: Vec<String>,
    /// The last Query sent with `send_query` ended in an error.
    last_query_failed: bool,
    /// A local portal is executing: answers take the extended protocol's form (no
    /// RowDescription, no ReadyForQuery; an error skips to Sync).
    extended: bool,
    /// The session's backends a client's CancelRequest reaches.
    cancel_targets: crate::cancel::CancelTargets,
    /// The local portal running asked for binary results (functions answer in binary then).
    binary_results: bool,
    /// The running local portal's result format codes.
    result_formats: Vec<i16>,
}

impl Session {
    async fn run(&mut self, pid: i32, secret: i32, mut shutdown: watch::Receiver<bool>) -> EndReason {
        let mut hello = BytesMut::new();
        for p in &self.conns.get(0).pooled.conn.startup_params {
            hello.extend_from_slice(p);
        }
        encode(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(pid, SecretKey::I32(secret))), &mut hello);
        msg::ready(b'I', &mut hello);
        if self.client.push(&hello).await.is_err() || self.client.flush().await.is_err() {
            return EndReason::ClientGone;
        }
        let mut stopping = *shutdown.borrow();
        let mut batch: Vec<(u8, Bytes)> = Vec::new();
        loop {
            let next = match self.client.next_buffered() {
                Ok(m) => m,
                Err(e) => return EndReason::ClientProtocol(e),
            };
            let Some((tag, m)) = next else {
                if !batch.is_empty() {
                    match self.client.fill().await {
                        Ok(true) => continue,
                        _ => return EndReason::ClientGone,
                    }
                }
                if let Err(i) = self.client.flush().await.map_err(|_| Interrupted::ClientGone) {
                    return i.into();
                }
                if stopping && self.status() == TxnStatus::Idle {
                    return EndReason::Shutdown;
                }
                match self.wait_idle(&mut shutdown, &mut stopping).await {
                    Ok(()) => continue,
                    Err(reason) => return reason,
                }
            };
            if tag == b'X' {
                return EndReason::Terminated;
            }
            if self.conns.is_parked()
                && let Err(e) = self.unpark().await
            {
                return EndReason::NoConnection(e);
            }
            if !self.busy {
                // A mark the detector set after the session's statement had already ended.
                self.conns.victim.store(false, std::sync::atomic::Ordering::SeqCst);
            }
            self.busy = true;
            let done = match tag {
                b'P' | b'B' | b'D' | b'E' | b'C' => {
                    if tag == b'P' && crate::guc::may_define_custom_variable(&m[5..]) {
                        self.custom_variable = true;
                    }
                    if tag == b'P' && !self.pinned && crate::guc::pins_session(&m[5..], true) {
                        self.pinned = true;
                    }
                    batch.push((tag, m));
                    Ok(())
                }
                b'S' => self.run_batch(std::mem::take(&mut batch), BatchEnd::Sync).await,
                b'H' => self.run_batch(std::mem::take(&mut batch), BatchEnd::Flush).await,
                // Leftovers of a COPY the node already ended: PostgreSQL ignores them too.
                b'd' | b'c' | b'f' => Ok(()),
                _ => {
                    let pending = std::mem::take(&mut batch);
                    let r = if pending.is_empty() { Ok(()) } else { self.run_batch(pending, BatchEnd::Flush).await };
                    match r {
                        Ok(()) => self.run_single(tag, m).await,
                        Err(i) => Err(i),
                    }
                }
            };
            if let Err(i) = done {
                return i.into();
            }
            if batch.is_empty() {
                self.busy = false;
            }
        }
    }

    /// Waits for the client while forwarding what home says unasked (NOTIFY, a FATAL); gives
    /// the connections back when other sessions wait for one and this one can (`park.rs`).
    async fn wait_idle(&mut self, shutdown: &mut watch::Receiver<bool>, stopping: &mut bool) -> Result<(), EndReason> {
        let pools = self.shared.pools.clone();
        let parkable = self.can_park();
        if self.conns.is_parked() {
            return tokio::select! {
                r = self.client.fill() => match r {
                    Ok(true) => Ok(()),
                    _ => Err(EndReason::ClientGone),
                },
                r = shutdown.changed(), if !*stopping => {
                    *stopping = r.is_err() || *shutdown.borrow();
                    Ok(())
                }
            };
        }
        let home = self.conns.get(0);
        let park = tokio::select! {
            r = self.client.fill() => match r {
                Ok(true) => false,
                _ => return Err(EndReason::ClientGone),
            },
            r = home.fill() => match r {
                Ok(true) => {
                    let mut last = 0;
                    while let Some((tag, m)) = home.buffered().map_err(|e| EndReason::NodeGone { why: e.to_string(), told: false })? {
                        last = tag;
                        self.client.push(&m).await.map_err(|_| EndReason::ClientGone)?;
                    }
                    self.client.flush().await.map_err(|_| EndReason::ClientGone)?;
                    if last == b'E' {
                        // An error from an idle backend is its FATAL: the connection ends.
                        return Err(EndReason::NodeGone { why: "the data node ended the session".into(), told: true });
                    }
                    false
                }
                Ok(false) => return Err(EndReason::NodeGone { why: "the data node closed the connection".into(), told: false }),
                Err(e) => return Err(EndReason::NodeGone { why: e.to_string(), told: false }),
            },
            r = shutdown.changed(), if !*stopping => {
                *stopping = r.is_err() || *shutdown.borrow();
                false
            }
            () = pools.pressure().notified(), if parkable => true,
        };
        if park {
            self.park();
        }
        Ok(())
    }

    /// The catalog now in force.
    fn catalog(&self) -> Arc<CatalogSnapshot> {
        self.shared.catalog()
    }

    /// Sends `frames` to connection `i` booked as `units`, then relays until settled.
    async fn exchange(&mut self, i: usize, owed: &mut Owed) -> Result<(), Interrupted> {
        let conn = self.conns.get(i);
        relay::relay_all(conn, owed, &mut self.client).await
    }

    /// Queues an error and ReadyForQuery with the client's status.
    async fn answer_error(&mut self, err: &CoordError) -> Result<(), Interrupted> {
        msg::error(err, self.client.out());
        self.fail_block();
        if self.extended {
            self.skip_to_sync();
            return Ok(());
        }
        let status = self.status().as_byte();
        msg::ready(status, self.client.out());
        self.client.maybe_flush().await.map_err(|_| Interrupted::ClientGone)
    }

    /// Gives the connections back to the pool and tells the client why the session ended.
    async fn finish(mut self, reason: EndReason) {
        let resting = matches!(reason, EndReason::Terminated | EndReason::ClientGone | EndReason::Shutdown) && !self.busy;
        if let Some(err) = reason.client_error() {
            err.encode(Severity::Fatal, self.client.out());
        }
        let _ = self.client.flush().await;
        for conn in self.conns.into_vec() {
            self.shared.backends.unregister(conn.node, conn.pooled.conn.backend_pid);
            let clean = resting && !conn.torn && !conn.dead && !self.custom_variable;
            let in_txn = conn.status != b'I';
            self.shared.pools.checkin(conn.pooled, clean, in_txn);
        }
    }
}
