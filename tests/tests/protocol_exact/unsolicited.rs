//! Messages the server sends without a request: a NotificationResponse from another session to
//! an idle listener, and the FATAL when the data-node backend is terminated.

use std::time::Duration;

use pgshard_tests::raw::{RawClient, tags};

use super::{render, side_by_side, sqlstate};

/// A notification from another session reaches an idle listener without any request.
pub(super) async fn check_async_notification(coord_port: u16, node_port: u16) {
    let mut answers = Vec::new();
    for port in [coord_port, node_port] {
        let mut listener = RawClient::connect(port, "postgres", "postgres").await.unwrap();
        assert_eq!(tags(&listener.query("LISTEN async_chan").await.unwrap()), "CZ");
        let mut notifier = RawClient::connect(node_port, "postgres", "postgres").await.unwrap();
        let pid = notifier.query("select pg_backend_pid()").await.unwrap();
        let pid: i32 = String::from_utf8_lossy(&pid[1].body[6..]).parse().unwrap();
        assert_eq!(tags(&notifier.query("NOTIFY async_chan, 'from elsewhere'").await.unwrap()), "CZ");
        let note = tokio::time::timeout(Duration::from_secs(5), listener.read()).await.unwrap().unwrap();
        assert_eq!(note.tag, b'A', "{}", render(&note));
        assert_eq!(&note.body[..4], &pid.to_be_bytes(), "the notifier's pid");
        answers.push(note);
    }
    // The notifiers differ, so their pids do (each was checked above); the rest is the same.
    assert_eq!(answers[0].body[4..], answers[1].body[4..], "{} vs {}", render(&answers[0]), render(&answers[1]));
}

/// When the data-node backend is terminated, the client sees what PostgreSQL sends (one FATAL
/// 57P01) and then the end of the connection, nothing else.
pub(super) async fn check_node_fatal(coord_port: u16, node_port: u16) {
    let mut answers = Vec::new();
    for port in [coord_port, node_port] {
        let mut victim = RawClient::connect(port, "postgres", "postgres").await.unwrap();
        let pid = victim.query("select pg_backend_pid()").await.unwrap();
        let pid = String::from_utf8_lossy(&pid[1].body[6..]).into_owned();
        let mut admin = RawClient::connect(node_port, "postgres", "postgres").await.unwrap();
        let killed = admin.query(&format!("select pg_terminate_backend({pid}, 5000)")).await.unwrap();
        assert_eq!(render(&killed[1]), "D:\\x00\\x01\\x00\\x00\\x00\\x01t");
        let mut rest = Vec::new();
        while let Ok(m) = victim.read().await {
            rest.push(m);
        }
        answers.push(rest);
    }
    let (coord, direct) = (&answers[0], &answers[1]);
    assert_eq!(tags(direct), "E");
    assert_eq!(sqlstate(&direct[0].body), "57P01");
    assert!(coord == direct, "after the node's FATAL:\n{}", side_by_side(coord, direct));
}
