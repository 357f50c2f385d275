//! Integration-test harness for pgshard.

pub mod slt;
