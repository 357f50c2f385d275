//! Where a row lives: the hash of a distribution value and the split of the hash space into
//! shards (DESIGN.md, decision 3).
//!
//! A value is first coerced to the distribution column's type, as PostgreSQL's input (or
//! receive) function would, into a canonical [`DistValue`]: integers of any width become one
//! `i64`, `1.50` and `1.5` become the same numeric, `'ab  '::bpchar` loses its trailing
//! spaces, every spelling of a uuid gives the same 16 bytes. [`DistValue::hash`] is xxh3-64
//! (seed 0) over a one-byte type-family tag followed by the canonical bytes. The 64-bit hash
//! space is cut into `shard_count` equal, contiguous ranges ([`shard_index`], [`shard_range`]);
//! ranges rather than modulo, so a shard can later be split in place.
//!
//! **Never change the result of this module once data exists**: every stored row was placed by
//! it. The golden vectors in `hash/tests.rs` pin it.
//!
//! What the caller must still do:
//! - coerce to the *column's* type family: a numeric literal compared with an integer column, or
//!   a parameter bound as `text` for a `uuid` column, must be converted first; [`DistValue`]
//!   only knows the one type it is given;
//! - apply a type modifier that changes a value on assignment before hashing it for an INSERT
//!   (`numeric(10,2)` rounds `1.505` to `1.51`, `timestamp(0)` rounds fractional seconds,
//!   `varchar(2)` drops excess trailing spaces); [`DistType`] deliberately ignores modifiers;
//! - refuse distribution on text columns with a nondeterministic collation (equal values
//!   would hash apart).

mod binary;
mod datetime;
mod error;
mod numeric;
mod text;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_pg;
#[cfg(test)]
mod tests_shards;

pub use error::HashError;
pub use types::DistType;

use xxhash_rust::xxh3::xxh3_64;

/// A distribution value after coercion to the column's type (canonical form).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DistValue {
    /// `int2`, `int4` and `int8` alike.
    Int(i64),
    /// `text`, `varchar`, and `bpchar` without its trailing spaces.
    Text(String),
    /// A uuid's 16 bytes.
    Uuid([u8; 16]),
    /// Days since 2000-01-01 (PostgreSQL's epoch); `i32::MIN`/`i32::MAX` are -/+infinity.
    Date(i32),
    /// Microseconds since 2000-01-01 00:00:00 UTC; `i64::MIN`/`i64::MAX` are -/+infinity.
    Timestamp(i64),
    /// A boolean.
    Bool(bool),
    /// Plain decimal text: no `+`, no exponent, no leading zeros (values below 1 start with
    /// `0.`), no trailing fractional zeros, no trailing `.`, zero is `0` (never `-0`); the special
    /// values are `NaN`, `Infinity` and `-Infinity`.
    Numeric(String),
    /// The raw bytes of a `bytea`.
    Bytes(Vec<u8>),
}

impl DistValue {
    /// Coerces a value given as text (a SQL literal's content, or a text-format Bind
    /// parameter) to `ty`, as PostgreSQL 15's input function would.
    ///
    /// Invalid input gives [`HashError::InvalidInput`] or [`HashError::OutOfRange`] with
    /// PostgreSQL's wording; a `timestamptz` without an offset gives
    /// [`HashError::NeedsTimeZone`]; a date/time spelling other than ISO 8601 (PostgreSQL
    /// accepts many) gives [`HashError::Unsupported`], never a wrong value.
    pub fn from_text(ty: DistType, text: &str) -> Result<Self, HashError> {
        match ty {
            DistType::Int2 | DistType::Int4 | DistType::Int8 => {
                text::parse_int(ty, text).map(Self::Int)
            }
            DistType::Text | DistType::Varchar => text::check_text(ty, text).map(Self::Text),
            DistType::Bpchar => text::check_text(ty, text.trim_end_matches(' ')).map(Self::Text),
            DistType::Uuid => text::parse_uuid(text).map(Self::Uuid),
            DistType::Date => datetime::parse_date(text).map(Self::Date),
            DistType::Timestamp | DistType::Timestamptz => {
                datetime::parse_timestamp(ty, text).map(Self::Timestamp)
            }
            DistType::Bool => text::parse_bool(text).map(Self::Bool),
            DistType::Numeric => numeric::parse_text(text).map(Self::Numeric),
            DistType::Bytea => text::parse_bytea(text).map(Self::Bytes),
        }
    }

