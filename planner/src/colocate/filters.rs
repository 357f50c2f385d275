//! Conditions of a query level: equalities in WHERE and JOIN ... ON join classes, anchor
//! correlated subqueries, tie distribution columns to constants and pin the outer level; every
//! subquery inside an expression is analyzed as a correlated subquery of the level.

use std::ops::ControlFlow;

use sqlparser::ast::{BinaryOperator, Expr, Query, Visit, Visitor};

use super::scope::Res;
use super::{Analyzer, Role};
use crate::route::{DistKey, Relations, key_of};

impl<R: Relations> Analyzer<'_, R> {
    /// Analyzes every subquery inside `node` (not looking into the subqueries' own insides,
    /// which their analysis covers) as a correlated subquery of the current level.
    pub(super) fn sublinks<V: Visit>(&mut self, node: &V) -> Result<(), String> {
        let mut finder = Finder { a: self, depth: 0, error: None };
        let _ = node.visit(&mut finder);
        match finder.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Filters and join conditions: equalities join classes, anchor correlated subqueries,
    /// tie distribution columns to constants and pin the outer level.
    pub(super) fn conjuncts(&mut self, e: &Expr, filter: bool) -> Result<(), String> {
        match e {
            Expr::Nested(inner) => self.conjuncts(inner, filter),
            Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
                self.conjuncts(left, filter)?;
                self.conjuncts(right, filter)
            }
            Expr::BinaryOp { left, op: BinaryOperator::Eq, right } => self.equality(left, right, filter),
            Expr::InList { expr, list, negated: false } => {
                self.sublinks(e)?;
                let keys: Option<Vec<DistKey>> = list.iter().map(key_of).collect();
                if let (Some(keys), true) = (keys, filter) {
                    self.pin(expr, keys);
                }
                Ok(())
            }
            Expr::InSubquery { expr, subquery, .. } => self.semijoin(expr, subquery),
            Expr::AnyOp { left, compare_op: BinaryOperator::Eq, right, .. } => match right.as_ref() {
                Expr::Subquery(q) => self.semijoin(left, q),
                _ => self.sublinks(e),
            },
            _ => self.sublinks(e),
        }
    }

    /// `x IN (SELECT y ...)`, `x = (SELECT y ...)`: the subquery is anchored when both `x`
    /// and `y` are distribution columns.
    fn semijoin(&mut self, expr: &Expr, q: &Query) -> Result<(), String> {
        self.sublinks(expr)?;
        let out = self.query(q, Role::Sublink)?;
        let outer = self.resolve(expr).and_then(|r| r.node);
        if let (Some(_), Some(l), Some(Some(_))) = (outer, out.level, out.outs.first().map(|o| o.node)) {
            self.levels[l].anchored = true;
        }
        Ok(())
    }

    fn equality(&mut self, left: &Expr, right: &Expr, filter: bool) -> Result<(), String> {
        if let Expr::Subquery(q) = right {
            return self.semijoin(left, q);
        }
        if let Expr::Subquery(q) = left {
            return self.semijoin(right, q);
        }
        self.sublinks(left)?;
        self.sublinks(right)?;
        let cur = self.scopes.len().saturating_sub(1);
        let (rl, rr) = (self.resolve(left), self.resolve(right));
        for (a, b, other) in [(rl, rr, right), (rr, rl, left)] {
            let Some(Res { node: Some(na), pos }) = a else { continue };
            if pos != cur {
                continue;
            }
            match b {
                Some(Res { node: Some(nb), pos: pb }) if pb == cur => self.classes.union(na, nb),
                Some(Res { node: Some(_), pos: pb }) if pb < cur && filter => {
                    let level = self.current_level();
                    self.levels[level].anchored = true;
                }
                _ => {
                    if let (Some(k), true) = (key_of(other), filter) {
                        let c = self.classes.constant(k.clone());
                        self.classes.union(na, c);
                        self.pin_keys(vec![k]);
                    }
                }
            }
        }
        Ok(())
    }

    fn pin(&mut self, expr: &Expr, keys: Vec<DistKey>) {
        let cur = self.scopes.len().saturating_sub(1);
        if let Some(Res { node: Some(_), pos }) = self.resolve(expr)
            && pos == cur
        {
            self.pin_keys(keys);
        }
    }

    /// Records pins found in a filter of the outer level (the first found wins).
    fn pin_keys(&mut self, keys: Vec<DistKey>) {
        if self.top == Some(self.current_level()) && self.pins.is_none() && !keys.is_empty() {
            self.pins = Some(keys);
        }
    }
}

/// Finds the outermost subqueries of a node and analyzes them.
struct Finder<'x, 'r, R> {
    a: &'x mut Analyzer<'r, R>,
    depth: usize,
    error: Option<String>,
}

impl<R: Relations> Visitor for Finder<'_, '_, R> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if self.depth == 0
            && let Err(e) = self.a.query(q, Role::Sublink)
        {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}
