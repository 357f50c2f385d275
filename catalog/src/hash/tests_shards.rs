//! The split of the hash space into shards: boundaries, pinned ranges, spread, and the
//! order-preserving `bigint` form the catalog stores.

use super::*;

#[test]
fn shard_ranges_match_shard_index_at_every_boundary() {
    for n in [1u32, 2, 3, 7, 32, 1000, u32::MAX] {
        let indexes: Vec<u32> = if n > 1000 {
            vec![0, 1, n / 2, n - 2, n - 1]
        } else {
            (0..n).collect()
        };
        for i in indexes {
            let (min, max) = shard_range(i, n);
            assert!(min <= max, "n={n} i={i}");
            assert_eq!(shard_index(min, n), i, "n={n} i={i} min");
            assert_eq!(shard_index(max, n), i, "n={n} i={i} max");
            assert_eq!(shard_index(min + (max - min) / 2, n), i);
            if i == 0 {
                assert_eq!(min, 0);
            } else {
                assert_eq!(shard_index(min - 1, n), i - 1, "n={n} i={i} below");
                assert_eq!(shard_range(i - 1, n).1, min - 1, "n={n} i={i} contiguous");
            }
            if i == n - 1 {
                assert_eq!(max, u64::MAX);
            } else {
                assert_eq!(shard_index(max + 1, n), i + 1, "n={n} i={i} above");
            }
        }
    }
}

#[test]
fn shard_ranges_are_pinned() {
    assert_eq!(shard_range(0, 1), (0, u64::MAX));
    assert_eq!(shard_range(0, 2), (0, 0x7fff_ffff_ffff_ffff));
    assert_eq!(shard_range(1, 2), (0x8000_0000_0000_0000, u64::MAX));
    assert_eq!(
        shard_range(1, 3),
        (0x5555_5555_5555_5556, 0xaaaa_aaaa_aaaa_aaaa)
    );
    assert_eq!(
        shard_range(5, 32),
        (0x2800_0000_0000_0000, 0x2fff_ffff_ffff_ffff)
    );
    assert_eq!(shard_index(0x2800_0000_0000_0000, 32), 5);
    assert_eq!(shard_index(u64::MAX, 1000), 999);
    // Degenerate arguments do not panic.
    assert_eq!(shard_index(u64::MAX, 0), 0);
    assert_eq!(shard_range(0, 0), (0, u64::MAX));
    assert_eq!(shard_range(9, 3), shard_range(2, 3));
}

#[test]
fn sequential_ints_spread_evenly() {
    const SHARDS: usize = 32;
    const VALUES: i64 = 100_000;
    let mut counts = [0u32; SHARDS];
    for v in 0..VALUES {
        counts[shard_index(DistValue::Int(v).hash(), SHARDS as u32) as usize] += 1;
    }
    let mean = VALUES as f64 / SHARDS as f64;
    for (shard, count) in counts.iter().enumerate() {
        let off = (f64::from(*count) - mean).abs() / mean;
        assert!(off <= 0.10, "shard {shard} holds {count}, mean {mean}");
    }
}

#[test]
fn catalog_mapping_keeps_order() {
    assert_eq!(to_catalog(0), i64::MIN);
    assert_eq!(to_catalog(u64::MAX), i64::MAX);
    assert_eq!(to_catalog(1 << 63), 0);
    let sample = [
        0,
        1,
        0x7fff_ffff_ffff_ffff,
        1 << 63,
        (1 << 63) + 1,
        u64::MAX - 1,
        u64::MAX,
    ];
    for pair in sample.windows(2) {
        assert!(to_catalog(pair[0]) < to_catalog(pair[1]));
    }
    for h in sample {
        assert_eq!(from_catalog(to_catalog(h)), h);
    }
}
