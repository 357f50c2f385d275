//! Writes whose subqueries are answered first (see the planner's `substitute`): each subquery
//! runs once on a scratch connection to home over copies of its distributed tables, into a
//! temporary table whose column types PostgreSQL reports; its rows come back as text and
//! replace the subquery as a typed VALUES list; the statement so rewritten is planned again and
//! run. A subquery that does not stand on its own (correlated) is refused with 0A000.

use std::sync::Arc;

use bytes::Bytes;
use pgshard_catalog::CatalogSnapshot;
use pgshard_planner::{PULL_SCHEMA, Plan, Subquery, Substitute};

use super::fanout::Merged;
use super::relay::Interrupted;
use super::route::Decision;
use super::{Session, msg};
use crate::error::CoordError;

/// The most rows a subquery of a write may give to be written into the statement.
const MAX_ROWS: usize = 100_000;

impl Session {
    /// Answers the subqueries, then runs the rewritten statement.
    pub(super) async fn run_substitute(&mut self, catalog: &Arc<CatalogSnapshot>, plan: &Substitute) -> Result<(), Interrupted> {
        let home = self.conns.get(0).node;
        let h = match self.scratch_to(catalog, home).await {
            Ok(h) => h,
            Err(e) => return self.refuse(e).await,
        };
        let mut answers = Vec::with_capacity(plan.subqueries.len());
        for sub in &plan.subqueries {
            let answer = self.answer_subquery(catalog, h, sub, &plan.why, MAX_ROWS).await?;
            self.end_scratch(h).await?;
            match answer {
                Ok(text) => answers.push(text),
                Err(e) => {
                    self.fail_block();
                    return self.finish_merged(&Merged { error: Some(e), ..Merged::default() });
                }
            }
        }
        let sql = plan.rewrite(&answers);
        match self.decide(&sql).await {
            Ok(Decision::Plan(catalog, p)) if !matches!(*p, Plan::Substitute(_) | Plan::Pull(_)) => {
                Box::pin(self.run_plan_simple(catalog, *p, &sql)).await
            }
            Ok(Decision::Refuse(why)) => self.refuse(CoordError::Unsupported(why)).await,
            Ok(_) => self.refuse(CoordError::Unsupported(plan.why.clone())).await,
            Err(e) => self.refuse(e).await,
        }
    }

    /// One subquery's rows (at most `max_rows`) as a parenthesized, typed VALUES query; or the
    /// error to answer.
    pub(super) async fn answer_subquery(
        &mut self,
        catalog: &Arc<CatalogSnapshot>,
        h: usize,
        sub: &Subquery,
        why: &str,
        max_rows: usize,
    ) -> Result<Result<String, Bytes>, Interrupted> {
        if let Some(e) = self.copies_on_home(catalog, &sub.tables, &[], h).await? {
            return Ok(Err(e));
        }
        let run = format!(
            "CREATE TEMPORARY TABLE pgshard_sub ON COMMIT DROP AS {};\n\
             SELECT pg_catalog.quote_ident(a.attname), pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = 'pg_temp.pgshard_sub'::pg_catalog.regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            sub.query.render(Some(PULL_SCHEMA))
        );
        let (columns, error) = self.rows_on(h, &run).await?;
        if let Some(e) = error {
            // A subquery that names the outer statement's tables (or a WITH query of it) does
            // not stand on its own.
            let code = msg::error_field(&e, b'C');
            if matches!(code.as_deref(), Some("42P01" | "42703" | "42P10")) {
                let e = CoordError::Unsupported(format!("{why} (a correlated subquery, or one that reads a WITH query)"));
                return Ok(Err(msg::build(|o| msg::error(&e, o))));
            }
            return Ok(Err(e));
        }
        let (rows, error) = self.rows_on(h, &format!("SELECT * FROM pg_temp.pgshard_sub LIMIT {}", max_rows + 1)).await?;
        if let Some(e) = error {
            return Ok(Err(e));
        }
        if rows.len() > max_rows {
            let e = CoordError::Unsupported(format!("{why} (a subquery of more than {max_rows} rows)"));
            return Ok(Err(msg::build(|o| msg::error(&e, o))));
        }
        let names: Vec<String> = columns.iter().map(|c| c.first().cloned().flatten().unwrap_or_default()).collect();
        let types: Vec<String> = columns.iter().map(|c| c.get(1).cloned().flatten().unwrap_or_else(|| "text".into())).collect();
        Ok(Ok(values_query(&names, &types, &rows)))
    }
}

/// `(SELECT * FROM (VALUES ('v'::type, ...), ...) AS pgshard_v(names))`, or with no rows a
/// query of the same columns that returns none.
fn values_query(names: &[String], types: &[String], rows: &[Vec<Option<String>>]) -> String {
    let cell = |v: Option<&String>, ty: &str| match v {
        Some(v) => format!("'{}'::{ty}", v.replace('\'', "''")),
        None => format!("NULL::{ty}"),
    };
    let row = |r: Option<&Vec<Option<String>>>| {
        let cells: Vec<String> = types.iter().enumerate().map(|(i, ty)| cell(r.and_then(|r| r.get(i)).and_then(Option::as_ref), ty)).collect();
        format!("({})", cells.join(", "))
    };
    let (list, filter) = if rows.is_empty() { (row(None), " WHERE false") } else { (rows.iter().map(|r| row(Some(r))).collect::<Vec<_>>().join(", "), "") };
    format!("(SELECT * FROM (VALUES {list}) AS pgshard_v({}){filter})", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::values_query;

    #[test]
    fn rows_become_a_typed_values_list() {
        let names = ["k".to_owned(), "\"Note\"".to_owned()];
        let types = ["integer".to_owned(), "text".to_owned()];
        let rows = vec![vec![Some("1".to_owned()), Some("it's".to_owned())], vec![Some("2".to_owned()), None]];
        assert_eq!(
            values_query(&names, &types, &rows),
            "(SELECT * FROM (VALUES ('1'::integer, 'it''s'::text), ('2'::integer, NULL::text)) AS pgshard_v(k, \"Note\"))"
        );
        assert_eq!(
            values_query(&names, &types, &[]),
            "(SELECT * FROM (VALUES (NULL::integer, NULL::text)) AS pgshard_v(k, \"Note\") WHERE false)"
        );
    }
}
