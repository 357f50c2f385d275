//! The simple protocol's fast path: a query's *shape* is its text with every literal replaced
//! by a placeholder (`SELECT abalance FROM pgbench_accounts WHERE aid = $1`). One pass over the
//! text finds the shape and the literals; the plan of a shape is made once per catalog version
//! and kept, so a query shaped like one seen before is routed without parsing: the literals are
//! the parameters that pick the shard, and the shard gets the original text (literals written
//! back, tables qualified with the shard's schema). Only what cannot depend on the literals'
//! place in the grammar is kept: statements that run as written on home, and statements over
//! distributed tables whose literals route them to one shard. Anything the scanner is unsure
//! of (comments, dollar quotes, escape strings, several statements) takes the full path.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use pgshard_planner::ShardPlan;

/// The most shapes kept; the cache starts over when it is full.
const CAPACITY: usize = 4096;

/// A literal of the query: as written, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    /// The text as written (`42`, `'it''s'`).
    pub text: String,
    /// The value (`42`, `it's`).
    pub value: String,
}

/// A query's shape and its literals, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// The text with `$1`, `$2`, ... in place of the literals.
    pub key: String,
    /// The literals.
    pub literals: Vec<Literal>,
}

/// What the plan of a shape allows.
#[derive(Debug, Clone)]
pub enum Fast {
    /// Runs as written on home.
    Home,
    /// Over distributed tables: route by the literals, one shard or the full path.
    Shard(Arc<ShardPlan>),
    /// Needs the full path every time.
    Slow,
}

/// Shapes planned under one catalog version, shared by every session.
#[derive(Default)]
pub struct ShapeCache {
    inner: RwLock<(i64, HashMap<String, Fast>)>,
}

