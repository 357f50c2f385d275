//! ISO 8601 text input for `date`, `timestamp` and `timestamptz`.
//!
//! PostgreSQL's date/time parser accepts a great many spellings, some of which depend on
//! session settings (DateStyle, TimeZone, timezone_abbreviations) or on the clock (`now`).
//! This module reads only the unambiguous ISO forms, `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]]
//! [zone]` with a zone of `Z`, `UTC`, `GMT` or a numeric offset, plus `infinity`, `-infinity`
//! and `epoch`; anything else is [`HashError::Unsupported`], never a guess.

use super::text::trim_pg_space;
use super::{DistType, HashError};

/// Days from 1970-01-01 (Unix epoch) to 2000-01-01 (PostgreSQL's epoch).
const UNIX_TO_PG_DAYS: i64 = 10_957;
/// Microseconds in a day.
pub(super) const USECS_PER_DAY: i64 = 86_400_000_000;
/// Largest UTC offset PostgreSQL accepts, in hours (`MAX_TZDISP_HOUR`).
const MAX_OFFSET_HOURS: i64 = 15;

/// A date as days since 2000-01-01 (`i32::MIN`/`i32::MAX` for -/+infinity).
pub(super) fn parse_date(text: &str) -> Result<i32, HashError> {
    let ty = DistType::Date;
    let s = trim_pg_space(text);
    match s.to_ascii_lowercase().as_str() {
        "infinity" => return Ok(i32::MAX),
        "-infinity" => return Ok(i32::MIN),
        "epoch" => return Ok(-(UNIX_TO_PG_DAYS as i32)),
        _ => {}
    }
    let mut cur = Cursor(s.as_bytes());
    let (y, m, d) = cur.date().ok_or_else(|| HashError::unsupported(ty, text))?;
    if !cur.0.is_empty() {
        return Err(HashError::unsupported(ty, text));
    }
    let days = days_since_2000(y, m, d).ok_or_else(|| field_overflow(ty, text))?;
    // Years 1..=9999 are far inside i32.
    i32::try_from(days).map_err(|_| field_overflow(ty, text))
}

/// A timestamp as microseconds since 2000-01-01 00:00:00 UTC (`i64::MIN`/`i64::MAX` for
/// -/+infinity). `timestamp` ignores a given offset, as PostgreSQL does; `timestamptz` needs
/// one.
pub(super) fn parse_timestamp(ty: DistType, text: &str) -> Result<i64, HashError> {
    let s = trim_pg_space(text);
    match s.to_ascii_lowercase().as_str() {
        "infinity" => return Ok(i64::MAX),
        "-infinity" => return Ok(i64::MIN),
        "epoch" => return Ok(-UNIX_TO_PG_DAYS * USECS_PER_DAY),
        _ => {}
    }
    let unsupported = || HashError::unsupported(ty, text);
    let mut cur = Cursor(s.as_bytes());
    let (y, m, d) = cur.date().ok_or_else(unsupported)?;
    let mut time = (0, 0, 0, 0);
    let mut offset = None;
    if !cur.0.is_empty() {
        if !cur.eat(b'T') && !cur.eat(b't') && cur.skip_space() == 0 {
            return Err(unsupported());
        }
        time = cur.time().ok_or_else(unsupported)?;
        cur.skip_space();
        if !cur.0.is_empty() {
            offset = Some(cur.zone().ok_or_else(unsupported)?);
        }
    }
    let days = days_since_2000(y, m, d).ok_or_else(|| field_overflow(ty, text))?;
    let usecs = time_usecs(time).ok_or_else(|| field_overflow(ty, text))?;
    let offset = offset.map(|zone| offset_secs(ty, text, zone)).transpose()?;
    let local = days * USECS_PER_DAY + usecs;
    match (ty, offset) {
        (DistType::Timestamptz, None) => Err(HashError::NeedsTimeZone),
        (DistType::Timestamptz, Some(secs)) => Ok(local - secs * 1_000_000),
        _ => Ok(local),
    }
}

/// A zone's offset east of UTC in seconds, within PostgreSQL's +/-15:59:59.
fn offset_secs(ty: DistType, text: &str, zone: (bool, i64, i64, i64)) -> Result<i64, HashError> {
    let (negative, h, m, s) = zone;
    if h > MAX_OFFSET_HOURS || m >= 60 || s >= 60 {
        let message = format!("time zone displacement out of range: \"{text}\"");
        return Err(HashError::range(ty, text, message));
    }
    let secs = (h * 60 + m) * 60 + s;
    Ok(if negative { -secs } else { secs })
}

