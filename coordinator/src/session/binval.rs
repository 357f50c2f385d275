//! Binary-format parameter values as text, for statements the coordinator writes its
//! parameters into (a statement reaching several shards, or one it runs itself). Drivers send
//! binary values for the types they know (tokio-postgres always does); the common types are
//! decoded here the way PostgreSQL's output functions print them. Others are refused.

use std::fmt::Write;

/// The text form of binary value `v` of type `oid`, or `None` when the type is not one this
/// knows (or the bytes are not a valid value of it).
pub fn to_text(oid: u32, v: &[u8]) -> Option<String> {
    let int = |n: usize| -> Option<i64> {
        let b: &[u8] = v.get(..n).filter(|_| v.len() == n)?;
        Some(b.iter().fold(if b[0] & 0x80 != 0 { -1i64 } else { 0 }, |acc, &x| (acc << 8) | i64::from(x)))
    };
    Some(match oid {
        16 => match v {
            [0] => "f".into(),
            [1] => "t".into(),
            _ => return None,
        },
        21 => int(2)?.to_string(),
        23 => int(4)?.to_string(),
        20 => int(8)?.to_string(),
        26 => u32::from_be_bytes(v.try_into().ok()?).to_string(),
        700 => float(f64::from(f32::from_be_bytes(v.try_into().ok()?))),
        701 => float(f64::from_be_bytes(v.try_into().ok()?)),
        25 | 1043 | 1042 | 19 | 114 | 705 => std::str::from_utf8(v).ok()?.to_owned(),
        3802 => match v.split_first() {
            Some((1, rest)) => std::str::from_utf8(rest).ok()?.to_owned(),
            _ => return None,
        },
        17 => {
            let mut s = String::with_capacity(2 + v.len() * 2);
            s.push_str("\\x");
            for b in v {
                let _ = write!(s, "{b:02x}");
            }
            s
        }
        2950 => {
            let b: [u8; 16] = v.try_into().ok()?;
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
        }
        // Days, and microseconds, since 2000-01-01; printed in ISO form (as DateStyle ISO
        // would), which PostgreSQL reads back whatever the session's DateStyle.
        1082 => match int(4)? {
            i64::MIN..=-2_147_483_648 | 2_147_483_647.. => return None,
            days => date(days + 10_957)?,
        },
        1114 | 1184 => {
            let us = int(8)?;
            if us == i64::MAX || us == i64::MIN {
                return Some(if us > 0 { "infinity" } else { "-infinity" }.into());
            }
            let secs = us.div_euclid(1_000_000) + 946_684_800;
            let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let zone = if oid == 1184 { "+00" } else { "" };
            format!(
                "{} {:02}:{:02}:{:02}.{:06}{zone}",
                date(days)?,
                rest / 3600,
                rest / 60 % 60,
                rest % 60,
                us.rem_euclid(1_000_000)
            )
        }
        _ => return None,
    })
}

fn float(f: f64) -> String {
    match f {
        f if f.is_nan() => "NaN".into(),
        f if f == f64::INFINITY => "Infinity".into(),
        f if f == f64::NEG_INFINITY => "-Infinity".into(),
        f => format!("{f:?}"),
    }
}

/// `YYYY-MM-DD` (with ` BC` before year 1) of a count of days since 1970-01-01 (the proleptic
/// Gregorian calendar, in 400-year eras counted from 0000-03-01).
pub fn date(days: i64) -> Option<String> {
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Some(if year <= 0 { format!("{:04}-{month:02}-{day:02} BC", 1 - year) } else { format!("{year:04}-{month:02}-{day:02}") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types_print_as_postgres_does() {
        assert_eq!(to_text(23, &(-42i32).to_be_bytes()).as_deref(), Some("-42"));
        assert_eq!(to_text(20, &(1i64 << 50).to_be_bytes()).as_deref(), Some("1125899906842624"));
        assert_eq!(to_text(21, &7i16.to_be_bytes()).as_deref(), Some("7"));
        assert_eq!(to_text(16, &[1]).as_deref(), Some("t"));
        assert_eq!(to_text(701, &0.1f64.to_be_bytes()).as_deref(), Some("0.1"));
        assert_eq!(to_text(25, "é'x".as_bytes()).as_deref(), Some("é'x"));
        assert_eq!(to_text(17, &[0, 0xab]).as_deref(), Some("\\x00ab"));
        assert_eq!(to_text(3802, b"\x01{\"a\": 1}").as_deref(), Some("{\"a\": 1}"));
        let uuid = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 1, 2, 3, 4, 5, 6, 7];
        assert_eq!(to_text(2950, &uuid).as_deref(), Some("12345678-9abc-def0-0001-020304050607"));
        assert_eq!(to_text(1082, &0i32.to_be_bytes()).as_deref(), Some("2000-01-01"));
        assert_eq!(to_text(1082, &(-730_120i32).to_be_bytes()).as_deref(), Some("0001-12-31 BC"));
        let us: i64 = 24 * 3600 * 1_000_000 * 59 + 1_000_001; // 2000-02-29 00:00:01.000001
        assert_eq!(to_text(1184, &us.to_be_bytes()).as_deref(), Some("2000-02-29 00:00:01.000001+00"));
        assert_eq!(to_text(1114, &(-1i64).to_be_bytes()).as_deref(), Some("1999-12-31 23:59:59.999999"));
        assert_eq!(to_text(23, &[1, 2]), None, "wrong length");
        assert_eq!(to_text(1700, &[0; 8]), None, "numeric is not decoded");
    }
}
