//! The initial database population of clause 4.3.3.1, one COPY text line at a time. Every
//! function appends one row (tab-separated, `\N` for NULL, `now` for the load's timestamps)
//! to a buffer; no I/O here, so the rows can be checked without a server.

use std::fmt::Write as _;

use rand::Rng;

use crate::random::{
    C_LAST_LOAD, last_name, nurand, permutation, push_astring, push_data, push_fixed, push_nstring, push_state, push_zip,
};

/// Items in the catalog (and stock rows per warehouse).
pub const ITEMS: u32 = 100_000;
/// Districts per warehouse.
pub const DISTRICTS: u32 = 10;
/// Customers per district.
pub const CUSTOMERS: u32 = 3_000;
/// Orders per district.
pub const ORDERS: u32 = 3_000;
/// The first initial order still undelivered (it has a `new_order` row and no carrier).
pub const FIRST_NEW_ORDER: u32 = 2_101;

/// Ends a row: the text so far is its fields, tab-separated.
fn end(out: &mut String) {
    out.push('\n');
}

/// Appends name, street 1, street 2, city, state and zip (warehouse and district addresses).
fn push_name_and_address(out: &mut String, rng: &mut impl Rng) {
    push_astring(out, rng, 6, 10);
    out.push('\t');
    push_address(out, rng);
}

/// Appends street 1, street 2, city, state and zip.
fn push_address(out: &mut String, rng: &mut impl Rng) {
    for _ in 0..3 {
        push_astring(out, rng, 10, 20);
        out.push('\t');
    }
    push_state(out, rng);
    out.push('\t');
    push_zip(out, rng);
}

/// One `item` row.
pub fn item(out: &mut String, rng: &mut impl Rng, i_id: u32) {
    let _ = write!(out, "{i_id}\t{}\t", rng.random_range(1..=10_000));
    push_astring(out, rng, 14, 24);
    out.push('\t');
    push_fixed(out, rng.random_range(100..=10_000), 2);
    out.push('\t');
    push_data(out, rng);
    end(out);
}

/// One `warehouse` row.
pub fn warehouse(out: &mut String, rng: &mut impl Rng, w_id: u32) {
    let _ = write!(out, "{w_id}\t");
    push_name_and_address(out, rng);
    out.push('\t');
    push_fixed(out, rng.random_range(0..=2_000), 4);
    out.push_str("\t300000.00");
    end(out);
}

/// One `district` row.
pub fn district(out: &mut String, rng: &mut impl Rng, w_id: u32, d_id: u32) {
    let _ = write!(out, "{d_id}\t{w_id}\t");
    push_name_and_address(out, rng);
    out.push('\t');
    push_fixed(out, rng.random_range(0..=2_000), 4);
    let _ = write!(out, "\t30000.00\t{}", ORDERS + 1);
    end(out);
}

/// One `stock` row.
pub fn stock(out: &mut String, rng: &mut impl Rng, w_id: u32, i_id: u32) {
    let _ = write!(out, "{i_id}\t{w_id}\t{}", rng.random_range(10..=100));
    for _ in 0..10 {
        out.push('\t');
        push_astring(out, rng, 24, 24);
    }
    out.push_str("\t0\t0\t0\t");
    push_data(out, rng);
    end(out);
}

/// The last-name number of customer `c_id` at load: `c_id - 1` for the first thousand,
/// NURand(255, 0, 999) for the rest.
pub fn last_name_number(rng: &mut impl Rng, c_id: u32) -> u32 {
    if c_id <= 1_000 { c_id - 1 } else { nurand(rng, 255, C_LAST_LOAD, 0, 999) }
}

/// One `customer` row.
pub fn customer(out: &mut String, rng: &mut impl Rng, w_id: u32, d_id: u32, c_id: u32) {
    let _ = write!(out, "{c_id}\t{d_id}\t{w_id}\t");
    push_astring(out, rng, 8, 16);
    let last = last_name(last_name_number(rng, c_id));
    let _ = write!(out, "\tOE\t{last}\t");
    push_address(out, rng);
    out.push('\t');
    push_nstring(out, rng, 16);
    let credit = if rng.random_range(0..10) == 0 { "BC" } else { "GC" };
    let _ = write!(out, "\tnow\t{credit}\t50000.00\t");
    push_fixed(out, rng.random_range(0..=5_000), 4);
    out.push_str("\t-10.00\t10.00\t1\t0\t");
    push_astring(out, rng, 300, 500);
    end(out);
}

/// One `history` row, the initial payment of customer `c_id`.
pub fn history(out: &mut String, rng: &mut impl Rng, w_id: u32, d_id: u32, c_id: u32) {
    let _ = write!(out, "{c_id}\t{d_id}\t{w_id}\t{d_id}\t{w_id}\tnow\t10.00\t");
    push_astring(out, rng, 12, 24);
    end(out);
}

/// The initial orders of one district: order `o_id` is `orders[o_id - 1]`.
#[derive(Debug)]
pub struct DistrictOrders {
    /// Its customer (a random permutation of 1..=3000) and line count (5..=15), per order.
    pub orders: Vec<(u32, u32)>,
    /// The carrier of each delivered order (those before [`FIRST_NEW_ORDER`]).
    pub carriers: Vec<u32>,
}

