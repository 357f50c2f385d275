//! The socket to a data node: TCP, or a Unix-domain socket when the node's host is a directory
//! (libpq's convention: host `/run/pg` and port 5432 mean the socket `/run/pg/.s.PGSQL.5432`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// A connected socket to a data node.
#[derive(Debug)]
pub enum NodeStream {
    /// `host:port`.
    Tcp(TcpStream),
    /// A socket file on this machine.
    Unix(UnixStream),
}

/// The address the pool connects to: `host:port`, or the socket's path when `host` is a
/// directory (starts with `/`).
pub fn address(host: &str, port: u16) -> String {
    if is_socket_dir(host) { format!("{}/.s.PGSQL.{port}", host.trim_end_matches('/')) } else { format!("{host}:{port}") }
}

fn is_socket_dir(host: &str) -> bool {
    host.starts_with('/')
}

impl NodeStream {
    /// Connects to an address made by [`address`]; TCP sockets send without delay.
    pub async fn connect(addr: &str) -> io::Result<NodeStream> {
        if is_socket_dir(addr) {
            return Ok(NodeStream::Unix(UnixStream::connect(addr).await?));
        }
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(NodeStream::Tcp(stream))
    }

    /// Reads what is there without waiting (`WouldBlock` when nothing is).
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            NodeStream::Tcp(s) => s.try_read(buf),
            NodeStream::Unix(s) => s.try_read(buf),
        }
    }
}

impl AsyncRead for NodeStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NodeStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            NodeStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for NodeStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            NodeStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            NodeStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NodeStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            NodeStream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            NodeStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            NodeStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_directories_become_socket_paths() {
        assert_eq!(address("10.0.0.1", 5433), "10.0.0.1:5433");
        assert_eq!(address("/tmp/c/dn1", 5433), "/tmp/c/dn1/.s.PGSQL.5433");
        assert_eq!(address("/tmp/c/dn1/", 5433), "/tmp/c/dn1/.s.PGSQL.5433");
    }
}
