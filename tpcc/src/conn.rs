//! Where the benchmark connects (the flags every subcommand shares), opening a connection,
//! and reading text rows with the simple protocol (what pgshard answers for statements it
//! merges over several shards).

use std::time::Duration;

use anyhow::Context;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// Connection flags of every `pgshard tpcc` subcommand.
#[derive(clap::Args, Clone, Debug)]
pub struct Conn {
    /// Server host (pgshard's coordinator or a plain PostgreSQL).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(long, default_value_t = 6432)]
    pub port: u16,
    /// User name.
    #[arg(long, default_value = "postgres")]
    pub user: String,
    /// Database name.
    #[arg(long, default_value = "postgres")]
    pub database: String,
    /// Password, when the server asks for one.
    #[arg(long, env = "PGPASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

impl Conn {
    /// Connection flags for `host:port` with the default user and database, no password.
    pub fn new(host: &str, port: u16) -> Self {
        Self { host: host.to_owned(), port, user: "postgres".into(), database: "postgres".into(), password: None }
    }

    /// Opens a connection, driving it in a task of the current runtime.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.database)
            .application_name("pgshard-tpcc")
            .connect_timeout(Duration::from_secs(10));
        if let Some(password) = &self.password {
            config.password(password);
        }
        let (client, connection) = config.connect(NoTls).await.with_context(|| format!("cannot connect to {self}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
        Ok(client)
    }
}

impl std::fmt::Display for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}:{}/{}", self.user, self.host, self.port, self.database)
    }
}

/// The rows of `sql` run with the simple protocol, every value as text (None for NULL).
pub async fn text_rows(client: &Client, sql: &str) -> anyhow::Result<Vec<Vec<Option<String>>>> {
    let messages = client.simple_query(sql).await.with_context(|| sql.to_owned())?;
    Ok(messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect()),
            _ => None,
        })
        .collect())
}

/// Runs one statement with the simple protocol, with the statement in the error's context.
pub async fn execute(client: &Client, sql: &str) -> anyhow::Result<()> {
    client.simple_query(sql).await.with_context(|| sql.to_owned())?;
    Ok(())
}

/// Parses a text value as an integer, naming the column in the error.
pub fn int(value: &Option<String>, what: &str) -> anyhow::Result<i64> {
    value.as_deref().with_context(|| format!("{what} is NULL"))?.parse().with_context(|| format!("{what} is not an integer"))
}

/// Parses a text numeric with at most two decimals (money) into hundredths, exactly.
pub fn cents(value: &Option<String>, what: &str) -> anyhow::Result<i64> {
    let text = value.as_deref().with_context(|| format!("{what} is NULL"))?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let frac = frac.trim_end_matches('0');
    anyhow::ensure!(frac.len() <= 2, "{what} = {text} has more than two decimals");
    let whole: i64 = whole.parse().with_context(|| format!("{what} = {text} is not a number"))?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse()? };
    let value = whole * 100 + frac;
    Ok(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_are_exact() {
        let c = |s: &str| cents(&Some(s.to_owned()), "x").unwrap();
        assert_eq!(c("300000.00"), 30_000_000);
        assert_eq!(c("-10.5"), -1050);
        assert_eq!(c("7"), 700);
        assert_eq!(c("0.0100000000"), 1);
        assert!(cents(&Some("1.005".into()), "x").is_err());
        assert!(cents(&None, "x").is_err());
    }
}
