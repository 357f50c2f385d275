-- Version 3: distributed-transaction decision records and the primary coordinator's lease.

-- A row is the commit point of a two-phase transaction: present means commit, absent means
-- abort. Rows whose work is finished are deleted by the coordinator that wrote them.
CREATE TABLE pgshard.decisions (
    gid         text PRIMARY KEY,
    coordinator text NOT NULL,
    decided_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX decisions_by_coordinator ON pgshard.decisions (coordinator);

-- The primary coordinator holds this lease; only it runs DDL and catalog functions.
CREATE TABLE pgshard.lease (
    one_row    boolean PRIMARY KEY DEFAULT true CHECK (one_row),
    holder     text NOT NULL,
    address    text NOT NULL,
    expires_at timestamptz NOT NULL
);
