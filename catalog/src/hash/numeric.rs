//! `numeric` values in canonical text form, from text input (`numeric_in`) and from the
//! binary form (`numeric_recv`), with PostgreSQL 15's limits.

use super::text::{is_pg_space, trim_pg_space};
use super::{DistType, HashError};

/// Largest display scale PostgreSQL stores (`NUMERIC_DSCALE_MAX`).
const MAX_DSCALE: i64 = 0x3FFF;
/// Largest number of decimal digits before the point (base-10000 weight up to `i16::MAX`).
const MAX_INT_DIGITS: i64 = 4 * (i16::MAX as i64 + 1);

/// Parses numeric text input into the canonical form described on
/// [`DistValue::Numeric`](super::DistValue::Numeric).
pub(super) fn parse_text(text: &str) -> Result<String, HashError> {
    let bad = || HashError::syntax(DistType::Numeric, text);
    let trimmed = trim_pg_space(text);
    match trimmed.to_ascii_lowercase().as_str() {
        "nan" => return Ok("NaN".to_owned()),
        "infinity" | "+infinity" | "inf" | "+inf" => return Ok("Infinity".to_owned()),
        "-infinity" | "-inf" => return Ok("-Infinity".to_owned()),
        _ => {}
    }
    let mut rest = trimmed.as_bytes();
    let negative = rest.first() == Some(&b'-');
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = &rest[1..];
    }
    let mut digits = Vec::with_capacity(rest.len());
    let (mut int_digits, mut frac_digits, mut seen_point) = (0i64, 0i64, false);
    while let Some((&b, tail)) = rest.split_first() {
        match b {
            b'0'..=b'9' if seen_point => frac_digits += 1,
            b'0'..=b'9' => int_digits += 1,
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        if b != b'.' {
            digits.push(b);
        }
        rest = tail;
    }
    if digits.is_empty() {
        return Err(bad());
    }
    let mut exponent = 0i64;
    if let [b'e' | b'E', tail @ ..] = rest {
        (exponent, rest) = parse_exponent(tail).ok_or_else(bad)?;
        if exponent.abs() >= i64::from(i32::MAX / 2) {
            return Err(overflow(text));
        }
    }
    if !rest.iter().all(|&b| is_pg_space(b)) {
        return Err(bad());
    }
    let dscale = (frac_digits - exponent).max(0);
    canonical(negative, &digits, int_digits + exponent, dscale).ok_or_else(|| overflow(text))
}

/// Reads the exponent after `e` as C's `strtol` would (leading whitespace, a sign, digits),
/// saturating far beyond PostgreSQL's limits; `None` when there are no digits.
fn parse_exponent(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let start = bytes.iter().take_while(|&&b| is_pg_space(b)).count();
    let mut rest = &bytes[start..];
    let negative = rest.first() == Some(&b'-');
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = &rest[1..];
    }
    let len = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if len == 0 {
        return None;
    }
    let value = rest[..len]
        .iter()
        .fold(0i64, |acc, &b| {
            acc.saturating_mul(10).saturating_add(i64::from(b - b'0'))
        })
        .min(i64::from(i32::MAX));
    Some((if negative { -value } else { value }, &rest[len..]))
}

/// Decodes `numeric_send`'s form: ndigits, weight, sign, dscale (16 bits each, big-endian),
/// then ndigits base-10000 digits; digits beyond dscale are truncated away, as `numeric_recv`
/// does.
pub(super) fn parse_binary(bytes: &[u8]) -> Result<String, HashError> {
    let err = |what: &str| HashError::binary(DistType::Numeric, bytes, what);
    let word = |i: usize| u16::from_be_bytes([bytes[2 * i], bytes[2 * i + 1]]);
    if bytes.len() < 8 {
        return Err(err(""));
    }
    let ndigits = usize::from(word(0));
    let weight = i64::from(word(1) as i16);
    let (sign, dscale) = (word(2), word(3));
    if bytes.len() != 8 + 2 * ndigits {
        return Err(err(""));
    }
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => return Ok("NaN".to_owned()),
        0xD000 => return Ok("Infinity".to_owned()),
        0xF000 => return Ok("-Infinity".to_owned()),
        _ => return Err(err("invalid sign in external \"numeric\" value")),
    }
    if i64::from(dscale) > MAX_DSCALE {
        return Err(err("invalid scale in external \"numeric\" value"));
    }
    let mut digits = Vec::with_capacity(4 * ndigits);
    for i in 0..ndigits {
        let d = word(4 + i);
        if d >= 10000 {
            return Err(err("invalid digit in external \"numeric\" value"));
        }
        digits.extend_from_slice(format!("{d:04}").as_bytes());
    }
    // The first base-10000 digit holds the decimal digits of 10^(4w+3) .. 10^(4w).
    let int_digits = 4 * (weight + 1);
    let keep = usize::try_from((int_digits + i64::from(dscale)).max(0)).unwrap_or(usize::MAX);
    digits.truncate(keep);
    canonical(sign == 0x4000, &digits, int_digits, i64::from(dscale))
        .ok_or_else(|| overflow(&String::from_utf8_lossy(bytes)))
}

fn overflow(text: &str) -> HashError {
    HashError::range(
        DistType::Numeric,
        text,
        "value overflows numeric format".to_owned(),
    )
}

/// The canonical text of `0.d1d2d3... * 10^int_digits` (ASCII `digits`), or `None` when
/// PostgreSQL could not store it (display scale over 16383, more than 131072 integer digits).
fn canonical(negative: bool, digits: &[u8], int_digits: i64, dscale: i64) -> Option<String> {
    if dscale > MAX_DSCALE {
        return None;
    }
    let leading = digits.iter().take_while(|&&b| b == b'0').count();
    let digits = &digits[leading..];
    let trailing = digits.iter().rev().take_while(|&&b| b == b'0').count();
    let digits = &digits[..digits.len() - trailing];
    if digits.is_empty() {
        return Some("0".to_owned());
    }
    let int_digits = int_digits - leading as i64;
    if int_digits > MAX_INT_DIGITS {
        return None;
    }
    let mut out = String::with_capacity(digits.len() + 3 + int_digits.unsigned_abs() as usize);
    if negative {
        out.push('-');
    }
    // Bounded above by MAX_INT_DIGITS and below by -MAX_DSCALE, so these casts are exact.
    let point = usize::try_from(int_digits).unwrap_or(0);
    let text = String::from_utf8_lossy(digits);
    if int_digits <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', int_digits.unsigned_abs() as usize));
        out.push_str(&text);
    } else if point >= digits.len() {
        out.push_str(&text);
        out.extend(std::iter::repeat_n('0', point - digits.len()));
    } else {
        out.push_str(&text[..point]);
        out.push('.');
        out.push_str(&text[point..]);
    }
    Some(out)
}
