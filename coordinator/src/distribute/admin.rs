//! The coordinator's own connections to data nodes for placement work, and the two-phase
//! commit of that work: one transaction per node, prepared under one gid, decided by the
//! catalog commit (see the crash rule in the module docs of [`crate::distribute`]).

use futures::future::join_all;
use pgshard_catalog::{CatalogTransaction, Node, NodeId};
use tokio_postgres::{Client, NoTls};

use crate::error::CoordError;
use crate::server::Shared;

/// Who runs a placement operation: the coordinator's shared state and the client's identity,
/// used for every data-node connection the operation opens (so the node checks the client's
/// own privileges).
pub struct Admin<'a> {
    /// The coordinator's shared state (catalog, metadata store, configuration).
    pub shared: &'a Shared,
    /// The client's user name.
    pub user: &'a str,
    /// The client's database.
    pub database: &'a str,
    /// The client's password, when the data nodes ask for one.
    pub password: Option<&'a str>,
}

/// Output formats every admin connection uses, whatever the node's defaults: rows copied as
/// text must read back the same on another node (ISO dates, exact floats, hex bytea) and
/// distribution values must be in a form the hash module reads. Output only: how the node
/// reads input (the DateStyle field order, say) is left as configured.
const OUTPUT_SETTINGS: &str = "-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1 -c bytea_output=hex";

/// Opens a connection to `node` as the admin's user and database (`application_name` is
/// `pgshard_admin`, output formats [`OUTPUT_SETTINGS`]), bounded by the pool's connect timeout; the connection is driven by a task.
pub async fn connect(admin: &Admin<'_>, node: &Node) -> Result<Client, CoordError> {
    let timeout = admin.shared.config.pool.connect_timeout();
    let mut config = tokio_postgres::Config::new();
    config
        .host(&node.host)
        .port(node.port)
        .user(admin.user)
        .dbname(admin.database)
        .application_name("pgshard_admin")
        .options(OUTPUT_SETTINGS)
        .connect_timeout(timeout);
    if let Some(password) = admin.password {
        config.password(password);
    }
    let unavailable = |reason: String| CoordError::NodeUnavailable {
        node: node.name.clone(),
        addr: format!("{}:{}", node.host, node.port),
        reason,
    };
    let (client, connection) = match tokio::time::timeout(timeout, config.connect(NoTls)).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) if e.as_db_error().is_some() => return Err(CoordError::from_pg(e)),
        Ok(Err(e)) => return Err(unavailable(e.to_string())),
        Err(_) => return Err(unavailable(format!("no answer within {} ms", timeout.as_millis()))),
    };
    let name = node.name.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(node = %name, error = %e, "admin connection ended");
        }
    });
    Ok(client)
}

