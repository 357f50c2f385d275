//! Golden vectors (the placement function pinned forever), equal-for-equal coercions, type
//! names, and the split of the hash space into shards.

use super::*;

/// (type, input text, hash, shard of 32).
///
/// THESE VALUES MUST NEVER CHANGE. Every row stored in a pgshard cluster was placed by this
/// function; a different hash for the same value sends reads and writes to a shard that does
/// not hold the row. They were computed once by running the implementation; a failure here
/// means the implementation changed, not that the table needs updating.
#[rustfmt::skip]
const GOLDEN: &[(DistType, &str, u64, u32)] = &[
    (DistType::Int2, "0", 0x313c_2dd2_ec99_6e80, 6),
    (DistType::Int2, "-32768", 0x1a03_3188_33d9_2b30, 3),
    (DistType::Int4, "42", 0x46bb_72a9_ed34_27e4, 8),
    (DistType::Int4, "-1", 0x53a5_f4bc_2fc0_168c, 10),
    (DistType::Int4, "2147483647", 0x652e_0090_7bdc_42d2, 12),
    (DistType::Int8, "-9223372036854775808", 0x5ed9_3512_6821_1059, 11),
    (DistType::Int8, "9223372036854775807", 0xa3c3_59fd_3e03_bbfc, 20),
    (DistType::Int8, "1234567890123", 0x7484_1568_f55c_2c1e, 14),
    (DistType::Text, "", 0xc9f4_2e6c_9e93_dfff, 25),
    (DistType::Text, "hello", 0x87a0_d124_5121_4d49, 16),
    (DistType::Text, "héllo wörld", 0xba9c_d7cc_85db_60e5, 23),
    (DistType::Text, "Ωmega 🐘", 0x087a_57c4_9522_36ef, 1),
    (DistType::Text, "The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog.", 0xae25_5486_470a_c49a, 21),
    (DistType::Varchar, "orders", 0xa687_5b72_3192_5bf3, 20),
    (DistType::Bpchar, "ab   ", 0x983a_8e94_e64c_8015, 19),
    (DistType::Uuid, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 0x9f80_fd2b_7a2d_4340, 19),
    (DistType::Uuid, "00000000-0000-0000-0000-000000000000", 0x96e4_6400_e00b_6da5, 18),
    (DistType::Uuid, "ffffffff-ffff-ffff-ffff-ffffffffffff", 0x60a7_84c3_dce2_d87b, 12),
    (DistType::Date, "2000-01-01", 0x8978_bc5f_bc70_dc4e, 17),
    (DistType::Date, "2024-02-29", 0xda70_d488_78c2_b105, 27),
    (DistType::Date, "1999-12-31", 0x96b2_93da_4f73_64e9, 18),
    (DistType::Date, "infinity", 0xfe33_64f1_16d2_066a, 31),
    (DistType::Timestamp, "2000-01-01 00:00:00", 0xaa26_9631_f2ca_76e1, 21),
    (DistType::Timestamp, "2024-01-01 12:00:00.123456", 0xc3d5_3593_42a1_1a84, 24),
    (DistType::Timestamp, "-infinity", 0x1382_b5a2_d2b6_62ef, 2),
    (DistType::Timestamptz, "2024-01-01 12:00:00+02", 0x8b04_feb6_4e62_743e, 17),
    (DistType::Timestamptz, "1970-01-01 00:00:00Z", 0x9b4b_c918_cc1f_2717, 19),
    (DistType::Bool, "true", 0xbb51_93ce_9597_388e, 23),
    (DistType::Bool, "false", 0x548e_68bd_e3d2_215a, 10),
    (DistType::Numeric, "0", 0x7210_11ed_5d0a_9405, 14),
    (DistType::Numeric, "1.5", 0x32e1_5d68_8a24_d217, 6),
    (DistType::Numeric, "-12345.678", 0x0ccc_c21f_e2ce_10f1, 1),
    (DistType::Numeric, "NaN", 0x4dba_2df2_47d3_e28a, 9),
    (DistType::Numeric, "Infinity", 0x0dc3_ad51_6593_a7b0, 1),
    (DistType::Numeric, "-Infinity", 0x8042_a94f_d47d_0815, 16),
    (DistType::Numeric, "1e-20", 0x4d4c_9465_3f3d_c816, 9),
    (DistType::Numeric, "100", 0x84dc_5ce6_75ab_a35e, 16),
    (DistType::Numeric, "123456789012345678901234567890.123456789", 0x672d_6efe_5f00_8020, 12),
    (DistType::Bytea, "\\x", 0xdc4d_00f7_8ae4_972d, 27),
    (DistType::Bytea, "\\x00", 0xc29b_545f_9901_e49b, 24),
    (DistType::Bytea, "\\xdeadbeef", 0xf210_02cc_c883_7fc8, 30),
    (DistType::Bytea, "abc", 0x60f7_ed2a_eb33_196f, 12),
];

