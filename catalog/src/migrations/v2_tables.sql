-- Version 2: colocation groups, shards, distributed/reference/local tables, the catalog version
-- and the views users read.

CREATE TABLE pgshard.catalog_version (
    one_row boolean PRIMARY KEY DEFAULT true CHECK (one_row),
    version bigint NOT NULL
);
INSERT INTO pgshard.catalog_version (version) VALUES (1);

CREATE TABLE pgshard.colocation_groups (
    group_id    serial PRIMARY KEY,
    shard_count integer NOT NULL CHECK (shard_count > 0),
    dist_type   text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX colocation_groups_by_shape ON pgshard.colocation_groups (shard_count, dist_type, group_id);

-- Hash bounds are u64 stored order-preserving as bigint (u64 - 2^63); the views show them as
-- unsigned numbers.
CREATE TABLE pgshard.shards (
    group_id    integer NOT NULL REFERENCES pgshard.colocation_groups,
    shard_index integer NOT NULL CHECK (shard_index >= 0),
    hash_min    bigint NOT NULL,
    hash_max    bigint NOT NULL CHECK (hash_min <= hash_max),
    node_id     integer NOT NULL REFERENCES pgshard.nodes,
    PRIMARY KEY (group_id, shard_index)
);
CREATE INDEX shards_by_node ON pgshard.shards (node_id);

CREATE TABLE pgshard.tables (
    schema_name text NOT NULL,
    table_name  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('distributed', 'reference', 'local')),
    dist_column text,
    group_id    integer REFERENCES pgshard.colocation_groups,
    node_id     integer REFERENCES pgshard.nodes,
    PRIMARY KEY (schema_name, table_name),
    CONSTRAINT tables_kind_columns CHECK (CASE kind
        WHEN 'distributed' THEN dist_column IS NOT NULL AND group_id IS NOT NULL AND node_id IS NULL
        WHEN 'reference' THEN dist_column IS NULL AND group_id IS NULL AND node_id IS NULL
        ELSE dist_column IS NULL AND group_id IS NULL AND node_id IS NOT NULL
    END)
);
CREATE INDEX tables_by_group ON pgshard.tables (group_id) WHERE group_id IS NOT NULL;
CREATE INDEX tables_by_node ON pgshard.tables (node_id) WHERE node_id IS NOT NULL;

-- Where each shard of each colocation group lives.
CREATE VIEW pgshard.shard_placements AS
SELECT s.group_id,
       s.shard_index,
       'pgshard_g' || s.group_id || '_s' || s.shard_index AS schema_name,
       n.node_id,
       n.name AS node_name,
       n.host AS node_host,
       n.port AS node_port,
       s.hash_min::numeric + 9223372036854775808 AS hash_min,
       s.hash_max::numeric + 9223372036854775808 AS hash_max
FROM pgshard.shards s
JOIN pgshard.nodes n ON n.node_id = s.node_id;

-- Where each table's rows live: one row per shard of a distributed table, per node of a
-- reference table, and one row for an undistributed table.
CREATE VIEW pgshard.table_placements AS
SELECT t.schema_name, t.table_name, t.kind, p.shard_index,
       p.schema_name AS placement_schema, p.node_name, p.node_host, p.node_port, p.hash_min, p.hash_max
FROM pgshard.tables t
JOIN pgshard.shard_placements p ON p.group_id = t.group_id
WHERE t.kind = 'distributed'
UNION ALL
SELECT t.schema_name, t.table_name, t.kind, NULL, t.schema_name, n.name, n.host, n.port, NULL, NULL
FROM pgshard.tables t
JOIN pgshard.nodes n ON t.kind = 'reference' OR n.node_id = t.node_id;
