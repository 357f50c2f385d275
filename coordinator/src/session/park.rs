//! Idle sessions give their data-node connections back when others wait for one.
//!
//! A session keeps its connections while it may have state on them that the coordinator could
//! not rebuild elsewhere: a transaction block, statements prepared on home (the client's
//! extended-protocol statements), SQL-level state the text scan of [`crate::guc::pins_session`]
//! spots (PREPARE, LISTEN, temporary objects, advisory locks, cursors WITH HOLD, sequence
//! calls, ...), a custom variable. Otherwise, when the pool signals pressure, the idle session
//! checks its connections in (reset with `DISCARD ALL`) and, with the client's next message,
//! takes a new home and replays its recorded settings (SET, RESET, DISCARD). Statements routed
//! to shards are prepared again on the new connections on first use.

use super::conns::{NodeConn, checkout};
use super::txn::TxnState;
use super::Session;
use crate::error::CoordError;

impl Session {
    /// Whether the idle session can give its connections back now.
    pub(super) fn can_park(&self) -> bool {
        !self.pinned
            && !self.custom_variable
            && !self.busy
            && matches!(self.txn, TxnState::Idle)
            && !self.conns.is_parked()
            && self.statements.none_on_home()
            && (0..self.conns.len()).all(|i| {
                let c = self.conns.peek(i);
                c.dead || (c.status == b'I' && !c.torn)
            })
    }

    /// Gives every connection back to the pool (see [`can_park`](Self::can_park)).
    pub(super) fn park(&mut self) {
        for i in 0..self.conns.len() {
            self.forget_backend(i);
        }
        self.statements.portals.clear();
        for conn in self.conns.take_all() {
            let clean = !conn.dead && !conn.torn;
            self.shared.pools.checkin(conn.pooled, clean, false);
        }
        tracing::trace!("idle session gave its connections back");
    }

    /// Takes a new home connection for a parked session and replays its settings.
    pub(super) async fn unpark(&mut self) -> Result<(), CoordError> {
        let catalog = self.catalog();
        let home = catalog.default_node()?.id;
        let addr = self.shared.default_node()?;
        let pooled = checkout(&addr, &self.shared.pools, &self.opener).await?;
        self.conns.set_home(NodeConn::new(home, pooled));
        self.note_backend(0);
        self.setup_conn(0).await
    }
}
