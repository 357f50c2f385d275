//! Fewer columns to move: the columns a statement may read of each table it names, so a copy
//! of a distributed table named once carries only those. Generous by construction: a column
//! counts when it is named qualified by the table's name or alias (at any depth), or named
//! unqualified anywhere (it might be this table's), or when the table is read whole (`*`,
//! `t.*`, the table's name as a value, NATURAL joins); a join's USING names count as
//! unqualified names.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, JoinConstraint, JoinOperator, Select, SelectItem, SelectItemQualifiedWildcardKind, Statement, TableFactor, Visit,
    Visitor,
};

use crate::route::fold;
use crate::text::Source;

/// What a statement reads of its tables' columns.
#[derive(Debug, Default)]
pub(crate) struct Used {
    /// Every column of every table (`*`, NATURAL).
    all: bool,
    /// Names used without a qualifier.
    unqualified: HashSet<String>,
    /// `(qualifier, column)` pairs.
    qualified: HashSet<(String, String)>,
    /// Qualifiers read whole (`t.*`).
    whole: HashSet<String>,
    /// Where each table reference's name starts, and the name its columns go by.
    pub names: Vec<(usize, String)>,
}

impl Used {
    /// The columns (in table order) to copy of the table named `refname` with `columns`, or
    /// `None` for all of them.
    pub fn of(&self, refname: &str, columns: &[String]) -> Option<Vec<String>> {
        if self.all || self.whole.contains(refname) || self.unqualified.contains(refname) {
            return None;
        }
        let used: Vec<String> = columns
            .iter()
            .filter(|c| self.unqualified.contains(*c) || self.qualified.contains(&(refname.to_owned(), (*c).clone())))
            .cloned()
            .collect();
        // A table none of whose columns is named still gives its rows (count, EXISTS): keep one.
        Some(if used.is_empty() { columns.iter().take(1).cloned().collect() } else { used })
    }
}

/// The columns `stmt` may read.
pub(crate) fn used_columns(stmt: &Statement, src: &Source<'_>) -> Used {
    struct Scan<'s, 'a> {
        src: &'s Source<'a>,
        used: Used,
    }
    impl Visitor for Scan<'_, '_> {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(id) => {
                    self.used.unqualified.insert(fold(id));
                }
                Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
                    let (q, c) = (&parts[parts.len() - 2], &parts[parts.len() - 1]);
                    self.used.qualified.insert((fold(q), fold(c)));
                    // `t.composite.field`: the first part may be the table.
                    self.used.qualified.insert((fold(&parts[0]), fold(&parts[1])));
                }
                Expr::QualifiedWildcard(name, _) => {
                    if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                        self.used.whole.insert(fold(last));
                    }
                }
                Expr::Wildcard(_) => self.used.all = true,
                _ => {}
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
            for item in &s.projection {
                match item {
                    SelectItem::Wildcard(_) => self.used.all = true,
                    SelectItem::QualifiedWildcard(SelectItemQualifiedWildcardKind::ObjectName(name), _) => {
                        if let Some(last) = name.0.last().and_then(|p| p.as_ident()) {
                            self.used.whole.insert(fold(last));
                        }
                    }
                    SelectItem::QualifiedWildcard(..) => self.used.all = true,
                    _ => {}
                }
            }
            for t in &s.from {
                for j in &t.joins {
                    let constraint = match &j.join_operator {
                        JoinOperator::Join(c)
                        | JoinOperator::Inner(c)
                        | JoinOperator::Left(c)
                        | JoinOperator::LeftOuter(c)
                        | JoinOperator::Right(c)
                        | JoinOperator::RightOuter(c)
                        | JoinOperator::FullOuter(c) => Some(c),
                        _ => None,
                    };
                    match constraint {
                        Some(JoinConstraint::Using(names)) => {
                            for n in names {
                                if let Some(last) = n.0.last().and_then(|p| p.as_ident()) {
                                    self.used.unqualified.insert(fold(last));
                                }
                            }
                        }
                        Some(JoinConstraint::Natural) => self.used.all = true,
                        _ => {}
                    }
                }
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_table_factor(&mut self, t: &TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table { name, alias, .. } = t
                && let Some(first) = name.0.first().and_then(|p| p.as_ident())
                && let Some(at) = self.src.ident_start(first)
                && let Some(last) = name.0.last().and_then(|p| p.as_ident())
            {
                let refname = alias.as_ref().map_or_else(|| fold(last), |a| fold(&a.name));
                if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                    // Renamed columns: the table is read under other names.
                    self.used.whole.insert(refname.clone());
                }
                self.used.names.push((at, refname));
            }
            ControlFlow::Continue(())
        }
    }
    let mut scan = Scan { src, used: Used::default() };
    let _ = stmt.visit(&mut scan);
    scan.used
}
