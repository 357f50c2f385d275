//! The five TPC-C transactions (clauses 2.4 to 2.8): their inputs, drawn once so a retried
//! transaction repeats the same work, and their execution on one connection with the
//! prepared [`Statements`], each inside BEGIN ... COMMIT. On error the caller rolls back.

use std::collections::HashMap;

use anyhow::Context;
use rand::Rng;
use tokio_postgres::Client;

use crate::mix::TxnKind;
use crate::population::{CUSTOMERS, DISTRICTS, ITEMS};
use crate::random::{NurandConstants, last_name, nurand};
use crate::statements::Statements;

/// What a client is bound to: its home warehouse, the Stock-Level district it keeps for the
/// whole run (clause 2.8.1.1), and the run's shape.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Home {
    pub w_id: i32,
    pub warehouses: i32,
    pub stock_level_district: i32,
    pub constants: NurandConstants,
}

/// How a transaction finished without error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Committed,
    /// A New-Order that met its unused item id and rolled back, as clause 2.4.2.3 wants.
    RolledBack,
}

/// A customer picked by id or by last name (the middle one of that name by first name).
#[derive(Clone, Debug)]
pub(crate) enum CustomerRef {
    Id(i32),
    LastName(String),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct OrderLine {
    i_id: i32,
    supply_w_id: i32,
    quantity: i32,
}

/// The input of one transaction.
#[derive(Clone, Debug)]
pub(crate) enum Input {
    NewOrder { w_id: i32, d_id: i32, c_id: i32, lines: Vec<OrderLine> },
    Payment { w_id: i32, d_id: i32, c_w_id: i32, c_d_id: i32, customer: CustomerRef, cents: i32 },
    OrderStatus { w_id: i32, d_id: i32, customer: CustomerRef },
    Delivery { w_id: i32, carrier: i32 },
    StockLevel { w_id: i32, d_id: i32, threshold: i32 },
}

/// The last `i_id` that exists; New-Orders that must roll back order `ITEMS + 1`.
const UNUSED_ITEM: i32 = ITEMS as i32 + 1;

impl Input {
    /// Draws the input of a `kind` transaction for a client at `home`.
    pub(crate) fn draw(kind: TxnKind, home: &Home, rng: &mut impl Rng) -> Input {
        let w_id = home.w_id;
        match kind {
            TxnKind::NewOrder => {
                let count = rng.random_range(5..=15);
                let roll_back = rng.random_range(1..=100) == 1;
                let mut lines: Vec<OrderLine> = (0..count)
                    .map(|i| OrderLine {
                        i_id: if roll_back && i == count - 1 { UNUSED_ITEM } else { item_id(home, rng) },
                        supply_w_id: if rng.random_range(1..=100) == 1 { other_warehouse(home, rng) } else { w_id },
                        quantity: rng.random_range(1..=10),
                    })
                    .collect();
                // Stock rows are locked in one global order, so two New-Orders never deadlock.
                lines.sort_by_key(|l| (l.supply_w_id, l.i_id));
                Input::NewOrder { w_id, d_id: district(rng), c_id: customer_id(home, rng), lines }
            }
            TxnKind::Payment => {
                let d_id = district(rng);
                let (c_w_id, c_d_id) = if rng.random_range(1..=100) <= 85 || home.warehouses == 1 {
                    (w_id, d_id)
                } else {
                    (other_warehouse(home, rng), district(rng))
                };
                let customer = customer_ref(home, rng);
                Input::Payment { w_id, d_id, c_w_id, c_d_id, customer, cents: rng.random_range(100..=500_000) }
            }
            TxnKind::OrderStatus => Input::OrderStatus { w_id, d_id: district(rng), customer: customer_ref(home, rng) },
            TxnKind::Delivery => Input::Delivery { w_id, carrier: rng.random_range(1..=10) },
            TxnKind::StockLevel => {
                Input::StockLevel { w_id, d_id: home.stock_level_district, threshold: rng.random_range(10..=20) }
            }
        }
    }

