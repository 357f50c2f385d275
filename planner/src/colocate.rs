//! The colocation proof: whether a statement over distributed tables gives the right answer when
//! every shard runs it on its own rows (plus full copies of the reference tables), and which
//! distribution values its WHERE clause pins.
//!
//! Each query level (a SELECT, a derived table, a CTE reference, a subquery in an expression) is
//! checked on its own terms, with nodes for the distribution columns of its tables:
//! - the distributed tables in a level's FROM (and the derived tables carrying them) must be
//!   joined on their distribution columns, through equalities in JOIN ... ON/USING and in WHERE,
//!   into one class; a distribution column compared with a constant joins that constant's class;
//! - a subquery in an expression (or a LATERAL one) must be correlated to an enclosing level on a
//!   distribution column (`s.w = o.w`, `o.w IN (SELECT s.w ...)`), or confined to the same
//!   constant as the outermost level;
//! - a subquery that aggregates, uses DISTINCT, LIMIT or window functions must be confined to
//!   one distribution value: grouped by (or DISTINCT over) a distribution column, correlated, or
//!   tied to a constant;
//! - an outer join may not keep rows of a side that has no distributed table while the other
//!   side has one.
//!
//! Constants and correlations count only from filters: WHERE conjuncts, and JOIN ... ON
//! conjuncts of a FROM clause without outer joins. The statement's targets are the constants in
//! the outermost level's class, else the values of a `col IN (v, ...)` filter of that level.
//! A statement whose tables are not colocated but all tied to constants is correct on one shard
//! holding all of them (see [`Proof::single_only`]).

mod filters;
mod from;
mod scope;
mod verdict;

use std::rc::Rc;

use sqlparser::ast::{
    Distinct, Expr, FromTable, GroupByExpr, Query, Select, SelectItem, SetExpr, Statement, TableWithJoins,
    UpdateTableFromKind,
};

use self::from::has_outer_join;
use self::scope::{Classes, Cols, Item, Out, Res, Scope, resolve};
use crate::funcs::uses;
use crate::names::output_name;
use crate::route::{DistKey, Relations, fold, split_name};

const JOIN: &str = "a join or subquery over distributed tables that is not on their distribution columns";
const SUBLINK: &str = "a subquery over a distributed table that is not correlated on the distribution column";
const OUTER: &str =
    "an outer join that keeps rows of a reference table or function that a distributed table does not match";
const SINGLE: &str = "a subquery that aggregates or uses DISTINCT, LIMIT or window functions over a distributed table without grouping by its distribution column";
const TOP: &str = "a query whose outer FROM clause has no distributed table but whose subqueries or CTEs read one";

/// What the proof found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proof {
    /// Distribution values the statement is confined to, if its filters pin them.
    pub pins: Option<Vec<DistKey>>,
    /// Why the statement is correct only on one shard holding every pinned value: its
    /// distributed tables are not joined on their distribution columns, but each is tied to a
    /// constant (`a.w = $1 AND b.w = $2`), so it runs when all pins hash to one shard.
    pub single_only: Option<String>,
}

/// Proves that a SELECT, UPDATE or DELETE can run shard by shard, or says why not.
pub(crate) fn prove(stmt: &Statement, rels: &impl Relations) -> Result<Proof, String> {
    let mut a = Analyzer::new(rels);
    match stmt {
        Statement::Query(q) => {
            a.query(q, Role::Top)?;
        }
        Statement::Update(u) => {
            let mut from = vec![&u.table];
            if let Some(UpdateTableFromKind::BeforeSet(f) | UpdateTableFromKind::AfterSet(f)) = &u.from {
                from.extend(f);
            }
            a.dml(&from, u.selection.as_ref(), |a| {
                a.sublinks(&u.assignments)?;
                a.sublinks(&u.returning)
            })?;
        }
        Statement::Delete(d) => {
            let (FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f)) = &d.from;
            let mut from: Vec<&TableWithJoins> = f.iter().collect();
            from.extend(d.using.iter().flatten());
            a.dml(&from, d.selection.as_ref(), |a| a.sublinks(&d.returning))?;
        }
        _ => return Err("internal: no colocation proof for this statement".into()),
    }
    a.finish()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Top,
    Derived,
    Lateral,
    Sublink,
}

#[derive(Debug)]
struct Level {
    role: Role,
    members: Vec<usize>,
    anchored: bool,
    /// An aggregate without GROUP BY confined to a constant only: it yields a row on every
    /// shard, so the statement must run on that constant's shard alone.
    scalar: bool,
}

/// What a query level gives its parent.
struct QueryOut {
    outs: Vec<Out>,
    complete: bool,
    /// The level, when the query body is one SELECT.
    level: Option<usize>,
    /// A node of the query's class, if it reads a distributed table in its FROM.
    rep: Option<usize>,
}

