//! A catalog for the planner's unit tests: `orders`, `customer`, `order_line`, `stock` and
//! `"Orders"` are distributed in colocation group 1 on their warehouse column, `events` in group
//! 2 on `e_tenant`; `item` and `warehouse` are reference tables; anything else (in `public` or
//! unqualified) is unknown to the catalog.

use crate::route::{RelationKind, Relations};

/// The test catalog.
pub(crate) struct Catalog;

impl Relations for Catalog {
    fn kind_of(&self, schema: Option<&str>, name: &str) -> Option<RelationKind> {
        if schema.is_some_and(|s| s != "public") {
            return None;
        }
        let dist = |column: &str, group| Some(RelationKind::Distributed { column: column.into(), group });
        match name {
            "orders" => dist("o_w_id", 1),
            "customer" => dist("c_w_id", 1),
            "order_line" => dist("ol_w_id", 1),
            "stock" => dist("s_w_id", 1),
            "Orders" => dist("W", 1),
            "events" => dist("e_tenant", 2),
            "item" | "warehouse" => Some(RelationKind::Reference),
            _ => None,
        }
    }

    fn columns_of(&self, schema: Option<&str>, name: &str) -> Option<Vec<String>> {
        if schema.is_some_and(|s| s != "public") {
            return None;
        }
        let cols: &[&str] = match name {
            "orders" => &["o_id", "o_d_id", "o_w_id", "o_c_id", "o_carrier_id", "o_ol_cnt", "o_entry_d"],
            "customer" => &["c_id", "c_d_id", "c_w_id", "c_name", "c_balance"],
            "item" => &["i_id", "i_name", "i_price"],
            _ => return None,
        };
        Some(cols.iter().map(|c| (*c).to_owned()).collect())
    }
}