    /// Runs the transaction; the caller rolls back when this fails.
    pub(crate) async fn execute(&self, client: &Client, st: &Statements) -> anyhow::Result<Outcome> {
        client.batch_execute("BEGIN").await?;
        let outcome = match self {
            Input::NewOrder { w_id, d_id, c_id, lines } => new_order(client, st, *w_id, *d_id, *c_id, lines).await?,
            Input::Payment { w_id, d_id, c_w_id, c_d_id, customer, cents } => {
                payment(client, st, (*w_id, *d_id), (*c_w_id, *c_d_id), customer, *cents).await?
            }
            Input::OrderStatus { w_id, d_id, customer } => order_status(client, st, *w_id, *d_id, customer).await?,
            Input::Delivery { w_id, carrier } => delivery(client, st, *w_id, *carrier).await?,
            Input::StockLevel { w_id, d_id, threshold } => stock_level(client, st, *w_id, *d_id, *threshold).await?,
        };
        let end = if outcome == Outcome::Committed { "COMMIT" } else { "ROLLBACK" };
        client.batch_execute(end).await?;
        Ok(outcome)
    }
}

/// A district, uniformly.
fn district(rng: &mut impl Rng) -> i32 {
    rng.random_range(1..=DISTRICTS as i32)
}

/// An item id, NURand(8191, 1, 100000).
fn item_id(home: &Home, rng: &mut impl Rng) -> i32 {
    nurand(rng, 8191, home.constants.ol_i_id, 1, ITEMS) as i32
}

/// A customer id, NURand(1023, 1, 3000).
fn customer_id(home: &Home, rng: &mut impl Rng) -> i32 {
    nurand(rng, 1023, home.constants.c_id, 1, CUSTOMERS) as i32
}

/// A customer by last name 60% of the time (NURand(255, 0, 999)), by id otherwise.
fn customer_ref(home: &Home, rng: &mut impl Rng) -> CustomerRef {
    if rng.random_range(1..=100) <= 60 {
        CustomerRef::LastName(last_name(nurand(rng, 255, home.constants.c_last, 0, 999)))
    } else {
        CustomerRef::Id(customer_id(home, rng))
    }
}

/// A warehouse other than home, uniformly; home itself when there is only one.
fn other_warehouse(home: &Home, rng: &mut impl Rng) -> i32 {
    if home.warehouses < 2 {
        return home.w_id;
    }
    let other = rng.random_range(1..home.warehouses);
    if other >= home.w_id { other + 1 } else { other }
}

/// New-Order (clause 2.4.2): takes the district's next order id, enters the order and its
/// lines, updating each line's stock; rolls back when an item does not exist.
async fn new_order(c: &Client, st: &Statements, w_id: i32, d_id: i32, c_id: i32, lines: &[OrderLine]) -> anyhow::Result<Outcome> {
    let w_tax: f64 = c.query_one(&st.no_warehouse, &[&w_id]).await?.get(0);
    let district = c.query_one(&st.no_district, &[&w_id, &d_id]).await?;
    let (d_tax, o_id): (f64, i32) = (district.get(0), district.get(1));
    c.execute(&st.no_district_next, &[&w_id, &d_id]).await?;
    let discount: f64 = c.query_one(&st.no_customer, &[&w_id, &d_id, &c_id]).await?.get(0);
    let all_local = i32::from(lines.iter().all(|l| l.supply_w_id == w_id));
    let count = lines.len() as i32;
    c.execute(&st.no_insert_order, &[&o_id, &d_id, &w_id, &c_id, &count, &all_local]).await?;
    c.execute(&st.no_insert_new_order, &[&o_id, &d_id, &w_id]).await?;

    let ids: Vec<i32> = lines.iter().map(|l| l.i_id).collect();
    let items: HashMap<i32, (i32, String)> =
        c.query(&st.no_items, &[&ids]).await?.iter().map(|r| (r.get(0), (r.get(1), r.get(3)))).collect();
    if lines.iter().any(|l| !items.contains_key(&l.i_id)) {
        return Ok(Outcome::RolledBack);
    }
    let mut total_cents = 0i64;
    for (number, line) in (1i32..).zip(lines) {
        let (price, i_data) = &items[&line.i_id];
        let remote = i32::from(line.supply_w_id != w_id);
        let stock = c.query_one(&st.no_stock, &[&line.supply_w_id, &line.i_id, &line.quantity, &remote, &d_id]).await?;
        let (s_data, dist_info): (String, String) = (stock.get(1), stock.get(2));
        let brand = if i_data.contains("ORIGINAL") && s_data.contains("ORIGINAL") { 'B' } else { 'G' };
        let amount = line.quantity * price;
        total_cents += i64::from(amount);
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] =
            [&o_id, &d_id, &w_id, &number, &line.i_id, &line.supply_w_id, &line.quantity, &amount, &dist_info];
        c.execute(&st.no_insert_line, &params).await?;
        tracing::trace!(o_id, number, %brand, "order line");
    }
    let total = total_cents as f64 / 100.0 * (1.0 - discount) * (1.0 + w_tax + d_tax);
    tracing::trace!(w_id, d_id, o_id, total, "new order");
    Ok(Outcome::Committed)
}

