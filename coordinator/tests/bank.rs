//! The bank test: clients move money between accounts on different shards (and log each
//! transfer in a table distributed on another key) while the coordinator process is killed
//! with SIGKILL again and again and restarted. Afterwards the total is exact, no balance is
//! negative, every transfer the client saw commit is there, every transfer that is there was
//! applied whole, and a few seconds after the last restart no prepared transaction of ours is
//! left on any data node.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "in a test a failed unwrap is a failed assertion")]

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pgshard::pg::free_port;
use pgshard::up::{LocalServers, UpOptions, ensure_metadata_db};
use tokio_postgres::{Client, NoTls};

const BIN: &str = env!("CARGO_BIN_EXE_pgshard");
const ACCOUNTS: i32 = 30;
const START: i64 = 1_000;
const WORKERS: u64 = 6;
const KILLS: usize = 4;

/// A coordinator process; killed on drop.
struct Coordinator {
    child: Option<Child>,
    config: std::path::PathBuf,
    port: u16,
}

/// A coordinator config file for `servers`, named `name`, listening on `port`.
fn write_config(dir: &std::path::Path, servers: &LocalServers, name: &str, port: u16, extra: &str) -> std::path::PathBuf {
    let mut toml = format!(
        "name = \"{name}\"\nlisten = \"127.0.0.1:{port}\"\n{extra}\n[metadata]\ndsn = \"host=127.0.0.1 port={} user=postgres dbname=pgshard\"\n",
        servers.meta.port()
    );
    for n in &servers.nodes {
        toml.push_str(&format!("[[data_nodes]]\nname = \"{}\"\nhost = \"127.0.0.1\"\nport = {}\n", n.name(), n.port()));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    path
}

fn servers_in(dir: &tempfile::TempDir) -> LocalServers {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    LocalServers::start(&UpOptions { data_nodes: 2, port: 0, dir: dir.path().join("cluster"), fast: true, coordinators: 1 })
        .unwrap()
}

impl Coordinator {
    fn spawn(config: &std::path::Path, port: u16) -> Self {
        let mut c = Self { child: None, config: config.to_owned(), port };
        c.start();
        c
    }

    fn start(&mut self) {
        let child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("PGSHARD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the coordinator did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn connect(dsn: &str) -> Option<Client> {
    let (client, conn) = tokio::time::timeout(Duration::from_secs(3), tokio_postgres::connect(dsn, NoTls)).await.ok()?.ok()?;
    tokio::spawn(conn);
    Some(client)
}

/// One transfer: both balances and the log row, in one transaction. `Ok(true)` when COMMIT
/// returned success.
async fn transfer(client: &mut Client, tid: i64, from: i32, to: i32, amount: i64) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // Accounts are locked in id order, so transfers never wait on each other in a cycle.
    let (first, second) = if from < to { ((from, -amount), (to, amount)) } else { ((to, amount), (from, -amount)) };
    for (id, delta) in [first, second] {
        tx.execute("UPDATE accounts SET balance = balance + $2 WHERE id = $1", &[&id, &delta]).await?;
    }
    tx.execute("INSERT INTO transfers (tid, src, dst, amount) VALUES ($1, $2, $3, $4)", &[&tid, &from, &to, &amount])
        .await?;
    tx.commit().await
}

async fn worker(dsn: String, id: u64, stop: Arc<AtomicBool>) -> (Vec<i64>, u64) {
    let mut acked = Vec::new();
    let mut failed = 0;
    let mut client: Option<Client> = None;
    let mut seq = 0i64;
    let mut rng = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = client.as_mut() else {
            client = connect(&dsn).await;
            if client.is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            continue;
        };
        seq += 1;
        let tid = id as i64 * 1_000_000 + seq;
        let from = next(ACCOUNTS as u64) as i32 + 1;
        let to = (from as u64 + next(ACCOUNTS as u64 - 1)) as i32 % ACCOUNTS + 1;
        let amount = next(200) as i64 + 1;
        match tokio::time::timeout(Duration::from_secs(20), transfer(c, tid, from, to, amount)).await {
            Ok(Ok(())) => acked.push(tid),
            Ok(Err(e)) => {
                failed += 1;
                if c.is_closed() || e.code().is_none() {
                    client = None;
                }
            }
            Err(_) => {
                failed += 1;
                client = None;
            }
        }
    }
    (acked, failed)
}

#[test]
fn transfers_stay_exact_while_the_coordinator_is_killed() {
    let dir = tempfile::Builder::new().prefix("pgshard-bank-").tempdir().unwrap();
    let servers = servers_in(&dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(ensure_metadata_db(servers.meta.port())).unwrap();
    let port = free_port().unwrap();
    let config = write_config(dir.path(), &servers, "bank", port, "[transactions]\nrecovery_interval_ms = 500");
    let mut coordinator = Coordinator::spawn(&config, port);
    let dsn = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");

    runtime.block_on(async {
        let c = connect(&dsn).await.unwrap();
        c.batch_execute(&format!(
            "CREATE TABLE accounts (id int PRIMARY KEY, balance int8 NOT NULL CHECK (balance >= 0));
             INSERT INTO accounts SELECT g, {START} FROM generate_series(1, {ACCOUNTS}) g;"
        ))
        .await
        .unwrap();
        c.batch_execute("SELECT create_distributed_table('accounts', 'id', shard_count => 8)").await.unwrap();
        c.batch_execute("CREATE TABLE transfers (tid int8 PRIMARY KEY, src int NOT NULL, dst int NOT NULL, amount int8 NOT NULL)")
            .await
            .unwrap();
        c.batch_execute("SELECT create_distributed_table('transfers', 'tid', shard_count => 4)").await.unwrap();
    });

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (1..=WORKERS).map(|id| runtime.spawn(worker(dsn.clone(), id, stop.clone()))).collect();
    for k in 0..KILLS {
        std::thread::sleep(Duration::from_millis(1_200 + 300 * k as u64));
        coordinator.kill();
        coordinator.start();
    }
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let mut acked = Vec::new();
    let mut failed = 0;
    for w in workers {
        let (a, f) = runtime.block_on(w).unwrap();
        acked.extend(a);
        failed += f;
    }
    eprintln!("bank: {} transfers acknowledged, {failed} failed, {KILLS} coordinator kills", acked.len());
    assert!(acked.len() > 50, "the workload ran: only {} transfers acknowledged", acked.len());
    assert!(failed > 0, "the kills interrupted transfers");

    runtime.block_on(async {
        // Nothing of ours stays prepared once recovery has run after the last restart.
        let deadline = Instant::now() + Duration::from_secs(15);
        for node in &servers.nodes {
            let direct = connect(&format!("host=127.0.0.1 port={} user=postgres dbname=postgres", node.port())).await.unwrap();
            loop {
                let left: i64 = direct
                    .query_one("SELECT count(*) FROM pg_prepared_xacts WHERE gid LIKE 'pgshard\\_%'", &[])
                    .await
                    .unwrap()
                    .get(0);
                if left == 0 {
                    break;
                }
                assert!(Instant::now() < deadline, "{}: {left} prepared transactions left in doubt", node.name());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let c = connect(&dsn).await.unwrap();
        let rows = |sql: &'static str| {
            let c = &c;
            async move {
                let mut out = Vec::new();
                for m in c.simple_query(sql).await.unwrap() {
                    if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                        out.push((0..r.len()).map(|i| r.get(i).unwrap().parse::<i64>().unwrap()).collect::<Vec<_>>());
                    }
                }
                out
            }
        };
        let balances: HashMap<i64, i64> = rows("SELECT id, balance FROM accounts").await.into_iter().map(|r| (r[0], r[1])).collect();
        assert_eq!(balances.len(), ACCOUNTS as usize);
        let total: i64 = balances.values().sum();
        assert_eq!(total, ACCOUNTS as i64 * START, "money was created or lost");
        assert!(balances.values().all(|b| *b >= 0), "a balance went negative: {balances:?}");
        let transfers = rows("SELECT tid, src, dst, amount FROM transfers").await;
        let present: HashSet<i64> = transfers.iter().map(|t| t[0]).collect();
        let missing: Vec<&i64> = acked.iter().filter(|t| !present.contains(t)).collect();
        assert!(missing.is_empty(), "{} acknowledged transfers are missing: {missing:?}", missing.len());
        let mut expected: HashMap<i64, i64> = (1..=ACCOUNTS as i64).map(|id| (id, START)).collect();
        for t in &transfers {
            *expected.get_mut(&t[1]).unwrap() -= t[3];
            *expected.get_mut(&t[2]).unwrap() += t[3];
        }
        assert_eq!(balances, expected, "a transfer was applied in part");
    });
    drop(coordinator);
    servers.stop();
}

/// A follower process takes the lease by itself once the killed primary's lease expires, and
/// then runs DDL; the restarted old primary is a follower.
#[test]
fn a_follower_takes_over_when_the_primary_is_killed() {
    let dir = tempfile::Builder::new().prefix("pgshard-takeover-").tempdir().unwrap();
    let servers = servers_in(&dir);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(ensure_metadata_db(servers.meta.port())).unwrap();
    let lease = "[primary]\nlease_ms = 2000\nrenew_ms = 200";
    let p_port = free_port().unwrap();
    let f_port = std::iter::repeat_with(|| free_port().unwrap()).find(|p| *p != p_port).unwrap();
    let mut primary = Coordinator::spawn(&write_config(dir.path(), &servers, "c0", p_port, lease), p_port);
    let follower = Coordinator::spawn(&write_config(dir.path(), &servers, "c1", f_port, lease), f_port);
    let dsn = |port: u16| format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    runtime.block_on(async {
        let f = connect(&dsn(f_port)).await.unwrap();
        let e = f.batch_execute("CREATE TABLE t (a int)").await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("25006"), "{e:?}");
        primary.kill();
        let killed = Instant::now();
        loop {
            match f.batch_execute("CREATE TABLE t (a int)").await {
                Ok(()) => break,
                Err(e) => assert_eq!(e.code().map(|c| c.code()), Some("25006"), "{e:?}"),
            }
            assert!(killed.elapsed() < Duration::from_secs(10), "the follower never took the lease");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(killed.elapsed() >= Duration::from_millis(1_500), "the lease was taken before it expired");
        primary.start();
        let p = connect(&dsn(p_port)).await.unwrap();
        let e = p.batch_execute("CREATE TABLE u (a int)").await.unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("25006"), "the restarted c0 is a follower: {e:?}");
    });
    drop(follower);
    drop(primary);
    servers.stop();
}