#[test]
fn golden_vectors_never_change() {
    for (ty, input, hash, shard) in GOLDEN {
        let value = DistValue::from_text(*ty, input).unwrap();
        assert_eq!(
            value.hash(),
            *hash,
            "{ty:?} {input:?}: the placement function changed"
        );
        assert_eq!(shard_index(value.hash(), 32), *shard, "{ty:?} {input:?}");
    }
}

#[test]
fn golden_covers_every_type() {
    for ty in DistType::ALL {
        assert!(
            GOLDEN.iter().any(|(t, ..)| *t == ty),
            "{ty:?} has no golden vector"
        );
    }
}

#[test]
fn encoding_is_tag_then_canonical_bytes() {
    let h = |bytes: &[u8]| xxh3_64(bytes);
    assert_eq!(DistValue::Int(42).hash(), h(&[1, 0, 0, 0, 0, 0, 0, 0, 42]));
    assert_eq!(DistValue::Text("ab".into()).hash(), h(b"\x02ab"));
    assert_eq!(
        DistValue::Uuid([7; 16]).hash(),
        h(&[[3u8].as_slice(), &[7; 16]].concat())
    );
    assert_eq!(DistValue::Date(-1).hash(), h(&[4, 0xff, 0xff, 0xff, 0xff]));
    assert_eq!(
        DistValue::Timestamp(1).hash(),
        h(&[5, 0, 0, 0, 0, 0, 0, 0, 1])
    );
    assert_eq!(DistValue::Bool(true).hash(), h(&[6, 1]));
    assert_eq!(DistValue::Numeric("1.5".into()).hash(), h(b"\x071.5"));
    assert_eq!(DistValue::Bytes(vec![0, 255]).hash(), h(&[8, 0, 255]));
    // Long payloads take the heap path; both paths hash the same bytes.
    for len in [0, 1, 126, 127, 128, 129, 1000] {
        let text = "x".repeat(len);
        assert_eq!(
            DistValue::Text(text.clone()).hash(),
            h(format!("\x02{text}").as_bytes()),
            "{len}"
        );
    }
}

#[test]
fn type_families_hash_apart() {
    let hashes = [
        DistValue::Int(1).hash(),
        DistValue::Bool(true).hash(),
        DistValue::Numeric("1".into()).hash(),
        DistValue::Text("1".into()).hash(),
        DistValue::Bytes(b"1".to_vec()).hash(),
        DistValue::Date(1).hash(),
        DistValue::Timestamp(1).hash(),
    ];
    for (i, a) in hashes.iter().enumerate() {
        assert!(
            hashes[i + 1..].iter().all(|b| a != b),
            "family {i} collides"
        );
    }
}

/// Every input of a group must coerce to one value (so to one hash).
fn assert_all_equal(ty: DistType, inputs: &[&str]) {
    let first = DistValue::from_text(ty, inputs[0]).unwrap();
    for input in &inputs[1..] {
        assert_eq!(
            DistValue::from_text(ty, input).unwrap(),
            first,
            "{ty:?} {input:?}"
        );
    }
}

