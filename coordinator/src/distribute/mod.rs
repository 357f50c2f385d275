//! Placing tables on the data nodes: `create_distributed_table`, `create_reference_table`,
//! `undistribute_table`, the DDL fan-out other statements use ([`apply_everywhere`]), a
//! placement check ([`verify_placement`]) and the catalog mirror users read
//! ([`refresh_mirror`]).
//!
//! Storage layout: every data node holds, under the user's schema and name, an empty *shell* of
//! each distributed table (on the default node the shell is the table the user created); shard
//! `i` of colocation group `g` is schema `pgshard_g{g}_s{i}` on its node, holding every table of
//! the group under its own name. A reference table is a full copy under its own name on every
//! node; an undistributed table lives on the default node only.
//!
//! # Crash rule, shared by every operation here
//!
//! An operation that moves rows runs in four phases (see `README.md` beside this file):
//!
//! 1. **Create-before** (committed at once, one transaction per node): shard schemas, empty
//!    shard tables, empty shells and copies, the guard function. The catalog does not name
//!    them yet, so nobody reads them; after a crash they are orphans a retry reuses.
//! 2. **Prepare**: one transaction per node takes the locks, truncates the tables it fills
//!    (holding their ACCESS EXCLUSIVE lock until the end, so a reader that already sees the new
//!    catalog waits instead of reading a half-filled table), copies rows, drops what the move
//!    retires, and ends with `PREPARE TRANSACTION 'pgshard_<op>_<xid>_<random>'`, where `<xid>`
//!    is the id of the metadata-store transaction that carries the catalog change.
//! 3. **Commit point**: the catalog change commits in the metadata store.
//! 4. `COMMIT PREPARED` on every node.
//!
//! A prepared transaction left behind by a crash is decided by its gid alone:
//! `pg_xact_status(<xid>)` on the metadata store says `committed` (commit it) or `aborted`
//! (roll it back); recovery ([`crate::dtx::recover`]) does exactly that.

mod admin;
mod checks;
pub(crate) mod copy;
mod ddl_gen;
mod ddl_read;
mod distributed;
mod everywhere;
mod mirror;
mod placement;
mod recover;
mod reference;
mod sequences;
mod sql;
mod undistribute;
mod verify;

pub use admin::{Admin, connect};
pub use ddl_gen::{Column, ForeignKey, TableDdl, table_ddl};
pub use distributed::{DEFAULT_SHARD_COUNT, create_distributed_table};
pub use everywhere::{ConcurrentIndex, apply_each_without_transaction, apply_everywhere, apply_everywhere_dropping};
pub use mirror::refresh_mirror;
pub use recover::{gid_xid, xact_committed};
pub use sequences::RANGES_SQL as SEQUENCE_RANGES_SQL;
pub use reference::create_reference_table;
pub use undistribute::undistribute_table;
pub use verify::verify_placement;

/// Name of the statement-level trigger that guards a distributed table's shell.
pub const GUARD_TRIGGER: &str = "pgshard_shell_guard";
