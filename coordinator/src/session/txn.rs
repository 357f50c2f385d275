//! Transaction blocks as the session sees them. BEGIN is sent nowhere at once: a data node joins
//! the block when a statement first needs it, and then runs the client's own BEGIN text
//! (isolation level, READ ONLY, ...), any SET TRANSACTION given since, and the block's open
//! savepoints, just before that statement. From then on the node's connection is a *member*
//! of the block for its life. Savepoint commands go to every member; COMMIT ends the members
//! with one phase when at most one of them wrote and with two-phase commit otherwise (see
//! `commit`). The coordinator also opens an *implicit* block around one autocommit statement
//! that writes on several nodes, so that it is atomic too.

/// Transaction control the session handles itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnCmd {
    /// BEGIN / START TRANSACTION, with the client's text.
    Begin(String),
    /// COMMIT / END [AND CHAIN].
    Commit { chain: bool },
    /// ROLLBACK / ABORT [AND CHAIN].
    Rollback { chain: bool },
    /// SAVEPOINT name (the name as PostgreSQL folds it).
    Savepoint(String),
    /// RELEASE [SAVEPOINT] name.
    Release(String),
    /// ROLLBACK [WORK | TRANSACTION] TO [SAVEPOINT] name.
    RollbackTo(String),
    /// SET TRANSACTION ..., with the client's text: every member runs it.
    SetTransaction(String),
    /// Transaction control pgshard does not offer, refused with 0A000 and this sentence.
    Refuse(String),
}

/// Whether a member of a block wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Writes {
    /// Only reads were sent there.
    No,
    /// Statements the coordinator did not plan (it cannot tell): asked at commit.
    Unknown,
    /// A planned write was sent there.
    Yes,
}

/// A data-node connection taking part in a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The session's connection index.
    pub conn: usize,
    /// What was sent there.
    pub writes: Writes,
}

/// A step a member that joins a block late replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// An open savepoint.
    Savepoint(String),
    /// A setting made in the block (`SET`, `SET LOCAL`, `RESET`), as the client wrote it.
    Setting(String),
}

/// An open transaction block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Block {
    /// What a joining member runs first: the client's BEGIN text and its SET TRANSACTIONs.
    pub begin: String,
    /// A statement failed: everything but ROLLBACK [TO SAVEPOINT] and COMMIT is refused (25P02).
    pub failed: bool,
    /// A member's connection was lost: the block can only roll back.
    pub doomed: bool,
    /// The members, in the order they joined.
    pub members: Vec<Member>,
    /// What a joining member replays after `begin`, in order: open savepoints and the settings
    /// made in the block.
    pub replay: Vec<Replay>,
    /// Opened by the coordinator around one statement (not by the client).
    pub implicit: bool,
    /// When the client's BEGIN arrived: `now()` for the statements of the block.
    pub started: Option<std::time::SystemTime>,
}

impl Block {
    /// A block the client opened with `begin`.
    pub fn new(begin: &str) -> Self {
        Self { begin: begin.to_owned(), started: Some(std::time::SystemTime::now()), ..Self::default() }
    }

    /// A block around one autocommit statement.
    pub fn implicit() -> Self {
        Self { begin: "BEGIN".to_owned(), implicit: true, ..Self::default() }
    }

    /// Makes connection `conn` a member, noting `writes`. Returns the text it must run first
    /// when it was not a member yet.
    pub fn enlist(&mut self, conn: usize, writes: Writes) -> Option<String> {
        if let Some(m) = self.members.iter_mut().find(|m| m.conn == conn) {
            m.writes = m.writes.max(writes);
            return None;
        }
        self.members.push(Member { conn, writes });
        let mut text = self.begin.clone();
        for step in &self.replay {
            text.push(';');
            match step {
                Replay::Savepoint(s) => {
                    text.push_str("SAVEPOINT ");
                    text.push_str(&quote(s));
                }
                Replay::Setting(sql) => text.push_str(sql),
            }
        }
        Some(text)
    }

    /// Whether `conn` is a member.
    pub fn has(&self, conn: usize) -> bool {
        self.members.iter().any(|m| m.conn == conn)
    }

    /// Position (in `replay`) of the newest open savepoint named `name`.
    pub fn savepoint(&self, name: &str) -> Option<usize> {
        self.replay.iter().rposition(|s| matches!(s, Replay::Savepoint(n) if n == name))
    }

    /// Opens a savepoint.
    pub fn push_savepoint(&mut self, name: &str) {
        self.replay.push(Replay::Savepoint(name.to_owned()));
    }

    /// RELEASE: the savepoint at `at` and the later ones close; settings stay.
    pub fn release(&mut self, at: usize) {
        let later = self.replay.split_off(at);
        self.replay.extend(later.into_iter().filter(|s| matches!(s, Replay::Setting(_))));
    }

