//! The column types a table can be distributed on, and how their names and OIDs map to them.

use std::fmt;

use super::HashError;

/// Column types a table can be distributed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DistType {
    /// `smallint`.
    Int2,
    /// `integer`.
    Int4,
    /// `bigint`.
    Int8,
    /// `text`.
    Text,
    /// `character varying(n)`.
    Varchar,
    /// `character(n)`: trailing spaces are insignificant.
    Bpchar,
    /// `uuid`.
    Uuid,
    /// `date`.
    Date,
    /// `timestamp without time zone`.
    Timestamp,
    /// `timestamp with time zone`.
    Timestamptz,
    /// `boolean`.
    Bool,
    /// `numeric(p,s)`.
    Numeric,
    /// `bytea`.
    Bytea,
}

/// Every type, with its catalog name, its `format_type()` name and its OID.
const TYPES: [(DistType, &str, &str, u32); 13] = [
    (DistType::Int2, "int2", "smallint", 21),
    (DistType::Int4, "int4", "integer", 23),
    (DistType::Int8, "int8", "bigint", 20),
    (DistType::Text, "text", "text", 25),
    (DistType::Varchar, "varchar", "character varying", 1043),
    (DistType::Bpchar, "bpchar", "character", 1042),
    (DistType::Uuid, "uuid", "uuid", 2950),
    (DistType::Date, "date", "date", 1082),
    (
        DistType::Timestamp,
        "timestamp",
        "timestamp without time zone",
        1114,
    ),
    (
        DistType::Timestamptz,
        "timestamptz",
        "timestamp with time zone",
        1184,
    ),
    (DistType::Bool, "bool", "boolean", 16),
    (DistType::Numeric, "numeric", "numeric", 1700),
    (DistType::Bytea, "bytea", "bytea", 17),
];

/// Other spellings PostgreSQL accepts for the same types.
const ALIASES: [(&str, DistType); 3] = [
    ("int", DistType::Int4),
    ("char", DistType::Bpchar),
    ("decimal", DistType::Numeric),
];

impl DistType {
    /// Every type, in declaration order.
    pub const ALL: [DistType; 13] = [
        Self::Int2,
        Self::Int4,
        Self::Int8,
        Self::Text,
        Self::Varchar,
        Self::Bpchar,
        Self::Uuid,
        Self::Date,
        Self::Timestamp,
        Self::Timestamptz,
        Self::Bool,
        Self::Numeric,
        Self::Bytea,
    ];

    /// From PostgreSQL's `format_type()` text (`integer`, `character varying(20)`,
    /// `timestamp(3) with time zone`, `numeric(10,2)`, ...) or a short name (`int4`, `varchar`,
    /// `timestamptz`, ...), case-insensitive; type modifiers are ignored. Any other type
    /// (float, json, arrays, enums, domains, composites, ...) is [`HashError::Unhashable`].
    pub fn from_type_name(name: &str) -> Result<Self, HashError> {
        let normalized = normalize(name);
        let bare = normalized
            .strip_prefix("pg_catalog.")
            .unwrap_or(&normalized);
        TYPES
            .iter()
            .find(|(_, short, long, _)| bare == *short || bare == *long)
            .map(|(ty, ..)| *ty)
            .or_else(|| {
                ALIASES
                    .iter()
                    .find(|(alias, _)| bare == *alias)
                    .map(|(_, ty)| *ty)
            })
            .ok_or_else(|| HashError::Unhashable(name.trim().to_owned()))
    }

    /// From a type OID (21, 23, 20, 25, 1043, 1042, 2950, 1082, 1114, 1184, 16, 1700, 17).
    pub fn from_oid(oid: u32) -> Option<Self> {
        TYPES.iter().find(|t| t.3 == oid).map(|t| t.0)
    }

    /// The type's OID in PostgreSQL.
    pub fn oid(&self) -> u32 {
        self.entry().3
    }

    /// The canonical name stored in the catalog (`int8`, `varchar`, `timestamptz`, ...);
    /// [`DistType::from_type_name`] reads it back.
    pub fn name(&self) -> &'static str {
        self.entry().1
    }

    /// Whether values of this type are dates or timestamps (their errors have their own codes).
    pub(crate) fn is_datetime(&self) -> bool {
        matches!(self, Self::Date | Self::Timestamp | Self::Timestamptz)
    }

    fn entry(&self) -> &'static (DistType, &'static str, &'static str, u32) {
        let i = match self {
            Self::Int2 => 0,
            Self::Int4 => 1,
            Self::Int8 => 2,
            Self::Text => 3,
            Self::Varchar => 4,
            Self::Bpchar => 5,
            Self::Uuid => 6,
            Self::Date => 7,
            Self::Timestamp => 8,
            Self::Timestamptz => 9,
            Self::Bool => 10,
            Self::Numeric => 11,
            Self::Bytea => 12,
        };
        &TYPES[i]
    }
}

/// PostgreSQL's own name for the type, as `format_type()` prints it and error messages use it.
impl fmt::Display for DistType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.entry().2)
    }
}

/// Lower-cases a type name, drops type modifiers (`(20)`, `(10,2)`) and collapses whitespace.
fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut depth = 0u32;
    for c in name.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            c if c.is_whitespace() => {
                if !out.is_empty() && !out.ends_with(' ') {
                    out.push(' ');
                }
            }
            c => out.push(c.to_ascii_lowercase()),
        }
    }
    out.trim_end().to_owned()
}
