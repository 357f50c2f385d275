//! Coercions checked against a real PostgreSQL 15.18 (session TimeZone UTC, DateStyle ISO):
//! every row below was produced by running the input through the server's input function
//! (`'<input>'::<type>`), printing its canonical value (`::text` for integers, text and
//! booleans, `trim_scale(...)::text` for numerics, the send form's integer for dates and
//! timestamps, hex for uuids and bytea) and its binary send form (`<type>send(...)`), or the
//! error it raised. The tests need no server: they check that [`DistValue::from_text`] agrees
//! with those answers, and that [`DistValue::from_binary`] of the send form gives the same
//! value.

use super::{DistType, DistValue, HashError};

/// What PostgreSQL answered.
enum Pg {
    /// The canonical value as shown, and the send form in hex.
    Value(&'static str, &'static str),
    /// SQLSTATE and message.
    Error(&'static str, &'static str),
}

/// Where pgshard deliberately differs from the server.
enum Ours {
    /// Same value, or same error message.
    Same,
    /// A spelling pgshard does not read (PostgreSQL's date/time parser reads many more).
    Unsupported,
    /// A timestamptz without an offset: PostgreSQL used the session's TimeZone.
    NeedsTimeZone,
}

use Ours::{NeedsTimeZone, Same, Unsupported};
use Pg::{Error, Value};

/// SQLSTATEs that [`HashError::code`] reports coarsely (as 22P02 or 22008).
const COARSE_CODES: [&str; 4] = ["22023", "22021", "22P03", "22009"];

