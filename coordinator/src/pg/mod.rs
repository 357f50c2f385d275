//! Local PostgreSQL servers for `pgshard`: finding the server binaries, creating clusters with
//! initdb, running each `postgres` as a child process on 127.0.0.1 (as the unprivileged
//! `pgshard` account when we are root), waiting until it accepts connections, and stopping or
//! killing it. Servers cannot outlive the coordinator: they get SIGINT (fast shutdown) when it
//! dies, however it dies.
//!
//! ```no_run
//! # fn main() -> Result<(), pgshard::pg::PgError> {
//! use pgshard::pg::{InstanceConfig, PgBinaries, PgInstance};
//! let bins = PgBinaries::discover()?;
//! let config = InstanceConfig {
//!     name: "dn1".into(),
//!     datadir: "/var/lib/pgshard/dn1".into(),
//!     port: 5433,
//!     settings: vec![("max_prepared_transactions".into(), "100".into())],
//!     fast: false,
//! };
//! let mut dn1 = PgInstance::start(&bins, config)?;
//! dn1.stop()?;
//! # Ok(())
//! # }
//! ```

mod account;
mod binaries;
mod datadir;
mod error;
mod instance;
mod process;
mod shutdown;

#[cfg(test)]
mod tests;

pub use account::SERVICE_ACCOUNT;
pub use binaries::{BINDIR_ENV, PgBinaries};
pub use error::PgError;
pub use instance::{InstanceConfig, PgInstance};

use std::net::{Ipv4Addr, TcpListener};

/// A free TCP port on 127.0.0.1 (bind port 0, read it, release it).
///
/// Another process may take the port before it is used; [`PgInstance::start`] then fails
/// with [`PgError::PortInUse`].
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