/// Runs `sql` (one or more statements, simple protocol) on `client`, forwarding a node error.
pub(crate) async fn run(client: &Client, sql: &str) -> Result<(), CoordError> {
    client.batch_execute(sql).await.map_err(CoordError::from_pg)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxState {
    Idle,
    Open,
    Prepared,
    Done,
}

/// One node's connection taking part in a two-phase operation.
pub(crate) struct Participant {
    /// The node.
    pub node: Node,
    /// The connection (in the participant's transaction once begun).
    pub client: Client,
    state: TxState,
}

impl Participant {
    /// Connects to `node`; no transaction yet.
    pub async fn open(admin: &Admin<'_>, node: &Node) -> Result<Self, CoordError> {
        Ok(Self { node: node.clone(), client: connect(admin, node).await?, state: TxState::Idle })
    }

    /// Starts the participant's transaction.
    pub async fn begin(&mut self) -> Result<(), CoordError> {
        run(&self.client, "BEGIN").await?;
        self.state = TxState::Open;
        Ok(())
    }

    /// `PREPARE TRANSACTION gid`, checking that the node did prepare it (PostgreSQL answers an
    /// aborted transaction's PREPARE with a plain rollback, not an error).
    async fn prepare(&mut self, gid: &str) -> Result<(), CoordError> {
        run(&self.client, &format!("PREPARE TRANSACTION {}", super::sql::literal(gid))).await?;
        self.state = TxState::Prepared;
        let found = self
            .client
            .query_opt("SELECT 1 FROM pg_prepared_xacts WHERE gid = $1", &[&gid])
            .await
            .map_err(CoordError::from_pg)?;
        if found.is_none() {
            self.state = TxState::Done;
            return Err(CoordError::sql(
                tokio_postgres::error::SqlState::TRANSACTION_ROLLBACK,
                format!("data node {} rolled back its part of the operation instead of preparing it", self.node.name),
            ));
        }
        Ok(())
    }

    async fn commit_prepared(&mut self, gid: &str) -> Result<(), CoordError> {
        run(&self.client, &format!("COMMIT PREPARED {}", super::sql::literal(gid))).await?;
        self.state = TxState::Done;
        Ok(())
    }

    /// Ends the participant's transaction without effect: ROLLBACK, or ROLLBACK PREPARED.
    /// Best effort: a failure is logged (a prepared transaction left behind is resolved by
    /// [`crate::dtx::recover`]; an open one ends with its connection).
    async fn abort(&mut self, gid: &str) {
        let sql = match self.state {
            TxState::Open => "ROLLBACK".to_owned(),
            TxState::Prepared => format!("ROLLBACK PREPARED {}", super::sql::literal(gid)),
            TxState::Idle | TxState::Done => return,
        };
        if let Err(e) = run(&self.client, &sql).await {
            tracing::warn!(node = %self.node.name, gid, error = %e, "could not roll back");
        }
        self.state = TxState::Done;
    }
}

/// The participants of one operation and the gid they prepare under.
pub(crate) struct TwoPhase {
    /// `pgshard_<op>_<metadata xid>_<random>`.
    pub gid: String,
    /// One per node at most.
    pub parts: Vec<Participant>,
}

impl TwoPhase {
    /// No participants yet; `op` names the operation in the gid, `xid` is the metadata-store
    /// transaction whose commit decides it.
    pub fn new(op: &str, xid: u64) -> Self {
        Self { gid: format!("pgshard_{op}_{xid}_{:016x}", rand::random::<u64>()), parts: Vec::new() }
    }

    /// The participant on `node`, if one was added.
    pub fn get(&mut self, node: NodeId) -> Option<&mut Participant> {
        self.parts.iter_mut().find(|p| p.node.id == node)
    }

    /// Adds a connected participant and begins its transaction.
    pub async fn add(&mut self, mut part: Participant) -> Result<&mut Participant, CoordError> {
        part.begin().await?;
        self.parts.push(part);
        let last = self.parts.len() - 1;
        Ok(&mut self.parts[last])
    }

    /// Prepares every participant (in parallel); the first failure is returned.
    pub async fn prepare_all(&mut self) -> Result<(), CoordError> {
        let gid = self.gid.clone();
        let results = join_all(self.parts.iter_mut().map(|p| p.prepare(&gid))).await;
        results.into_iter().collect()
    }

    /// Rolls back every participant (in parallel), best effort.
    pub async fn abort_all(&mut self) {
        let gid = self.gid.clone();
        join_all(self.parts.iter_mut().map(|p| p.abort(&gid))).await;
    }

    /// After the commit point: commits every prepared participant (in parallel). A node that
    /// fails is retried once on a new connection; if that fails too the transaction stays
    /// prepared for [`crate::dtx::recover`] and a warning is logged (the operation has
    /// committed, so this is not an error for the caller).
    pub async fn commit_all(&mut self, admin: &Admin<'_>) {
        let gid = self.gid.clone();
        let results = join_all(self.parts.iter_mut().map(|p| p.commit_prepared(&gid))).await;
        for (part, result) in self.parts.iter().zip(results) {
            let Err(first) = result else { continue };
            let retry = async {
                let client = connect(admin, &part.node).await?;
                run(&client, &format!("COMMIT PREPARED {}", super::sql::literal(&gid))).await
            };
            if let Err(e) = retry.await {
                tracing::warn!(node = %part.node.name, gid, first = %first, error = %e,
                    "committed in the catalog but COMMIT PREPARED failed; recovery will commit it");
            }
        }
    }
}

/// The id of the metadata-store transaction behind `ctx` (assigned now if it had none): its
/// commit or abort decides every prepared transaction whose gid carries it.
pub(crate) async fn metadata_xid(ctx: &CatalogTransaction<'_>) -> Result<u64, CoordError> {
    let row = ctx
        .transaction()
        .query_one("SELECT pg_current_xact_id()::text", &[])
        .await
        .map_err(pgshard_catalog::CatalogError::Store)?;
    let text: String = row.try_get(0).map_err(pgshard_catalog::CatalogError::Store)?;
    text.parse().map_err(|_| {
        CoordError::Catalog(pgshard_catalog::CatalogError::Inconsistent(format!("transaction id {text:?}")))
    })
}

/// Steps 3 and 4 of the crash rule: prepares every participant, commits the catalog change
/// (the commit point), commits every participant. A failure before the commit point rolls
/// everything back; a failed catalog commit whose outcome is unknown (lost connection) is
/// settled by the metadata store's verdict on the transaction id in the gid.
pub(crate) async fn prepare_and_commit(
    admin: &Admin<'_>,
    ctx: CatalogTransaction<'_>,
    tp: &mut TwoPhase,
    xid: u64,
) -> Result<(), CoordError> {
    if let Err(e) = tp.prepare_all().await {
        tp.abort_all().await;
        let _ = ctx.rollback().await;
        return Err(e);
    }
    match ctx.commit().await {
        Ok(_) => {
            tp.commit_all(admin).await;
            Ok(())
        }
        Err(e) => {
            match super::recover::xact_committed(admin, xid).await {
                Ok(Some(true)) => {
                    tp.commit_all(admin).await;
                    return Ok(());
                }
                Ok(Some(false)) => tp.abort_all().await,
                Ok(None) | Err(_) => tracing::warn!(gid = %tp.gid, error = %e,
                    "catalog commit outcome unknown; the prepared transactions wait for recovery"),
            }
            Err(e.into())
        }
    }
}

/// Rolls back participants and the catalog change after a failure before the commit point.
pub(crate) async fn abandon(ctx: CatalogTransaction<'_>, tp: &mut TwoPhase) {
    tp.abort_all().await;
    if let Err(e) = ctx.rollback().await {
        tracing::warn!(error = %e, "could not roll back the catalog change");
    }
}
