//! The SQL of the five transactions, prepared once per connection. Every statement pins the
//! warehouse column of each warehouse-keyed table it touches with `=`, and the one join
//! (Stock-Level) equates the two tables' warehouse columns, so pgshard sends each statement to
//! a single shard. Money crosses the wire as integer hundredths (`$n::int4 * 0.01` in,
//! `(x * 100)::int4` out) and rates as float8, so no numeric type is needed on the client.

use tokio_postgres::{Client, Statement};

/// The prepared statements of one connection.
pub(crate) struct Statements {
    pub(crate) no_warehouse: Statement,
    pub(crate) no_district: Statement,
    pub(crate) no_district_next: Statement,
    pub(crate) no_customer: Statement,
    pub(crate) no_insert_order: Statement,
    pub(crate) no_insert_new_order: Statement,
    pub(crate) no_items: Statement,
    pub(crate) no_stock: Statement,
    pub(crate) no_insert_line: Statement,
    pub(crate) pay_district: Statement,
    pub(crate) pay_customer_by_name: Statement,
    pub(crate) pay_customer: Statement,
    pub(crate) pay_warehouse: Statement,
    pub(crate) pay_history: Statement,
    pub(crate) os_customer_by_name: Statement,
    pub(crate) os_customer: Statement,
    pub(crate) os_last_order: Statement,
    pub(crate) os_lines: Statement,
    pub(crate) dl_oldest: Statement,
    pub(crate) dl_delete: Statement,
    pub(crate) dl_order: Statement,
    pub(crate) dl_lines: Statement,
    pub(crate) dl_customer: Statement,
    pub(crate) sl_next_order: Statement,
    pub(crate) sl_low_stock: Statement,
}

