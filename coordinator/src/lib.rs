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
