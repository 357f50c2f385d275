//! Name resolution and equivalence classes for the colocation proof: the FROM items visible at
//! each query level, how a column reference resolves to the distribution column of one of them
//! (a "node"), and a union-find over nodes (plus one node per constant a distribution column is
//! compared with).

use std::cell::OnceCell;

use sqlparser::ast::{Expr, Ident};

use crate::route::{DistKey, Relations, fold};

/// An output column of a derived table or CTE, with the node it carries if it is a
/// distribution column of something inside.
#[derive(Debug, Clone)]
pub(super) struct Out {
    /// Output column name.
    pub name: String,
    /// Node of the distribution column it carries.
    pub node: Option<usize>,
}

/// What a FROM item exposes.
pub(super) enum Cols {
    /// A catalog table; `dist` is its distribution column and node.
    Table { dist: Option<(String, usize)>, schema: Option<String>, name: String, known: OnceCell<Option<Vec<String>>> },
    /// A derived table or CTE reference.
    Derived(Vec<Out>),
    /// A function or anything else: only these column names are known.
    Opaque(Vec<String>),
}

/// A FROM item: the name that qualifies its columns and what it exposes.
pub(super) struct Item {
    /// Alias, or the table name.
    pub refname: String,
    /// Its columns.
    pub cols: Cols,
}

/// The FROM items of one query level.
pub(super) struct Scope {
    /// The level (index into the analyzer's levels).
    pub level: usize,
    /// Its FROM items.
    pub items: Vec<Item>,
}

/// Where a column reference resolved: the node if it is a distribution column, and the
/// position in the scope stack of the level that owns it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Res {
    /// The node, if a distribution column.
    pub node: Option<usize>,
    /// Position of the owning scope in the stack.
    pub pos: usize,
}

/// Union-find over nodes, with constant nodes.
#[derive(Default)]
pub(super) struct Classes {
    parent: Vec<usize>,
    consts: Vec<(DistKey, usize)>,
}

impl Classes {
    /// A new node.
    pub fn node(&mut self) -> usize {
        self.parent.push(self.parent.len());
        self.parent.len() - 1
    }

    /// The node of a constant (one per distinct value).
    pub fn constant(&mut self, key: DistKey) -> usize {
        if let Some((_, n)) = self.consts.iter().find(|(k, _)| *k == key) {
            return *n;
        }
        let n = self.node();
        self.consts.push((key, n));
        n
    }

    /// The representative of `n`'s class.
    pub fn find(&mut self, mut n: usize) -> usize {
        while self.parent[n] != n {
            self.parent[n] = self.parent[self.parent[n]];
            n = self.parent[n];
        }
        n
    }

    /// Joins two classes.
    pub fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        self.parent[ra] = rb;
    }

    /// The constants in `n`'s class.
    pub fn constants_of(&mut self, n: usize) -> Vec<DistKey> {
        let root = self.find(n);
        let consts = self.consts.clone();
        consts.into_iter().filter(|(_, c)| self.find(*c) == root).map(|(k, _)| k).collect()
    }

    /// Whether `n`'s class contains a constant.
    pub fn tied(&mut self, n: usize) -> bool {
        let root = self.find(n);
        let consts: Vec<usize> = self.consts.iter().map(|(_, c)| *c).collect();
        consts.into_iter().any(|c| self.find(c) == root)
    }
}

impl Item {
    /// Whether the item has column `col`, and its node if so.
    fn column(&self, col: &str, rels: &impl Relations) -> Option<Option<usize>> {
        match &self.cols {
            Cols::Table { dist: Some((c, n)), .. } if c == col => Some(Some(*n)),
            Cols::Table { schema, name, known, .. } => {
                let known = known.get_or_init(|| rels.columns_of(schema.as_deref(), name));
                known.as_ref().filter(|k| k.iter().any(|c| c == col)).map(|_| None)
            }
            Cols::Derived(outs) => outs.iter().find(|o| o.name == col).map(|o| o.node),
            Cols::Opaque(names) => names.iter().any(|n| n == col).then_some(None),
        }
    }

    /// The output columns a `*` over this item gives, and whether the list is complete.
    pub fn star(&self, rels: &impl Relations) -> (Vec<Out>, bool) {
        match &self.cols {
            Cols::Table { dist, schema, name, known } => {
                let known = known.get_or_init(|| rels.columns_of(schema.as_deref(), name));
                match known {
                    Some(cols) => {
                        let node = |c: &String| dist.as_ref().filter(|(d, _)| d == c).map(|(_, n)| *n);
                        (cols.iter().map(|c| Out { name: c.clone(), node: node(c) }).collect(), true)
                    }
                    None => (dist.iter().map(|(c, n)| Out { name: c.clone(), node: Some(*n) }).collect(), false),
                }
            }
            Cols::Derived(outs) => (outs.clone(), true),
            Cols::Opaque(names) => (names.iter().map(|n| Out { name: n.clone(), node: None }).collect(), true),
        }
    }
}

/// Resolves a column reference against the scope stack, innermost first.
pub(super) fn resolve(scopes: &[Scope], expr: &Expr, rels: &impl Relations) -> Option<Res> {
    match expr {
        Expr::Nested(inner) => resolve(scopes, inner, rels),
        Expr::Identifier(col) => unqualified(scopes, &fold(col), rels),
        Expr::CompoundIdentifier(parts) => match parts.as_slice() {
            [.., table, col] => qualified(scopes, table, &fold(col), rels),
            _ => None,
        },
        _ => None,
    }
}

fn qualified(scopes: &[Scope], table: &Ident, col: &str, rels: &impl Relations) -> Option<Res> {
    let table = fold(table);
    for (pos, scope) in scopes.iter().enumerate().rev() {
        if let Some(item) = scope.items.iter().find(|i| i.refname == table) {
            return Some(Res { node: item.column(col, rels).flatten(), pos });
        }
    }
    None
}

fn unqualified(scopes: &[Scope], col: &str, rels: &impl Relations) -> Option<Res> {
    for (pos, scope) in scopes.iter().enumerate().rev() {
        let mut found = scope.items.iter().filter_map(|i| i.column(col, rels));
        if let Some(node) = found.next() {
            let node = if found.next().is_some() { None } else { node };
            return Some(Res { node, pos });
        }
    }
    None
}

/// Renames outputs by a table alias's column list (`AS d(a, b)`), positionally.
pub(super) fn rename(mut outs: Vec<Out>, complete: bool, columns: &[Ident]) -> Vec<Out> {
    if columns.is_empty() {
        return outs;
    }
    if !complete {
        return columns.iter().map(|c| Out { name: fold(c), node: None }).collect();
    }
    for (out, col) in outs.iter_mut().zip(columns) {
        out.name = fold(col);
    }
    outs
}
