//! Connect to a running pgshard (started with `pgshard up`) and run a few statements.
//!
//! `cargo run -p pgshard-examples --example connect -- "host=127.0.0.1 port=6432 user=postgres"`

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dsn = std::env::args().nth(1).unwrap_or_else(|| "host=127.0.0.1 port=6432 user=postgres".into());
    let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS example_kv (k text PRIMARY KEY, v int NOT NULL)")
        .await?;
    client
        .execute("INSERT INTO example_kv VALUES ($1, $2) ON CONFLICT (k) DO UPDATE SET v = example_kv.v + 1", &[&"hits", &1i32])
        .await?;
    let row = client.query_one("SELECT v FROM example_kv WHERE k = $1", &[&"hits"]).await?;
    let hits: i32 = row.get(0);
    println!("hits = {hits}");
    Ok(())
}
