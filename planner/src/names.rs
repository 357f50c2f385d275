//! The names PostgreSQL gives output columns (its `FigureColname`): an explicit alias; else the
//! column name of a column reference; the function name of a call; for a cast, the name of what
//! is cast if that gives one, else the cast's type name as PostgreSQL spells it internally
//! (`1::int` is `int4`); `case`, `array`, `row`, `exists` for those constructs; the first
//! column's name for a scalar subquery; `?column?` otherwise. A final query over partial results
//! aliases every column with this name so clients see what PostgreSQL would have answered.

use sqlparser::ast::{
    ArrayElemTypeDef, DataType, ExactNumberInfo, Expr, ObjectName, ObjectNamePart, SelectItem, SetExpr, TimezoneInfo,
    TrimWhereField,
};

use crate::route::fold;

/// The name of an output column that has none.
pub(crate) const NO_NAME: &str = "?column?";

/// The output name of a select item (`None` for `*` and `t.*`).
pub(crate) fn output_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::UnnamedExpr(e) => Some(figure(e)),
        SelectItem::ExprWithAlias { alias, .. } => Some(fold(alias)),
        SelectItem::ExprWithAliases { aliases, .. } => aliases.first().map(fold),
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => None,
    }
}

/// The name PostgreSQL gives an unaliased output expression.
pub(crate) fn figure(expr: &Expr) -> String {
    match figure_inner(expr) {
        (Some(name), _) => name,
        (None, _) => NO_NAME.to_owned(),
    }
}

/// A name and its strength: 2 for a real name, 1 for a fallback (type names, `case`), 0 none.
fn figure_inner(expr: &Expr) -> (Option<String>, u8) {
    let strong = |s: &str| (Some(s.to_owned()), 2);
    let weak = |s: &str| (Some(s.to_owned()), 1);
    match expr {
        Expr::Identifier(id) => (Some(fold(id)), 2),
        Expr::CompoundIdentifier(ids) => (ids.last().map(fold), 2),
        Expr::CompoundFieldAccess { root, access_chain } => {
            let field = access_chain.iter().rev().find_map(|a| match a {
                sqlparser::ast::AccessExpr::Dot(Expr::Identifier(id)) => Some(fold(id)),
                _ => None,
            });
            match field {
                Some(f) => (Some(f), 2),
                None => figure_inner(root),
            }
        }
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => figure_inner(inner),
        Expr::Function(f) => (last_part(&f.name), 2),
        Expr::Cast { expr, data_type, .. } => match figure_inner(expr) {
            (Some(n), 2) => (Some(n), 2),
            _ => (Some(type_name(data_type)), 1),
        },
        Expr::TypedString(t) => (Some(type_name(&t.data_type)), 1),
        Expr::Interval(_) => weak("interval"),
        Expr::Case { .. } => weak("case"),
        Expr::Array(_) => weak("array"),
        Expr::Tuple(_) => weak("row"),
        Expr::Exists { .. } => strong("exists"),
        Expr::Subquery(q) => match q.body.as_ref() {
            SetExpr::Select(s) => (s.projection.first().and_then(output_name), 2),
            _ => (None, 0),
        },
        Expr::Extract { .. } => strong("extract"),
        Expr::Substring { .. } => strong("substring"),
        Expr::Position { .. } => strong("position"),
        Expr::Overlay { .. } => strong("overlay"),
        Expr::Ceil { .. } => strong("ceil"),
        Expr::Floor { .. } => strong("floor"),
        Expr::AtTimeZone { .. } => strong("timezone"),
        Expr::Trim { trim_where, .. } => match trim_where {
            Some(TrimWhereField::Leading) => strong("ltrim"),
            Some(TrimWhereField::Trailing) => strong("rtrim"),
            _ => strong("btrim"),
        },
        _ => (None, 0),
    }
}

fn last_part(name: &ObjectName) -> Option<String> {
    match name.0.last()? {
        ObjectNamePart::Identifier(id) => Some(fold(id)),
        ObjectNamePart::Function(_) => None,
    }
}

/// The last component of a type's internal name, as PostgreSQL names a cast's column.
pub(crate) fn type_name(dt: &DataType) -> String {
    let s = match dt {
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => "int4",
        DataType::SmallInt(_) | DataType::Int2(_) => "int2",
        DataType::BigInt(_) | DataType::Int8(_) => "int8",
        DataType::Real | DataType::Float4 => "float4",
        DataType::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => "float4",
        DataType::Float(_) | DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 => "float8",
        DataType::Numeric(_) | DataType::Decimal(_) | DataType::Dec(_) => "numeric",
        DataType::Bool | DataType::Boolean => "bool",
        DataType::Char(_) | DataType::Character(_) => "bpchar",
        DataType::Varchar(_) | DataType::CharacterVarying(_) | DataType::CharVarying(_) => "varchar",
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timestamptz",
        DataType::Timestamp(..) => "timestamp",
        DataType::Time(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => "timetz",
        DataType::Time(..) => "time",
        DataType::Interval { .. } => "interval",
        DataType::Bit(_) => "bit",
        DataType::BitVarying(_) | DataType::VarBit(_) => "varbit",
        DataType::Text => "text",
        DataType::JSON => "json",
        DataType::JSONB => "jsonb",
        DataType::Uuid => "uuid",
        DataType::Bytea => "bytea",
        DataType::Date => "date",
        DataType::Regclass => "regclass",
        DataType::Array(
            ArrayElemTypeDef::SquareBracket(inner, _)
            | ArrayElemTypeDef::AngleBracket(inner)
            | ArrayElemTypeDef::Parenthesis(inner)
            | ArrayElemTypeDef::Qualified(inner, _),
        ) => return type_name(inner),
        DataType::Custom(name, _) => return last_part(name).unwrap_or_else(|| NO_NAME.to_owned()),
        other => {
            let text = other.to_string().to_lowercase();
            return text.split(['(', ' ', '[']).next().unwrap_or(NO_NAME).to_owned();
        }
    };
    s.to_owned()
}

/// `name` as a double-quoted SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use sqlparser::ast::{SetExpr, Statement};
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    use super::*;

    fn names(sql: &str) -> Vec<String> {
        let stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql).unwrap();
        let Statement::Query(q) = &stmts[0] else { panic!("{sql}") };
        let SetExpr::Select(s) = q.body.as_ref() else { panic!("{sql}") };
        s.projection.iter().map(|i| output_name(i).unwrap()).collect()
    }

    #[test]
    fn names_follow_postgresql() {
        assert_eq!(
            names(
                "SELECT a, t.B, \"Cc\", x AS \"Al\", y AS Al, count(*), pg_catalog.sum(x), x::text, 'a'::text, 1::int, (x + 1)::bigint, CAST(x AS numeric), 1.5::double precision, CASE WHEN true THEN 1 END, x + 1, 1, ARRAY[1], EXISTS (SELECT 1), (SELECT max(z) FROM t), COALESCE(a, b), date '2020-01-01', interval '1 day', extract(year FROM d), trim(x), count(*)::int, 'a'::varchar(3), (a)"
            ),
            [
                "a", "b", "Cc", "Al", "al", "count", "sum", "x", "text", "int4", "int8", "x", "float8", "case",
                "?column?", "?column?", "array", "exists", "max", "coalesce", "date", "interval", "extract", "btrim",
                "count", "varchar", "a"
            ]
        );
    }
}