/// The CTEs of one WITH: name, column aliases and body (analyzed afresh at each reference).
struct CteFrame {
    defs: Vec<(String, Vec<sqlparser::ast::Ident>, Rc<Query>)>,
    /// How many are visible (a CTE body sees only the earlier ones unless RECURSIVE).
    visible: usize,
    recursive: bool,
    /// The scope depth at the definition, which a body is analyzed in.
    scopes_len: usize,
}

/// The state of one proof.
struct Analyzer<'r, R> {
    rels: &'r R,
    classes: Classes,
    /// Resolution scopes, innermost last.
    scopes: Vec<Scope>,
    ctes: Vec<CteFrame>,
    levels: Vec<Level>,
    top: Option<usize>,
    /// The first `col = v` / `col IN (...)` filter of the outer level.
    pins: Option<Vec<DistKey>>,
    /// Distributed table references analyzed so far.
    instances: usize,
    depth: usize,
    /// CTE bodies being analyzed (a recursive reference to one is opaque).
    in_progress: Vec<(usize, usize)>,
}

impl<'r, R: Relations> Analyzer<'r, R> {
    fn new(rels: &'r R) -> Self {
        Self {
            rels,
            classes: Classes::default(),
            scopes: Vec::new(),
            ctes: Vec::new(),
            levels: Vec::new(),
            top: None,
            pins: None,
            instances: 0,
            depth: 0,
            in_progress: Vec::new(),
        }
    }

    fn new_level(&mut self, role: Role) -> usize {
        self.levels.push(Level { role, members: Vec::new(), anchored: false, scalar: false });
        let l = self.levels.len() - 1;
        if role == Role::Top {
            self.top = Some(l);
        }
        l
    }

    fn current_level(&self) -> usize {
        self.scopes.last().map_or(0, |s| s.level)
    }

