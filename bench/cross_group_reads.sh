#!/bin/bash
# Times two reads across colocation groups through pgshard and on plain PostgreSQL (a database
# on the cluster's default node): a 500,000-row table joined with a 10-row table of another
# group (broadcast), and two 500,000-row tables of different groups (copies). Prints each
# EXPLAIN, three timings per side and whether the rows are the same.
#
#     cargo build --release -p pgshard-coordinator && bench/cross_group_reads.sh
set -u
cd "$(dirname "$0")/.."
DIR=$(mktemp -d /tmp/pgshard-cross-XXXXXX)
chmod 755 "$DIR"
LOG=$DIR/up.log
./target/release/pgshard up --dir $DIR/data --port 7432 > $LOG 2>&1 &
UP=$!
for i in $(seq 1 60); do psql -h 127.0.0.1 -p 7432 -U postgres -Atc "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
P="psql -X -h 127.0.0.1 -p 7432 -U postgres -v ON_ERROR_STOP=1"
DN0=$(grep -o 'dn0[^0-9]*[0-9]\{4,5\}' $LOG | head -1 | grep -o '[0-9]\{4,5\}$')
echo "dn0 port: $DN0"
SETUP="CREATE TABLE events (id int PRIMARY KEY, tenant int, kind int, amount numeric(10,2));
CREATE TABLE sales (id int PRIMARY KEY, kind int, qty int);
CREATE TABLE kinds (id int PRIMARY KEY, name text);"
LOAD="INSERT INTO events SELECT g, g % 50, g % 12, (g % 1000) / 10.0 FROM generate_series(1, 500000) g;
INSERT INTO sales SELECT g, g % 12, g % 7 FROM generate_series(1, 500000) g;
INSERT INTO kinds SELECT g, 'k' || g FROM generate_series(0, 9) g;
ANALYZE;"
$P -c "CREATE TABLE events (id int PRIMARY KEY, tenant int, kind int, amount numeric(10,2))" -c "CREATE TABLE sales (id int PRIMARY KEY, kind int, qty int)" -c "CREATE TABLE kinds (id int PRIMARY KEY, name text)" -c "SELECT create_distributed_table('events', 'id', shard_count => 8)" -c "SELECT create_distributed_table('sales', 'id', shard_count => 4)" -c "SELECT create_distributed_table('kinds', 'id', shard_count => 2)" >/dev/null
L1="INSERT INTO events SELECT g, g % 50, g % 12, (g % 1000) / 10.0 FROM generate_series(1, 500000) g"
L2="INSERT INTO sales SELECT g, g % 12, g % 7 FROM generate_series(1, 500000) g"
L3="INSERT INTO kinds SELECT g, 'k' || g FROM generate_series(0, 9) g"
time $P -c "$L1" -c "$L2" -c "$L3" -c "ANALYZE events" -c "ANALYZE sales" -c "ANALYZE kinds" >/dev/null
Q="psql -X -h 127.0.0.1 -p $DN0 -U postgres"
$Q -c "CREATE DATABASE plain" >/dev/null
Q="$Q -d plain"
$Q -c "$SETUP" -c "$L1" -c "$L2" -c "$L3" -c "ANALYZE" >/dev/null
Q1="SELECT k.name, count(*), sum(e.amount) FROM events e JOIN kinds k ON k.id = e.kind GROUP BY k.name ORDER BY 1"
Q2="SELECT s.kind, count(*) FROM events e JOIN sales s ON s.id = e.id WHERE s.qty > 5 GROUP BY s.kind ORDER BY 1"
$P -c "EXPLAIN $Q1"
$P -c "EXPLAIN $Q2"
for q in "$Q1" "$Q2"; do
  for side in pgshard plain; do
    if [ $side = pgshard ]; then C="$P"; else C="$Q"; fi
    for r in 1 2 3; do
      $C -c '\timing on' -c "$q" | grep -o 'Time: [0-9.]* ms' | sed "s/^/$side: /"
    done
  done
  echo "---"
done
# Same answers?
diff <($P -Atc "$Q1") <($Q -Atc "$Q1") && echo "Q1 same rows"
diff <($P -Atc "$Q2") <($Q -Atc "$Q2") && echo "Q2 same rows"
kill -INT $UP; wait $UP
rm -rf "$DIR"
