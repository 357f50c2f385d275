-- Version 1: data nodes. Stores created before schema versioning have exactly this, so it must
-- stay idempotent (it runs again on them, once, before they are stamped version 1).
CREATE SCHEMA IF NOT EXISTS pgshard;
CREATE TABLE IF NOT EXISTS pgshard.nodes (
    node_id    serial PRIMARY KEY,
    name       text NOT NULL UNIQUE,
    host       text NOT NULL,
    port       integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
    is_default boolean NOT NULL DEFAULT false,
    added_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS nodes_one_default ON pgshard.nodes (is_default) WHERE is_default;
