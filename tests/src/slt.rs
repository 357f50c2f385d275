//! sqllogictest runner over tokio-postgres: runs the `.slt` corpus under `tests/slt/` against any
//! server that speaks the PostgreSQL wire protocol (a plain PostgreSQL or the pgshard coordinator).
//!
//! Statements go through the simple query protocol, so every value comes back as the text
//! PostgreSQL prints for it; `NULL` prints as `NULL` and the empty string as `(empty)`, following
//! the sqllogictest convention. A server error displays as `"{sqlstate}: {message}"`, so a record
//! can assert the SQLSTATE with `statement error 23505` or the message with any regex, and
//! `statement error (23505)` matches the SQLSTATE exactly.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::Duration;

use anyhow::anyhow;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Engine names reported to `skipif` / `onlyif` conditions: `postgres` for a plain PostgreSQL,
/// `pgshard` through the coordinator (where `onlyif pgshard` records distribute the tables).
pub const PLAIN_ENGINE: &str = "postgres";
/// See [`PLAIN_ENGINE`].
pub const PGSHARD_ENGINE: &str = "pgshard";

/// How a NULL value prints in query results.
const NULL_TEXT: &str = "NULL";

/// How an empty string prints in query results (an empty field would vanish in the file).
const EMPTY_TEXT: &str = "(empty)";

/// The boxed future `#[async_trait]` methods return; sqllogictest does not re-export the macro.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An error from the server (with its SQLSTATE) or from the connection (without one).
#[derive(Debug)]
pub struct SltError {
    /// Five-character SQLSTATE, when the server sent an ErrorResponse.
    sqlstate: Option<String>,
    /// Primary error message.
    message: String,
}

impl SltError {
    /// The SQLSTATE code, when the error came from the server.
    pub fn sqlstate(&self) -> Option<&str> {
        self.sqlstate.as_deref()
    }
}

impl fmt::Display for SltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sqlstate {
            Some(code) => write!(f, "{code}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SltError {}

impl From<tokio_postgres::Error> for SltError {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) => SltError {
                sqlstate: Some(db.code().code().to_owned()),
                message: db.message().to_owned(),
            },
            None => SltError {
                sqlstate: None,
                message: err.to_string(),
            },
        }
    }
}

/// One session on the server under test, as a sqllogictest database.
pub struct PgDb {
    /// The session's client; its connection task runs on the tokio runtime.
    client: Client,
    /// The engine name for `onlyif` / `skipif`.
    engine: &'static str,
}

impl PgDb {
    /// Opens a session to `dbname` on `host:port` as `user`, without TLS.
    pub async fn connect(host: &str, port: u16, user: &str, dbname: &str, engine: &'static str) -> Result<Self, SltError> {
        let (client, connection) = tokio_postgres::Config::new()
            .host(host)
            .port(port)
            .user(user)
            .dbname(dbname)
            .application_name("pgshard-slt")
            .connect(NoTls)
            .await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::warn!(%err, "slt connection ended with an error");
            }
        });
        Ok(PgDb { client, engine })
    }

    /// Runs `sql` with the simple query protocol and renders the outcome for sqllogictest.
    async fn run_simple(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SltError> {
        let messages = self.client.simple_query(sql).await?;
        Ok(render(&messages))
    }
}

/// Turns the messages of one simple query into rows (if any statement described a row set) or
/// into the row count of the last statement.
fn render(messages: &[SimpleQueryMessage]) -> DBOutput<DefaultColumnType> {
    let mut types: Option<Vec<DefaultColumnType>> = None;
    let mut rows = Vec::new();
    let mut count = 0;
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(columns) => {
                types = Some(vec![DefaultColumnType::Any; columns.len()]);
            }
            SimpleQueryMessage::Row(row) => {
                let values = (0..row.len())
                    .map(|i| match row.try_get(i) {
                        Ok(Some("")) => EMPTY_TEXT.to_owned(),
                        Ok(Some(text)) => text.to_owned(),
                        Ok(None) => NULL_TEXT.to_owned(),
                        Err(err) => format!("<unreadable column {i}: {err}>"),
                    })
                    .collect();
                rows.push(values);
            }
            SimpleQueryMessage::CommandComplete(n) => count = *n,
            _ => {}
        }
    }
    match types {
        Some(types) => DBOutput::Rows { types, rows },
        None => DBOutput::StatementComplete(count),
    }
}

impl AsyncDB for PgDb {
    type Error = SltError;
    type ColumnType = DefaultColumnType;

    fn run<'life0, 'life1, 'async_trait>(
        &'life0 mut self,
        sql: &'life1 str,
    ) -> BoxFuture<'async_trait, Result<DBOutput<DefaultColumnType>, SltError>>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.run_simple(sql))
    }

    fn shutdown<'life0, 'async_trait>(&'life0 mut self) -> BoxFuture<'async_trait, ()>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        // Dropping the client closes the session; nothing to flush.
        Box::pin(async {})
    }

    fn engine_name(&self) -> &str {
        self.engine
    }

    fn sleep<'async_trait>(dur: Duration) -> BoxFuture<'async_trait, ()> {
        Box::pin(tokio::time::sleep(dur))
    }

    fn error_sql_state(err: &SltError) -> Option<String> {
        err.sqlstate.clone()
    }
}

/// Runs one `.slt` file against `dbname` on `host:port`; the error holds the runner's full report
/// (file, line, SQL, expected and actual output) on the first mismatch.
pub async fn run_file(
    path: &Path,
    host: &str,
    port: u16,
    user: &str,
    dbname: &str,
    engine: &'static str,
) -> anyhow::Result<()> {
    let (host, user, dbname) = (host.to_owned(), user.to_owned(), dbname.to_owned());
    let mut runner = Runner::new(move || {
        let (host, user, dbname) = (host.clone(), user.clone(), dbname.clone());
        async move { PgDb::connect(&host, port, &user, &dbname, engine).await }
    });
    runner.with_column_validator(sqllogictest::default_column_validator);
    let result = runner.run_file_async(path).await;
    runner.shutdown_async().await;
    result.map_err(|err| anyhow!("{}", err.display(false)))
}

/// Every `*.slt` file under `tests/slt/`, sorted by path.
pub fn corpus_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    collect_slt(&Path::new(env!("CARGO_MANIFEST_DIR")).join("slt"), &mut files);
    files.sort();
    // PGSHARD_SLT=<part of a file name> runs only the files whose name holds it.
    if let Ok(only) = std::env::var("PGSHARD_SLT") {
        files.retain(|f| f.file_stem().is_some_and(|s| s.to_string_lossy().contains(&only)));
    }
    files
}

/// Appends the `.slt` files under `dir`, recursively, to `out`.
fn collect_slt(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.flatten().map(|entry| entry.path()) {
        if path.is_dir() {
            collect_slt(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "slt") {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_displays_sqlstate_then_message() {
        let err = SltError {
            sqlstate: Some("23505".into()),
            message: "duplicate key".into(),
        };
        assert_eq!(err.to_string(), "23505: duplicate key");
        assert_eq!(err.sqlstate(), Some("23505"));
    }
}
