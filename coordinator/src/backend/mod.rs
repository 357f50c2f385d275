//! Connections from the coordinator to data nodes: establishing them (startup and
//! authentication, done by hand on raw frames so that nothing the node says is lost), and
//! pooling them per node and per set of startup parameters.

mod conn;
mod pool;
mod stream;

pub use conn::{StartupFailure, cancel};
pub use pool::{NodeAddr, Pooled, Pools};
pub use stream::address;