/// `date/time field value out of range: "<text>"` (22008).
fn field_overflow(ty: DistType, text: &str) -> HashError {
    HashError::range(
        ty,
        text,
        format!("date/time field value out of range: \"{text}\""),
    )
}

/// Days from 2000-01-01 to a proleptic Gregorian date; `None` for a date that does not exist
/// (year 0, month 13, February 30, ...).
fn days_since_2000(y: i64, m: i64, d: i64) -> Option<i64> {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = *month_days.get(usize::try_from(m - 1).ok()?)?;
    if y < 1 || d < 1 || d > max_day {
        return None;
    }
    // Howard Hinnant's days_from_civil, on a year that starts in March.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468 - UNIX_TO_PG_DAYS)
}

/// Microseconds since midnight; allows `24:00:00` and a leap second `:60` as PostgreSQL does
/// (both roll over), `None` for fields out of range.
fn time_usecs((h, m, s, usec): (i64, i64, i64, i64)) -> Option<i64> {
    let valid = h <= 24
        && m <= 59
        && s <= 60
        && !(h == 24 && (m > 0 || s > 0 || usec > 0))
        && !(s == 60 && usec > 0);
    valid.then(|| ((h * 60 + m) * 60 + s) * 1_000_000 + usec)
}

/// A reader over the remaining bytes of a date/time string.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    /// Consumes `b` if it comes next.
    fn eat(&mut self, b: u8) -> bool {
        let hit = self.0.first() == Some(&b);
        if hit {
            self.0 = &self.0[1..];
        }
        hit
    }

    /// Consumes spaces and tabs; returns how many.
    fn skip_space(&mut self) -> usize {
        let n = self
            .0
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        self.0 = &self.0[n..];
        n
    }

    /// Consumes `min..=max` decimal digits (and no more follow); returns their value and count.
    fn number(&mut self, min: usize, max: usize) -> Option<(i64, usize)> {
        let n = self.0.iter().take_while(|b| b.is_ascii_digit()).count();
        if n < min || n > max {
            return None;
        }
        let value = self.0[..n]
            .iter()
            .fold(0i64, |acc, &b| acc * 10 + i64::from(b - b'0'));
        self.0 = &self.0[n..];
        Some((value, n))
    }

    /// `YYYY-M[M]-D[D]`.
    fn date(&mut self) -> Option<(i64, i64, i64)> {
        let (y, _) = self.number(4, 4)?;
        self.eat(b'-').then_some(())?;
        let (m, _) = self.number(1, 2)?;
        self.eat(b'-').then_some(())?;
        let (d, _) = self.number(1, 2)?;
        Some((y, m, d))
    }

    /// `H[H]:M[M][:S[S][.ffffff]]` as (hours, minutes, seconds, microseconds).
    fn time(&mut self) -> Option<(i64, i64, i64, i64)> {
        let (h, _) = self.number(1, 2)?;
        self.eat(b':').then_some(())?;
        let (m, _) = self.number(1, 2)?;
        if !self.eat(b':') {
            return Some((h, m, 0, 0));
        }
        let (s, _) = self.number(1, 2)?;
        if !self.eat(b'.') {
            return Some((h, m, s, 0));
        }
        // Up to microseconds; more digits would need PostgreSQL's floating-point rounding.
        let (frac, n) = self.number(0, 6)?;
        Some((h, m, s, frac * 10i64.pow(6 - n as u32)))
    }

    /// The rest of the input as a zone: `Z`, `UTC`, `GMT`, or `±H[H]`, `±HHMM`,
    /// `±H[H]:M[M][:S[S]]`, as (west of UTC, hours, minutes, seconds).
    fn zone(&mut self) -> Option<(bool, i64, i64, i64)> {
        if matches!(
            self.0.to_ascii_lowercase().as_slice(),
            b"z" | b"utc" | b"gmt"
        ) {
            self.0 = &[];
            return Some((false, 0, 0, 0));
        }
        let negative = match self.0.first()? {
            b'+' => false,
            b'-' => true,
            _ => return None,
        };
        self.0 = &self.0[1..];
        let (mut h, n) = self.number(1, 4)?;
        let (mut m, mut s) = (0, 0);
        if self.eat(b':') {
            (n <= 2).then_some(())?;
            m = self.number(1, 2)?.0;
            if self.eat(b':') {
                s = self.number(1, 2)?.0;
            }
        } else if n > 2 {
            (m, h) = (h % 100, h / 100);
        }
        if !self.0.is_empty() {
            return None;
        }
        Some((negative, h, m, s))
    }
}
