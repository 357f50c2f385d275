//! The fuzzer's grammar: a random schema of distributed, reference and local tables, random
//! rows with NULLs, and random queries over them (filters, joins, aggregates, subqueries,
//! set operations, window functions, DISTINCT, ORDER BY/LIMIT). Everything is a pure function
//! of the seed.

pub use super::rng::Rng;

/// How a table is placed through pgshard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Hashed on its first column.
    Distributed,
    /// Copied to every node.
    Reference,
    /// Left on the default node.
    Local,
}

/// A column's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Numeric,
}

/// A generated table.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub placement: Placement,
    /// Columns; the first is the key (distribution column when distributed).
    pub columns: Vec<(String, Kind)>,
    /// `create_distributed_table` options after the column (shard count, colocation).
    pub options: String,
    pub rows: usize,
}

impl Table {
    fn ints(&self) -> Vec<&str> {
        self.columns.iter().filter(|(_, k)| *k == Kind::Int).map(|(c, _)| c.as_str()).collect()
    }

    fn of_kind(&self, kind: Kind) -> Vec<&str> {
        self.columns.iter().filter(|(_, k)| *k == kind).map(|(c, _)| c.as_str()).collect()
    }
}

/// The schema and data of one run.
pub struct Schema {
    pub tables: Vec<Table>,
}

const TEXTS: [&str; 5] = ["'x'", "'y'", "'z'", "'xy'", "'Y'"];

impl Schema {
    /// Two or three distributed tables (colocated or not, various shard counts), a reference
    /// table and a local table.
    pub fn generate(rng: &mut Rng) -> Schema {
        let mut tables = Vec::new();
        let shard_counts = [2, 4, 8];
        let distributed = 2 + rng.below(2);
        for i in 0..distributed {
            let colocate = if i > 0 && rng.chance(50) { ", colocate_with => 'none'" } else { "" };
            tables.push(Table {
                name: format!("d{}", i + 1),
                placement: Placement::Distributed,
                columns: vec![
                    ("k".into(), Kind::Int),
                    ("a".into(), Kind::Int),
                    ("b".into(), Kind::Int),
                    ("c".into(), Kind::Text),
                    ("n".into(), Kind::Numeric),
                ],
                options: format!(", shard_count => {}{colocate}", rng.pick(&shard_counts)),
                rows: 20 + rng.below(60),
            });
        }
        tables.push(Table {
            name: "r1".into(),
            placement: Placement::Reference,
            columns: vec![("k".into(), Kind::Int), ("a".into(), Kind::Int), ("c".into(), Kind::Text)],
            options: String::new(),
            rows: 5 + rng.below(15),
        });
        tables.push(Table {
            name: "l1".into(),
            placement: Placement::Local,
            columns: vec![("k".into(), Kind::Int), ("a".into(), Kind::Int)],
            options: String::new(),
            rows: 5 + rng.below(10),
        });
        Schema { tables }
    }

    /// CREATE TABLE and INSERT statements, the same on both sides.
    pub fn setup_sql(&self, rng: &mut Rng) -> Vec<String> {
        let mut out = Vec::new();
        for t in &self.tables {
            let cols: Vec<String> = t
                .columns
                .iter()
                .map(|(c, k)| {
                    format!(
                        "{c} {}",
                        match k {
                            Kind::Int => "int",
                            Kind::Text => "text",
                            Kind::Numeric => "numeric(8,2)",
                        }
                    )
                })
                .collect();
            out.push(format!("CREATE TABLE {} ({})", t.name, cols.join(", ")));
            let mut rows = Vec::new();
            for r in 0..t.rows {
                let values: Vec<String> = t
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, k))| match (i, k) {
                        // Keys: mostly unique, some repeats, some NULLs on the non-first tables.
                        (0, _) if rng.chance(85) => (r + 1).to_string(),
                        (0, _) => (rng.below(t.rows) + 1).to_string(),
                        (_, _) if rng.chance(12) => "NULL".into(),
                        (_, Kind::Int) => rng.below(10).to_string(),
                        (_, Kind::Text) => (*rng.pick(&TEXTS)).to_owned(),
                        (_, Kind::Numeric) => format!("{}.{:02}", rng.below(100), rng.below(100)),
                    })
                    .collect();
                rows.push(format!("({})", values.join(", ")));
            }
            out.push(format!("INSERT INTO {} VALUES {}", t.name, rows.join(", ")));
        }
        out
    }

    /// The pgshard calls that place the tables.
    pub fn placement_sql(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter_map(|t| match t.placement {
                Placement::Distributed => Some(format!("SELECT create_distributed_table('{}', 'k'{})", t.name, t.options)),
                Placement::Reference => Some(format!("SELECT create_reference_table('{}')", t.name)),
                Placement::Local => None,
            })
            .collect()
    }
}

