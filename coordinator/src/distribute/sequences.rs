//! Cluster-wide unique values from serial, bigserial, identity and `DEFAULT nextval(...)`
//! columns of distributed tables. A row's default is evaluated on the node that stores it, by
//! that node's sequence (serial: one per node, shared by its shards; identity: one per shard
//! table), so without care two nodes would hand out the same numbers. When a table is
//! distributed, each such sequence is given a range of its own: the sequence first used by the
//! shard with index `i` (0-based) takes `(i + 1) * 2^bits + 1 ..= (i + 2) * 2^bits` (bits 48
//! for bigint, 24 for integer, 8 for smallint), so values are unique across the cluster (not
//! increasing across shards). The default node's own sequence keeps `1 ..= 2^bits`. Identity
//! columns must be bigint (each shard table has its own identity sequence, and PostgreSQL does
//! not check an identity value against a narrower column type).
//!
//! The block runs on a node after a table is distributed and after DDL on distributed tables
//! (a column added as serial brings new sequences); it covers every shard table on the node and
//! leaves sequences that already have their range alone. Rows a DDL statement itself filled
//! (`ADD COLUMN ... serial` on a table with rows) were numbered before the block ran.

/// The DO block that gives the sequences behind the defaults and identity columns of every
/// shard table on a node their ranges. Fails with 0A000 for an identity column that is not
/// bigint, or when a shard's range does not fit the sequence's type.
pub const RANGES_SQL: &str = "DO $pgshard$
DECLARE
  t record; s record; span numeric; lo numeric; hi numeric; top numeric;
BEGIN
  FOR t IN SELECT c.oid AS rel, substring(n.nspname FROM '_s([0-9]+)$')::numeric + 1 AS slot
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname ~ '^pgshard_g[0-9]+_s[0-9]+$' AND c.relkind IN ('r', 'p') LOOP
    FOR s IN SELECT a.attname FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = t.rel AND a.attidentity <> '' AND a.atttypid <> 'int8'::regtype LOOP
      RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
        MESSAGE = format('the identity column \"%s\" of a distributed table must be bigint: its values come from one sequence per shard', s.attname),
        HINT = 'ALTER TABLE ... ALTER COLUMN ... TYPE bigint, or use bigserial.';
    END LOOP;
    FOR s IN
      SELECT c.oid::regclass AS seq, q.seqtypid, q.seqmin FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_sequence q ON q.seqrelid = c.oid
      WHERE c.oid IN (
        SELECT d.refobjid FROM pg_catalog.pg_attrdef a JOIN pg_catalog.pg_depend d
          ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = a.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass
        WHERE a.adrelid = t.rel
        UNION
        SELECT d.objid FROM pg_catalog.pg_depend d
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refobjid = t.rel AND d.deptype = 'i')
    LOOP
      span := round(2::numeric ^ (CASE s.seqtypid WHEN 'int8'::regtype THEN 48 WHEN 'int4'::regtype THEN 24 ELSE 8 END));
      top := CASE s.seqtypid WHEN 'int8'::regtype THEN 9223372036854775807 WHEN 'int4'::regtype THEN 2147483647 ELSE 32767 END;
      CONTINUE WHEN s.seqmin > span AND (s.seqmin - 1) % span = 0;
      lo := t.slot * span + 1;
      hi := least((t.slot + 1) * span, top);
      IF lo > top THEN
        RAISE EXCEPTION USING ERRCODE = 'feature_not_supported',
          MESSAGE = format('the sequence %s cannot give each shard a range of its own: too many shards for its type', s.seq),
          HINT = 'Use bigint (bigserial) for generated keys of distributed tables.';
      END IF;
      EXECUTE format('ALTER SEQUENCE %s MINVALUE %s MAXVALUE %s START WITH %s RESTART WITH %s', s.seq, lo, hi, lo, lo);
    END LOOP;
  END LOOP;
END $pgshard$";
