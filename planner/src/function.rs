//! pgshard's SQL functions (`create_distributed_table`, `create_reference_table`,
//! `undistribute_table`, `verify_placement`, `recover_prepared_transactions`, `become_primary`): recognized only as a statement of exactly the form
//! `SELECT f(args)` (`f` optionally qualified by `pgshard.` or `public.`) with constant arguments,
//! positional or named (`shard_count => 4`, `colocate_with := 'none'`). Any other use of these
//! names is refused, since the coordinator, not a data node, must run them.

use std::fmt;
use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, SelectItem,
    SetExpr, Statement, UnaryOperator, Value, Visit, Visitor,
};

use crate::route::fold;

/// The pgshard functions the coordinator runs itself.
pub const NAMES: &[&str] = &[
    "create_distributed_table",
    "create_reference_table",
    "undistribute_table",
    "verify_placement",
    "recover_prepared_transactions",
    "become_primary",
];

/// A call of one of pgshard's functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    /// The function's name, without schema.
    pub name: String,
    /// The arguments in order: the name of a named argument, and the value.
    pub args: Vec<(Option<String>, ArgValue)>,
}

/// A constant argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgValue {
    /// A string (also a cast string, as in `'orders'::regclass`).
    Text(String),
    /// An integer.
    Int(i64),
    /// NULL.
    Null,
    /// Bind parameter `$n` (a prepared call; its value is written in at Bind).
    Param(usize),
}

/// The pgshard function a statement calls: `None` if it names none, `Some(Err)` if it calls one
/// in an unsupported way.
pub(crate) fn detect(stmt: &Statement) -> Option<Result<FunctionCall, String>> {
    let mut finder = Finder { name: None };
    let _ = stmt.visit(&mut finder);
    let name = finder.name?;
    Some(
        call_of(stmt).ok_or_else(|| format!("{name}() other than alone as SELECT {name}(...) with constant arguments")),
    )
}

fn pgshard_name(f: &Function) -> Option<String> {
    let parts = crate::funcs::name_parts(f)?;
    let name = match parts.as_slice() {
        [n] => n,
        [s, n] if s == "pgshard" || s == "public" => n,
        _ => return None,
    };
    NAMES.contains(&name.as_str()).then(|| name.clone())
}

struct Finder {
    name: Option<String>,
}

impl Visitor for Finder {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e
            && let Some(n) = pgshard_name(f)
        {
            self.name = Some(n);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn call_of(stmt: &Statement) -> Option<FunctionCall> {
    let Statement::Query(q) = stmt else { return None };
    let SetExpr::Select(s) = q.body.as_ref() else { return None };
    let bare = q.with.is_none() && q.order_by.is_none() && q.limit_clause.is_none() && q.fetch.is_none();
    let bare = bare && s.from.is_empty() && s.selection.is_none() && s.having.is_none() && s.distinct.is_none();
    let [SelectItem::UnnamedExpr(Expr::Function(f))] = s.projection.as_slice() else { return None };
    if !bare || f.over.is_some() || f.filter.is_some() || !f.within_group.is_empty() {
        return None;
    }
    let name = pgshard_name(f)?;
    let FunctionArguments::List(list) = &f.args else { return None };
    if list.duplicate_treatment.is_some() || !list.clauses.is_empty() {
        return None;
    }
    let args = list.args.iter().map(arg).collect::<Option<_>>()?;
    Some(FunctionCall { name, args })
}

fn arg(a: &FunctionArg) -> Option<(Option<String>, ArgValue)> {
    match a {
        FunctionArg::Named { name, arg: FunctionArgExpr::Expr(e), .. } => Some((Some(fold(name)), value(e)?)),
        FunctionArg::ExprNamed { name: Expr::Identifier(name), arg: FunctionArgExpr::Expr(e), .. } => {
            Some((Some(fold(name)), value(e)?))
        }
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::BinaryOp { left, op: BinaryOperator::Assignment, right })) => {
            let Expr::Identifier(name) = left.as_ref() else { return None };
            Some((Some(fold(name)), value(right)?))
        }
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some((None, value(e)?)),
        _ => None,
    }
}

fn value(e: &Expr) -> Option<ArgValue> {
    match e {
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => value(inner),
        Expr::UnaryOp { op: UnaryOperator::Minus, expr } => match value(expr)? {
            ArgValue::Int(n) => Some(ArgValue::Int(n.checked_neg()?)),
            _ => None,
        },
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok().map(ArgValue::Int),
            Value::SingleQuotedString(s) | Value::EscapedStringLiteral(s) => Some(ArgValue::Text(s.clone())),
            Value::DollarQuotedString(d) => Some(ArgValue::Text(d.value.clone())),
            Value::Null => Some(ArgValue::Null),
            Value::Placeholder(p) => p.strip_prefix('$')?.parse().ok().filter(|n| *n > 0).map(ArgValue::Param),
            _ => None,
        },
        _ => None,
    }
}

impl fmt::Display for ArgValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgValue::Text(s) => write!(f, "'{}'", s.replace('\'', "''")),
            ArgValue::Int(n) => write!(f, "{n}"),
            ArgValue::Null => write!(f, "NULL"),
            ArgValue::Param(n) => write!(f, "${n}"),
        }
    }
}

impl fmt::Display for FunctionCall {
    /// `name(arg, name => arg, ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = self
            .args
            .iter()
            .map(|(n, v)| match n {
                Some(n) => format!("{n} => {v}"),
                None => v.to_string(),
            })
            .collect();
        write!(f, "{}({})", self.name, args.join(", "))
    }
}
