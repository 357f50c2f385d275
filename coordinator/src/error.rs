//! The coordinator's own errors, and the one place an error becomes an ErrorResponse.
//!
//! A data node's error is never turned into one of these: it is forwarded to the client as the
//! node sent it. These are the errors the coordinator itself raises, each with the SQLSTATE
//! PostgreSQL would use for the same situation.

use std::io;

use bytes::BytesMut;
use pgwire::error::ErrorInfo;
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::response::ErrorResponse;
use tokio_postgres::error::SqlState;

/// Errors raised by the coordinator itself.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// The client broke the wire protocol.
    #[error("{0}")]
    Protocol(String),
    /// Password authentication failed (wrong password or unknown user).
    #[error("password authentication failed for user \"{0}\"")]
    AuthFailed(String),
    /// The client asked for something the coordinator does not do.
    #[error("{0}")]
    Unsupported(String),
    /// A data node could not be reached or dropped the connection.
    #[error("could not connect to data node {node} ({addr}): {reason}")]
    NodeUnavailable { node: String, addr: String, reason: String },
    /// The connection to a data node broke in the middle of a session.
    #[error("connection to data node lost: {0}")]
    NodeLost(String),
    /// The pool for a data node is exhausted and no connection came free in time.
    #[error("sorry, too many clients already (no connection to data node {0} came free in time)")]
    PoolExhausted(String),
    /// The catalog cannot answer (no data node registered, say).
    #[error("{0}")]
    Catalog(#[from] pgshard_catalog::CatalogError),
    /// The planner could not place the statement.
    #[error("{0}")]
    Plan(#[from] pgshard_planner::PlanError),
    /// A statement the coordinator runs itself failed for a reason PostgreSQL names with
    /// `code` (unknown table 42P01, unhashable type 42804, ...).
    #[error("{message}")]
    Sql {
        /// The SQLSTATE PostgreSQL would use.
        code: SqlState,
        /// Primary message.
        message: String,
        /// DETAIL field, if any.
        detail: Option<String>,
        /// HINT field, if any.
        hint: Option<String>,
    },
    /// A data node or the metadata store refused a statement the coordinator sent on its own
    /// connection: forwarded with the node's fields.
    #[error("{}", .0.message())]
    Node(Box<tokio_postgres::error::DbError>),
    /// The coordinator is shutting down.
    #[error("terminating connection due to administrator command")]
    ShuttingDown,
    /// A socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl CoordError {
    /// A coordinator error with this SQLSTATE and message.
    pub fn sql(code: SqlState, message: impl Into<String>) -> Self {
        CoordError::Sql { code, message: message.into(), detail: None, hint: None }
    }

    /// Adds a HINT to an [`CoordError::Sql`] error (other kinds are returned unchanged).
    pub fn with_hint(mut self, text: impl Into<String>) -> Self {
        if let CoordError::Sql { hint, .. } = &mut self {
            *hint = Some(text.into());
        }
        self
    }

    /// Adds a DETAIL to an [`CoordError::Sql`] error (other kinds are returned unchanged).
    pub fn with_detail(mut self, text: impl Into<String>) -> Self {
        if let CoordError::Sql { detail, .. } = &mut self {
            *detail = Some(text.into());
        }
        self
    }

    /// Turns a tokio-postgres error from the coordinator's own connections into the node's
    /// error when it carries one, else a lost connection.
    pub fn from_pg(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => CoordError::Node(Box::new(db.clone())),
            None => CoordError::NodeLost(e.to_string()),
        }
    }

    /// The SQLSTATE PostgreSQL uses for this kind of failure.
    pub fn sqlstate(&self) -> &SqlState {
        match self {
            CoordError::Protocol(_) => &SqlState::PROTOCOL_VIOLATION,
            CoordError::AuthFailed(_) => &SqlState::INVALID_PASSWORD,
            CoordError::Unsupported(_) => &SqlState::FEATURE_NOT_SUPPORTED,
            CoordError::NodeUnavailable { .. } | CoordError::NodeLost(_) => &SqlState::CONNECTION_FAILURE,
            CoordError::PoolExhausted(_) => &SqlState::TOO_MANY_CONNECTIONS,
            CoordError::Catalog(e) => e.sqlstate(),
            CoordError::Plan(_) => &SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
            CoordError::Sql { code, .. } => code,
            CoordError::Node(e) => e.code(),
            CoordError::ShuttingDown => &SqlState::ADMIN_SHUTDOWN,
            CoordError::Io(_) => &SqlState::CONNECTION_FAILURE,
        }
    }

    /// Appends this error as an ErrorResponse with the given severity (`ERROR` or `FATAL`).
    pub fn encode(&self, severity: Severity, out: &mut BytesMut) {
        let mut info = ErrorInfo::new(severity.as_str().to_owned(), self.sqlstate().code().to_owned(), self.to_string());
        match self {
            CoordError::Sql { detail, hint, .. } => {
                info.detail = detail.clone();
                info.hint = hint.clone();
            }
            CoordError::Node(e) => {
                info.detail = e.detail().map(str::to_owned);
                info.hint = e.hint().map(str::to_owned);
                info.schema = e.schema().map(str::to_owned);
                info.table = e.table().map(str::to_owned);
                info.column = e.column().map(str::to_owned);
                info.constraint = e.constraint().map(str::to_owned);
                info.datatype = e.datatype().map(str::to_owned);
                info.where_context = e.where_().map(str::to_owned);
            }
            _ => {}
        }
        let msg = PgWireBackendMessage::ErrorResponse(ErrorResponse::from(info));
        // Encoding into a BytesMut cannot fail for a well-formed message.
        if let Err(e) = msg.encode(out) {
            tracing::error!(error = %e, "could not encode an ErrorResponse");
        }
    }
}

/// Severity of an ErrorResponse the coordinator sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The statement failed; the session goes on.
    Error,
    /// The session ends after this message.
    Fatal,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "ERROR",
            Severity::Fatal => "FATAL",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_postgres_sqlstates() {
        assert_eq!(CoordError::AuthFailed("u".into()).sqlstate().code(), "28P01");
        assert_eq!(CoordError::PoolExhausted("dn1".into()).sqlstate().code(), "53300");
        assert_eq!(CoordError::ShuttingDown.sqlstate().code(), "57P01");
        assert_eq!(CoordError::Unsupported("x".into()).sqlstate().code(), "0A000");
    }

    #[test]
    fn encoded_error_has_code_and_message_fields() {
        let mut out = BytesMut::new();
        CoordError::AuthFailed("bob".into()).encode(Severity::Fatal, &mut out);
        assert_eq!(out[0], b'E');
        let body = String::from_utf8_lossy(&out[5..]);
        assert!(body.contains("SFATAL"));
        assert!(body.contains("C28P01"));
        assert!(body.contains("password authentication failed for user \"bob\""));
    }
}
