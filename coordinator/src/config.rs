//! Coordinator configuration: a TOML file, overridden by command-line flags and environment
//! variables (flags win over the environment, both win over the file). See
//! `examples/pgshard.toml` for an annotated file.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Everything a coordinator needs to run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This coordinator's name, unique among the coordinators sharing a metadata store and kept
    /// across restarts: its distributed transactions carry it, and it recovers only its own.
    pub name: String,
    /// Address the coordinator listens on for clients.
    pub listen: String,
    /// The metadata store.
    pub metadata: MetadataConfig,
    /// Data nodes to register in the catalog at start (by name; an existing node's address is
    /// updated).
    pub data_nodes: Vec<DataNodeConfig>,
    /// How clients authenticate.
    pub auth: AuthConfig,
    /// Connections to data nodes.
    pub pool: PoolConfig,
    /// Seconds a graceful shutdown waits for busy sessions before closing them.
    pub shutdown_grace_secs: u64,
    /// Distributed transactions.
    pub transactions: TransactionsConfig,
    /// The primary lease (several coordinators on one metadata store).
    pub primary: PrimaryConfig,
    /// Reads the shards cannot answer alone.
    pub reads: ReadsConfig,
}

/// How reads across colocation groups (or with tables of the default node) are answered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadsConfig {
    /// `auto`: by table sizes, the way that moves fewer bytes; `copies`: always over copies on
    /// the default node; `broadcast`: on one group's shards with the other tables written in,
    /// whenever that can run.
    pub strategy: ReadStrategy,
    /// The most rows the tables written into a broadcast read may have (more: copies).
    pub broadcast_max_rows: usize,
}

impl Default for ReadsConfig {
    fn default() -> Self {
        Self { strategy: ReadStrategy::Auto, broadcast_max_rows: 10_000 }
    }
}

/// See [`ReadsConfig::strategy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadStrategy {
    /// By sizes.
    Auto,
    /// Over copies on the default node.
    Copies,
    /// On one group's shards whenever possible.
    Broadcast,
}

/// Primary and follower coordinators.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrimaryConfig {
    /// Milliseconds a lease lasts without renewal; a follower takes an expired lease.
    pub lease_ms: u64,
    /// Milliseconds between renewals (and between checks of the catalog version).
    pub renew_ms: u64,
    /// A follower takes the lease by itself when it expires.
    pub auto_takeover: bool,
}

impl Default for PrimaryConfig {
    fn default() -> Self {
        Self { lease_ms: 5_000, renew_ms: 500, auto_takeover: true }
    }
}

/// Distributed-transaction settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TransactionsConfig {
    /// Milliseconds between recovery rounds (prepared transactions left by a crash are
    /// committed or rolled back as their decision record says).
    pub recovery_interval_ms: u64,
    /// Milliseconds to wait for the metadata store to record a commit decision; past it the
    /// outcome is reported as unknown (08007) and left to recovery.
    pub decision_timeout_ms: u64,
    /// Milliseconds between distributed deadlock detection rounds; a cycle is confirmed when
    /// two consecutive rounds see it.
    pub deadlock_check_ms: u64,
}

impl Default for TransactionsConfig {
    fn default() -> Self {
        Self { recovery_interval_ms: 3_000, decision_timeout_ms: 10_000, deadlock_check_ms: 1_000 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            name: "c0".into(),
            listen: "127.0.0.1:6432".into(),
            metadata: MetadataConfig::default(),
            data_nodes: Vec::new(),
            auth: AuthConfig::default(),
            pool: PoolConfig::default(),
            shutdown_grace_secs: 10,
            transactions: TransactionsConfig::default(),
            primary: PrimaryConfig::default(),
            reads: ReadsConfig::default(),
        }
    }
}

/// Where the catalog lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// libpq-style connection string of the metadata database.
    pub dsn: String,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self { dsn: "host=127.0.0.1 port=5432 user=postgres dbname=pgshard".into() }
    }
}

/// A data node to register.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DataNodeConfig {
    /// Unique node name.
    pub name: String,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl DataNodeConfig {
    /// Parses `name=host:port`, the form flags and environment variables use.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, addr) = s.split_once('=').ok_or_else(|| format!("data node {s:?}: expected name=host:port"))?;
        let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("data node {s:?}: expected name=host:port"))?;
        let port = port.parse().map_err(|_| format!("data node {s:?}: bad port {port:?}"))?;
        if name.is_empty() || host.is_empty() {
            return Err(format!("data node {s:?}: expected name=host:port"));
        }
        Ok(Self { name: name.into(), host: host.into(), port })
    }
}

