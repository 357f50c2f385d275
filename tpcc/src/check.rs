//! `check`: the consistency conditions 1 to 4 of clause 3.3.2, per warehouse and district.
//! The aggregates are read with the simple protocol (text results), which pgshard answers
//! for statements it merges over several shards, and compared here, exactly.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use crate::conn::{Conn, cents, int, text_rows};

/// Violations listed per condition; the rest are only counted.
const SHOWN: usize = 10;

/// The outcome of one consistency condition.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Condition {
    /// Its number in clause 3.3.2.
    pub number: u32,
    /// What it requires.
    pub rule: &'static str,
    /// Warehouses or districts checked.
    pub checked: usize,
    /// How many of them violate it.
    pub violations: usize,
    /// The first violations, described.
    pub first_violations: Vec<String>,
}

impl Condition {
    fn new(number: u32, rule: &'static str) -> Self {
        Self { number, rule, checked: 0, violations: 0, first_violations: Vec::new() }
    }

    /// Counts one warehouse or district, violating the rule when `problem` is Some.
    fn note(&mut self, problem: Option<String>) {
        self.checked += 1;
        if let Some(problem) = problem {
            self.violations += 1;
            if self.first_violations.len() < SHOWN {
                self.first_violations.push(problem);
            }
        }
    }

    /// True when nothing violates it.
    pub fn passed(&self) -> bool {
        self.violations == 0
    }
}

/// The outcome of every condition.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CheckReport {
    /// Conditions 1 to 4, in order.
    pub conditions: Vec<Condition>,
}

impl CheckReport {
    /// True when every condition holds.
    pub fn passed(&self) -> bool {
        self.conditions.iter().all(Condition::passed)
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, c) in self.conditions.iter().enumerate() {
            let verdict = if c.passed() { "pass" } else { "FAIL" };
            write!(f, "condition {}: {verdict} ({} checked, {} violations): {}", c.number, c.checked, c.violations, c.rule)?;
            for v in &c.first_violations {
                write!(f, "\n    {v}")?;
            }
            if i + 1 < self.conditions.len() {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

/// Checks conditions 1 to 4; Err when one is violated (the error carries the report).
pub async fn check(conn: &Conn) -> anyhow::Result<CheckReport> {
    let report = check_report(conn).await?;
    anyhow::ensure!(report.passed(), "TPC-C consistency check failed:\n{report}");
    Ok(report)
}

/// Checks conditions 1 to 4 and reports, whether they hold or not.
pub async fn check_report(conn: &Conn) -> anyhow::Result<CheckReport> {
    let client = conn.connect().await?;
    let warehouses = keyed(&client, "SELECT w_id, w_ytd FROM warehouse", 1).await?;
    let district_ytd = keyed(&client, "SELECT d_w_id, sum(d_ytd) FROM district GROUP BY d_w_id", 1).await?;
    let districts = keyed(&client, "SELECT d_w_id, d_id, d_next_o_id FROM district", 2).await?;
    let orders =
        keyed(&client, "SELECT o_w_id, o_d_id, max(o_id), sum(o_ol_cnt) FROM orders GROUP BY o_w_id, o_d_id", 2).await?;
    let new_orders = keyed(
        &client,
        "SELECT no_w_id, no_d_id, max(no_o_id), min(no_o_id), count(*) FROM new_order GROUP BY no_w_id, no_d_id",
        2,
    )
    .await?;
    let lines = keyed(&client, "SELECT ol_w_id, ol_d_id, count(*) FROM order_line GROUP BY ol_w_id, ol_d_id", 2).await?;

    let mut c1 = Condition::new(1, "W_YTD = sum(D_YTD) for every warehouse");
    for (key, w) in &warehouses {
        let w_ytd = cents(&w[0], "w_ytd")?;
        c1.note(match district_ytd.get(key) {
            Some(d) if cents(&d[0], "sum(d_ytd)")? == w_ytd => None,
            Some(d) => Some(format!("warehouse {}: w_ytd {} but sum(d_ytd) {}", key[0], text(&w[0]), text(&d[0]))),
            None => Some(format!("warehouse {}: no district", key[0])),
        });
    }
    let mut c2 = Condition::new(2, "D_NEXT_O_ID - 1 = max(O_ID) = max(NO_O_ID) for every district");
    let mut c3 = Condition::new(3, "max(NO_O_ID) - min(NO_O_ID) + 1 = rows in NEW-ORDER for every district");
    let mut c4 = Condition::new(4, "sum(O_OL_CNT) = rows in ORDER-LINE for every district");
    for (key, d) in &districts {
        let name = format!("district ({}, {})", key[0], key[1]);
        let next = int(&d[0], "d_next_o_id")?;
        let order = orders.get(key);
        let new_order = new_orders.get(key);
        let max_o = order.map(|o| int(&o[0], "max(o_id)")).transpose()?;
        let max_no = new_order.map(|n| int(&n[0], "max(no_o_id)")).transpose()?;
        // A district whose orders are all delivered has no max(no_o_id) to compare.
        c2.note(match (max_o, max_no) {
            (Some(o), Some(n)) if o == next - 1 && n == next - 1 => None,
            (Some(o), None) if o == next - 1 => None,
            _ => Some(format!("{name}: d_next_o_id - 1 = {}, max(o_id) = {max_o:?}, max(no_o_id) = {max_no:?}", next - 1)),
        });
        if let Some(n) = new_order {
            let (max, min, count) = (int(&n[0], "max(no_o_id)")?, int(&n[1], "min(no_o_id)")?, int(&n[2], "count(*)")?);
            c3.note((max - min + 1 != count).then(|| format!("{name}: max {max} - min {min} + 1 but {count} rows")));
        } else {
            c3.note(None);
        }
        let ol_cnt = order.map(|o| int(&o[1], "sum(o_ol_cnt)")).transpose()?.unwrap_or(0);
        let line_rows = lines.get(key).map(|l| int(&l[0], "count(*)")).transpose()?.unwrap_or(0);
        c4.note((ol_cnt != line_rows).then(|| format!("{name}: sum(o_ol_cnt) {ol_cnt} but {line_rows} order lines")));
    }
    Ok(CheckReport { conditions: vec![c1, c2, c3, c4] })
}

/// Text rows keyed by their first `key_columns` integer columns; the values are the rest.
async fn keyed(client: &Client, sql: &str, key_columns: usize) -> anyhow::Result<BTreeMap<Vec<i64>, Vec<Option<String>>>> {
    let mut map = BTreeMap::new();
    for mut row in text_rows(client, sql).await? {
        let rest = row.split_off(key_columns);
        let key = row.iter().map(|v| int(v, sql)).collect::<anyhow::Result<Vec<i64>>>()?;
        map.insert(key, rest);
    }
    Ok(map)
}

/// A text value for a message.
fn text(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("NULL")
}