    fn add_item(&mut self, refname: String, cols: Cols) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.items.push(Item { refname, cols });
        }
    }

    fn resolve(&self, e: &Expr) -> Option<Res> {
        resolve(&self.scopes, e, self.rels)
    }

    /// UPDATE or DELETE: the target and FROM/USING tables form the outer level.
    fn dml(
        &mut self,
        from: &[&TableWithJoins],
        filter: Option<&Expr>,
        rest: impl FnOnce(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        let level = self.new_level(Role::Top);
        self.scopes.push(Scope { level, items: Vec::new() });
        let outer = from.iter().any(|t| has_outer_join(t));
        for t in from {
            self.join_tree(t, !outer)?;
        }
        if let Some(w) = filter {
            self.conjuncts(w, true)?;
        }
        rest(self)?;
        self.scopes.pop();
        Ok(())
    }

    fn query(&mut self, q: &Query, role: Role) -> Result<QueryOut, String> {
        self.depth += 1;
        if self.depth > 64 {
            return Err("a query nested too deeply".into());
        }
        if let Some(with) = &q.with {
            let defs = with
                .cte_tables
                .iter()
                .map(|c| {
                    (
                        fold(&c.alias.name),
                        c.alias.columns.iter().map(|c| c.name.clone()).collect(),
                        Rc::new((*c.query).clone()),
                    )
                })
                .collect::<Vec<_>>();
            let visible = defs.len();
            self.ctes.push(CteFrame { defs, visible, recursive: with.recursive, scopes_len: self.scopes.len() });
        }
        let out = self.set_expr(&q.body, role);
        let limited = q.fetch.is_some()
            || matches!(&q.limit_clause, Some(sqlparser::ast::LimitClause::LimitOffset { limit, offset, .. }) if limit.is_some() || offset.is_some())
            || matches!(&q.limit_clause, Some(sqlparser::ast::LimitClause::OffsetCommaLimit { .. }));
        if q.with.is_some() {
            self.ctes.pop();
        }
        self.depth -= 1;
        let out = out?;
        if role != Role::Top && limited && out.rep.is_some() && !out.level.is_some_and(|l| self.confined(l)) {
            return Err(SINGLE.into());
        }
        if let Some(ob) = &q.order_by {
            self.sublinks(ob)?;
        }
        self.sublinks(&q.limit_clause)?;
        self.sublinks(&q.fetch)?;
        Ok(out)
    }

    fn set_expr(&mut self, body: &SetExpr, role: Role) -> Result<QueryOut, String> {
        match body {
            SetExpr::Select(s) => self.select(s, role),
            SetExpr::Query(q) => self.query(q, role),
            SetExpr::SetOperation { left, right, .. } => {
                let l = self.set_expr(left, role)?;
                let r = self.set_expr(right, role)?;
                let mut outs = l.outs.clone();
                let mut linked = false;
                for (o, ro) in outs.iter_mut().zip(&r.outs) {
                    match (o.node, ro.node) {
                        (Some(a), Some(b)) => {
                            self.classes.union(a, b);
                            linked = true;
                        }
                        _ => o.node = None,
                    }
                }
                // Below the outer level, the parent can only join one class: the branches must
                // share a distribution column position (which also keeps duplicates of a
                // distinct set operation within one shard).
                let both = l.rep.is_some() && r.rep.is_some();
                if role != Role::Top && both && !linked {
                    return Err(JOIN.into());
                }
                Ok(QueryOut { outs, complete: l.complete, level: None, rep: l.rep.or(r.rep) })
            }
            SetExpr::Values(v) => {
                self.sublinks(v)?;
                let width = v.rows.first().map_or(0, |r| r.content.len());
                let outs = (1..=width).map(|i| Out { name: format!("column{i}"), node: None }).collect();
                Ok(QueryOut { outs, complete: true, level: None, rep: None })
            }
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                Err("a data-modifying statement in WITH in a query over distributed tables".into())
            }
            SetExpr::Table(_) => Err("the TABLE command in a query over distributed tables".into()),
        }
    }

    fn select(&mut self, s: &Select, role: Role) -> Result<QueryOut, String> {
        if s.into.is_some() {
            return Err("SELECT INTO from a distributed table".into());
        }
        let level = self.new_level(role);
        self.scopes.push(Scope { level, items: Vec::new() });
        let result = self.select_body(s, level, role);
        self.scopes.pop();
        result
    }

    fn select_body(&mut self, s: &Select, level: usize, role: Role) -> Result<QueryOut, String> {
        let outer = s.from.iter().any(has_outer_join);
        for t in &s.from {
            self.join_tree(t, !outer)?;
        }
        if let Some(w) = &s.selection {
            self.conjuncts(w, true)?;
        }
        let (outs, complete) = self.projection(&s.projection)?;
        let GroupByExpr::Expressions(group, modifiers) = &s.group_by else {
            return Err("GROUP BY ALL".into());
        };
        self.sublinks(group)?;
        self.sublinks(&s.having)?;
        self.sublinks(&s.named_window)?;
        if role != Role::Top && !self.levels[level].members.is_empty() {
            let used = uses(&s.projection).or(uses(&s.having));
            let grouped = used.aggregate || !group.is_empty() || s.having.is_some();
            let by_dist = !outer
                && modifiers.is_empty()
                && group.iter().any(|g| self.resolve(g).is_some_and(|r| r.node.is_some()));
            let distinct_dist = !outer && outs.iter().any(|o| o.node.is_some());
            let ok = self.confined(level)
                || ((!grouped || by_dist)
                    && (!matches!(s.distinct, Some(Distinct::Distinct)) || distinct_dist || by_dist)
                    && !matches!(s.distinct, Some(Distinct::On(_)))
                    && !used.window);
            if !ok {
                return Err(SINGLE.into());
            }
            self.levels[level].scalar = grouped && group.is_empty() && !self.levels[level].anchored;
        }
        let rep = self.levels[level].members.first().copied();
        Ok(QueryOut { outs, complete, level: Some(level), rep })
    }

    /// Whether a level is confined to one distribution value per evaluation.
    fn confined(&mut self, level: usize) -> bool {
        let l = &self.levels[level];
        let (anchored, first) = (l.anchored, l.members.first().copied());
        anchored || first.is_some_and(|m| self.classes.tied(m))
    }

    fn projection(&mut self, items: &[SelectItem]) -> Result<(Vec<Out>, bool), String> {
        for item in items {
            self.sublinks(item)?;
        }
        let mut outs = Vec::new();
        let mut complete = true;
        for item in items {
            match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    let node = self.resolve(e).and_then(|r| r.node);
                    outs.push(Out { name: output_name(item).unwrap_or_default(), node });
                }
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    let qual = match item {
                        SelectItem::QualifiedWildcard(
                            sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(n),
                            _,
                        ) => split_name(n).map(|(_, t)| t),
                        _ => None,
                    };
                    let scope = self.scopes.last().ok_or("internal: no scope")?;
                    for it in scope.items.iter().filter(|i| qual.as_ref().is_none_or(|q| *q == i.refname)) {
                        let (o, c) = it.star(self.rels);
                        outs.extend(o);
                        complete &= c;
                    }
                }
                SelectItem::ExprWithAliases { .. } => complete = false,
            }
        }
        Ok((outs, complete))
    }
}

#[cfg(test)]
mod tests;