impl ShapeCache {
    /// The plan kept for `key` under catalog `version`.
    pub fn get(&self, version: i64, key: &str) -> Option<Fast> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        if inner.0 != version {
            return None;
        }
        inner.1.get(key).cloned()
    }

    /// Keeps the plan of `key` made under catalog `version`.
    pub fn put(&self, version: i64, key: String, fast: Fast) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if inner.0 != version {
            if version < inner.0 {
                return;
            }
            *inner = (version, HashMap::new());
        }
        if inner.1.len() >= CAPACITY {
            inner.1.clear();
        }
        inner.1.insert(key, fast);
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// The shape of one statement, or `None` when the scanner is not sure of it.
pub fn shape_of(sql: &str) -> Option<Shape> {
    let b = sql.as_bytes();
    let mut key = String::with_capacity(sql.len() + 8);
    let mut literals = Vec::new();
    let mut i = 0;
    let mut copied = 0;
    let mut push_literal = |key: &mut String, copied: &mut usize, start: usize, end: usize, value: String| {
        key.push_str(&sql[*copied..start]);
        literals.push(Literal { text: sql[start..end].to_owned(), value });
        key.push('$');
        key.push_str(&literals.len().to_string());
        *copied = end;
    };
    while i < b.len() {
        match b[i] {
            b'\'' => {
                // A standard string; a prefix letter (E'', B'', X'', U&'', N'') is not taken.
                if i > 0 && (is_ident(b[i - 1]) || b[i - 1] == b'&') {
                    return None;
                }
                let start = i;
                let mut value = String::new();
                i += 1;
                loop {
                    let rest = sql.get(i..)?;
                    let end = rest.find('\'')?;
                    value.push_str(&rest[..end]);
                    i += end + 1;
                    if b.get(i) == Some(&b'\'') {
                        value.push('\'');
                        i += 1;
                    } else {
                        break;
                    }
                }
                push_literal(&mut key, &mut copied, start, i, value);
            }
            b'"' => {
                let end = sql.get(i + 1..)?.find('"')?;
                i += end + 2;
            }
            b'0'..=b'9' if i == 0 || !(is_ident(b[i - 1]) || b[i - 1] == b'.') => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if b.get(i) == Some(&b'.') {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if matches!(b.get(i), Some(b'e' | b'E')) {
                    return None;
                }
                if b.get(i).is_some_and(|&c| is_ident(c)) {
                    return None;
                }
                let value = sql[start..i].to_owned();
                push_literal(&mut key, &mut copied, start, i, value);
            }
            b'$' if i == 0 || !is_ident(b[i - 1]) => return None,
            b'-' if b.get(i + 1) == Some(&b'-') => return None,
            b'/' if b.get(i + 1) == Some(&b'*') => return None,
            b';' => {
                if !sql[i + 1..].trim().is_empty() {
                    return None;
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    key.push_str(&sql[copied..]);
    Some(Shape { key, literals })
}

/// `rendered` (a shape's text as planned for a shard) with the literals written back.
pub fn unshape(rendered: &str, literals: &[Literal]) -> Option<String> {
    let b = rendered.as_bytes();
    let mut out = String::with_capacity(rendered.len() + 16);
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let end = rendered.get(i + 1..)?.find('"')?;
                i += end + 2;
            }
            b'$' if i == 0 || !is_ident(b[i - 1]) => {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let n: usize = rendered[start + 1..i].parse().ok()?;
                out.push_str(&rendered[copied..start]);
                out.push_str(&literals.get(n.checked_sub(1)?)?.text);
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&rendered[copied..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(s: &Shape) -> Vec<&str> {
        s.literals.iter().map(|l| l.value.as_str()).collect()
    }

    #[test]
    fn literals_become_placeholders() {
        let s = shape_of("SELECT abalance FROM pgbench_accounts WHERE aid = 4711;").unwrap();
        assert_eq!(s.key, "SELECT abalance FROM pgbench_accounts WHERE aid = $1;");
        assert_eq!(lits(&s), vec!["4711"]);
        let s = shape_of("UPDATE t SET v = 'it''s', w = 1.5 WHERE k = -3 AND c2 = 7 AND x::int = 2").unwrap();
        assert_eq!(s.key, "UPDATE t SET v = $1, w = $2 WHERE k = -$3 AND c2 = $4 AND x::int = $5");
        assert_eq!(lits(&s), vec!["it's", "1.5", "3", "7", "2"]);
        assert_eq!(s.literals[0].text, "'it''s'");
        let s = shape_of("SELECT \"we'ird 1\" FROM \"t 2\"").unwrap();
        assert_eq!(s.key, "SELECT \"we'ird 1\" FROM \"t 2\"");
        assert!(s.literals.is_empty());
    }

    #[test]
    fn unsure_text_takes_the_full_path() {
        for sql in [
            "SELECT E'\\n'",
            "SELECT X'1F'",
            "SELECT 1 -- comment",
            "SELECT /* c */ 1",
            "SELECT $$x$$",
            "SELECT $1",
            "SELECT 1; SELECT 2",
            "SELECT 1e5",
            "SELECT 'unterminated",
            "SELECT 12abc",
        ] {
            assert_eq!(shape_of(sql), None, "{sql}");
        }
        assert!(shape_of("SELECT a$1 FROM t").is_some(), "a dollar inside an identifier is not a placeholder");
    }

    #[test]
    fn literals_go_back_where_they_were() {
        let sql = "select * from pgbench_accounts where aid = 12 and filler <> 'x''y' and \"q$1\" = 3";
        let s = shape_of(sql).unwrap();
        let rendered = s.key.replace("pgbench_accounts", "pgshard_g1_s3.pgbench_accounts");
        assert_eq!(
            unshape(&rendered, &s.literals).unwrap(),
            "select * from pgshard_g1_s3.pgbench_accounts where aid = 12 and filler <> 'x''y' and \"q$1\" = 3"
        );
        assert_eq!(unshape("SELECT $2", &s.literals).as_deref(), Some("SELECT 'x''y'"));
        assert_eq!(unshape("SELECT $9", &s.literals), None);
    }

    #[test]
    fn the_cache_follows_the_catalog_version() {
        let c = ShapeCache::default();
        c.put(3, "k".into(), Fast::Home);
        assert!(matches!(c.get(3, "k"), Some(Fast::Home)));
        assert!(c.get(4, "k").is_none());
        c.put(4, "j".into(), Fast::Slow);
        assert!(c.get(3, "k").is_none(), "an older version's plans are dropped");
        c.put(3, "old".into(), Fast::Home);
        assert!(c.get(4, "old").is_none(), "a plan of an older catalog is not kept");
    }
}
