//! The random numbers and strings of TPC-C (clause 2.1.6 and 4.3.2): uniform ranges, NURand
//! with its run-time constants, customer last names, alphanumeric and numeric strings, zip
//! codes, the "ORIGINAL" data strings, and per-stream seeding so that a load is the same for
//! a given seed however its work is split over jobs.

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// The ten syllables customer last names are made of (clause 4.3.2.3).
pub const SYLLABLES: [&str; 10] = ["BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING"];

/// The constant C of NURand(255, ..) used when loading customer last names. The run draws its
/// own constant at a distance from this one that clause 2.1.6.1 allows.
pub const C_LAST_LOAD: u32 = 157;

/// Characters of an a-string; neither tab, newline nor backslash, so rows need no COPY escaping.
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The run-time constants C of the three NURand uses (clause 2.1.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NurandConstants {
    /// For customer last names, NURand(255, 0, 999).
    pub c_last: u32,
    /// For customer ids, NURand(1023, 1, 3000).
    pub c_id: u32,
    /// For item ids, NURand(8191, 1, 100000).
    pub ol_i_id: u32,
}

impl NurandConstants {
    /// Draws run-time constants: `c_last` differs from [`C_LAST_LOAD`] by 65..=119, never 96
    /// or 112 (clause 2.1.6.1).
    pub fn for_run(rng: &mut impl Rng) -> Self {
        let delta = loop {
            let d = rng.random_range(65..=119);
            if d != 96 && d != 112 {
                break d;
            }
        };
        Self { c_last: (C_LAST_LOAD + delta) % 256, c_id: rng.random_range(0..=1023), ol_i_id: rng.random_range(0..=8191) }
    }
}

/// NURand(A, x, y) = (((random(0, A) | random(x, y)) + C) % (y - x + 1)) + x.
pub fn nurand(rng: &mut impl Rng, a: u32, c: u32, x: u32, y: u32) -> u32 {
    (((rng.random_range(0..=a) | rng.random_range(x..=y)) + c) % (y - x + 1)) + x
}

/// The last name of number `n` (0..=999): the syllables of its three digits.
pub fn last_name(n: u32) -> String {
    let mut name = String::with_capacity(15);
    for digit in [n / 100 % 10, n / 10 % 10, n % 10] {
        name.push_str(SYLLABLES[digit as usize]);
    }
    name
}

/// A generator seeded from the load's seed and a stream id (table and warehouse), so every
/// stream is the same whichever job produces it and in whatever order.
pub fn stream(seed: u64, parts: &[u64]) -> SmallRng {
    let mut state = seed;
    for part in parts {
        state = splitmix(state ^ splitmix(*part));
    }
    SmallRng::seed_from_u64(state)
}

/// One step of SplitMix64: spreads neighbouring inputs over the whole 64-bit range.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Appends a random a-string of `min..=max` characters.
pub fn push_astring(out: &mut String, rng: &mut impl Rng, min: usize, max: usize) {
    let len = rng.random_range(min..=max);
    out.extend((0..len).map(|_| ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())] as char));
}

/// A random a-string of `min..=max` characters.
pub fn astring(rng: &mut impl Rng, min: usize, max: usize) -> String {
    let mut s = String::with_capacity(max);
    push_astring(&mut s, rng, min, max);
    s
}

/// Appends a random n-string (digits) of exactly `len` characters.
pub fn push_nstring(out: &mut String, rng: &mut impl Rng, len: usize) {
    out.extend((0..len).map(|_| char::from(b'0' + rng.random_range(0..10u8))));
}

/// Appends a zip code: four random digits followed by "11111" (clause 4.3.2.7).
pub fn push_zip(out: &mut String, rng: &mut impl Rng) {
    push_nstring(out, rng, 4);
    out.push_str("11111");
}

/// Appends two random upper-case letters (a state).
pub fn push_state(out: &mut String, rng: &mut impl Rng) {
    out.extend((0..2).map(|_| char::from(b'A' + rng.random_range(0..26u8))));
}