/// Payment (clause 2.5.2): district and warehouse year-to-date, the customer's balance (and
/// data when credit is bad), a history row. The warehouse row, the hottest, is updated last
/// so its lock is held for the shortest time.
async fn payment(
    c: &Client,
    st: &Statements,
    (w_id, d_id): (i32, i32),
    (c_w_id, c_d_id): (i32, i32),
    customer: &CustomerRef,
    cents: i32,
) -> anyhow::Result<Outcome> {
    let d_name: String = c.query_one(&st.pay_district, &[&w_id, &d_id, &cents]).await?.get(0);
    let c_id = match customer {
        CustomerRef::Id(id) => *id,
        CustomerRef::LastName(name) => {
            let rows = c.query(&st.pay_customer_by_name, &[&c_w_id, &c_d_id, name]).await?;
            let middle = rows.get(rows.len().saturating_sub(1) / 2).with_context(|| format!("no customer {name}"))?;
            middle.get(0)
        }
    };
    let data = format!("{c_id} {c_d_id} {c_w_id} {d_id} {w_id} {}.{:02} | ", cents / 100, cents % 100);
    c.query_one(&st.pay_customer, &[&c_w_id, &c_d_id, &c_id, &cents, &data]).await?;
    let w_name: String = c.query_one(&st.pay_warehouse, &[&w_id, &cents]).await?.get(0);
    let h_data = format!("{w_name}    {d_name}");
    c.execute(&st.pay_history, &[&c_id, &c_d_id, &c_w_id, &d_id, &w_id, &cents, &h_data]).await?;
    Ok(Outcome::Committed)
}

/// Order-Status (clause 2.6.2): the customer, their last order and its lines; read only.
async fn order_status(c: &Client, st: &Statements, w_id: i32, d_id: i32, customer: &CustomerRef) -> anyhow::Result<Outcome> {
    let row = match customer {
        CustomerRef::Id(id) => c.query_one(&st.os_customer, &[&w_id, &d_id, id]).await?,
        CustomerRef::LastName(name) => {
            let mut rows = c.query(&st.os_customer_by_name, &[&w_id, &d_id, name]).await?;
            anyhow::ensure!(!rows.is_empty(), "no customer {name}");
            rows.swap_remove((rows.len() - 1) / 2)
        }
    };
    let (c_id, balance): (i32, i64) = (row.get(0), row.get(1));
    if let Some(order) = c.query_opt(&st.os_last_order, &[&w_id, &d_id, &c_id]).await? {
        let o_id: i32 = order.get(0);
        let lines = c.query(&st.os_lines, &[&w_id, &d_id, &o_id]).await?;
        tracing::trace!(c_id, balance, o_id, lines = lines.len(), "order status");
    }
    Ok(Outcome::Committed)
}

/// Delivery (clause 2.7.4): in each district, the oldest undelivered order is delivered by
/// `carrier` and its amount credited to its customer, all in one transaction. When another
/// Delivery took the same order first (our DELETE finds it gone), the next oldest is taken.
async fn delivery(c: &Client, st: &Statements, w_id: i32, carrier: i32) -> anyhow::Result<Outcome> {
    for d_id in 1..=DISTRICTS as i32 {
        for _attempt in 0..10 {
            let Some(oldest) = c.query_opt(&st.dl_oldest, &[&w_id, &d_id]).await? else { break };
            let o_id: i32 = oldest.get(0);
            if c.execute(&st.dl_delete, &[&w_id, &d_id, &o_id]).await? == 0 {
                continue;
            }
            let c_id: i32 = c.query_one(&st.dl_order, &[&w_id, &d_id, &o_id, &carrier]).await?.get(0);
            let lines = c.query(&st.dl_lines, &[&w_id, &d_id, &o_id]).await?;
            let cents: i64 = lines.iter().map(|r| i64::from(r.get::<_, i32>(0))).sum();
            c.execute(&st.dl_customer, &[&w_id, &d_id, &c_id, &cents]).await?;
            break;
        }
    }
    Ok(Outcome::Committed)
}

/// Stock-Level (clause 2.8.2): distinct items of the district's last 20 orders whose stock
/// is below `threshold`; read only.
async fn stock_level(c: &Client, st: &Statements, w_id: i32, d_id: i32, threshold: i32) -> anyhow::Result<Outcome> {
    let next: i32 = c.query_one(&st.sl_next_order, &[&w_id, &d_id]).await?.get(0);
    let low: i64 = c.query_one(&st.sl_low_stock, &[&w_id, &d_id, &(next - 20), &next, &threshold]).await?.get(0);
    tracing::trace!(w_id, d_id, threshold, low, "stock level");
    Ok(Outcome::Committed)
}
