//! Moving rows with COPY in text format: reading one field of a COPY line (to hash the
//! distribution value), routing lines to per-shard buffers of bounded size, and piping a COPY
//! stream into COPY sinks without looking at it.

use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use pgshard_catalog::Shard;
use pgshard_catalog::hash::{DistType, DistValue};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, CopyInSink};

use crate::error::CoordError;

/// A shard's buffer is written out when it reaches this size.
pub(crate) const SHARD_CHUNK: usize = 1 << 20;
/// Every buffer is written out when together they reach this size (many shards).
const TOTAL_BUFFERED: usize = 64 << 20;

/// The `index`-th tab-separated field of a COPY text line (no trailing newline), unescaped;
/// `None` for NULL (`\N`).
pub(crate) fn field(line: &[u8], index: usize) -> Option<Option<Vec<u8>>> {
    let raw = line.split(|&b| b == b'\t').nth(index)?;
    if raw == b"\\N" {
        return Some(None);
    }
    Some(Some(unescape(raw)))
}

/// Undoes COPY text escaping: `\b \f \n \r \t \v`, octal `\NNN`, hex `\xHH`, and `\c` for any
/// other `c`.
fn unescape(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        i += 1;
        if b != b'\\' || i == raw.len() {
            out.push(b);
            continue;
        }
        let c = raw[i];
        i += 1;
        match c {
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                for _ in 0..2 {
                    match raw.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'x' if raw.get(i).is_some_and(u8::is_ascii_hexdigit) => {
                let mut v = 0u32;
                for _ in 0..2 {
                    match raw.get(i).and_then(|d| char::from(*d).to_digit(16)) {
                        Some(d) => {
                            v = v * 16 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push((v & 0xff) as u8);
            }
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(0x0b),
            other => out.push(other),
        }
    }
    out
}

/// Hashes the distribution value in field `position` of a COPY line; `None` for NULL.
pub(crate) fn line_hash(line: &[u8], position: usize, ty: DistType) -> Result<Option<u64>, CoordError> {
    let bad_line = || CoordError::sql(SqlState::INTERNAL_ERROR, "COPY line has too few fields");
    let Some(value) = field(line, position).ok_or_else(bad_line)? else { return Ok(None) };
    let text = String::from_utf8(value)
        .map_err(|_| CoordError::sql(SqlState::CHARACTER_NOT_IN_REPERTOIRE, "distribution value is not UTF-8"))?;
    let value = DistValue::from_text(ty, &text).map_err(|e| CoordError::sql(e.code(), e.to_string()))?;
    Ok(Some(value.hash()))
}

/// The shard whose range holds `hash` (shards sorted by index, covering the hash space).
pub(crate) fn shard_for(shards: &[Shard], hash: u64) -> Option<usize> {
    let i = shards.partition_point(|s| s.hash_max < hash);
    shards.get(i).filter(|s| s.contains(hash)).map(|_| i)
}

/// Splits a COPY stream into lines and keeps each in its shard's buffer.
pub(crate) struct ShardRouter<'a> {
    shards: &'a [Shard],
    ty: DistType,
    position: usize,
    buffers: Vec<BytesMut>,
    buffered: usize,
    carry: BytesMut,
    /// Rows routed so far.
    pub rows: u64,
}

impl<'a> ShardRouter<'a> {
    /// Routes by the value in field `position`, of type `ty`, over `shards`.
    pub fn new(shards: &'a [Shard], ty: DistType, position: usize) -> Self {
        Self {
            shards,
            ty,
            position,
            buffers: vec![BytesMut::new(); shards.len()],
            buffered: 0,
            carry: BytesMut::new(),
            rows: 0,
        }
    }

    /// Routes every complete line of `chunk` (a partial last line waits for the next chunk).
    pub fn route(&mut self, chunk: &[u8]) -> Result<(), CoordError> {
        self.carry.extend_from_slice(chunk);
        while let Some(end) = self.carry.iter().position(|&b| b == b'\n') {
            let line = self.carry.split_to(end + 1);
            let hash = line_hash(&line[..end], self.position, self.ty)?.ok_or_else(|| {
                CoordError::sql(
                    SqlState::NOT_NULL_VIOLATION,
                    "cannot perform an INSERT with NULL in the partition column",
                )
            })?;
            let shard = shard_for(self.shards, hash)
                .ok_or_else(|| CoordError::sql(SqlState::INTERNAL_ERROR, format!("no shard holds hash {hash}")))?;
            self.buffers[shard].extend_from_slice(&line);
            self.buffered += line.len();
            self.rows += 1;
        }
        Ok(())
    }

    /// Shards whose buffer should be written out now.
    pub fn ready(&self) -> Vec<usize> {
        let all = self.buffered >= TOTAL_BUFFERED;
        (0..self.buffers.len())
            .filter(|&i| !self.buffers[i].is_empty() && (all || self.buffers[i].len() >= SHARD_CHUNK))
            .collect()
    }

    /// Takes shard `i`'s buffer.
    pub fn take(&mut self, i: usize) -> Bytes {
        let chunk = std::mem::take(&mut self.buffers[i]).freeze();
        self.buffered -= chunk.len();
        chunk
    }

    /// At the end of the stream: every shard with rows left; an unterminated line is an error.
    pub fn finish(&self) -> Result<Vec<usize>, CoordError> {
        if !self.carry.is_empty() {
            return Err(CoordError::sql(SqlState::INTERNAL_ERROR, "COPY stream ended inside a line"));
        }
        Ok((0..self.buffers.len()).filter(|&i| !self.buffers[i].is_empty()).collect())
    }
}

/// Writes `data` (whole COPY text lines) with one `COPY ... FROM STDIN` (`copy_sql`).
pub(crate) async fn write_chunk(client: &Client, copy_sql: &str, data: Bytes) -> Result<(), CoordError> {
    let mut sink = open_sink(client, copy_sql).await?;
    feed(&mut sink, data).await?;
    finish(sink).await.map(|_| ())
}

/// A COPY sink, pinned so that it can be kept in a list.
pub(crate) type Sink = Pin<Box<CopyInSink<Bytes>>>;

/// Starts `COPY ... FROM STDIN` on `client`.
pub(crate) async fn open_sink(client: &Client, copy_sql: &str) -> Result<Sink, CoordError> {
    Ok(Box::pin(client.copy_in(copy_sql).await.map_err(CoordError::from_pg)?))
}

/// Queues `data` on a sink; a failure is reported with the node's error when it sent one.
pub(crate) async fn feed(sink: &mut Sink, data: Bytes) -> Result<(), CoordError> {
    if let Err(e) = sink.as_mut().feed(data).await {
        // The node refused the data: its ErrorResponse arrives when the copy is finished.
        let reason = sink.as_mut().finish().await.err().unwrap_or(e);
        return Err(CoordError::from_pg(reason));
    }
    Ok(())
}

/// Ends a COPY, returning the rows the node stored.
pub(crate) async fn finish(mut sink: Sink) -> Result<u64, CoordError> {
    sink.as_mut().finish().await.map_err(CoordError::from_pg)
}

/// Streams `COPY ... TO STDOUT` (`copy_out_sql`) on `from` into every sink, as it comes;
/// returns the number of rows.
pub(crate) async fn pipe(from: &Client, copy_out_sql: &str, sinks: &mut [Sink]) -> Result<u64, CoordError> {
    let stream = from.copy_out(copy_out_sql).await.map_err(CoordError::from_pg)?;
    let mut stream = std::pin::pin!(stream);
    let mut rows = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(CoordError::from_pg)?;
        rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        for sink in sinks.iter_mut() {
            feed(sink, chunk.clone()).await?;
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use pgshard_catalog::ColocationId;

    use super::*;

    #[test]
    fn fields_are_found_and_unescaped() {
        let line = b"1\tab\\tc\\\\d\t\\N\t\\x41\\101\\n";
        assert_eq!(field(line, 0), Some(Some(b"1".to_vec())));
        assert_eq!(field(line, 1), Some(Some(b"ab\tc\\d".to_vec())));
        assert_eq!(field(line, 2), Some(None));
        assert_eq!(field(line, 3), Some(Some(b"AA\n".to_vec())));
        assert_eq!(field(line, 4), None);
        // A bytea value as COPY writes it: the text form \x0102 with its backslash doubled.
        assert_eq!(field(b"\\\\x0102", 0), Some(Some(b"\\x0102".to_vec())));
    }

    #[test]
    fn lines_go_to_the_shard_of_their_hash() {
        let shards = Shard::layout(ColocationId(1), 4, &[pgshard_catalog::NodeId(1)]).unwrap();
        let mut router = ShardRouter::new(&shards, DistType::Int4, 1);
        router.route(b"a\t1\nb\t2\nc\t").unwrap();
        assert_eq!(router.rows, 2);
        router.route(b"3\n").unwrap();
        assert_eq!(router.rows, 3);
        let pending = router.finish().unwrap();
        for i in pending {
            let chunk = router.take(i);
            for line in chunk.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let hash = line_hash(line, 1, DistType::Int4).unwrap().unwrap();
                assert!(shards[i].contains(hash));
            }
        }
        let err = router.route(b"d\t\\N\n").unwrap_err();
        assert_eq!(err.sqlstate().code(), "23502");
    }
}