/// Appends an item or stock data string: an a-string of 26..=50 characters, 10% of them with
/// "ORIGINAL" at a random position (clause 4.3.3.1).
pub fn push_data(out: &mut String, rng: &mut impl Rng) {
    let mut data = astring(rng, 26, 50);
    if rng.random_range(0..10) == 0 {
        let at = rng.random_range(0..=data.len() - 8);
        data.replace_range(at..at + 8, "ORIGINAL");
    }
    out.push_str(&data);
}

/// Appends `units / 10^scale` as a decimal with `scale` digits after the point.
pub fn push_fixed(out: &mut String, units: i64, scale: u32) {
    use std::fmt::Write as _;
    let div = 10i64.pow(scale);
    let sign = if units < 0 { "-" } else { "" };
    let _ = write!(out, "{sign}{}.{:0width$}", units.abs() / div, units.abs() % div, width = scale as usize);
}

/// The numbers 1..=n in random order (the customer of each initial order, clause 4.3.3.1).
pub fn permutation(rng: &mut impl Rng, n: u32) -> Vec<u32> {
    let mut v: Vec<u32> = (1..=n).collect();
    v.shuffle(rng);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_names_from_syllables() {
        assert_eq!(last_name(0), "BARBARBAR");
        assert_eq!(last_name(371), "PRICALLYOUGHT");
        assert_eq!(last_name(999), "EINGEINGEING");
        assert_eq!(last_name(40), "BARPRESBAR");
    }

    #[test]
    fn nurand_stays_in_range_and_is_skewed() {
        let mut rng = stream(1, &[1]);
        let mut hits = vec![0u32; 1000];
        for _ in 0..200_000 {
            let v = nurand(&mut rng, 255, 123, 0, 999);
            assert!(v <= 999);
            hits[v as usize] += 1;
        }
        // A uniform draw would give about 200 per value; NURand's OR makes some far commoner.
        let max = hits.iter().copied().max().unwrap_or(0);
        let min = hits.iter().copied().min().unwrap_or(0);
        assert!(max > 3 * min.max(1), "max {max} min {min}");
        for _ in 0..10_000 {
            let id = nurand(&mut rng, 8191, 77, 1, 100_000);
            assert!((1..=100_000).contains(&id));
            let c = nurand(&mut rng, 1023, 5, 1, 3000);
            assert!((1..=3000).contains(&c));
        }
    }

    #[test]
    fn run_constant_keeps_its_distance_from_the_load_constant() {
        for seed in 0..500 {
            let c = NurandConstants::for_run(&mut stream(seed, &[]));
            let delta = (c.c_last + 256 - C_LAST_LOAD) % 256;
            assert!((65..=119).contains(&delta) && delta != 96 && delta != 112, "delta {delta}");
            assert!(c.c_id <= 1023 && c.ol_i_id <= 8191);
        }
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u32> = (0..5).map(|_| stream(7, &[1, 2]).random()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(stream(7, &[1, 2]).random::<u64>(), stream(7, &[2, 1]).random::<u64>());
        assert_ne!(stream(7, &[1]).random::<u64>(), stream(8, &[1]).random::<u64>());
    }

    #[test]
    fn strings_have_their_shapes() {
        let mut rng = stream(3, &[]);
        let mut original = 0;
        for _ in 0..10_000 {
            let mut d = String::new();
            push_data(&mut d, &mut rng);
            assert!((26..=50).contains(&d.len()));
            assert!(d.bytes().all(|b| b.is_ascii_alphanumeric()));
            original += usize::from(d.contains("ORIGINAL"));
        }
        assert!((800..1200).contains(&original), "{original}");
        let mut zip = String::new();
        push_zip(&mut zip, &mut rng);
        assert!(zip.len() == 9 && zip.ends_with("11111") && zip.bytes().all(|b| b.is_ascii_digit()));
        let mut n = String::new();
        push_fixed(&mut n, 123_456, 2);
        push_fixed(&mut n, -1000, 2);
        push_fixed(&mut n, 5, 4);
        assert_eq!(n, "1234.56-10.000.0005");
        let mut p = permutation(&mut rng, 3000);
        p.sort_unstable();
        assert!(p.iter().copied().eq(1..=3000));
    }
}