impl Statements {
    /// Prepares every statement on `client`.
    pub(crate) async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        Ok(Self {
            no_warehouse: client.prepare("SELECT w_tax::float8 FROM warehouse WHERE w_id = $1").await?,
            no_district: client
                .prepare("SELECT d_tax::float8, d_next_o_id FROM district WHERE d_w_id = $1 AND d_id = $2 FOR UPDATE")
                .await?,
            no_district_next: client
                .prepare("UPDATE district SET d_next_o_id = d_next_o_id + 1 WHERE d_w_id = $1 AND d_id = $2")
                .await?,
            no_customer: client
                .prepare(
                    "SELECT c_discount::float8, c_last, c_credit FROM customer \
                     WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                )
                .await?,
            no_insert_order: client
                .prepare(
                    "INSERT INTO orders (o_id, o_d_id, o_w_id, o_c_id, o_entry_d, o_carrier_id, o_ol_cnt, o_all_local) \
                     VALUES ($1, $2, $3, $4, now(), NULL, $5, $6)",
                )
                .await?,
            no_insert_new_order: client
                .prepare("INSERT INTO new_order (no_o_id, no_d_id, no_w_id) VALUES ($1, $2, $3)")
                .await?,
            no_items: client
                .prepare("SELECT i_id, (i_price * 100)::int4, i_name, i_data FROM item WHERE i_id = ANY($1)")
                .await?,
            no_stock: client.prepare(NO_STOCK).await?,
            no_insert_line: client
                .prepare(
                    "INSERT INTO order_line (ol_o_id, ol_d_id, ol_w_id, ol_number, ol_i_id, ol_supply_w_id, \
                     ol_delivery_d, ol_quantity, ol_amount, ol_dist_info) \
                     VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8::int4 * 0.01, $9)",
                )
                .await?,
            pay_district: client
                .prepare(
                    "UPDATE district SET d_ytd = d_ytd + $3::int4 * 0.01 WHERE d_w_id = $1 AND d_id = $2 \
                     RETURNING d_name, d_street_1, d_street_2, d_city, d_state, d_zip",
                )
                .await?,
            pay_customer_by_name: client
                .prepare("SELECT c_id FROM customer WHERE c_w_id = $1 AND c_d_id = $2 AND c_last = $3 ORDER BY c_first")
                .await?,
            pay_customer: client.prepare(PAY_CUSTOMER).await?,
            pay_warehouse: client
                .prepare(
                    "UPDATE warehouse SET w_ytd = w_ytd + $2::int4 * 0.01 WHERE w_id = $1 \
                     RETURNING w_name, w_street_1, w_street_2, w_city, w_state, w_zip",
                )
                .await?,
            pay_history: client
                .prepare(
                    "INSERT INTO history (h_c_id, h_c_d_id, h_c_w_id, h_d_id, h_w_id, h_date, h_amount, h_data) \
                     VALUES ($1, $2, $3, $4, $5, now(), $6::int4 * 0.01, $7)",
                )
                .await?,
            os_customer_by_name: client
                .prepare(
                    "SELECT c_id, (c_balance * 100)::int8, c_first, c_middle, c_last FROM customer \
                     WHERE c_w_id = $1 AND c_d_id = $2 AND c_last = $3 ORDER BY c_first",
                )
                .await?,
            os_customer: client
                .prepare(
                    "SELECT c_id, (c_balance * 100)::int8, c_first, c_middle, c_last FROM customer \
                     WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                )
                .await?,
            os_last_order: client
                .prepare(
                    "SELECT o_id, o_entry_d::text, o_carrier_id FROM orders \
                     WHERE o_w_id = $1 AND o_d_id = $2 AND o_c_id = $3 ORDER BY o_id DESC LIMIT 1",
                )
                .await?,
            os_lines: client
                .prepare(
                    "SELECT ol_i_id, ol_supply_w_id, ol_quantity, (ol_amount * 100)::int4, ol_delivery_d::text \
                     FROM order_line WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3",
                )
                .await?,
            dl_oldest: client
                .prepare("SELECT no_o_id FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 ORDER BY no_o_id LIMIT 1")
                .await?,
            dl_delete: client
                .prepare("DELETE FROM new_order WHERE no_w_id = $1 AND no_d_id = $2 AND no_o_id = $3")
                .await?,
            dl_order: client
                .prepare(
                    "UPDATE orders SET o_carrier_id = $4 WHERE o_w_id = $1 AND o_d_id = $2 AND o_id = $3 RETURNING o_c_id",
                )
                .await?,
            dl_lines: client
                .prepare(
                    "UPDATE order_line SET ol_delivery_d = now() WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id = $3 \
                     RETURNING (ol_amount * 100)::int4",
                )
                .await?,
            dl_customer: client
                .prepare(
                    "UPDATE customer SET c_balance = c_balance + $4::int8 * 0.01, c_delivery_cnt = c_delivery_cnt + 1 \
                     WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3",
                )
                .await?,
            sl_next_order: client.prepare("SELECT d_next_o_id FROM district WHERE d_w_id = $1 AND d_id = $2").await?,
            sl_low_stock: client
                .prepare(
                    "SELECT count(DISTINCT s_i_id) FROM order_line JOIN stock ON s_w_id = ol_w_id AND s_i_id = ol_i_id \
                     WHERE ol_w_id = $1 AND ol_d_id = $2 AND ol_o_id >= $3 AND ol_o_id < $4 AND s_quantity < $5",
                )
                .await?,
        })
    }
}

/// New-Order's stock update (clause 2.4.2.2): takes the ordered quantity (restocking by 91
/// when fewer than 10 would be left), counts the order and whether it is remote, and returns
/// the new quantity, the data string and the district's dist info.
const NO_STOCK: &str = "UPDATE stock SET \
     s_quantity = CASE WHEN s_quantity >= $3 + 10 THEN s_quantity - $3 ELSE s_quantity - $3 + 91 END, \
     s_ytd = s_ytd + $3, s_order_cnt = s_order_cnt + 1, s_remote_cnt = s_remote_cnt + $4 \
     WHERE s_w_id = $1 AND s_i_id = $2 \
     RETURNING s_quantity, s_data, CASE $5::int4 WHEN 1 THEN s_dist_01 WHEN 2 THEN s_dist_02 WHEN 3 THEN s_dist_03 \
     WHEN 4 THEN s_dist_04 WHEN 5 THEN s_dist_05 WHEN 6 THEN s_dist_06 WHEN 7 THEN s_dist_07 \
     WHEN 8 THEN s_dist_08 WHEN 9 THEN s_dist_09 ELSE s_dist_10 END";

/// Payment's customer update (clause 2.5.2.2): balance, year-to-date payment and payment
/// count; a bad-credit customer's data gets the payment's description prepended (cut to 500).
const PAY_CUSTOMER: &str = "UPDATE customer SET \
     c_balance = c_balance - $4::int4 * 0.01, c_ytd_payment = c_ytd_payment + $4::int4 * 0.01, \
     c_payment_cnt = c_payment_cnt + 1, \
     c_data = CASE WHEN c_credit = 'BC' THEN substr($5::text || c_data, 1, 500) ELSE c_data END \
     WHERE c_w_id = $1 AND c_d_id = $2 AND c_id = $3 \
     RETURNING c_first, c_middle, c_last, c_street_1, c_street_2, c_city, c_state, c_zip, c_phone, \
     c_since::text, c_credit, (c_credit_lim * 100)::int8, c_discount::float8, (c_balance * 100)::int8";
