//! The FROM clause of a query level: tables (distributed ones get a node), derived tables and
//! CTE references (analyzed as their own levels, exposing their output columns), functions, and
//! the join tree with its ON and USING conditions and outer-join rule.

use std::cell::OnceCell;
use std::rc::Rc;

use sqlparser::ast::{JoinConstraint, JoinOperator, TableFactor, TableWithJoins};

use super::scope::{Cols, Item, rename};
use super::{Analyzer, OUTER, Role};
use crate::route::{RelationKind, Relations, fold, split_name};

impl<R: Relations> Analyzer<'_, R> {
    /// Adds a FROM entry (a table and its joins) to the current scope; returns whether it reads a
    /// distributed table. `filter_on`: whether ON conditions filter the level (no outer join).
    pub(super) fn join_tree(&mut self, t: &TableWithJoins, filter_on: bool) -> Result<bool, String> {
        let start = self.scopes.last().map_or(0, |s| s.items.len());
        let mut left = self.factor(&t.relation)?;
        for j in &t.joins {
            let mark = self.scopes.last().map_or(0, |s| s.items.len());
            let right = self.factor(&j.relation)?;
            let constraint = match &j.join_operator {
                JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => {
                    if !left && right {
                        return Err(OUTER.into());
                    }
                    c
                }
                JoinOperator::Right(c) | JoinOperator::RightOuter(c) => {
                    if left && !right {
                        return Err(OUTER.into());
                    }
                    c
                }
                JoinOperator::FullOuter(c) => {
                    if left != right {
                        return Err(OUTER.into());
                    }
                    c
                }
                JoinOperator::Join(c) | JoinOperator::Inner(c) | JoinOperator::CrossJoin(c) => c,
                other => return Err(format!("the join {other:?}")),
            };
            match constraint {
                JoinConstraint::On(e) => self.conjuncts(e, filter_on)?,
                JoinConstraint::Using(cols) => self.using(cols, start, mark),
                JoinConstraint::Natural | JoinConstraint::None => {}
            }
            left |= right;
        }
        Ok(left)
    }

    /// `JOIN ... USING (c)`: the distribution columns named `c` on both sides are joined.
    fn using(&mut self, cols: &[sqlparser::ast::ObjectName], start: usize, mark: usize) {
        let Some(scope) = self.scopes.last() else { return };
        let mut unions = Vec::new();
        for c in cols {
            let Some((_, col)) = split_name(c) else { continue };
            let node_of = |items: &[Item]| -> Vec<usize> {
                items
                    .iter()
                    .filter_map(|i| match &i.cols {
                        Cols::Table { dist: Some((d, n)), .. } if *d == col => Some(*n),
                        Cols::Derived(outs) => outs.iter().find(|o| o.name == col).and_then(|o| o.node),
                        _ => None,
                    })
                    .collect()
            };
            let (l, r) = (node_of(&scope.items[start..mark]), node_of(&scope.items[mark..]));
            if let (Some(&a), false) = (l.first(), r.is_empty()) {
                unions.extend(l.iter().chain(&r).map(|&n| (a, n)));
            }
        }
        for (a, b) in unions {
            self.classes.union(a, b);
        }
    }

    /// Adds a FROM item to the current scope; returns whether it reads a distributed table.
    fn factor(&mut self, f: &TableFactor) -> Result<bool, String> {
        let level = self.current_level();
        match f {
            TableFactor::Table { name, alias, args: None, .. } => {
                let (schema, table) = split_name(name).ok_or_else(|| format!("the relation name {name}"))?;
                let refname = alias.as_ref().map_or_else(|| table.clone(), |a| fold(&a.name));
                if schema.is_none()
                    && let Some(at) = self.find_cte(&table)
                {
                    let cols = alias.as_ref().map(|a| a.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
                    return self.cte_ref(at, refname, cols.unwrap_or_default());
                }
                let dist = match self.rels.kind_of(schema.as_deref(), &table) {
                    Some(RelationKind::Distributed { column, .. }) => {
                        let n = self.classes.node();
                        self.instances += 1;
                        self.levels[level].members.push(n);
                        Some((column, n))
                    }
                    _ => None,
                };
                let has = dist.is_some();
                self.add_item(refname, Cols::Table { dist, schema, name: table, known: OnceCell::new() });
                Ok(has)
            }
            TableFactor::Derived { lateral, subquery, alias, .. } => {
                let role = if *lateral { Role::Lateral } else { Role::Derived };
                let out = self.query(subquery, role)?;
                let anchored = out.level.is_some_and(|l| self.levels[l].anchored);
                if let Some(rep) = out.rep.filter(|_| !(role == Role::Lateral && anchored)) {
                    self.levels[level].members.push(rep);
                }
                let (refname, cols) = match alias {
                    Some(a) => (fold(&a.name), a.columns.iter().map(|c| c.name.clone()).collect()),
                    None => (String::new(), Vec::new()),
                };
                self.add_item(refname, Cols::Derived(rename(out.outs, out.complete, &cols)));
                Ok(out.rep.is_some())
            }
            TableFactor::NestedJoin { table_with_joins, .. } => self.join_tree(table_with_joins, false),
            TableFactor::Table { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::TableFunction { alias, .. } => {
                self.sublinks(f)?;
                let mut names: Vec<String> = Vec::new();
                if let Some(a) = alias {
                    names.push(fold(&a.name));
                    names.extend(a.columns.iter().map(|c| fold(&c.name)));
                }
                let refname = names.first().cloned().unwrap_or_default();
                self.add_item(refname, Cols::Opaque(names));
                Ok(false)
            }
            other => Err(format!("the FROM item {other} in a query over distributed tables")),
        }
    }

    fn find_cte(&self, name: &str) -> Option<(usize, usize)> {
        self.ctes.iter().enumerate().rev().find_map(|(f, frame)| {
            let visible = if frame.recursive { frame.defs.len() } else { frame.visible };
            frame.defs[..visible].iter().position(|(n, ..)| n == name).map(|i| (f, i))
        })
    }

    /// A CTE reference: its body is analyzed afresh at each reference, in the scope of its
    /// definition, as a derived table.
    fn cte_ref(
        &mut self,
        (f, i): (usize, usize),
        refname: String,
        alias_cols: Vec<sqlparser::ast::Ident>,
    ) -> Result<bool, String> {
        if self.in_progress.contains(&(f, i)) {
            self.add_item(refname, Cols::Opaque(Vec::new()));
            return Ok(false);
        }
        let (query, def_cols, recursive) = {
            let frame = &self.ctes[f];
            (Rc::clone(&frame.defs[i].2), frame.defs[i].1.clone(), frame.recursive)
        };
        let hidden_frames = self.ctes.split_off(f + 1);
        let hidden_scopes = self.scopes.split_off(self.ctes[f].scopes_len.min(self.scopes.len()));
        let saved = std::mem::replace(&mut self.ctes[f].visible, i);
        let before = self.instances;
        self.in_progress.push((f, i));
        let out = self.query(&query, Role::Derived);
        self.in_progress.pop();
        self.ctes[f].visible = saved;
        self.scopes.extend(hidden_scopes);
        self.ctes.extend(hidden_frames);
        let out = out?;
        if recursive && self.instances > before {
            return Err("a recursive WITH query over a distributed table".into());
        }
        let level = self.current_level();
        if let Some(rep) = out.rep {
            self.levels[level].members.push(rep);
        }
        let outs = rename(rename(out.outs, out.complete, &def_cols), out.complete, &alias_cols);
        self.add_item(refname, Cols::Derived(outs));
        Ok(out.rep.is_some())
    }
}

/// Whether a FROM entry contains an outer join.
pub(super) fn has_outer_join(t: &TableWithJoins) -> bool {
    let nested = |f: &TableFactor| matches!(f, TableFactor::NestedJoin { table_with_joins, .. } if has_outer_join(table_with_joins));
    nested(&t.relation)
        || t.joins.iter().any(|j| {
            nested(&j.relation)
                || matches!(
                    j.join_operator,
                    JoinOperator::Left(_)
                        | JoinOperator::LeftOuter(_)
                        | JoinOperator::Right(_)
                        | JoinOperator::RightOuter(_)
                        | JoinOperator::FullOuter(_)
                )
        })
}