impl DistrictOrders {
    /// Draws the customers, line counts and carriers of a district's orders.
    pub fn draw(rng: &mut impl Rng) -> Self {
        let customers = permutation(rng, CUSTOMERS);
        let orders = customers.into_iter().map(|c| (c, rng.random_range(5..=15))).collect();
        let carriers = (1..FIRST_NEW_ORDER).map(|_| rng.random_range(1..=10)).collect();
        Self { orders, carriers }
    }

    /// Number of order lines of the district.
    pub fn lines(&self) -> u64 {
        self.orders.iter().map(|(_, n)| u64::from(*n)).sum()
    }
}

/// One `orders` row.
pub fn order(out: &mut String, plan: &DistrictOrders, w_id: u32, d_id: u32, o_id: u32) {
    let (c_id, ol_cnt) = plan.orders[o_id as usize - 1];
    let _ = write!(out, "{o_id}\t{d_id}\t{w_id}\t{c_id}\tnow\t");
    match plan.carriers.get(o_id as usize - 1) {
        Some(carrier) => {
            let _ = write!(out, "{carrier}");
        }
        None => out.push_str("\\N"),
    }
    let _ = write!(out, "\t{ol_cnt}\t1");
    end(out);
}

/// One `new_order` row.
pub fn new_order(out: &mut String, w_id: u32, d_id: u32, o_id: u32) {
    let _ = write!(out, "{o_id}\t{d_id}\t{w_id}");
    end(out);
}

/// The `order_line` rows of order `o_id`.
pub fn order_lines(out: &mut String, rng: &mut impl Rng, plan: &DistrictOrders, w_id: u32, d_id: u32, o_id: u32) {
    let (_, ol_cnt) = plan.orders[o_id as usize - 1];
    let delivered = o_id < FIRST_NEW_ORDER;
    for number in 1..=ol_cnt {
        let i_id = rng.random_range(1..=ITEMS);
        let _ = write!(out, "{o_id}\t{d_id}\t{w_id}\t{number}\t{i_id}\t{w_id}\t");
        out.push_str(if delivered { "now\t5\t0.00\t" } else { "\\N\t5\t" });
        if !delivered {
            push_fixed(out, rng.random_range(1..=999_999), 2);
            out.push('\t');
        }
        push_astring(out, rng, 24, 24);
        end(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::stream;

    type RowFn = Box<dyn Fn(&mut String, &mut rand::rngs::SmallRng)>;

    fn fields(line: &str) -> Vec<&str> {
        line.split('\t').collect()
    }

    #[test]
    fn rows_have_every_column() {
        let mut rng = stream(1, &[]);
        let cases: [(usize, RowFn); 6] = [
            (5, Box::new(|o, r| item(o, r, 1))),
            (9, Box::new(|o, r| warehouse(o, r, 1))),
            (11, Box::new(|o, r| district(o, r, 1, 2))),
            (17, Box::new(|o, r| stock(o, r, 1, 2))),
            (21, Box::new(|o, r| customer(o, r, 1, 2, 3))),
            (8, Box::new(|o, r| history(o, r, 1, 2, 3))),
        ];
        for (columns, row) in cases {
            let mut out = String::new();
            row(&mut out, &mut rng);
            assert!(out.ends_with('\n') && out.matches('\n').count() == 1, "{out:?}");
            assert_eq!(fields(out.trim_end()).len(), columns, "{out:?}");
        }
    }

    #[test]
    fn customers_get_their_last_names() {
        let mut rng = stream(2, &[]);
        let mut out = String::new();
        customer(&mut out, &mut rng, 1, 1, 1);
        assert_eq!(fields(&out)[5], "BARBARBAR");
        out.clear();
        customer(&mut out, &mut rng, 1, 1, 1000);
        assert_eq!(fields(&out)[5], "EINGEINGEING");
        for c_id in 1001..=3000 {
            assert!(last_name_number(&mut rng, c_id) <= 999);
        }
    }

    #[test]
    fn orders_before_2101_are_delivered() {
        let mut rng = stream(3, &[]);
        let plan = DistrictOrders::draw(&mut rng);
        let mut customers: Vec<u32> = plan.orders.iter().map(|(c, _)| *c).collect();
        customers.sort_unstable();
        assert!(customers.iter().copied().eq(1..=CUSTOMERS));
        assert!(plan.orders.iter().all(|(_, n)| (5..=15).contains(n)));
        let mut out = String::new();
        order(&mut out, &plan, 1, 1, 2100);
        assert_ne!(fields(out.trim_end())[5], "\\N");
        out.clear();
        order(&mut out, &plan, 1, 1, 2101);
        assert_eq!(fields(out.trim_end())[5], "\\N");
        out.clear();
        order_lines(&mut out, &mut rng, &plan, 1, 1, 2101);
        assert_eq!(out.lines().count() as u32, plan.orders[2100].1);
        for line in out.lines() {
            let f = fields(line);
            assert_eq!((f.len(), f[6], f[7]), (10, "\\N", "5"));
            assert_ne!(f[8], "0.00");
        }
        out.clear();
        order_lines(&mut out, &mut rng, &plan, 1, 1, 1);
        assert!(out.lines().all(|l| fields(l)[6] == "now" && fields(l)[8] == "0.00"));
    }
}
