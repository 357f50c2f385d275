//! ORDER BY over several shards as a streaming merge. Each node sorts its own shards' rows (a
//! `UNION ALL` of the shards' fragments, each already sorted and limited, under the same ORDER
//! BY), and the coordinator merges the nodes' sorted streams row by row, comparing the sort keys
//! it asked for in binary. Only sort keys whose order the coordinator knows exactly are merged
//! here (integers, floats, numeric, date, timestamp, timestamptz, boolean, oid); others (text
//! with its collation, ...) go through the default node (`merge`).

use std::cmp::Ordering;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use pgshard_catalog::{CatalogSnapshot, Shard};
use pgshard_planner::{Limit, MultiShard, SortKey};

use super::fanout::{Merged, by_node};
use super::relay::Interrupted;
use super::txn::Writes;
use super::{Session, msg};

/// A sort key value as the coordinator compares it.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Null,
    Int(i64),
    /// A float in PostgreSQL's order: NaN after every number.
    Float(f64),
    /// A numeric: sign class and base-10000 digits with their weight.
    Numeric(NumericKey),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
enum NumericKey {
    NegInf,
    Finite { negative: bool, weight: i16, digits: Vec<i16> },
    PosInf,
    NaN,
}

/// Type OIDs whose binary values the merge can compare.
fn comparable(ty: u32) -> bool {
    matches!(ty, 16 | 20 | 21 | 23 | 26 | 700 | 701 | 1082 | 1114 | 1184 | 1700)
}

fn decode(ty: u32, v: Option<&[u8]>) -> Option<Key> {
    let Some(v) = v else { return Some(Key::Null) };
    let be = |n: usize| v.get(..n);
    Some(match ty {
        16 => Key::Bool(*v.first()? != 0),
        21 => Key::Int(i64::from(i16::from_be_bytes(be(2)?.try_into().ok()?))),
        23 | 1082 => Key::Int(i64::from(i32::from_be_bytes(be(4)?.try_into().ok()?))),
        26 => Key::Int(i64::from(u32::from_be_bytes(be(4)?.try_into().ok()?))),
        20 | 1114 | 1184 => Key::Int(i64::from_be_bytes(be(8)?.try_into().ok()?)),
        700 => Key::Float(f64::from(f32::from_be_bytes(be(4)?.try_into().ok()?))),
        701 => Key::Float(f64::from_be_bytes(be(8)?.try_into().ok()?)),
        1700 => Key::Numeric(numeric(v)?),
        _ => return None,
    })
}

fn numeric(v: &[u8]) -> Option<NumericKey> {
    let word = |i: usize| v.get(i..i + 2).map(|b| i16::from_be_bytes([b[0], b[1]]));
    let (ndigits, weight, sign) = (word(0)?, word(2)?, word(4)? as u16);
    Some(match sign {
        0xC000 => NumericKey::NaN,
        0xD000 => NumericKey::PosInf,
        0xF000 => NumericKey::NegInf,
        _ => {
            let mut digits: Vec<i16> = (0..ndigits.max(0) as usize).map(|k| word(8 + 2 * k)).collect::<Option<_>>()?;
            while digits.last() == Some(&0) {
                digits.pop();
            }
            NumericKey::Finite { negative: sign == 0x4000 && !digits.is_empty(), weight, digits }
        }
    })
}