    /// ROLLBACK TO: what came after the savepoint at `at` is undone; the savepoint stays.
    pub fn rollback_to(&mut self, at: usize) {
        self.replay.truncate(at + 1);
    }

    /// The session-level settings the block made (what outlives its commit).
    pub fn session_settings(&self) -> impl Iterator<Item = &str> {
        self.replay.iter().filter_map(|s| match s {
            Replay::Setting(sql) if crate::guc::is_session_setting(sql) => Some(sql.as_str()),
            _ => None,
        })
    }
}

/// The client's transaction state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TxnState {
    /// No block.
    #[default]
    Idle,
    /// A block is open.
    Block(Block),
}

/// A savepoint name quoted for the nodes.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Classifies a statement as transaction control, by its words.
pub fn classify(sql: &str) -> Option<TxnCmd> {
    let text = sql.trim().trim_end_matches(';').trim_end();
    let first = text.split_ascii_whitespace().next()?.to_ascii_lowercase();
    if !matches!(
        first.as_str(),
        "begin" | "start" | "commit" | "end" | "rollback" | "abort" | "savepoint" | "release" | "set" | "prepare"
    ) {
        return None;
    }
    if text.contains(';') || text.contains("--") || text.contains("/*") {
        return None;
    }
    let words: Vec<String> = text.split_ascii_whitespace().map(str::to_ascii_lowercase).collect();
    let rest: Vec<&str> = words.iter().skip(1).map(String::as_str).collect();
    let noise = |r: &[&str]| -> usize { usize::from(matches!(r.first(), Some(&"work" | &"transaction"))) };
    let chain = |r: &[&str]| -> Option<bool> {
        match r {
            [] => Some(false),
            ["and", "chain"] => Some(true),
            ["and", "no", "chain"] => Some(false),
            _ => None,
        }
    };
    match first.as_str() {
        "begin" => Some(TxnCmd::Begin(text.to_owned())),
        "start" if rest.first() == Some(&"transaction") => Some(TxnCmd::Begin(text.to_owned())),
        "commit" | "rollback" if rest.first() == Some(&"prepared") => Some(refuse_two_phase()),
        "prepare" if rest.first() == Some(&"transaction") => Some(refuse_two_phase()),
        "commit" | "end" => chain(&rest[noise(&rest)..]).map(|chain| TxnCmd::Commit { chain }),
        "rollback" | "abort" => {
            let r = &rest[noise(&rest)..];
            if first == "rollback" && r.first() == Some(&"to") {
                let skip = 1 + usize::from(r.get(1) == Some(&"savepoint"));
                return name_after(text, 1 + noise(&rest) + skip).map(TxnCmd::RollbackTo);
            }
            chain(r).map(|chain| TxnCmd::Rollback { chain })
        }
        "savepoint" => name_after(text, 1).map(TxnCmd::Savepoint),
        "release" => name_after(text, 1 + usize::from(rest.first() == Some(&"savepoint"))).map(TxnCmd::Release),
        "set" if rest.first() == Some(&"transaction") => Some(TxnCmd::SetTransaction(text.to_owned())),
        _ => None,
    }
}

fn refuse_two_phase() -> TxnCmd {
    TxnCmd::Refuse(
        "two-phase commit commands from clients (PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK PREPARED): \
         pgshard runs two-phase commit itself"
            .into(),
    )
}

/// The identifier that is all of `text` after its first `skip` words, folded as PostgreSQL
/// folds it (unquoted: lower case; quoted: as written).
fn name_after(text: &str, skip: usize) -> Option<String> {
    let mut rest = text;
    for _ in 0..skip {
        rest = rest.trim_start();
        let end = rest.find(|c: char| c.is_ascii_whitespace())?;
        rest = &rest[end..];
    }
    let rest = rest.trim();
    if let Some(inner) = rest.strip_prefix('"') {
        let inner = inner.strip_suffix('"')?;
        if inner.is_empty() || inner.replace("\"\"", "").contains('"') {
            return None;
        }
        return Some(inner.replace("\"\"", "\""));
    }
    let ok = !rest.is_empty()
        && !rest.starts_with(|c: char| c.is_ascii_digit() || c == '$')
        && rest.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$');
    ok.then(|| rest.to_lowercase())
}

