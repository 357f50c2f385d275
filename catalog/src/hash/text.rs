//! Text input for integers, text, uuid, boolean and bytea, following PostgreSQL 15's input
//! functions (`int2in`/`int4in`/`int8in`, `textin`, `uuid_in`, `boolin`, `byteain`).

use super::{DistType, HashError};

/// C's `isspace` in the C locale, which PostgreSQL's input functions skip.
pub(super) fn is_pg_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `text` without PostgreSQL's surrounding whitespace.
pub(super) fn trim_pg_space(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii() && is_pg_space(c as u8))
}

/// An integer of type `ty` (int2, int4 or int8): optional surrounding whitespace, an optional
/// sign, decimal digits; nothing else (PostgreSQL 15 has no `0x` or `_` in integers).
pub(super) fn parse_int(ty: DistType, text: &str) -> Result<i64, HashError> {
    let (min, max) = match ty {
        DistType::Int2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
        DistType::Int4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
        _ => (i64::MIN, i64::MAX),
    };
    let body = trim_pg_space(text);
    let (negative, digits) = match body.as_bytes().first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HashError::syntax(ty, text));
    }
    let out_of_range = || {
        HashError::range(
            ty,
            text,
            format!("value \"{text}\" is out of range for type {ty}"),
        )
    };
    // Accumulate negatively so that i64::MIN parses.
    let mut acc: i64 = 0;
    for b in digits.bytes() {
        acc = acc
            .checked_mul(10)
            .and_then(|v| v.checked_sub(i64::from(b - b'0')))
            .ok_or_else(out_of_range)?;
    }
    let value = if negative {
        acc
    } else {
        acc.checked_neg().ok_or_else(out_of_range)?
    };
    if value < min || value > max {
        return Err(out_of_range());
    }
    Ok(value)
}

/// Text as given; refuses what PostgreSQL cannot store in a text value (a NUL byte).
pub(super) fn check_text(ty: DistType, text: &str) -> Result<String, HashError> {
    if text.contains('\0') {
        return Err(HashError::invalid(
            ty,
            text,
            "invalid byte sequence for encoding \"UTF8\": 0x00".to_owned(),
        ));
    }
    Ok(text.to_owned())
}

/// A uuid: 32 hex digits, optionally in braces, with an optional `-` after any group of four;
/// no surrounding whitespace (as `uuid_in`).
pub(super) fn parse_uuid(text: &str) -> Result<[u8; 16], HashError> {
    let bad = || HashError::syntax(DistType::Uuid, text);
    let mut src = text.as_bytes();
    let braces = src.first() == Some(&b'{');
    if braces {
        src = &src[1..];
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        let (hi, lo) = match src {
            [hi, lo, ..] => (
                hex_value(*hi).ok_or_else(bad)?,
                hex_value(*lo).ok_or_else(bad)?,
            ),
            _ => return Err(bad()),
        };
        *byte = (hi << 4) | lo;
        src = &src[2..];
        if i % 2 == 1 && i < 15 && src.first() == Some(&b'-') {
            src = &src[1..];
        }
    }
    if braces {
        src = src.strip_prefix(b"}").ok_or_else(bad)?;
    }
    if !src.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// The value of one hex digit.
pub(super) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A boolean as `boolin` reads it: surrounding whitespace, then (case-insensitively) any
/// prefix of `true`/`false`/`yes`/`no`, `on`, `of`/`off`, or exactly `1`/`0`.
pub(super) fn parse_bool(text: &str) -> Result<bool, HashError> {
    let word = trim_pg_space(text).to_ascii_lowercase();
    let prefix_of = |full: &str, min_len: usize| word.len() >= min_len && full.starts_with(&word);
    let value = match word.as_bytes().first() {
        Some(b't') if prefix_of("true", 1) => Some(true),
        Some(b'f') if prefix_of("false", 1) => Some(false),
        Some(b'y') if prefix_of("yes", 1) => Some(true),
        Some(b'n') if prefix_of("no", 1) => Some(false),
        Some(b'o') if prefix_of("on", 2) => Some(true),
        Some(b'o') if prefix_of("off", 2) => Some(false),
        Some(b'1') if word.len() == 1 => Some(true),
        Some(b'0') if word.len() == 1 => Some(false),
        _ => None,
    };
    value.ok_or_else(|| HashError::syntax(DistType::Bool, text))
}

/// A bytea in hex format (`\x` then pairs of hex digits, whitespace between pairs) or escape
/// format (bytes as is, `\\` for a backslash, `\nnn` octal), as `byteain` reads it.
pub(super) fn parse_bytea(text: &str) -> Result<Vec<u8>, HashError> {
    match text.as_bytes() {
        [b'\\', b'x', hex @ ..] => parse_bytea_hex(text, hex),
        escaped => parse_bytea_escape(text, escaped),
    }
}

fn parse_bytea_hex(text: &str, hex: &[u8]) -> Result<Vec<u8>, HashError> {
    let bad_digit = |b: u8| {
        let shown = String::from_utf8_lossy(&[b]).into_owned();
        HashError::invalid(
            DistType::Bytea,
            text,
            format!("invalid hexadecimal digit: \"{shown}\""),
        )
    };
    let mut out = Vec::with_capacity(hex.len() / 2);
    let mut rest = hex;
    while let Some((&first, tail)) = rest.split_first() {
        if matches!(first, b' ' | b'\n' | b'\t' | b'\r') {
            rest = tail;
            continue;
        }
        let hi = hex_value(first).ok_or_else(|| bad_digit(first))?;
        let Some((&second, tail)) = tail.split_first() else {
            let message = "invalid hexadecimal data: odd number of digits".to_owned();
            return Err(HashError::invalid(DistType::Bytea, text, message));
        };
        let lo = hex_value(second).ok_or_else(|| bad_digit(second))?;
        out.push((hi << 4) | lo);
        rest = tail;
    }
    Ok(out)
}

fn parse_bytea_escape(text: &str, bytes: &[u8]) -> Result<Vec<u8>, HashError> {
    let bad = || {
        let message = "invalid input syntax for type bytea".to_owned();
        HashError::invalid(DistType::Bytea, text, message)
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&b, tail)) = rest.split_first() {
        if b != b'\\' {
            out.push(b);
            rest = tail;
            continue;
        }
        match tail {
            [b'\\', more @ ..] => {
                out.push(b'\\');
                rest = more;
            }
            [
                d1 @ b'0'..=b'3',
                d2 @ b'0'..=b'7',
                d3 @ b'0'..=b'7',
                more @ ..,
            ] => {
                out.push(((d1 - b'0') << 6) | ((d2 - b'0') << 3) | (d3 - b'0'));
                rest = more;
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}
