//! Aggregate calls located in the text: the whole call (with its FILTER clause), the text
//! between its parentheses, each argument, each ORDER BY item inside, and the FILTER condition,
//! so partial and final aggregates can be spliced from the client's own text.

use sqlparser::ast::{
    DuplicateTreatment, Function, FunctionArg, FunctionArgExpr, FunctionArgumentClause, FunctionArgumentList,
    FunctionArguments, ObjectNamePart, OrderByExpr,
};
use sqlparser::tokenizer::Token;

use crate::clauses::{Span, strip_options};
use crate::funcs::builtin_name;
use crate::text::Source;

/// The aggregates whose partial results combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AggFn {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    BoolAnd,
    BoolOr,
    /// Any other known aggregate: computed by the final query from the raw rows.
    Other,
}

/// One aggregate call in the text.
#[derive(Debug, Clone)]
pub(super) struct Call {
    /// The function's name (folded).
    pub name: String,
    /// How partials combine.
    pub func: AggFn,
    /// The whole call, FILTER included.
    pub span: Span,
    /// Between the parentheses.
    pub interior: Span,
    /// `DISTINCT` inside the call.
    pub distinct: bool,
    /// `count(*)`.
    pub star: bool,
    /// Each argument.
    pub args: Vec<Span>,
    /// ORDER BY items inside: the expression and the whole item.
    pub order: Vec<(Span, Span)>,
    /// The FILTER condition.
    pub filter: Option<Span>,
    /// The `FILTER (WHERE ...)` clause.
    pub filter_clause: Option<Span>,
    /// The call's tokens, for recognizing the same call twice.
    pub norm: Vec<String>,
}

impl Call {
    /// Whether per-shard partial results of this call combine into its result.
    pub fn combines(&self) -> bool {
        match self.func {
            AggFn::Count | AggFn::Sum | AggFn::Avg | AggFn::BoolAnd | AggFn::BoolOr => !self.distinct,
            AggFn::Min | AggFn::Max => true,
            AggFn::Other => false,
        }
    }

    /// Whether duplicate input rows cannot change the result.
    pub fn ignores_duplicates(&self) -> bool {
        self.distinct || matches!(self.func, AggFn::Min | AggFn::Max | AggFn::BoolAnd | AggFn::BoolOr)
    }
}

/// Locates an aggregate call.
pub(super) fn locate(f: &Function, src: &Source<'_>) -> Result<Call, String> {
    let internal = || format!("internal: the aggregate {} could not be located in the text", f.name);
    let name = builtin_name(f).ok_or_else(internal)?;
    let func = match name.as_str() {
        "count" => AggFn::Count,
        "sum" => AggFn::Sum,
        "min" => AggFn::Min,
        "max" => AggFn::Max,
        "avg" => AggFn::Avg,
        "bool_and" | "every" => AggFn::BoolAnd,
        "bool_or" => AggFn::BoolOr,
        _ => AggFn::Other,
    };
    if !f.within_group.is_empty() {
        return Err(format!("the ordered-set aggregate {name}(...) WITHIN GROUP over several shards"));
    }
    let (start, open, close) = parentheses(f, src).ok_or_else(internal)?;
    let FunctionArguments::List(list) = &f.args else { return Err(internal()) };
    let star = matches!(list.args.as_slice(), [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]);
    if !star && list.args.iter().any(|a| !matches!(a, FunctionArg::Unnamed(FunctionArgExpr::Expr(_)))) {
        return Err(format!("named or * arguments of the aggregate {name} over several shards"));
    }
    let (args, order) = arguments(list, src, open, close)?.ok_or_else(internal)?;
    let (filter, filter_clause) = match src.is_kw(close + 1, "FILTER") {
        true => filter_of(src, close + 1).ok_or_else(internal)?,
        false => (None, None),
    };
    if filter.is_some() != f.filter.is_some() {
        return Err(internal());
    }
    let end = filter_clause.map_or(close + 1, |(_, e)| e);
    Ok(Call {
        name,
        func,
        span: (start, end),
        interior: (open + 1, close),
        distinct: matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct)),
        star,
        args,
        order,
        filter,
        filter_clause,
        norm: src.norm(start, end),
    })
}

/// The call's first token and its opening and closing parentheses.
fn parentheses(f: &Function, src: &Source<'_>) -> Option<(usize, usize, usize)> {
    let Some(ObjectNamePart::Identifier(first)) = f.name.0.first() else { return None };
    let start = src.ident(first)?;
    let depth = src.tok(start)?.depth;
    let mut open = start + 1;
    while src.tok(open).is_some_and(|t| matches!(t.token, Token::Period | Token::Word(_))) {
        open += 1;
    }
    if src.tok(open).is_none_or(|t| t.token != Token::LParen || t.depth != depth) {
        return None;
    }
    Some((start, open, src.close_of(open)?))
}

/// The arguments and ORDER BY items between the parentheses (`None` if the text does not
/// match the parsed call).
#[allow(clippy::type_complexity, reason = "a private helper's pair of span lists")]
fn arguments(
    list: &FunctionArgumentList,
    src: &Source<'_>,
    open: usize,
    close: usize,
) -> Result<Option<(Vec<Span>, Vec<(Span, Span)>)>, String> {
    let mut order_items: &[OrderByExpr] = &[];
    for clause in &list.clauses {
        match clause {
            FunctionArgumentClause::OrderBy(items) => order_items = items,
            other => return Err(format!("the aggregate clause {other} over several shards")),
        }
    }
    let depth = src.tok(open).map_or(0, |t| t.depth) + 1;
    let a0 = open + 1 + usize::from(list.duplicate_treatment.is_some());
    let ob = (a0..close)
        .find(|&j| src.tok(j).is_some_and(|t| t.depth == depth) && src.is_kw(j, "ORDER") && src.is_kw(j + 1, "BY"));
    let star = matches!(list.args.as_slice(), [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]);
    let mut args = Vec::new();
    if !star && !list.args.is_empty() {
        args = src.split_commas(a0, ob.unwrap_or(close));
        if args.len() != list.args.len() {
            return Ok(None);
        }
    }
    let mut order = Vec::new();
    if let Some(j) = ob {
        let parts = src.split_commas(j + 2, close);
        if parts.len() != order_items.len() {
            return Ok(None);
        }
        for (part, item) in parts.into_iter().zip(order_items) {
            order.push((strip_options(part, item)?, part));
        }
    }
    Ok(Some((args, order)))
}

/// `FILTER (WHERE cond)` starting at token `at`: the condition and the whole clause.
fn filter_of(src: &Source<'_>, at: usize) -> Option<(Option<Span>, Option<Span>)> {
    let open = at + 1;
    let close = src.close_of(open)?;
    src.is_kw(open + 1, "WHERE").then_some((Some((open + 2, close)), Some((at, close + 1))))
}