/// Client authentication.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `trust` (anyone who can reach the port) or `scram-sha-256` (users below).
    pub method: AuthMethod,
    /// Users and their passwords. The coordinator logs in to data nodes as the client's user
    /// with the same password (data nodes may also trust the coordinator's address).
    pub users: Vec<UserConfig>,
}

/// How a client proves who it is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// No password asked.
    #[default]
    Trust,
    /// SCRAM-SHA-256, as PostgreSQL does it.
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
}

impl std::str::FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "trust" => Ok(Self::Trust),
            "scram-sha-256" => Ok(Self::ScramSha256),
            _ => Err(format!("unknown auth method {s:?} (expected trust or scram-sha-256)")),
        }
    }
}

/// One user allowed to log in.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Role name.
    pub name: String,
    /// Password (also used to log in to data nodes).
    pub password: String,
}

/// Data-node connection pool settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolConfig {
    /// Most connections open to one data node.
    pub max_per_node: usize,
    /// Milliseconds to wait for a data node to accept a connection.
    pub connect_timeout_ms: u64,
    /// Milliseconds a session waits for a free connection before 53300.
    pub checkout_timeout_ms: u64,
    /// Seconds an unused pooled connection is kept.
    pub idle_timeout_secs: u64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self { max_per_node: 100, connect_timeout_ms: 5_000, checkout_timeout_ms: 10_000, idle_timeout_secs: 300 }
    }
}

impl PoolConfig {
    /// Connect timeout as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    /// Checkout timeout as a duration.
    pub fn checkout_timeout(&self) -> Duration {
        Duration::from_millis(self.checkout_timeout_ms)
    }
    /// Idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        Self::from_toml(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        let config: Config = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        pgshard_txn::check_name(&self.name)?;
        if self.transactions.recovery_interval_ms == 0 || self.transactions.deadlock_check_ms == 0 {
            anyhow::bail!("transactions.recovery_interval_ms and transactions.deadlock_check_ms must be at least 1");
        }
        if self.primary.renew_ms == 0 || self.primary.lease_ms <= self.primary.renew_ms {
            anyhow::bail!("primary.renew_ms must be at least 1 and below primary.lease_ms");
        }
        if self.pool.max_per_node == 0 {
            anyhow::bail!("pool.max_per_node must be at least 1");
        }
        if self.auth.method == AuthMethod::ScramSha256 && self.auth.users.is_empty() {
            anyhow::bail!("auth.method = \"scram-sha-256\" needs at least one [[auth.users]] entry");
        }
        let mut names: Vec<&str> = self.data_nodes.iter().map(|n| n.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            anyhow::bail!("data node names must be unique");
        }
        Ok(())
    }

    /// The password configured for a user, if any.
    pub fn password_of(&self, user: &str) -> Option<&str> {
        self.auth.users.iter().find(|u| u.name == user).map(|u| u.password.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses() {
        let text = include_str!("../../examples/pgshard.toml");
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.data_nodes.len(), 2);
        assert_eq!(c.auth.method, AuthMethod::ScramSha256);
    }

    #[test]
    fn defaults_apply_to_missing_sections() {
        let c = Config::from_toml("listen = '127.0.0.1:7000'").unwrap();
        assert_eq!(c.listen, "127.0.0.1:7000");
        assert_eq!(c.pool.max_per_node, 100);
        assert_eq!(c.auth.method, AuthMethod::Trust);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::from_toml("lisen = 'x'").is_err());
    }

    #[test]
    fn scram_without_users_is_refused() {
        assert!(Config::from_toml("[auth]\nmethod = 'scram-sha-256'").is_err());
    }

    #[test]
    fn data_node_flag_form() {
        let n = DataNodeConfig::parse("dn1=10.0.0.1:5433").unwrap();
        assert_eq!((n.name.as_str(), n.host.as_str(), n.port), ("dn1", "10.0.0.1", 5433));
        assert!(DataNodeConfig::parse("dn1").is_err());
        assert!(DataNodeConfig::parse("dn1=h:notaport").is_err());
    }
}