/// A generated query and how its rows compare.
#[derive(Debug, Clone)]
pub struct Query {
    pub sql: String,
    /// The rows come in a defined order (ORDER BY every output column).
    pub ordered: bool,
    /// A write: afterwards the contents of this table are compared.
    pub writes: Option<String>,
}

/// Generates queries over a schema.
pub struct QueryGen<'a> {
    schema: &'a Schema,
}

/// One table in a FROM clause, with its alias.
struct Source<'a> {
    table: &'a Table,
    alias: String,
}

impl Source<'_> {
    fn col(&self, c: &str) -> String {
        format!("{}.{c}", self.alias)
    }
}

impl<'a> QueryGen<'a> {
    /// A generator for `schema`.
    pub fn new(schema: &'a Schema) -> Self {
        QueryGen { schema }
    }

    fn table(&self, rng: &mut Rng, distributed_bias: usize) -> &'a Table {
        if rng.chance(distributed_bias) {
            let d: Vec<&Table> = self.schema.tables.iter().filter(|t| t.placement == Placement::Distributed).collect();
            return d[rng.below(d.len())];
        }
        &self.schema.tables[rng.below(self.schema.tables.len())]
    }

    /// One random query.
    pub fn query(&self, rng: &mut Rng) -> Query {
        if rng.chance(12) {
            return self.write(rng);
        }
        match rng.below(10) {
            0 | 1 => self.select(rng),
            2 | 3 => self.aggregate(rng),
            4 | 5 => self.join(rng),
            6 => self.subquery(rng),
            7 => self.set_operation(rng),
            8 => self.window(rng),
            _ => self.distinct(rng),
        }
    }

    fn literal(rng: &mut Rng, kind: Kind) -> String {
        match kind {
            Kind::Int => rng.below(11).to_string(),
            Kind::Text => (*rng.pick(&TEXTS)).to_owned(),
            Kind::Numeric => format!("{}.5", rng.below(100)),
        }
    }

    /// A condition on one source's columns.
    fn predicate(&self, rng: &mut Rng, s: &Source<'_>) -> String {
        let one = |rng: &mut Rng| {
            let (c, kind) = s.table.columns[rng.below(s.table.columns.len())].clone();
            let col = s.col(&c);
            match rng.below(9) {
                0 => format!("{col} IS NULL"),
                1 => format!("{col} IS NOT NULL"),
                2 => format!("{col} IN ({}, {})", Self::literal(rng, kind), Self::literal(rng, kind)),
                3 if kind != Kind::Text => format!("{col} BETWEEN {} AND {}", Self::literal(rng, kind), Self::literal(rng, kind)),
                4 => format!("{col} <> {}", Self::literal(rng, kind)),
                5 => format!("{col} < {}", Self::literal(rng, kind)),
                6 => format!("{col} >= {}", Self::literal(rng, kind)),
                7 if c == "k" => format!("{col} = {}", rng.below(30) + 1),
                _ => format!("{col} = {}", Self::literal(rng, kind)),
            }
        };
        match rng.below(6) {
            0 => format!("{} AND {}", one(rng), one(rng)),
            1 => format!("({} OR {})", one(rng), one(rng)),
            2 => format!("NOT ({})", one(rng)),
            _ => one(rng),
        }
    }

    fn where_clause(&self, rng: &mut Rng, s: &Source<'_>) -> String {
        if rng.chance(65) { format!(" WHERE {}", self.predicate(rng, s)) } else { String::new() }
    }

    /// ORDER BY every output column (a total order of the result), sometimes with LIMIT/OFFSET.
    fn order(rng: &mut Rng, outputs: usize) -> (String, bool) {
        if !rng.chance(50) {
            return (String::new(), false);
        }
        let keys: Vec<String> = (1..=outputs)
            .map(|i| {
                let dir = if rng.chance(30) { " DESC" } else { "" };
                let nulls = match rng.below(4) {
                    0 => " NULLS FIRST",
                    1 => " NULLS LAST",
                    _ => "",
                };
                format!("{i}{dir}{nulls}")
            })
            .collect();
        let mut s = format!(" ORDER BY {}", keys.join(", "));
        if rng.chance(50) {
            s.push_str(&format!(" LIMIT {}", rng.below(8) + 1));
            if rng.chance(30) {
                s.push_str(&format!(" OFFSET {}", rng.below(5)));
            }
        }
        (s, true)
    }

    fn columns(&self, rng: &mut Rng, s: &Source<'_>) -> Vec<String> {
        let mut cols: Vec<String> = s.table.columns.iter().filter(|_| rng.chance(50)).map(|(c, _)| s.col(c)).collect();
        if cols.is_empty() {
            cols.push(s.col(&s.table.columns[rng.below(s.table.columns.len())].0));
        }
        cols
    }

    fn select(&self, rng: &mut Rng) -> Query {
        let s = Source { table: self.table(rng, 70), alias: "t".into() };
        let cols = self.columns(rng, &s);
        let (order, ordered) = Self::order(rng, cols.len());
        Query { sql: format!("SELECT {} FROM {} t{}{order}", cols.join(", "), s.table.name, self.where_clause(rng, &s)), ordered, writes: None }
    }

    fn aggregate_expr(rng: &mut Rng, s: &Source<'_>) -> String {
        let ints = s.table.ints();
        let int = s.col(ints[rng.below(ints.len())]);
        let numerics = s.table.of_kind(Kind::Numeric);
        let texts = s.table.of_kind(Kind::Text);
        match rng.below(9) {
            0 => "count(*)".into(),
            1 => format!("count({int})"),
            2 => format!("sum({int})"),
            3 => format!("min({int})"),
            4 => format!("max({int})"),
            5 if !numerics.is_empty() => format!("sum({})", s.col(numerics[0])),
            6 => format!("count(DISTINCT {int})"),
            7 if !texts.is_empty() => format!("max({})", s.col(texts[0])),
            8 if !numerics.is_empty() => format!("avg({})", s.col(numerics[0])),
            _ => format!("avg({int})"),
        }
    }

    fn aggregate(&self, rng: &mut Rng) -> Query {
        let s = Source { table: self.table(rng, 75), alias: "t".into() };
        let aggs: Vec<String> = (0..1 + rng.below(3)).map(|_| Self::aggregate_expr(rng, &s)).collect();
        let filter = self.where_clause(rng, &s);
        if rng.chance(40) {
            return Query { sql: format!("SELECT {} FROM {} t{filter}", aggs.join(", "), s.table.name), ordered: false, writes: None };
        }
        let group = s.col(&s.table.columns[rng.below(s.table.columns.len())].0);
        let having = if rng.chance(30) { format!(" HAVING count(*) > {}", rng.below(4)) } else { String::new() };
        let (order, ordered) = Self::order(rng, aggs.len() + 1);
        Query {
            sql: format!("SELECT {group}, {} FROM {} t{filter} GROUP BY {group}{having}{order}", aggs.join(", "), s.table.name),
            ordered,
            writes: None,
        }
    }

    fn join(&self, rng: &mut Rng) -> Query {
        let left = Source { table: self.table(rng, 80), alias: "t1".into() };
        let right = Source { table: self.table(rng, 60), alias: "t2".into() };
        let kind = *rng.pick(&["JOIN", "JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]);
        // Mostly on the keys (colocated when the tables are), sometimes on other int columns.
        let (lints, rints) = (left.table.ints(), right.table.ints());
        let lcol = if rng.chance(60) { "k" } else { lints[rng.below(lints.len())] };
        let rcol = if rng.chance(60) { "k" } else { rints[rng.below(rints.len())] };
        let mut cols = self.columns(rng, &left);
        cols.extend(self.columns(rng, &right));
        let filter = self.where_clause(rng, &left);
        if rng.chance(40) {
            let agg = format!("count(*), count({})", right.col("a"));
            return Query {
                sql: format!(
                    "SELECT {agg} FROM {} t1 {kind} {} t2 ON {} = {}{filter}",
                    left.table.name,
                    right.table.name,
                    left.col(lcol),
                    right.col(rcol)
                ),
                ordered: false,
                writes: None,
            };
        }
        let (order, ordered) = Self::order(rng, cols.len());
        Query {
            sql: format!(
                "SELECT {} FROM {} t1 {kind} {} t2 ON {} = {}{filter}{order}",
                cols.join(", "),
                left.table.name,
                right.table.name,
                left.col(lcol),
                right.col(rcol)
            ),
            ordered,
            writes: None,
        }
    }

    fn subquery(&self, rng: &mut Rng) -> Query {
        let outer = Source { table: self.table(rng, 80), alias: "t".into() };
        let inner = Source { table: self.table(rng, 60), alias: "u".into() };
        let ocol = outer.col(if rng.chance(50) { "k" } else { "a" });
        let icol = inner.col(if rng.chance(50) { "k" } else { "a" });
        let inner_filter = self.where_clause(rng, &inner);
        let condition = match rng.below(5) {
            0 => format!("{ocol} IN (SELECT {icol} FROM {} u{inner_filter})", inner.table.name),
            1 => format!("{ocol} NOT IN (SELECT {icol} FROM {} u WHERE {icol} IS NOT NULL)", inner.table.name),
            2 => format!("EXISTS (SELECT 1 FROM {} u WHERE {icol} = {ocol})", inner.table.name),
            3 => format!("NOT EXISTS (SELECT 1 FROM {} u WHERE {icol} = {ocol})", inner.table.name),
            _ => format!("{ocol} > (SELECT avg({icol}) FROM {} u{inner_filter})", inner.table.name),
        };
        let cols = self.columns(rng, &outer);
        let (order, ordered) = Self::order(rng, cols.len());
        Query { sql: format!("SELECT {} FROM {} t WHERE {condition}{order}", cols.join(", "), outer.table.name), ordered, writes: None }
    }

    fn set_operation(&self, rng: &mut Rng) -> Query {
        let a = Source { table: self.table(rng, 70), alias: "t".into() };
        let b = Source { table: self.table(rng, 70), alias: "t".into() };
        let op = *rng.pick(&["UNION", "UNION ALL", "INTERSECT", "EXCEPT", "EXCEPT ALL"]);
        let (fa, fb) = (self.where_clause(rng, &a), self.where_clause(rng, &b));
        let (order, ordered) = Self::order(rng, 2);
        Query {
            sql: format!("SELECT t.k, t.a FROM {} t{fa} {op} SELECT t.k, t.a FROM {} t{fb}{order}", a.table.name, b.table.name),
            ordered,
            writes: None,
        }
    }

    fn window(&self, rng: &mut Rng) -> Query {
        let s = Source { table: self.table(rng, 80), alias: "t".into() };
        let partition = if rng.chance(50) { "t.k" } else { "t.a" };
        let f = *rng.pick(&["count(*)", "sum(t.b)", "max(t.a)"]);
        let filter = self.where_clause(rng, &s);
        let (order, ordered) = Self::order(rng, 3);
        Query {
            sql: format!("SELECT t.k, t.a, {f} OVER (PARTITION BY {partition}) FROM {} t{filter}{order}", s.table.name),
            ordered,
            writes: None,
        }
    }

    /// INSERT ... SELECT into a distributed table from another table, or an UPDATE or DELETE of
    /// one; its table's rows are compared afterwards.
    fn write(&self, rng: &mut Rng) -> Query {
        let d: Vec<&Table> = self.schema.tables.iter().filter(|t| t.placement == Placement::Distributed).collect();
        let target = d[rng.below(d.len())];
        let t = Source { table: target, alias: "t".into() };
        let sql = match rng.below(8) {
            0 | 1 => {
                let others: Vec<&Table> = self.schema.tables.iter().filter(|x| x.name != target.name).collect();
                let from = others[rng.below(others.len())];
                let s = Source { table: from, alias: "s".into() };
                let ints = from.ints();
                // The key never NULL (a NULL distribution value is refused), the rest as found.
                // Sometimes the source's key as is (pushed down when the tables are colocated).
                let key = if from.placement == Placement::Distributed && rng.chance(50) {
                    s.col("k")
                } else {
                    format!("coalesce({}, 0)", s.col(ints[rng.below(ints.len())]))
                };
                let a = s.col(ints[rng.below(ints.len())]);
                let text = from.of_kind(Kind::Text).first().map_or("NULL".to_owned(), |c| s.col(c));
                format!("INSERT INTO {} (k, a, c) SELECT {key}, {a}, {text} FROM {} s{}", target.name, from.name, self.where_clause(rng, &s))
            }
            2 => format!("UPDATE {} t SET b = coalesce(t.b, 0) + 1, c = 'u'{}", target.name, self.where_clause(rng, &t)),
            3 => {
                // A subquery over another table (another group, reference or default-node table).
                let others: Vec<&Table> = self.schema.tables.iter().filter(|x| x.name != target.name).collect();
                let from = others[rng.below(others.len())];
                let s = Source { table: from, alias: "s".into() };
                let op = if rng.chance(50) { "IN" } else { "NOT IN" };
                let verb = if rng.chance(50) {
                    format!("UPDATE {} t SET a = coalesce(t.a, 0) + 10", target.name)
                } else {
                    format!("DELETE FROM {} t", target.name)
                };
                format!("{verb} WHERE t.a {op} (SELECT s.a FROM {} s WHERE s.a IS NOT NULL{})", from.name,
                    self.where_clause(rng, &s).replacen(" WHERE", " AND", 1))
            }
            4 => {
                // A correlated [NOT] EXISTS over another table, tied by an equality.
                let others: Vec<&Table> = self.schema.tables.iter().filter(|x| x.name != target.name).collect();
                let from = others[rng.below(others.len())];
                let s = Source { table: from, alias: "s".into() };
                let not = if rng.chance(50) { "NOT " } else { "" };
                let verb = if rng.chance(50) {
                    format!("UPDATE {} t SET c = 'e'", target.name)
                } else {
                    format!("DELETE FROM {} t", target.name)
                };
                format!("{verb} WHERE {not}EXISTS (SELECT 1 FROM {} s WHERE s.a = t.a{})", from.name,
                    self.where_clause(rng, &s).replacen(" WHERE", " AND", 1))
            }
            5 => {
                // A data-modifying WITH passing its rows on.
                format!("WITH m AS (UPDATE {} t SET b = coalesce(t.b, 0) + 2{} RETURNING t.k, t.b) SELECT k, b FROM m",
                    target.name, self.where_clause(rng, &t))
            }
            6 => {
                // INSERT ... VALUES with computed keys (made once on the default node), sometimes
                // with RETURNING or ON CONFLICT.
                let rows: Vec<String> = (0..1 + rng.below(3))
                    .map(|_| format!("({} + {}, {}, 'v')", 100 + rng.below(50), rng.below(10), rng.below(10)))
                    .collect();
                let tail = match rng.below(3) {
                    0 => " RETURNING k, a",
                    1 => " ON CONFLICT DO NOTHING",
                    _ => "",
                };
                format!("INSERT INTO {} (k, a, c) VALUES {}{tail}", target.name, rows.join(", "))
            }
            _ => format!("DELETE FROM {} t{}", target.name, self.where_clause(rng, &t)),
        };
        Query { sql, ordered: false, writes: Some(target.name.clone()) }
    }

    fn distinct(&self, rng: &mut Rng) -> Query {
        let s = Source { table: self.table(rng, 80), alias: "t".into() };
        let cols = self.columns(rng, &s);
        let (order, ordered) = Self::order(rng, cols.len());
        Query {
            sql: format!("SELECT DISTINCT {} FROM {} t{}{order}", cols.join(", "), s.table.name, self.where_clause(rng, &s)),
            ordered,
            writes: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_queries() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let schema = Schema::generate(&mut rng);
            let setup = schema.setup_sql(&mut rng);
            let g = QueryGen::new(&schema);
            let queries: Vec<String> = (0..50).map(|_| g.query(&mut rng).sql).collect();
            (setup, queries)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7).1, run(8).1);
    }
}