#[rustfmt::skip]
const CASES: &[(DistType, &str, Pg, Ours)] = &[
    (DistType::Int2, "  +42 ", Value("42", "002a"), Same),
    (DistType::Int2, "-32768", Value("-32768", "8000"), Same),
    (DistType::Int2, "32767", Value("32767", "7fff"), Same),
    (DistType::Int2, "32768", Error("22003", "value \"32768\" is out of range for type smallint"), Same),
    (DistType::Int2, "99999", Error("22003", "value \"99999\" is out of range for type smallint"), Same),
    (DistType::Int2, "x", Error("22P02", "invalid input syntax for type smallint: \"x\""), Same),
    (DistType::Int2, "", Error("22P02", "invalid input syntax for type smallint: \"\""), Same),
    (DistType::Int2, "4 2", Error("22P02", "invalid input syntax for type smallint: \"4 2\""), Same),
    (DistType::Int2, "\t-7\n", Value("-7", "fff9"), Same),
    (DistType::Int2, "+", Error("22P02", "invalid input syntax for type smallint: \"+\""), Same),
    (DistType::Int2, "0x1F", Error("22P02", "invalid input syntax for type smallint: \"0x1F\""), Same),
    (DistType::Int2, "1_000", Error("22P02", "invalid input syntax for type smallint: \"1_000\""), Same),
    (DistType::Int2, "042", Value("42", "002a"), Same),
    (DistType::Int2, "4.0", Error("22P02", "invalid input syntax for type smallint: \"4.0\""), Same),
    (DistType::Int4, " 42", Value("42", "0000002a"), Same),
    (DistType::Int4, "-2147483648", Value("-2147483648", "80000000"), Same),
    (DistType::Int4, "2147483648", Error("22003", "value \"2147483648\" is out of range for type integer"), Same),
    (DistType::Int4, "\u{0b}42\u{0c}", Value("42", "0000002a"), Same),
    (DistType::Int4, "12abc", Error("22P02", "invalid input syntax for type integer: \"12abc\""), Same),
    (DistType::Int4, "-0", Value("0", "00000000"), Same),
    (DistType::Int8, "-9223372036854775808", Value("-9223372036854775808", "8000000000000000"), Same),
    (DistType::Int8, "9223372036854775808", Error("22003", "value \"9223372036854775808\" is out of range for type bigint"), Same),
    (DistType::Int8, " +9223372036854775807 ", Value("9223372036854775807", "7fffffffffffffff"), Same),
    (DistType::Int8, "00000000000000000000001", Value("1", "0000000000000001"), Same),
    (DistType::Text, "hello", Value("hello", "68656c6c6f"), Same),
    (DistType::Text, "", Value("", ""), Same),
    (DistType::Text, " spaced ", Value(" spaced ", "2073706163656420"), Same),
    (DistType::Text, "héllo", Value("héllo", "68c3a96c6c6f"), Same),
    (DistType::Varchar, "abc  ", Value("abc  ", "6162632020"), Same),
    (DistType::Bpchar, "ab   ", Value("ab", "6162202020"), Same),
    (DistType::Bpchar, "  ab", Value("  ab", "20206162"), Same),
    (DistType::Bpchar, "ab\t", Value("ab\t", "616209"), Same),
    (DistType::Bpchar, "", Value("", ""), Same),
    (DistType::Uuid, "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}", Value("a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc999c0b4ef8bb6d6bb9bd380a11"), Same),
    (DistType::Uuid, "A0EEBC999C0B4EF8BB6D6BB9BD380A11", Value("a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc999c0b4ef8bb6d6bb9bd380a11"), Same),
    (DistType::Uuid, "a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11", Value("a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc999c0b4ef8bb6d6bb9bd380a11"), Same),
    (DistType::Uuid, "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", Value("a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0eebc999c0b4ef8bb6d6bb9bd380a11"), Same),
    (DistType::Uuid, " a0eebc999c0b4ef8bb6d6bb9bd380a11", Error("22P02", "invalid input syntax for type uuid: \" a0eebc999c0b4ef8bb6d6bb9bd380a11\""), Same),
    (DistType::Uuid, "a0eebc999c0b4ef8bb6d6bb9bd380a1", Error("22P02", "invalid input syntax for type uuid: \"a0eebc999c0b4ef8bb6d6bb9bd380a1\""), Same),
    (DistType::Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", Error("22P02", "invalid input syntax for type uuid: \"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-\""), Same),
    (DistType::Uuid, "a0e-ebc999c0b4ef8bb6d6bb9bd380a11", Error("22P02", "invalid input syntax for type uuid: \"a0e-ebc999c0b4ef8bb6d6bb9bd380a11\""), Same),
    (DistType::Uuid, "{a0eebc999c0b4ef8bb6d6bb9bd380a11", Error("22P02", "invalid input syntax for type uuid: \"{a0eebc999c0b4ef8bb6d6bb9bd380a11\""), Same),
    (DistType::Uuid, "a0eebc999c0b4ef8bb6d6bb9bd380a11}", Error("22P02", "invalid input syntax for type uuid: \"a0eebc999c0b4ef8bb6d6bb9bd380a11}\""), Same),
    (DistType::Uuid, "g0eebc999c0b4ef8bb6d6bb9bd380a11", Error("22P02", "invalid input syntax for type uuid: \"g0eebc999c0b4ef8bb6d6bb9bd380a11\""), Same),
    (DistType::Date, "2024-02-29", Value("8825", "00002279"), Same),
    (DistType::Date, " 2024-2-9 ", Value("8805", "00002265"), Same),
    (DistType::Date, "2000-01-01", Value("0", "00000000"), Same),
    (DistType::Date, "1999-12-31", Value("-1", "ffffffff"), Same),
    (DistType::Date, "0001-01-01", Value("-730119", "fff4dbf9"), Same),
    (DistType::Date, "9999-12-31", Value("2921939", "002c95d3"), Same),
    (DistType::Date, "2024-02-30", Error("22008", "date/time field value out of range: \"2024-02-30\""), Same),
    (DistType::Date, "2023-02-29", Error("22008", "date/time field value out of range: \"2023-02-29\""), Same),
    (DistType::Date, "2024-13-01", Error("22008", "date/time field value out of range: \"2024-13-01\""), Same),
    (DistType::Date, "0000-01-01", Error("22008", "date/time field value out of range: \"0000-01-01\""), Same),
    (DistType::Date, "2100-02-29", Error("22008", "date/time field value out of range: \"2100-02-29\""), Same),
    (DistType::Date, "2000-02-29", Value("59", "0000003b"), Same),
    (DistType::Date, "epoch", Value("-10957", "ffffd533"), Same),
    (DistType::Date, "EPOCH", Value("-10957", "ffffd533"), Same),
    (DistType::Date, "infinity", Value("2147483647", "7fffffff"), Same),
    (DistType::Date, "-Infinity", Value("-2147483648", "80000000"), Same),
    (DistType::Date, "Jan 1 2024", Value("8766", "0000223e"), Unsupported),
    (DistType::Date, "20240229", Value("8825", "00002279"), Unsupported),
    (DistType::Date, "2024-02-29 12:00", Value("8825", "00002279"), Unsupported),
    (DistType::Date, "02024-02-29", Value("8825", "00002279"), Unsupported),
    (DistType::Date, "2024-02-29 BC", Error("22008", "date/time field value out of range: \"2024-02-29 BC\""), Unsupported),
    (DistType::Timestamp, "2024-01-01 12:00:00", Value("757425600000000", "0002b0dfe3d4f000"), Same),
    (DistType::Timestamp, "2024-01-01T12:00:00.5", Value("757425600500000", "0002b0dfe3dc9120"), Same),
    (DistType::Timestamp, "2024-01-01t12:00", Value("757425600000000", "0002b0dfe3d4f000"), Same),
    (DistType::Timestamp, "2024-01-01 12:59:60", Value("757429200000000", "0002b0e0ba689400"), Same),
    (DistType::Timestamp, "2024-01-01 24:00:00", Value("757468800000000", "0002b0e9f2c0a000"), Same),
    (DistType::Timestamp, "2024-01-01 24:00:01", Error("22008", "date/time field value out of range: \"2024-01-01 24:00:01\""), Same),
    (DistType::Timestamp, "2024-01-01 23:59:60.5", Error("22008", "date/time field value out of range: \"2024-01-01 23:59:60.5\""), Same),
    (DistType::Timestamp, "2024-01-01 12:60:00", Error("22008", "date/time field value out of range: \"2024-01-01 12:60:00\""), Same),
    (DistType::Timestamp, "2024-01-01 25:00:00", Error("22008", "date/time field value out of range: \"2024-01-01 25:00:00\""), Same),
    (DistType::Timestamp, "2024-01-01 12:00:00+02", Value("757425600000000", "0002b0dfe3d4f000"), Same),
    (DistType::Timestamp, "2024-01-01 12:00:00+16", Error("22009", "time zone displacement out of range: \"2024-01-01 12:00:00+16\""), Same),
    (DistType::Timestamp, "1999-12-31 23:59:59.999999", Value("-1", "ffffffffffffffff"), Same),
    (DistType::Timestamp, "2024-01-01", Value("757382400000000", "0002b0d5d4e94000"), Same),
    (DistType::Timestamp, "2024-01-01  1:2:3", Value("757386123000000", "0002b0d6b2d1b8c0"), Same),
    (DistType::Timestamp, "2024-01-01 12:00:00.", Value("757425600000000", "0002b0dfe3d4f000"), Same),
    (DistType::Timestamp, "2024-01-01 12:00:00.000001", Value("757425600000001", "0002b0dfe3d4f001"), Same),
    (DistType::Timestamp, "infinity", Value("9223372036854775807", "7fffffffffffffff"), Same),
    (DistType::Timestamp, "-infinity", Value("-9223372036854775808", "8000000000000000"), Same),
    (DistType::Timestamp, "epoch", Value("-946684800000000", "fffca2fec4c82000"), Same),
    (DistType::Timestamp, "0001-01-01 00:00:00", Value("-63082281600000000", "ff1fe2ffc59c6000"), Same),
    (DistType::Timestamp, "2024-01-01 12:00:00 PST", Value("757425600000000", "0002b0dfe3d4f000"), Unsupported),
    (DistType::Timestamp, "2024-01-01 12:00:00.1234567", Value("757425600123457", "0002b0dfe3d6d241"), Unsupported),
    (DistType::Timestamp, "Jan 1 2024 12:00", Value("757425600000000", "0002b0dfe3d4f000"), Unsupported),
    (DistType::Timestamptz, "2024-01-01 12:00:00+02", Value("757418400000000", "0002b0de36ada800"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00 +02", Value("757418400000000", "0002b0de36ada800"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00+0230", Value("757416600000000", "0002b0ddcb63d600"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00+02:30", Value("757416600000000", "0002b0ddcb63d600"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00-05:30:15", Value("757445415000000", "0002b0e480e5d7c0"), Same),
    (DistType::Timestamptz, "2024-01-01T12:00:00Z", Value("757425600000000", "0002b0dfe3d4f000"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00z", Value("757425600000000", "0002b0dfe3d4f000"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00 utc", Value("757425600000000", "0002b0dfe3d4f000"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00 GMT", Value("757425600000000", "0002b0dfe3d4f000"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00+15:59", Value("757368060000000", "0002b0d27e2e3700"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00+16", Error("22009", "time zone displacement out of range: \"2024-01-01 12:00:00+16\""), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00+15:60", Error("22009", "time zone displacement out of range: \"2024-01-01 12:00:00+15:60\""), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00+123", Value("757420620000000", "0002b0debb002b00"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00+2", Value("757418400000000", "0002b0de36ada800"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00-00:30", Value("757427400000000", "0002b0e04f1ec200"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00.25-08", Value("757454400250000", "0002b0e69875e090"), Same),
    (DistType::Timestamptz, "2024-01-01 00:00:00+14", Value("757332000000000", "0002b0ca18d64800"), Same),
    (DistType::Timestamptz, "2024-02-30 12:00:00+00", Error("22008", "date/time field value out of range: \"2024-02-30 12:00:00+00\""), Same),
    (DistType::Timestamptz, "2024-01-01 23:59:60.5+00", Error("22008", "date/time field value out of range: \"2024-01-01 23:59:60.5+00\""), Same),
    (DistType::Timestamptz, "infinity", Value("9223372036854775807", "7fffffffffffffff"), Same),
    (DistType::Timestamptz, "epoch", Value("-946684800000000", "fffca2fec4c82000"), Same),
    (DistType::Timestamptz, "2024-01-01 12:00:00", Value("757425600000000", "0002b0dfe3d4f000"), NeedsTimeZone),
    (DistType::Timestamptz, "2024-01-01", Value("757382400000000", "0002b0d5d4e94000"), NeedsTimeZone),
    (DistType::Timestamptz, "2024-01-01 12:00:00 Europe/Paris", Value("757422000000000", "0002b0df0d414c00"), Unsupported),
    (DistType::Bool, "t", Value("true", "01"), Same),
    (DistType::Bool, "true", Value("true", "01"), Same),
    (DistType::Bool, "TRUE", Value("true", "01"), Same),
    (DistType::Bool, "tr", Value("true", "01"), Same),
    (DistType::Bool, "yes", Value("true", "01"), Same),
    (DistType::Bool, "y", Value("true", "01"), Same),
    (DistType::Bool, "on", Value("true", "01"), Same),
    (DistType::Bool, "of", Value("false", "00"), Same),
    (DistType::Bool, "off", Value("false", "00"), Same),
    (DistType::Bool, "o", Error("22P02", "invalid input syntax for type boolean: \"o\""), Same),
    (DistType::Bool, "1", Value("true", "01"), Same),
    (DistType::Bool, "0", Value("false", "00"), Same),
    (DistType::Bool, "f", Value("false", "00"), Same),
    (DistType::Bool, "fa", Value("false", "00"), Same),
    (DistType::Bool, "no", Value("false", "00"), Same),
    (DistType::Bool, "n", Value("false", "00"), Same),
    (DistType::Bool, " t ", Value("true", "01"), Same),
    (DistType::Bool, "\tOFF\n", Value("false", "00"), Same),
    (DistType::Bool, "11", Error("22P02", "invalid input syntax for type boolean: \"11\""), Same),
    (DistType::Bool, "", Error("22P02", "invalid input syntax for type boolean: \"\""), Same),
    (DistType::Bool, "ye", Value("true", "01"), Same),
    (DistType::Bool, "truex", Error("22P02", "invalid input syntax for type boolean: \"truex\""), Same),
    (DistType::Bool, "onx", Error("22P02", "invalid input syntax for type boolean: \"onx\""), Same),
    (DistType::Numeric, "1.500", Value("1.5", "000200000000000300011388"), Same),
    (DistType::Numeric, " +1.500 ", Value("1.5", "000200000000000300011388"), Same),
    (DistType::Numeric, "-0", Value("0", "0000000000000000"), Same),
    (DistType::Numeric, "-0.000", Value("0", "0000000000000003"), Same),
    (DistType::Numeric, "0.0", Value("0", "0000000000000001"), Same),
    (DistType::Numeric, "NaN", Value("NaN", "00000000c0000000"), Same),
    (DistType::Numeric, " nan ", Value("NaN", "00000000c0000000"), Same),
    (DistType::Numeric, "Infinity", Value("Infinity", "00000000d0000020"), Same),
    (DistType::Numeric, "-inf", Value("-Infinity", "00000000f0000020"), Same),
    (DistType::Numeric, "+infinity", Value("Infinity", "00000000d0000020"), Same),
    (DistType::Numeric, "1e3", Value("1000", "000100000000000003e8"), Same),
    (DistType::Numeric, "1.5E-3", Value("0.0015", "0001ffff00000004000f"), Same),
    (DistType::Numeric, ".5", Value("0.5", "0001ffff000000011388"), Same),
    (DistType::Numeric, "5.", Value("5", "00010000000000000005"), Same),
    (DistType::Numeric, ".", Error("22P02", "invalid input syntax for type numeric: \".\""), Same),
    (DistType::Numeric, "00012.3400", Value("12.34", "0002000000000004000c0d48"), Same),
    (DistType::Numeric, "1e-2", Value("0.01", "0001ffff000000020064"), Same),
    (DistType::Numeric, "12e+0", Value("12", "0001000000000000000c"), Same),
    (DistType::Numeric, "1 000", Error("22P02", "invalid input syntax for type numeric: \"1 000\""), Same),
    (DistType::Numeric, "1_000", Error("22P02", "invalid input syntax for type numeric: \"1_000\""), Same),
    (DistType::Numeric, "0x10", Error("22P02", "invalid input syntax for type numeric: \"0x10\""), Same),
    (DistType::Numeric, "1e", Error("22P02", "invalid input syntax for type numeric: \"1e\""), Same),
    (DistType::Numeric, "-.0e5", Value("0", "0000000000000000"), Same),
    (DistType::Numeric, "123456789012345678901234567890.123456789", Value("123456789012345678901234567890.123456789", "000b000700000009000c0d801ed204d2162e23340d801ed204d2162e2328"), Same),
    (DistType::Numeric, "1e 3", Value("1000", "000100000000000003e8"), Same),
    (DistType::Numeric, "1e- 3", Error("22P02", "invalid input syntax for type numeric: \"1e- 3\""), Same),
    (DistType::Numeric, "1e131072", Error("22003", "value overflows numeric format"), Same),
    (DistType::Numeric, "1e-16384", Error("22003", "value overflows numeric format"), Same),
    (DistType::Numeric, "0e-20000", Error("22003", "value overflows numeric format"), Same),
    (DistType::Numeric, "1.0e-16383", Error("22003", "value overflows numeric format"), Same),
    (DistType::Numeric, "1e2147483647", Error("22003", "value overflows numeric format"), Same),
    (DistType::Numeric, "0e1000000000", Value("0", "0000000000000000"), Same),
    (DistType::Numeric, "-12345.678", Value("-12345.678", "0003000140000003000109291a7c"), Same),
    (DistType::Numeric, "100", Value("100", "00010000000000000064"), Same),
    (DistType::Numeric, "1e20", Value("100000000000000000000", "00010005000000000001"), Same),
    (DistType::Numeric, "-0.000012", Value("-0.000012", "0001fffe4000000604b0"), Same),
    (DistType::Numeric, "5.e3", Value("5000", "00010000000000001388"), Same),
    (DistType::Numeric, "..5", Error("22P02", "invalid input syntax for type numeric: \"..5\""), Same),
    (DistType::Numeric, "infx", Error("22P02", "invalid input syntax for type numeric: \"infx\""), Same),
    (DistType::Bytea, "\\xDEADbeef", Value("deadbeef", "deadbeef"), Same),
    (DistType::Bytea, "\\x de ad\tbe\nef\r ", Value("deadbeef", "deadbeef"), Same),
    (DistType::Bytea, "\\X dead", Error("22P02", "invalid input syntax for type bytea"), Same),
    (DistType::Bytea, "\\xdea", Error("22023", "invalid hexadecimal data: odd number of digits"), Same),
    (DistType::Bytea, "\\xd e", Error("22023", "invalid hexadecimal digit: \" \""), Same),
    (DistType::Bytea, "\\xzz", Error("22023", "invalid hexadecimal digit: \"z\""), Same),
    (DistType::Bytea, "\\x", Value("", ""), Same),
    (DistType::Bytea, "abc\\\\def", Value("6162635c646566", "6162635c646566"), Same),
    (DistType::Bytea, "a\\101b", Value("614162", "614162"), Same),
    (DistType::Bytea, "a\\400", Error("22P02", "invalid input syntax for type bytea"), Same),
    (DistType::Bytea, "a\\1", Error("22P02", "invalid input syntax for type bytea"), Same),
    (DistType::Bytea, "a\\", Error("22P02", "invalid input syntax for type bytea"), Same),
    (DistType::Bytea, "", Value("", ""), Same),
    (DistType::Bytea, "hé", Value("68c3a9", "68c3a9"), Same),
    (DistType::Bytea, "\\\\x41", Value("5c783431", "5c783431"), Same),
];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// A value shown the way the PostgreSQL queries above showed it.
fn shown(value: &DistValue) -> String {
    match value {
        DistValue::Int(v) | DistValue::Timestamp(v) => v.to_string(),
        DistValue::Date(v) => v.to_string(),
        DistValue::Text(v) | DistValue::Numeric(v) => v.clone(),
        DistValue::Uuid(v) => hex(v),
        DistValue::Bool(v) => v.to_string(),
        DistValue::Bytes(v) => hex(v),
    }
}

/// Checks one row; returns a description of the disagreement, if any.
fn check(ty: DistType, input: &str, pg: &Pg, ours: &Ours) -> Option<String> {
    let got = DistValue::from_text(ty, input);
    let why = match (ours, pg, &got) {
        (Unsupported, _, Err(HashError::Unsupported { .. })) => None,
        (NeedsTimeZone, _, Err(HashError::NeedsTimeZone)) => None,
        (Same, Value(want, _), Ok(value)) if shown(value) == *want => None,
        (Same, Error(code, message), Err(e)) if e.to_string() == *message => {
            let code_ok = COARSE_CODES.contains(code) || e.code().code() == *code;
            (!code_ok).then(|| format!("code {} instead of {code}", e.code().code()))
        }
        _ => Some(format!("got {got:?}")),
    };
    if why.is_some() {
        return why;
    }
    // The binary send form must give the value PostgreSQL showed.
    let Value(want, send) = pg else { return None };
    match DistValue::from_binary(ty, &unhex(send)) {
        Ok(value) if shown(&value) == *want => None,
        other => Some(format!("binary {send}: got {other:?}")),
    }
}

#[test]
fn coercions_agree_with_postgresql() {
    let failures: Vec<String> = CASES
        .iter()
        .filter_map(|(ty, input, pg, ours)| {
            check(*ty, input, pg, ours).map(|why| format!("{ty:?} {input:?}: {why}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Binary numerics PostgreSQL received through `COPY ... FROM ... (FORMAT binary)`, then
/// showed with `trim_scale(n)::text`: digits past the display scale are truncated, not
/// rounded, and a negative value truncated to zero is plain zero.
#[rustfmt::skip]
const NUMERIC_RECV: &[(&str, Result<&str, &str>)] = &[
    ("000200000000000000011388", Ok("1")),
    ("000200000000000100011388", Ok("1.5")),
    ("000200000000000200010929", Ok("1.23")),
    ("0001ffff000000021388", Ok("0.5")),
    ("0001ffff400000001388", Ok("0")),
    ("0003000240000000000100020003", Ok("-100020003")),
    ("0003000000000008000000000007", Ok("0.00000007")),
    ("00010000000000002710", Err("invalid digit in external \"numeric\" value")),
    ("00010000123400000001", Err("invalid sign in external \"numeric\" value")),
    ("00010000000040000001", Err("invalid scale in external \"numeric\" value")),
    ("00000000d0000000", Ok("Infinity")),
    ("0001800000003fff270f", Ok("0")),
];

#[test]
fn numeric_recv_agrees_with_postgresql() {
    for (send, want) in NUMERIC_RECV {
        let got = DistValue::from_binary(DistType::Numeric, &unhex(send));
        match (want, &got) {
            (Ok(text), Ok(DistValue::Numeric(n))) if n == text => {}
            (Err(message), Err(e)) if e.to_string() == *message => {}
            _ => panic!("{send}: want {want:?}, got {got:?}"),
        }
    }
}
