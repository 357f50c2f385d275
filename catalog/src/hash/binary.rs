//! Binary-format Bind parameters (PostgreSQL's send/recv formats) to [`DistValue`]s.

use super::datetime::USECS_PER_DAY;
use super::{DistType, DistValue, HashError, numeric};

/// First valid date, as days since 2000-01-01 (Julian day 0, 4714-11-24 BC).
const MIN_DATE: i32 = -2_451_545;
/// One past the last valid date (5874898-01-01).
const END_DATE: i32 = 2_147_483_494 - 2_451_545;
/// First valid timestamp (4714-11-24 00:00:00 BC).
const MIN_TIMESTAMP: i64 = MIN_DATE as i64 * USECS_PER_DAY;
/// One past the last valid timestamp (294277-01-01 00:00:00).
const END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;

/// Decodes `bytes` laid out as `ty`'s send format, checking what `*_recv` checks.
pub(super) fn decode(ty: DistType, bytes: &[u8]) -> Result<DistValue, HashError> {
    // Exactly N bytes: the width of a fixed-size type.
    fn fixed<const N: usize>(ty: DistType, bytes: &[u8]) -> Result<[u8; N], HashError> {
        <[u8; N]>::try_from(bytes).map_err(|_| HashError::binary(ty, bytes, ""))
    }
    let bad = |what: &str| HashError::binary(ty, bytes, what);
    match ty {
        DistType::Int2 => {
            fixed::<2>(ty, bytes).map(|b| DistValue::Int(i16::from_be_bytes(b).into()))
        }
        DistType::Int4 => {
            fixed::<4>(ty, bytes).map(|b| DistValue::Int(i32::from_be_bytes(b).into()))
        }
        DistType::Int8 => fixed::<8>(ty, bytes).map(|b| DistValue::Int(i64::from_be_bytes(b))),
        DistType::Text | DistType::Varchar | DistType::Bpchar => {
            let text = std::str::from_utf8(bytes).map_err(|e| {
                let at = bytes.get(e.valid_up_to()).copied().unwrap_or_default();
                bad(&format!(
                    "invalid byte sequence for encoding \"UTF8\": 0x{at:02x}"
                ))
            })?;
            DistValue::from_text(ty, text)
        }
        DistType::Uuid => fixed::<16>(ty, bytes).map(DistValue::Uuid),
        DistType::Date => {
            let days = fixed::<4>(ty, bytes).map(i32::from_be_bytes)?;
            let finite = days != i32::MIN && days != i32::MAX;
            if finite && !(MIN_DATE..END_DATE).contains(&days) {
                return Err(HashError::range(
                    ty,
                    &days.to_string(),
                    "date out of range".into(),
                ));
            }
            Ok(DistValue::Date(days))
        }
        DistType::Timestamp | DistType::Timestamptz => {
            let usecs = fixed::<8>(ty, bytes).map(i64::from_be_bytes)?;
            let finite = usecs != i64::MIN && usecs != i64::MAX;
            if finite && !(MIN_TIMESTAMP..END_TIMESTAMP).contains(&usecs) {
                let message = "timestamp out of range".to_owned();
                return Err(HashError::range(ty, &usecs.to_string(), message));
            }
            Ok(DistValue::Timestamp(usecs))
        }
        DistType::Bool => fixed::<1>(ty, bytes).map(|[b]| DistValue::Bool(b != 0)),
        DistType::Numeric => numeric::parse_binary(bytes).map(DistValue::Numeric),
        DistType::Bytea => Ok(DistValue::Bytes(bytes.to_vec())),
    }
}