#[test]
fn equal_values_hash_alike() {
    for ty in [DistType::Int2, DistType::Int4, DistType::Int8] {
        assert_all_equal(ty, &["42", " 42", "+42", "042", "\t42\n"]);
        assert_eq!(DistValue::from_text(ty, "42").unwrap(), DistValue::Int(42));
    }
    let forty_two = DistValue::Int(42);
    assert_eq!(
        DistValue::from_binary(DistType::Int2, &42i16.to_be_bytes()).unwrap(),
        forty_two
    );
    assert_eq!(
        DistValue::from_binary(DistType::Int4, &42i32.to_be_bytes()).unwrap(),
        forty_two
    );
    assert_eq!(
        DistValue::from_binary(DistType::Int8, &42i64.to_be_bytes()).unwrap(),
        forty_two
    );
    assert_all_equal(DistType::Bpchar, &["ab", "ab  ", "ab     "]);
    assert_ne!(
        DistValue::from_text(DistType::Text, "ab  ").unwrap(),
        DistValue::Text("ab".into())
    );
    // text, varchar and bpchar share a family, so colocated tables on them agree.
    assert_eq!(
        DistValue::from_text(DistType::Varchar, "ab").unwrap(),
        DistValue::from_text(DistType::Bpchar, "ab ").unwrap()
    );
    assert_all_equal(
        DistType::Uuid,
        &[
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        ],
    );
    assert_all_equal(
        DistType::Numeric,
        &["1.5", "1.50", "+1.500", "15e-1", "0.15E1", " 1.5 "],
    );
    assert_all_equal(DistType::Numeric, &["0", "-0", "0.000", "-0.0e10", "000"]);
    assert_all_equal(DistType::Numeric, &["100", "1e2", "100.0", "0100"]);
    assert_all_equal(
        DistType::Timestamptz,
        &[
            "2024-01-01 12:00:00+02",
            "2024-01-01T10:00:00Z",
            "2024-01-01 10:00:00 UTC",
            "2024-01-01 05:00:00-05",
            "2024-01-01 12:00+0200",
        ],
    );
    assert_all_equal(
        DistType::Timestamp,
        &[
            "2024-01-01 12:00:00",
            "2024-01-01T12:00",
            "2024-01-01 12:00:00+05",
        ],
    );
    assert_all_equal(DistType::Date, &["1970-01-01", "epoch", " 1970-1-1 "]);
    assert_all_equal(DistType::Bool, &["t", "true", "YES", "on", "1", " tr "]);
    assert_all_equal(DistType::Bool, &["f", "false", "no", "OFF", "0"]);
    assert_all_equal(
        DistType::Bytea,
        &["\\x616263", "abc", "\\141bc", "\\x 61 62 63"],
    );
}

#[test]
fn binary_input_is_checked() {
    let invalid = |ty, bytes: &[u8]| {
        let err = DistValue::from_binary(ty, bytes).unwrap_err();
        assert!(
            matches!(err, HashError::InvalidInput { .. }),
            "{ty:?} {bytes:?}: {err:?}"
        );
        err
    };
    invalid(DistType::Int4, &42i64.to_be_bytes());
    invalid(DistType::Int8, &42i32.to_be_bytes());
    invalid(DistType::Int2, &[]);
    invalid(DistType::Uuid, &[0; 15]);
    invalid(DistType::Bool, &[1, 0]);
    invalid(DistType::Date, &[0; 8]);
    invalid(DistType::Numeric, &[0, 1, 0, 0, 0, 0, 0, 0]);
    let err = invalid(DistType::Text, b"ab\xffc");
    assert_eq!(
        err.to_string(),
        "invalid byte sequence for encoding \"UTF8\": 0xff"
    );
    invalid(DistType::Text, b"a\0b");
    assert_eq!(
        DistValue::from_binary(DistType::Bool, &[2]).unwrap(),
        DistValue::Bool(true)
    );
    assert_eq!(
        DistValue::from_binary(DistType::Bytea, b"\xff\0").unwrap(),
        DistValue::Bytes(vec![255, 0])
    );
    assert_eq!(
        DistValue::from_binary(DistType::Bpchar, b"ab  ").unwrap(),
        DistValue::Text("ab".into())
    );
    let out_of_range = |ty, bytes: &[u8]| {
        let err = DistValue::from_binary(ty, bytes).unwrap_err();
        assert!(
            matches!(err, HashError::OutOfRange { .. }),
            "{ty:?}: {err:?}"
        );
        assert_eq!(err.code().code(), "22008");
    };
    out_of_range(DistType::Date, &(-2_451_546i32).to_be_bytes());
    out_of_range(DistType::Date, &2_145_031_949i32.to_be_bytes());
    out_of_range(
        DistType::Timestamp,
        &9_223_371_331_200_000_000i64.to_be_bytes(),
    );
    out_of_range(DistType::Timestamptz, &(i64::MIN + 1).to_be_bytes());
    assert!(DistValue::from_binary(DistType::Date, &2_145_031_948i32.to_be_bytes()).is_ok());
}

