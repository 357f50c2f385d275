//! Bind parameters written into statement text: `$n` becomes the parameter's value as a SQL
//! literal, so that a prepared statement the coordinator must run itself (over several shards,
//! or a pgshard function) runs as the equivalent simple query.

use sqlparser::tokenizer::Token;

use crate::text::Source;

/// Replaces every `$n` outside literals and comments with parameter `n` (1-based) as a string
/// literal (`NULL` for `None`). A literal without a type is read by PostgreSQL as the parameter
/// would have been, from its context.
pub fn bind_params(sql: &str, values: &[Option<String>]) -> Result<String, String> {
    let (src, _) = Source::tokenize(sql).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(sql.len() + values.iter().flatten().map(String::len).sum::<usize>());
    let mut at = 0;
    for i in 0..src.len() {
        let Some(tok) = src.tok(i) else { continue };
        let Token::Placeholder(p) = &tok.token else { continue };
        let Some(n) = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) else { continue };
        let value = values.get(n.wrapping_sub(1)).ok_or_else(|| format!("there is no parameter ${n}"))?;
        out.push_str(&sql[at..tok.start]);
        match value {
            None => out.push_str("NULL"),
            Some(v) => {
                out.push('\'');
                out.push_str(&v.replace('\'', "''"));
                out.push('\'');
            }
        }
        at = tok.end;
    }
    out.push_str(&sql[at..]);
    Ok(out)
}

/// The highest `$n` outside literals and comments (0 when none, or when the text does not
/// tokenize).
pub fn max_param(sql: &str) -> usize {
    let Ok((src, _)) = Source::tokenize(sql) else { return 0 };
    (0..src.len())
        .filter_map(|i| match src.tok(i).map(|t| &t.token) {
            Some(Token::Placeholder(p)) => p.strip_prefix('$').and_then(|n| n.parse().ok()),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_literals_outside_strings_and_comments() {
        let sql = "SELECT '$1', $1, $2 /* $1 */ FROM t WHERE a = $10 -- $2";
        let values: Vec<Option<String>> =
            (1..=10).map(|i| if i == 2 { None } else { Some(format!("v{i}'x")) }).collect();
        assert_eq!(
            bind_params(sql, &values).unwrap(),
            "SELECT '$1', 'v1''x', NULL /* $1 */ FROM t WHERE a = 'v10''x' -- $2"
        );
        assert!(bind_params("SELECT $3", &[None]).is_err());
        assert_eq!(max_param(sql), 10);
        assert_eq!(max_param("SELECT '$4'"), 0);
    }
}