/// The command tag PostgreSQL answers a transaction command with.
pub fn tag_of(cmd: &TxnCmd, failed: bool) -> &'static str {
    match cmd {
        TxnCmd::Begin(_) => "BEGIN",
        TxnCmd::Commit { .. } if failed => "ROLLBACK",
        TxnCmd::Commit { .. } => "COMMIT",
        TxnCmd::Rollback { .. } | TxnCmd::RollbackTo(_) => "ROLLBACK",
        TxnCmd::Savepoint(_) => "SAVEPOINT",
        TxnCmd::Release(_) => "RELEASE",
        TxnCmd::SetTransaction(_) => "SET",
        TxnCmd::Refuse(_) => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_control() {
        assert_eq!(classify("BEGIN"), Some(TxnCmd::Begin("BEGIN".into())));
        assert_eq!(
            classify(" begin isolation level serializable ; "),
            Some(TxnCmd::Begin("begin isolation level serializable".into()))
        );
        assert_eq!(classify("START TRANSACTION READ ONLY"), Some(TxnCmd::Begin("START TRANSACTION READ ONLY".into())));
        assert_eq!(classify("end"), Some(TxnCmd::Commit { chain: false }));
        assert_eq!(classify("COMMIT WORK"), Some(TxnCmd::Commit { chain: false }));
        assert_eq!(classify("COMMIT TRANSACTION"), Some(TxnCmd::Commit { chain: false }));
        assert_eq!(classify("COMMIT AND CHAIN"), Some(TxnCmd::Commit { chain: true }));
        assert_eq!(classify("rollback transaction and no chain"), Some(TxnCmd::Rollback { chain: false }));
        assert_eq!(classify("abort"), Some(TxnCmd::Rollback { chain: false }));
        assert_eq!(classify("BEGIN; SELECT 1"), None);
        assert_eq!(classify("select 1"), None);
        assert_eq!(classify("startle"), None);
        assert_eq!(classify("commit sideways"), None);
        assert_eq!(classify("SET search_path = x"), None);
        assert_eq!(
            classify("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"),
            Some(TxnCmd::SetTransaction("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ".into()))
        );
    }

    #[test]
    fn savepoints_fold_names_as_postgres_does() {
        assert_eq!(classify("SAVEPOINT A1"), Some(TxnCmd::Savepoint("a1".into())));
        assert_eq!(classify("savepoint \"Mixed Case\""), Some(TxnCmd::Savepoint("Mixed Case".into())));
        assert_eq!(classify("RELEASE SAVEPOINT a"), Some(TxnCmd::Release("a".into())));
        assert_eq!(classify("release b"), Some(TxnCmd::Release("b".into())));
        assert_eq!(classify("ROLLBACK TO SAVEPOINT a"), Some(TxnCmd::RollbackTo("a".into())));
        assert_eq!(classify("rollback work to b"), Some(TxnCmd::RollbackTo("b".into())));
        assert_eq!(classify("ROLLBACK TRANSACTION TO SAVEPOINT \"x\"\"y\""), Some(TxnCmd::RollbackTo("x\"y".into())));
        assert_eq!(classify("SAVEPOINT"), None);
        assert_eq!(classify("SAVEPOINT a b"), None);
        assert_eq!(classify("SAVEPOINT 1a"), None);
    }

    #[test]
    fn client_two_phase_commands_are_refused() {
        for sql in ["PREPARE TRANSACTION 'x'", "COMMIT PREPARED 'x'", "ROLLBACK PREPARED 'x'"] {
            assert!(matches!(classify(sql), Some(TxnCmd::Refuse(_))), "{sql}");
        }
        assert_eq!(classify("PREPARE q AS SELECT 1"), None);
    }

    #[test]
    fn joining_members_replay_begin_and_savepoints() {
        let mut b = Block::new("BEGIN ISOLATION LEVEL REPEATABLE READ");
        assert_eq!(b.enlist(3, Writes::No).as_deref(), Some("BEGIN ISOLATION LEVEL REPEATABLE READ"));
        b.push_savepoint("a");
        b.replay.push(Replay::Setting("SET LOCAL work_mem = '8MB'".into()));
        b.push_savepoint("Q\"");
        assert_eq!(b.enlist(3, Writes::Yes), None);
        assert_eq!(b.members[0].writes, Writes::Yes);
        assert_eq!(b.enlist(3, Writes::No), None);
        assert_eq!(b.members[0].writes, Writes::Yes, "a write is never forgotten");
        assert_eq!(
            b.enlist(5, Writes::Unknown).as_deref(),
            Some("BEGIN ISOLATION LEVEL REPEATABLE READ;SAVEPOINT \"a\";SET LOCAL work_mem = '8MB';SAVEPOINT \"Q\"\"\"")
        );
        assert!(b.has(5) && !b.has(4));
        b.push_savepoint("a");
        assert_eq!(b.savepoint("a"), Some(3));
        assert_eq!(b.savepoint("zz"), None);
        b.replay.push(Replay::Setting("SET search_path = x".into()));
        b.release(0);
        assert_eq!(
            b.replay,
            vec![Replay::Setting("SET LOCAL work_mem = '8MB'".into()), Replay::Setting("SET search_path = x".into())],
            "RELEASE closes savepoints and keeps settings"
        );
        assert_eq!(b.session_settings().collect::<Vec<_>>(), vec!["SET search_path = x"]);
        b.push_savepoint("s");
        b.replay.push(Replay::Setting("SET a.b = 1".into()));
        b.rollback_to(2);
        assert_eq!(b.replay.len(), 3, "ROLLBACK TO undoes the settings made after the savepoint");
    }
}
