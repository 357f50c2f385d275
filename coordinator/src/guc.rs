//! Spotting statements that define custom variables (`SET myapp.flag = ...`,
//! `set_config('myapp.flag', ...)`). PostgreSQL keeps such a placeholder variable for the life
//! of the backend: `DISCARD ALL` resets its value but not its existence, so on a reused
//! connection `current_setting('myapp.flag', true)` would answer `''` where a new session gets
//! NULL. A session that may have defined one is therefore not pooled afterwards. The check is a
//! conservative scan of the statement text (a false positive only costs a reconnect).

/// Whether SQL text is one session-level setting change (`SET`, `RESET`, `DISCARD`, not `SET
/// LOCAL` nor `SET TRANSACTION`): what the session repeats on its other data-node connections.
pub fn is_session_setting(sql: &str) -> bool {
    let text = sql.trim().trim_end_matches(';').trim_end();
    if text.contains(';') {
        return false;
    }
    let mut words = text.split_whitespace().map(str::to_ascii_lowercase);
    match (words.next().as_deref(), words.next().as_deref()) {
        (Some("set"), Some("local" | "transaction" | "constraints")) => false,
        (Some("set" | "reset" | "discard"), Some(_)) => true,
        _ => false,
    }
}

/// The schema change a statement makes, by its leading words (`CREATE TABLE`, `ALTER INDEX`,
/// `GRANT`, ...), if any: what only the primary coordinator runs. Temporary objects are the
/// session's own and not counted. Any statement of a multi-statement string counts.
pub fn schema_change(sql: &str) -> Option<String> {
    const VERBS: [&str; 9] = ["create", "alter", "drop", "comment", "grant", "revoke", "reindex", "security", "import"];
    for stmt in sql.split(';') {
        let words: Vec<String> = stmt
            .split(|c: char| c.is_whitespace() || c == '(')
            .filter(|w| !w.is_empty())
            .take(4)
            .map(str::to_ascii_lowercase)
            .collect();
        let Some(first) = words.first() else { continue };
        if !VERBS.contains(&first.as_str()) {
            continue;
        }
        let rest: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
        let temporary = first == "create"
            && matches!(rest.as_slice(), ["temp" | "temporary", ..] | ["local" | "global", "temp" | "temporary", ..]);
        if !temporary {
            return Some(words.iter().take(2).map(|w| w.to_ascii_uppercase()).collect::<Vec<_>>().join(" "));
        }
    }
    None
}

/// Whether SQL text is a setting a transaction block's members must share: a session-level
/// one or `SET LOCAL`.
pub fn is_block_setting(sql: &str) -> bool {
    let text = sql.trim().trim_end_matches(';').trim_end();
    if text.contains(';') {
        return false;
    }
    let mut words = text.split_whitespace().map(str::to_ascii_lowercase);
    matches!((words.next().as_deref(), words.next().as_deref()), (Some("set"), Some("local"))) || is_session_setting(sql)
}

/// Whether SQL text may define a custom (dotted) variable.
pub fn may_define_custom_variable(sql: &[u8]) -> bool {
    contains_ignore_case(sql, b"set_config") || set_of_dotted_name(sql)
}

/// Words after which a session may hold state on its data-node connection that the
/// coordinator does not track and could not rebuild on another connection: prepared statements
/// made with SQL, LISTEN, temporary objects, advisory locks, cursors WITH HOLD, sequence state
/// (nextval, setval, then currval/lastval), settings made by a function, dblink connections, loaded modules.
const PINNING_WORDS: [&[u8]; 13] = [
    b"prepare", b"listen", b"temp", b"advisory", b"hold", b"nextval", b"setval", b"currval", b"lastval", b"set_config", b"dblink",
    b"load", b"declare",
];

/// Whether SQL text may leave state on the session's connections that only that connection
/// keeps (see [`PINNING_WORDS`]); such a session keeps its connections while idle. Extended-
/// protocol settings (`extended`: a Parse's text) count too: the session records only the
/// simple protocol's. A conservative scan: a false positive only keeps a connection.
pub fn pins_session(sql: &[u8], extended: bool) -> bool {
    if extended && is_session_setting(&String::from_utf8_lossy(sql)) {
        return true;
    }
    (0..sql.len()).any(|i| {
        let first = sql[i].to_ascii_lowercase();
        PINNING_WORDS.iter().any(|w| w[0] == first && sql.len() - i >= w.len() && sql[i..i + w.len()].eq_ignore_ascii_case(w))
    })
}

fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle))
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'"' || b >= 0x80
}

/// `SET [SESSION | LOCAL] name.name`: a SET keyword followed by an identifier with a dot.
fn set_of_dotted_name(sql: &[u8]) -> bool {
    let mut i = 0;
    while i + 3 <= sql.len() {
        let starts_word = i == 0 || !is_ident(sql[i - 1]);
        if starts_word && sql[i..i + 3].eq_ignore_ascii_case(b"set") && sql.get(i + 3).is_some_and(|b| b.is_ascii_whitespace()) {
            let mut j = skip_space(sql, i + 3);
            for word in [&b"session"[..], b"local"] {
                if sql.len() >= j + word.len()
                    && sql[j..j + word.len()].eq_ignore_ascii_case(word)
                    && sql.get(j + word.len()).is_some_and(|b| b.is_ascii_whitespace())
                {
                    j = skip_space(sql, j + word.len());
                }
            }
            let name_start = j;
            while j < sql.len() && is_ident(sql[j]) {
                j += 1;
            }
            if j > name_start && sql.get(j) == Some(&b'.') {
                return true;
            }
        }
        i += 1;
    }
    false
}

fn skip_space(sql: &[u8], mut i: usize) -> usize {
    while i < sql.len() && sql[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::may_define_custom_variable as m;

    #[test]
    fn custom_variables_are_spotted() {
        assert!(m(b"SET myapp.flag = 'on'"));
        assert!(m(b"set local app.user_id to 7"));
        assert!(m(b"SET SESSION  \"My\".x = 1"));
        assert!(m(b"select 1; set a.b=1"));
        assert!(m(b"SELECT set_config('app.tenant', '42', false)"));
    }

    #[test]
    fn session_state_pins_the_connection() {
        use super::pins_session as p;
        for sql in [
            "PREPARE q AS SELECT 1",
            "listen jobs",
            "CREATE TEMP TABLE t (a int)",
            "create temporary table t (a int)",
            "SELECT pg_advisory_lock(1)",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "SELECT currval('s')",
            "select LASTVAL()",
            "SELECT set_config('search_path', 'x', false)",
            "SELECT dblink_connect('c', 'dbname=x')",
            "LOAD 'auto_explain'",
        ] {
            assert!(p(sql.as_bytes(), false), "{sql}");
        }
        assert!(p(b"SET search_path TO app", true));
        assert!(!p(b"SET search_path TO app", false), "simple-protocol settings are replayed");
        assert!(p(b"SELECT nextval('s')", false));
        for sql in ["SELECT abalance FROM pgbench_accounts WHERE aid = 7", "UPDATE t SET v = v + 1 WHERE id = $1"] {
            assert!(!p(sql.as_bytes(), false), "{sql}");
            assert!(!p(sql.as_bytes(), true), "{sql}");
        }
    }

    #[test]
    fn ordinary_statements_are_not() {
        assert!(!m(b"SET work_mem = '64MB'"));
        assert!(!m(b"SET search_path TO app, public"));
        assert!(!m(b"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"));
        assert!(!m(b"SELECT abalance FROM pgbench_accounts WHERE aid = 7"));
        assert!(!m(b"select offset_x from t"));
    }
}