    /// Coerces a binary-format Bind parameter whose layout is that of `ty` (PostgreSQL's
    /// send/recv formats) to `ty`. Integers must have exactly the width of `ty`; text must be
    /// UTF-8 (the client encoding pgshard speaks).
    pub fn from_binary(ty: DistType, bytes: &[u8]) -> Result<Self, HashError> {
        binary::decode(ty, bytes)
    }

    /// The one-byte tag of the value's type family; part of the hashed bytes.
    fn tag(&self) -> u8 {
        match self {
            Self::Int(_) => 1,
            Self::Text(_) => 2,
            Self::Uuid(_) => 3,
            Self::Date(_) => 4,
            Self::Timestamp(_) => 5,
            Self::Bool(_) => 6,
            Self::Numeric(_) => 7,
            Self::Bytes(_) => 8,
        }
    }

    /// xxh3-64 (seed 0) of the canonical encoding: the type-family tag, then the value
    /// (integers and timestamps as i64 big-endian, dates as i32 big-endian, booleans as one
    /// byte 0/1, uuids as their 16 bytes, text and numerics as UTF-8, bytea raw).
    ///
    /// This is the placement hash; the derived [`std::hash::Hash`] is only for map keys.
    pub fn hash(&self) -> u64 {
        let tag = self.tag();
        match self {
            Self::Int(v) | Self::Timestamp(v) => hash_fixed(tag, &v.to_be_bytes()),
            Self::Date(v) => hash_fixed(tag, &v.to_be_bytes()),
            Self::Bool(v) => hash_fixed(tag, &[u8::from(*v)]),
            Self::Uuid(v) => hash_fixed(tag, v),
            Self::Text(v) | Self::Numeric(v) => hash_var(tag, v.as_bytes()),
            Self::Bytes(v) => hash_var(tag, v),
        }
    }
}

/// Hashes a tag and a payload of at most 16 bytes without allocating.
fn hash_fixed(tag: u8, payload: &[u8]) -> u64 {
    let mut buf = [0u8; 17];
    let len = payload.len().min(16);
    buf[0] = tag;
    buf[1..=len].copy_from_slice(&payload[..len]);
    xxh3_64(&buf[..=len])
}

/// Hashes a tag and a payload of any length.
fn hash_var(tag: u8, payload: &[u8]) -> u64 {
    const STACK: usize = 128;
    if payload.len() < STACK {
        let mut buf = [0u8; STACK];
        buf[0] = tag;
        buf[1..=payload.len()].copy_from_slice(payload);
        return xxh3_64(&buf[..=payload.len()]);
    }
    let mut buf = Vec::with_capacity(payload.len() + 1);
    buf.push(tag);
    buf.extend_from_slice(payload);
    xxh3_64(&buf)
}

/// The shard (0-based) a hash falls into when the 64-bit space is split into `shard_count`
/// equal ranges (ranges, not modulo): `(hash * shard_count) >> 64` in 128-bit arithmetic.
/// A `shard_count` of 0 is treated as 1.
pub fn shard_index(hash: u64, shard_count: u32) -> u32 {
    let n = u128::from(shard_count.max(1));
    // (hash * n) >> 64 < n <= u32::MAX, so the narrowing never truncates.
    ((u128::from(hash) * n) >> 64) as u32
}

/// The inclusive hash range `[min, max]` of shard `index` of `shard_count`, consistent with
/// [`shard_index`] for every hash; the ranges of `0..shard_count` cover the whole space without
/// overlap. A `shard_count` of 0 is treated as 1 and an `index` past the end as the last shard.
///
/// The catalog stores these bounds as `bigint` through [`to_catalog`], since PostgreSQL has no
/// unsigned 64-bit type; that mapping keeps their order.
pub fn shard_range(index: u32, shard_count: u32) -> (u64, u64) {
    let n = u128::from(shard_count.max(1));
    let i = u128::from(index).min(n - 1);
    // min = ceil(i * 2^64 / n): the first hash whose (hash * n) >> 64 reaches i.
    let min = (i << 64).div_ceil(n);
    let next = ((i + 1) << 64).div_ceil(n);
    // Both are at most 2^64 and min < 2^64 (i < n); next - 1 < 2^64.
    (min as u64, (next - 1) as u64)
}

/// Maps a hash to the `bigint` stored in the catalog, preserving order (flips the top bit).
pub fn to_catalog(hash: u64) -> i64 {
    (hash ^ (1 << 63)) as i64
}

/// Inverse of [`to_catalog`]: the hash a catalog `bigint` stands for.
pub fn from_catalog(stored: i64) -> u64 {
    (stored as u64) ^ (1 << 63)
}