fn cmp_numeric(a: &NumericKey, b: &NumericKey) -> Ordering {
    use NumericKey::*;
    let rank = |n: &NumericKey| match n {
        NegInf => 0,
        Finite { .. } => 1,
        PosInf => 2,
        NaN => 3,
    };
    match (a, b) {
        (Finite { negative: na, weight: wa, digits: da }, Finite { negative: nb, weight: wb, digits: db }) => {
            match (na, nb) {
                (false, true) => return Ordering::Greater,
                (true, false) => return Ordering::Less,
                _ => {}
            }
            // Magnitudes: zero (no digits) is smallest; then by weight, then digit by digit.
            let magnitude = match (da.is_empty(), db.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                (false, false) => wa.cmp(wb).then_with(|| {
                    let n = da.len().max(db.len());
                    (0..n).map(|k| da.get(k).unwrap_or(&0).cmp(db.get(k).unwrap_or(&0))).find(|o| o.is_ne()).unwrap_or(Ordering::Equal)
                }),
            };
            if *na { magnitude.reverse() } else { magnitude }
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Compares two non-NULL keys of one type in ascending order.
fn cmp_values(a: &Key, b: &Key) -> Ordering {
    match (a, b) {
        (Key::Int(x), Key::Int(y)) => x.cmp(y),
        (Key::Bool(x), Key::Bool(y)) => x.cmp(y),
        (Key::Float(x), Key::Float(y)) => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            // -0 and 0 are equal in PostgreSQL, as in partial_cmp.
            (false, false) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        },
        (Key::Numeric(x), Key::Numeric(y)) => cmp_numeric(x, y),
        _ => Ordering::Equal,
    }
}

/// Compares two rows' keys under the ORDER BY.
fn cmp_rows(a: &[Key], b: &[Key], order: &[SortKey]) -> Ordering {
    for k in order {
        let (x, y) = (&a[k.junk_index], &b[k.junk_index]);
        let o = match (x, y) {
            (Key::Null, Key::Null) => Ordering::Equal,
            (Key::Null, _) => if k.nulls_first { Ordering::Less } else { Ordering::Greater },
            (_, Key::Null) => if k.nulls_first { Ordering::Greater } else { Ordering::Less },
            _ if k.descending => cmp_values(x, y).reverse(),
            _ => cmp_values(x, y),
        };
        if o.is_ne() {
            return o;
        }
    }
    Ordering::Equal
}

/// A DataRow split into the row the client gets (junk columns removed) and its sort keys.
fn split_row(m: &[u8], visible: usize, junk_types: &[u32]) -> Option<(Bytes, Vec<Key>)> {
    let body = m.get(5..)?;
    let n = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let mut at = 2;
    let mut cut = 2;
    let mut keys = Vec::with_capacity(junk_types.len());
    for c in 0..n {
        let len = i32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?);
        let start = at + 4;
        let end = if len < 0 { start } else { start + len as usize };
        if c >= visible {
            let v = if len < 0 { None } else { Some(body.get(start..end)?) };
            keys.push(decode(*junk_types.get(c - visible)?, v)?);
        } else {
            cut = end;
        }
        at = end;
    }
    let mut out = BytesMut::with_capacity(cut + 5);
    out.put_u8(b'D');
    out.put_i32((cut + 4) as i32);
    out.put_i16(visible as i16);
    out.put_slice(body.get(2..cut)?);
    Some((out.freeze(), keys))
}

/// A RowDescription without its last `junk` fields.
fn strip_description(m: &[u8], junk: usize) -> Option<Bytes> {
    let body = m.get(5..)?;
    let n = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let visible = n.checked_sub(junk)?;
    let mut at = 2;
    for _ in 0..visible {
        at += body.get(at..)?.iter().position(|&b| b == 0)? + 1 + 18;
    }
    let mut out = BytesMut::with_capacity(at + 5);
    out.put_u8(b'T');
    out.put_i32((at + 4) as i32);
    out.put_i16(visible as i16);
    out.put_slice(body.get(2..at)?);
    Some(out.freeze())
}

/// Field types of a RowDescription.
fn description_types(m: &[u8]) -> Option<Vec<u32>> {
    let body = m.get(5..)?;
    let n = u16::from_be_bytes([*body.first()?, *body.get(1)?]) as usize;
    let mut at = 2;
    let mut types = Vec::with_capacity(n);
    for _ in 0..n {
        at += body.get(at..)?.iter().position(|&b| b == 0)? + 1;
        types.push(u32::from_be_bytes(body.get(at + 6..at + 10)?.try_into().ok()?));
        at += 18;
    }
    Some(types)
}

/// One node's sorted stream.
struct Stream {
    conn: usize,
    head: Option<(Bytes, Vec<Key>)>,
    done: bool,
}

impl Session {
    /// Merges sorted shard streams when the sort keys allow it; `Ok(false)` leaves the
    /// statement to the merge through the default node (nothing was sent to the client).
    #[allow(clippy::too_many_arguments, reason = "the parts of one Sort merge step")]
    pub(super) async fn sort_merge(
        &mut self,
        catalog: &Arc<CatalogSnapshot>,
        multi: &MultiShard,
        keys: &[SortKey],
        limit: Option<Limit>,
        offset: Limit,
        junk: usize,
        shards: &[&Shard],
    ) -> Result<bool, Interrupted> {
        let (limit, offset) = match (limit, offset) {
            (Some(Limit::Value(l)), Limit::Value(o)) => (Some(l), o),
            (None, Limit::Value(o)) => (None, o),
            _ => return Ok(false),
        };
        let shell = super::merge::inner(&multi.fragment.render(None));
        let Ok(description) = self.describe_on_home(&format!("SELECT * FROM ({shell}) pgshard_f")).await? else {
            return Ok(false);
        };
        let Some(types) = description_types(&description) else { return Ok(false) };
        let Some(visible) = types.len().checked_sub(junk) else { return Ok(false) };
        let junk_types = types[visible..].to_vec();
        if !junk_types.iter().all(|t| comparable(*t)) {
            return Ok(false);
        }
        let Some(client_description) = strip_description(&description, junk) else { return Ok(false) };
        let order: Vec<String> = keys
            .iter()
            .map(|k| {
                format!(
                    "\"pgshard_sort_{}\" {} NULLS {}",
                    k.junk_index + 1,
                    if k.descending { "DESC" } else { "ASC" },
                    if k.nulls_first { "FIRST" } else { "LAST" }
                )
            })
            .collect();
        let mut formats = vec![0i16; visible];
        formats.extend(std::iter::repeat_n(1i16, junk));
        let mut bind_tail = BytesMut::new();
        bind_tail.put_i16(0);
        bind_tail.put_i16(0);
        bind_tail.put_i16(formats.len() as i16);
        for f in &formats {
            bind_tail.put_i16(*f);
        }
        let mut streams = Vec::new();
        let mut conns = Vec::new();
        for (node, _) in by_node(shards) {
            match self.conn_to(catalog, node).await {
                Ok(i) => conns.push(i),
                Err(e) => {
                    self.answer_error(&e).await?;
                    return Ok(true);
                }
            }
        }
        if let Err(e) = self.join_now(&conns, Writes::Unknown).await {
            self.finish_merged(&Merged { error: Some(e), ..Merged::default() })?;
            return Ok(true);
        }
        for ((_, list), &i) in by_node(shards).into_iter().zip(&conns) {
            let parts: Vec<String> =
                list.iter().map(|s| format!("({})", super::merge::inner(&multi.fragment.render(Some(&s.schema_name()))))).collect();
            let mut sql = format!("SELECT * FROM ({}) pgshard_u ORDER BY {}", parts.join("\nUNION ALL\n"), order.join(", "));
            if let Some(l) = limit {
                sql.push_str(&format!(" LIMIT {}", l + offset));
            }
            let out = &mut self.conns.get(i).out;
            msg::parse("", &sql, &[], out);
            msg::bind_with("", "", &bind_tail, out);
            msg::execute("", out);
            msg::sync(out);
            self.flush_conn(i).await?;
            streams.push(Stream { conn: i, head: None, done: false });
        }
        if !self.extended {
            self.push(&client_description).await?;
        }
        let mut merged = Merged::default();
        for s in &mut streams {
            self.advance(s, visible, &junk_types, &mut merged).await?;
        }
        let (mut skipped, mut sent) = (0u64, 0u64);
        while merged.error.is_none() && limit.is_none_or(|l| sent < l) {
            let mut best: Option<(usize, &[Key])> = None;
            for (k, s) in streams.iter().enumerate() {
                let Some((_, row_keys)) = &s.head else { continue };
                match best {
                    Some((_, best_keys)) if !cmp_rows(row_keys, best_keys, keys).is_lt() => {}
                    _ => best = Some((k, row_keys)),
                }
            }
            let best = best.map(|(k, _)| k);
            let Some(b) = best else { break };
            let mut stream = std::mem::replace(&mut streams[b], Stream { conn: 0, head: None, done: true });
            if let Some((row, _)) = stream.head.take() {
                if skipped < offset {
                    skipped += 1;
                } else {
                    self.push(&row).await?;
                    sent += 1;
                }
            }
            self.advance(&mut stream, visible, &junk_types, &mut merged).await?;
            streams[b] = stream;
        }
        self.drain(&streams).await?;
        if merged.error.is_none() {
            merged.verb = Some("SELECT".into());
            merged.count = sent;
        }
        self.finish_merged(&merged)?;
        Ok(true)
    }

    /// Reads a stream's next row (or its end) into its head.
    async fn advance(&mut self, s: &mut Stream, visible: usize, junk_types: &[u32], merged: &mut Merged) -> Result<(), Interrupted> {
        while !s.done {
            let (tag, m) = self.conns.get(s.conn).recv().await?;
            match tag {
                b'D' => match split_row(&m, visible, junk_types) {
                    Some(row) => {
                        s.head = Some(row);
                        return Ok(());
                    }
                    None => {
                        let e = crate::error::CoordError::Protocol("a shard sent a row the merge cannot read".into());
                        merged.error.get_or_insert(msg::build(|o| msg::error(&e, o)));
                    }
                },
                b'E' => {
                    merged.error.get_or_insert(m);
                }
                b'Z' => {
                    s.done = true;
                }
                _ => {}
            }
        }
        s.head = None;
        Ok(())
    }

    /// Reads every unfinished stream to its end.
    async fn drain(&mut self, streams: &[Stream]) -> Result<(), Interrupted> {
        for s in streams.iter().filter(|s| !s.done) {
            loop {
                let (tag, _) = self.conns.get(s.conn).recv().await?;
                if tag == b'Z' {
                    break;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(v: &[i16], weight: i16, sign: u16) -> NumericKey {
        let mut b = Vec::new();
        b.extend_from_slice(&(v.len() as i16).to_be_bytes());
        b.extend_from_slice(&weight.to_be_bytes());
        b.extend_from_slice(&sign.to_be_bytes());
        b.extend_from_slice(&0u16.to_be_bytes());
        for d in v {
            b.extend_from_slice(&d.to_be_bytes());
        }
        numeric(&b).unwrap()
    }

    #[test]
    fn numerics_compare_as_postgres_orders_them() {
        let ordered = [
            num(&[], 0, 0xF000),        // -Infinity
            num(&[12], 1, 0x4000),      // -120000
            num(&[1, 5000], 0, 0x4000), // -1.5
            num(&[], 0, 0),             // 0
            num(&[5000], -1, 0),        // 0.5
            num(&[1], 0, 0),            // 1
            num(&[1, 1], 0, 0),         // 1.0001
            num(&[2], 1, 0),            // 20000
            num(&[], 0, 0xD000),        // Infinity
            num(&[], 0, 0xC000),        // NaN
        ];
        for (i, a) in ordered.iter().enumerate() {
            for (j, b) in ordered.iter().enumerate() {
                assert_eq!(cmp_numeric(a, b), i.cmp(&j), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn rows_compare_with_direction_and_nulls() {
        let asc = [SortKey { junk_index: 0, descending: false, nulls_first: false }];
        let desc_nulls_first = [SortKey { junk_index: 0, descending: true, nulls_first: true }];
        let (one, two, null) = ([Key::Int(1)], [Key::Int(2)], [Key::Null]);
        assert!(cmp_rows(&one, &two, &asc).is_lt());
        assert!(cmp_rows(&null, &two, &asc).is_gt());
        assert!(cmp_rows(&one, &two, &desc_nulls_first).is_gt());
        assert!(cmp_rows(&null, &two, &desc_nulls_first).is_lt());
        let nan = [Key::Float(f64::NAN)];
        assert!(cmp_rows(&nan, &[Key::Float(f64::INFINITY)], &asc).is_gt());
    }

    #[test]
    fn junk_columns_are_cut_from_rows_and_descriptions() {
        let row = msg::build(|o| msg::data_row(&[Some(b"a"), None, Some(&7i32.to_be_bytes())], o));
        let (client_row, keys) = split_row(&row, 2, &[23]).unwrap();
        assert_eq!(client_row, msg::build(|o| msg::data_row(&[Some(b"a"), None], o)));
        assert_eq!(keys, [Key::Int(7)]);
        let desc = msg::build(|o| msg::row_description(&[("x", 25), ("pgshard_sort_1", 23)], o));
        assert_eq!(strip_description(&desc, 1).unwrap(), msg::build(|o| msg::row_description(&[("x", 25)], o)));
        assert_eq!(description_types(&desc).unwrap(), [25, 23]);
    }
}
