//! The client side of a session: whole messages in (undecoded, with their type byte), bytes
//! out, written when the session flushes so that a burst of answers costs one write.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::CoordError;
use crate::wire::take_message;

/// Read buffers grow in steps of this much.
pub const READ_CHUNK: usize = 16 * 1024;
/// Pending output is written once it grows past this, even before a flush point.
const WRITE_HIGH_WATER: usize = 64 * 1024;

/// The client connection.
pub struct ClientIo {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read but not yet taken as messages.
    pub inbuf: BytesMut,
    out: BytesMut,
}

impl ClientIo {
    /// Wraps a socket and the bytes already read from it.
    pub fn new(stream: TcpStream, inbuf: BytesMut) -> Self {
        Self { stream, inbuf, out: BytesMut::with_capacity(READ_CHUNK) }
    }

    /// The next complete message already read, if any.
    pub fn next_buffered(&mut self) -> Result<Option<(u8, Bytes)>, CoordError> {
        take_message(&mut self.inbuf)
    }

    /// Reads more bytes; `Ok(false)` at end of stream. Cancel-safe.
    pub async fn fill(&mut self) -> Result<bool, CoordError> {
        if self.inbuf.capacity() - self.inbuf.len() < READ_CHUNK / 2 {
            self.inbuf.reserve(READ_CHUNK);
        }
        Ok(self.stream.read_buf(&mut self.inbuf).await? > 0)
    }

    /// The output buffer, to append messages to.
    pub fn out(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// Queues bytes, writing out if much is pending.
    pub async fn push(&mut self, bytes: &[u8]) -> Result<(), CoordError> {
        self.out.extend_from_slice(bytes);
        if self.out.len() >= WRITE_HIGH_WATER {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes out if much is pending.
    pub async fn maybe_flush(&mut self) -> Result<(), CoordError> {
        if self.out.len() >= WRITE_HIGH_WATER {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), CoordError> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        Ok(())
    }
}
