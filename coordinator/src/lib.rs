//! The pgshard coordinator: a PostgreSQL-protocol front door that places each statement on
//! data-node PostgreSQL servers, plus the local cluster launcher behind `pgshard up`.
//!
//! Data flows one way: [`session`] -> `pgshard_planner::plan` (with a catalog snapshot) ->
//! the data node -> the client. Module map: [`config`] (file, flags, env), [`server`]
//! (listener, shutdown), `frontend` (client startup and auth), `session` (the relay),
//! `backend` (data-node connections and pools), `cancel` (cancel keys), [`dtx`] (distributed transactions), [`pg`] (local
//! PostgreSQL processes), [`up`] (the embedded cluster).

pub mod bench;
pub mod config;
pub mod distribute;
pub mod dtx;
pub mod pg;
pub mod server;
pub mod up;

mod backend;
mod cancel;
mod error;
mod frontend;
mod guc;
pub mod lease;
mod session;
mod wire;

pub use error::CoordError;

/// Raises this process's open-file limit to its hard limit: every client session and every
/// data-node connection is a file descriptor, and the usual soft limit (1024) would cap a
/// coordinator far below the thousands of sessions it can hold. Failures are logged, not fatal.
pub fn raise_open_files_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // An unlimited hard limit still stops at the kernel's nr_open (2^20 by default).
    let target = limit.maximum.unwrap_or(1 << 20);
    if limit.current.is_some_and(|c| c < target) {
        let raised = Rlimit { current: Some(target), maximum: limit.maximum };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::debug!(from = ?limit.current, to = target, "raised the open-files limit"),
            Err(e) => tracing::warn!(error = %e, "could not raise the open-files limit"),
        }
    }
}
