//! Why a value could not be placed, with the SQLSTATE PostgreSQL would use.

use tokio_postgres::error::SqlState;

use super::DistType;

/// Why a type cannot be distributed on, or a value cannot be coerced and hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The column's type has no canonical hash (float, json, arrays, enums, domains, ...).
    #[error("cannot distribute on a column of type {0}")]
    Unhashable(String),
    /// PostgreSQL's input function would reject the value too; `message` is its wording.
    #[error("{message}")]
    InvalidInput {
        /// The type the value was coerced to.
        ty: DistType,
        /// The value as given (lossy UTF-8 for binary input).
        value: String,
        /// PostgreSQL's error message.
        message: String,
    },
    /// The value is out of the type's range; `message` is PostgreSQL's wording.
    #[error("{message}")]
    OutOfRange {
        /// The type the value was coerced to.
        ty: DistType,
        /// The value as given.
        value: String,
        /// PostgreSQL's error message.
        message: String,
    },
    /// A `timestamptz` given without an offset: its value depends on the session's TimeZone.
    #[error(
        "a timestamp with time zone given without a UTC offset depends on the session time zone"
    )]
    NeedsTimeZone,
    /// A spelling PostgreSQL may accept but pgshard does not read (only ISO 8601 date/time
    /// input is read); the value is not known, so the statement must not be routed by it.
    #[error(
        "pgshard reads only ISO 8601 input for type {ty} (YYYY-MM-DD[ HH:MM:SS[.ffffff][+HH:MM]]), not \"{value}\""
    )]
    Unsupported {
        /// The type the value was coerced to.
        ty: DistType,
        /// The value as given.
        value: String,
    },
}

impl HashError {
    /// The SQLSTATE a client should see for this error.
    ///
    /// Close to PostgreSQL's but coarser in three places: a bad bytea hex digit (22023 in
    /// PostgreSQL), a NUL or invalid UTF-8 in text (22021), a bad binary parameter (22P03) all
    /// report 22P02 here, and a time zone offset out of range (22009) reports 22008.
    pub fn code(&self) -> SqlState {
        match self {
            Self::Unhashable(_) | Self::NeedsTimeZone | Self::Unsupported { .. } => {
                SqlState::FEATURE_NOT_SUPPORTED
            }
            Self::InvalidInput { ty, .. } if ty.is_datetime() => SqlState::INVALID_DATETIME_FORMAT,
            Self::InvalidInput { .. } => SqlState::INVALID_TEXT_REPRESENTATION,
            Self::OutOfRange { ty, .. } if ty.is_datetime() => SqlState::DATETIME_FIELD_OVERFLOW,
            Self::OutOfRange { .. } => SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        }
    }

    /// `invalid input syntax for type <ty>: "<value>"`.
    pub(crate) fn syntax(ty: DistType, value: &str) -> Self {
        Self::invalid(
            ty,
            value,
            format!("invalid input syntax for type {ty}: \"{value}\""),
        )
    }

    /// Invalid input with a message of its own.
    pub(crate) fn invalid(ty: DistType, value: &str, message: String) -> Self {
        Self::InvalidInput {
            ty,
            value: value.to_owned(),
            message,
        }
    }

    /// Out of range with a message of its own.
    pub(crate) fn range(ty: DistType, value: &str, message: String) -> Self {
        Self::OutOfRange {
            ty,
            value: value.to_owned(),
            message,
        }
    }

    /// A binary parameter whose bytes do not fit the type's receive format.
    pub(crate) fn binary(ty: DistType, bytes: &[u8], what: &str) -> Self {
        let message = if what.is_empty() {
            format!("incorrect binary data format for type {ty}")
        } else {
            what.to_owned()
        };
        Self::invalid(ty, &String::from_utf8_lossy(bytes), message)
    }

    /// A spelling pgshard does not read.
    pub(crate) fn unsupported(ty: DistType, value: &str) -> Self {
        Self::Unsupported {
            ty,
            value: value.to_owned(),
        }
    }
}