#[test]
fn errors_carry_sqlstates() {
    let code = |ty, text| {
        DistValue::from_text(ty, text)
            .unwrap_err()
            .code()
            .code()
            .to_owned()
    };
    assert_eq!(code(DistType::Int4, "x"), "22P02");
    assert_eq!(code(DistType::Int2, "99999"), "22003");
    assert_eq!(code(DistType::Numeric, "1e999999"), "22003");
    assert_eq!(code(DistType::Date, "2024-02-30"), "22008");
    assert_eq!(code(DistType::Date, "yesterday"), "0A000");
    assert_eq!(code(DistType::Timestamptz, "2024-01-01 12:00"), "0A000");
    assert!(matches!(
        DistValue::from_text(DistType::Timestamptz, "2024-01-01"),
        Err(HashError::NeedsTimeZone)
    ));
    let unhashable = DistType::from_type_name("double precision").unwrap_err();
    assert_eq!(unhashable.code().code(), "0A000");
    assert_eq!(
        unhashable.to_string(),
        "cannot distribute on a column of type double precision"
    );
}

/// `format_type()` text from PostgreSQL 15 for columns of each kind.
#[test]
fn type_names_from_postgresql() {
    let hashable = [
        ("smallint", DistType::Int2),
        ("integer", DistType::Int4),
        ("bigint", DistType::Int8),
        ("text", DistType::Text),
        ("character varying(20)", DistType::Varchar),
        ("character varying", DistType::Varchar),
        ("character(5)", DistType::Bpchar),
        ("character(1)", DistType::Bpchar),
        ("bpchar", DistType::Bpchar),
        ("uuid", DistType::Uuid),
        ("date", DistType::Date),
        ("timestamp without time zone", DistType::Timestamp),
        ("timestamp(3) without time zone", DistType::Timestamp),
        ("timestamp with time zone", DistType::Timestamptz),
        ("timestamp(0) with time zone", DistType::Timestamptz),
        ("boolean", DistType::Bool),
        ("numeric(10,2)", DistType::Numeric),
        ("numeric(5,0)", DistType::Numeric),
        ("numeric", DistType::Numeric),
        ("bytea", DistType::Bytea),
        ("INT4", DistType::Int4),
        ("int8", DistType::Int8),
        ("varchar(3)", DistType::Varchar),
        ("timestamptz", DistType::Timestamptz),
        ("decimal", DistType::Numeric),
        ("pg_catalog.int4", DistType::Int4),
        ("  Character  Varying ( 20 ) ", DistType::Varchar),
    ];
    for (name, ty) in hashable {
        assert_eq!(DistType::from_type_name(name).unwrap(), ty, "{name}");
    }
    let unhashable = [
        "real",
        "double precision",
        "json",
        "jsonb",
        "integer[]",
        "text[]",
        "character varying(3)[]",
        "\"char\"",
        "name",
        "oid",
        "interval",
        "time without time zone",
        "money",
        "inet",
        "mood",
        "posint",
        "pair",
        "",
    ];
    for name in unhashable {
        assert!(
            matches!(DistType::from_type_name(name), Err(HashError::Unhashable(n)) if n == name),
            "{name}"
        );
    }
}

#[test]
fn names_and_oids_round_trip() {
    let oids = [
        21, 23, 20, 25, 1043, 1042, 2950, 1082, 1114, 1184, 16, 1700, 17,
    ];
    for (ty, oid) in DistType::ALL.into_iter().zip(oids) {
        assert_eq!(DistType::from_type_name(ty.name()).unwrap(), ty);
        assert_eq!(DistType::from_type_name(&ty.to_string()).unwrap(), ty);
        assert_eq!(ty.oid(), oid);
        assert_eq!(DistType::from_oid(oid), Some(ty));
    }
    assert_eq!(DistType::from_oid(700), None);
    assert_eq!(DistType::Int8.name(), "int8");
    assert_eq!(
        DistType::Timestamptz.to_string(),
        "timestamp with time zone"
    );
}
