//! The queries behind [`super::ddl_gen`]: a table's columns, constraints, indexes and owned
//! sequences from `pg_catalog`, run on a connection whose `search_path` is `pg_catalog` only,
//! so that the definitions PostgreSQL prints name user objects schema-qualified.

use tokio_postgres::{Client, Row};

use super::ddl_gen::{Column, Constraint, ForeignKey, Index, Sequence};
use crate::error::CoordError;

/// The columns, dropped ones left out, in attnum order.
pub(crate) async fn columns(client: &Client, oid: u32) -> Result<Vec<Column>, CoordError> {
    let rows = client
        .query(
            "SELECT a.attnum, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                    a.attidentity::text, a.attgenerated::text, pg_get_expr(d.adbin, d.adrelid),
                    CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                         THEN format('%I.%I', cn.nspname, co.collname) END,
                    coalesce(co.collisdeterministic, true)
             FROM pg_attribute a
             JOIN pg_type t ON t.oid = a.atttypid
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
             LEFT JOIN pg_collation co ON co.oid = a.attcollation
             LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
             WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
            &[&oid],
        )
        .await
        .map_err(CoordError::from_pg)?;
    rows.iter()
        .map(|r| {
            Ok(Column {
                attnum: r.try_get(0)?,
                name: r.try_get(1)?,
                type_name: r.try_get(2)?,
                not_null: r.try_get(3)?,
                identity: r.try_get(4)?,
                generated: r.try_get::<_, String>(5)? == "s",
                default: r.try_get(6)?,
                collation: r.try_get(7)?,
                deterministic: r.try_get(8)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(CoordError::from_pg)
}

/// CHECK, PRIMARY KEY, UNIQUE and EXCLUDE constraints, and foreign keys apart.
pub(crate) async fn constraints(client: &Client, oid: u32) -> Result<(Vec<Constraint>, Vec<ForeignKey>), CoordError> {
    let rows = client
        .query(
            "SELECT con.conname::text, con.contype::text, pg_get_constraintdef(con.oid),
                    coalesce(con.conkey, '{}'), coalesce(con.confkey, '{}'), con.confrelid,
                    rn.nspname::text, rc.relname::text,
                    CASE WHEN con.contype = 'f' THEN format('%I.%I', rn.nspname, rc.relname) END,
                    ARRAY(SELECT o.oprname::text FROM unnest(coalesce(con.conexclop, '{}')) WITH ORDINALITY AS x(op, i)
                          JOIN pg_operator o ON o.oid = x.op ORDER BY x.i)
             FROM pg_constraint con
             LEFT JOIN pg_class rc ON rc.oid = con.confrelid
             LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
             WHERE con.conrelid = $1 AND con.contype IN ('c', 'p', 'u', 'x', 'f')
             ORDER BY con.contype = 'c', con.conname",
            &[&oid],
        )
        .await
        .map_err(CoordError::from_pg)?;
    let mut constraints = Vec::new();
    let mut foreign_keys = Vec::new();
    for r in &rows {
        let kind: String = r.try_get(1).map_err(CoordError::from_pg)?;
        let parsed = if kind == "f" {
            foreign_key(r).map(|fk| foreign_keys.push(fk))
        } else {
            constraint(r, kind).map(|con| constraints.push(con))
        };
        parsed.map_err(CoordError::from_pg)?;
    }
    Ok((constraints, foreign_keys))
}

fn foreign_key(r: &Row) -> Result<ForeignKey, tokio_postgres::Error> {
    Ok(ForeignKey {
        name: r.try_get(0)?,
        definition: r.try_get(2)?,
        columns: r.try_get(3)?,
        referenced_columns: r.try_get(4)?,
        referenced_oid: r.try_get(5)?,
        referenced_schema: r.try_get(6)?,
        referenced_name: r.try_get(7)?,
        referenced_sql: r.try_get(8)?,
    })
}

fn constraint(r: &Row, kind: String) -> Result<Constraint, tokio_postgres::Error> {
    Ok(Constraint {
        name: r.try_get(0)?,
        kind,
        definition: r.try_get(2)?,
        columns: r.try_get(3)?,
        operators: r.try_get(9)?,
    })
}

/// Indexes that back no constraint.
pub(crate) async fn indexes(client: &Client, oid: u32) -> Result<Vec<Index>, CoordError> {
    let rows = client
        .query(
            "SELECT ic.relname::text, pg_get_indexdef(i.indexrelid), i.indisunique,
                    (i.indkey::int2[])[0:i.indnkeyatts - 1]
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
             WHERE i.indrelid = $1
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = i.indrelid
                               AND k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))
             ORDER BY ic.relname",
            &[&oid],
        )
        .await
        .map_err(CoordError::from_pg)?;
    rows.iter()
        .map(|r| {
            Ok(Index {
                name: r.try_get(0)?,
                definition: r.try_get(1)?,
                unique: r.try_get(2)?,
                key_columns: r.try_get(3)?,
            })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(CoordError::from_pg)
}

/// Sequences owned by the table's columns.
pub(crate) async fn sequences(client: &Client, oid: u32) -> Result<Vec<Sequence>, CoordError> {
    let rows = client
        .query(
            "WITH used AS (
               SELECT d.objid AS seq, a.attname::text AS col
               FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
               WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
                 AND d.refobjid = $1 AND d.deptype = 'a'
               UNION ALL
               SELECT d.refobjid, NULL
               FROM pg_attrdef ad JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
               WHERE d.refclassid = 'pg_class'::regclass AND ad.adrelid = $1)
             SELECT DISTINCT ON (n.nspname, s.relname) n.nspname::text, s.relname::text, u.col,
                    format('AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s CACHE %s %s',
                           format_type(q.seqtypid, NULL), q.seqincrement, q.seqmin, q.seqmax, q.seqstart,
                           q.seqcache, CASE WHEN q.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END)
             FROM used u
             JOIN pg_class s ON s.oid = u.seq AND s.relkind = 'S'
             JOIN pg_namespace n ON n.oid = s.relnamespace
             JOIN pg_sequence q ON q.seqrelid = s.oid
             ORDER BY n.nspname, s.relname, u.col NULLS LAST",
            &[&oid],
        )
        .await
        .map_err(CoordError::from_pg)?;
    rows.iter()
        .map(|r| {
            Ok(Sequence { schema: r.try_get(0)?, name: r.try_get(1)?, column: r.try_get(2)?, options: r.try_get(3)? })
        })
        .collect::<Result<_, tokio_postgres::Error>>()
        .map_err(CoordError::from_pg)
}
