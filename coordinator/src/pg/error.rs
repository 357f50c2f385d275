//! The one error type of the local PostgreSQL launcher, with messages written for the
//! person running `pgshard` (what went wrong, and what to do about it).

use std::path::PathBuf;

/// Everything that can go wrong while finding, creating, starting or stopping a local server.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// No directory with `postgres`, `initdb` and `pg_isready` was found.
    #[error(
        "no PostgreSQL server binaries found (looked in pg_config --bindir, PATH, \
         /usr/lib/postgresql/*/bin); install them, e.g. `apt-get install postgresql`"
    )]
    NoBinaries,

    /// `PGSHARD_PG_BINDIR` names a directory that lacks a needed program.
    #[error(
        "PGSHARD_PG_BINDIR={} has no `{missing}` program; point it at a PostgreSQL bin \
         directory (e.g. /usr/lib/postgresql/15/bin) or unset it",
        dir.display()
    )]
    BadBindir { dir: PathBuf, missing: &'static str },

    /// Something else listens on the port already.
    #[error(
        "port {port} is already in use on 127.0.0.1; choose another with --port (or stop the program using it)"
    )]
    PortInUse { port: u16 },

    /// The data directory belongs to a server that is still running.
    #[error(
        "data directory {} is in use by a running PostgreSQL server (pid {pid}); stop that \
         server or choose another --dir",
        dir.display()
    )]
    DirInUse { dir: PathBuf, pid: u32 },

    /// The directory holds something else than a PostgreSQL cluster; it is left untouched.
    #[error(
        "{} exists, is not empty and is not a PostgreSQL data directory (no PG_VERSION); \
         refusing to touch it, choose another --dir",
        dir.display()
    )]
    NotACluster { dir: PathBuf },

    /// The cluster was created by another major version than the binaries found.
    #[error(
        "data directory {} was created by PostgreSQL {found}, but the server binaries are \
         version {expected}; set PGSHARD_PG_BINDIR to the matching bin directory or choose \
         another --dir",
        dir.display()
    )]
    VersionMismatch {
        dir: PathBuf,
        found: String,
        expected: u32,
    },

    /// Running as root, the unprivileged service account cannot reach the data directory.
    #[error(
        "PostgreSQL refuses to run as root, so pgshard runs it as the system user `{user}`, \
         which cannot reach {} (a parent directory is not traversable for it, e.g. /root is \
         mode 0700); choose a --dir such as /var/lib/pgshard or /tmp/pgshard",
        dir.display()
    )]
    Unreachable { dir: PathBuf, user: String },

    /// The server exited, or did not accept connections in time. `log_tail` says which, then
    /// quotes the last lines this start wrote to the server's log.
    #[error("PostgreSQL instance `{name}` failed to start: {log_tail}")]
    StartFailed { name: String, log_tail: String },

    /// A helper program (initdb, useradd, chown, kill, ...) failed.
    #[error("`{command}` failed ({status}){}", stderr_suffix(stderr))]
    Command {
        command: String,
        status: String,
        stderr: String,
    },

    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl PgError {
    /// Wraps an I/O error with what we were doing.
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> PgError {
        let context = context.into();
        move |source| PgError::Io { context, source }
    }
}

fn stderr_suffix(stderr: &str) -> String {
    let stderr = stderr.trim();
    if stderr.is_empty() {
        String::new()
    } else {
        format!(": {stderr}")
    }
}
