//! Transaction blocks as the session sees them. BEGIN is not sent anywhere at once: the block
//! is *deferred* until its first statement picks a data node, which then receives the client's
//! own BEGIN text (isolation level, READ ONLY, ...) just before that statement, and the block is
//! *bound* to that node for its life. COMMIT and ROLLBACK go to the bound node, or are answered
//! by the coordinator when no statement ran. A statement that needs a second data node inside a
//! bound block is refused with 0A000 (two-phase commit comes with distributed transactions).

/// Transaction control the session handles itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnCmd {
    /// BEGIN / START TRANSACTION, with the client's text.
    Begin(String),
    /// COMMIT / END.
    Commit,
    /// ROLLBACK / ABORT.
    Rollback,
}

/// The client's transaction block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TxnState {
    /// No block.
    #[default]
    Idle,
    /// BEGIN was received; no statement ran yet. `failed` once a statement failed.
    Deferred {
        /// The client's BEGIN text.
        begin: String,
        /// A statement failed: everything but ROLLBACK/COMMIT is refused (25P02).
        failed: bool,
    },
    /// The block runs on the session's connection at this index.
    Bound(usize),
}

/// Classifies a statement as transaction control, by its words. Only plain forms are taken:
/// `COMMIT AND CHAIN`, `ROLLBACK TO SAVEPOINT`, `COMMIT PREPARED` and the like are not.
pub fn classify(sql: &str) -> Option<TxnCmd> {
    let text = sql.trim().trim_end_matches(';').trim_end();
    if text.contains(';') || text.contains("--") || text.contains("/*") {
        return None;
    }
    let words: Vec<String> = text.split_ascii_whitespace().map(str::to_ascii_lowercase).collect();
    let first = words.first()?.as_str();
    let rest: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
    let plain_end = |rest: &[&str]| matches!(rest, [] | ["work"] | ["transaction"]);
    match first {
        "begin" => Some(TxnCmd::Begin(text.to_owned())),
        "start" if rest.first() == Some(&"transaction") => Some(TxnCmd::Begin(text.to_owned())),
        "commit" | "end" if plain_end(&rest) => Some(TxnCmd::Commit),
        "rollback" | "abort" if plain_end(&rest) => Some(TxnCmd::Rollback),
        _ => None,
    }
}

/// The command tag PostgreSQL answers a transaction command with.
pub fn tag_of(cmd: &TxnCmd, failed: bool) -> &'static str {
    match cmd {
        TxnCmd::Begin(_) => "BEGIN",
        TxnCmd::Commit if failed => "ROLLBACK",
        TxnCmd::Commit => "COMMIT",
        TxnCmd::Rollback => "ROLLBACK",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_forms_only() {
        assert_eq!(classify("BEGIN"), Some(TxnCmd::Begin("BEGIN".into())));
        assert_eq!(
            classify(" begin isolation level serializable ; "),
            Some(TxnCmd::Begin("begin isolation level serializable".into()))
        );
        assert_eq!(classify("START TRANSACTION READ ONLY"), Some(TxnCmd::Begin("START TRANSACTION READ ONLY".into())));
        assert_eq!(classify("end"), Some(TxnCmd::Commit));
        assert_eq!(classify("COMMIT WORK"), Some(TxnCmd::Commit));
        assert_eq!(classify("abort"), Some(TxnCmd::Rollback));
        assert_eq!(classify("COMMIT PREPARED 'x'"), None);
        assert_eq!(classify("ROLLBACK TO SAVEPOINT a"), None);
        assert_eq!(classify("COMMIT AND CHAIN"), None);
        assert_eq!(classify("BEGIN; SELECT 1"), None);
        assert_eq!(classify("select 1"), None);
        assert_eq!(classify("startle"), None);
    }
}
