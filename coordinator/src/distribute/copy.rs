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

fn missing_data() -> CoordError {
    CoordError::sql(SqlState::BAD_COPY_FILE_FORMAT, "missing data for the distribution column")
}

/// Hashes the distribution value in field `position` of a COPY text line with a custom
/// delimiter and NULL marker; `None` for NULL.
fn text_hash(line: &[u8], position: usize, ty: DistType, delimiter: u8, null: &[u8]) -> Result<Option<u64>, CoordError> {
    let raw = line.split(|&b| b == delimiter).nth(position).ok_or_else(missing_data)?;
    if raw == null {
        return Ok(None);
    }
    hash_value(Some(unescape(raw)), ty)
}

/// The `index`-th field of a CSV record: `None` when missing, `Some(None)` for NULL (an
/// unquoted `null` marker), else the unquoted bytes.
fn csv_field(record: &[u8], index: usize, delimiter: u8, quote: u8, escape: u8, null: &[u8]) -> Option<Option<Vec<u8>>> {
    let mut field = 0;
    let mut i = 0;
    loop {
        let mut value = Vec::new();
        let (mut quoted, mut was_quoted) = (false, false);
        while i < record.len() {
            let b = record[i];
            if quoted && b == escape && record.get(i + 1) == Some(&quote) {
                value.push(quote);
                i += 2;
                continue;
            }
            if b == quote {
                quoted = !quoted;
                was_quoted = true;
            } else if b == delimiter && !quoted {
                break;
            } else {
                value.push(b);
            }
            i += 1;
        }
        if field == index {
            return Some((was_quoted || value != null).then_some(value));
        }
        if i >= record.len() {
            return None;
        }
        i += 1;
        field += 1;
    }
}

#[cfg(test)]
mod csv_tests {
    use super::*;

    #[test]
    fn csv_fields_with_quotes_delimiters_and_nulls() {
        let rec = br#"1,"a,b","say ""hi""",,"""#;
        let f = |i| csv_field(rec, i, b',', b'"', b'"', b"");
        assert_eq!(f(0), Some(Some(b"1".to_vec())));
        assert_eq!(f(1), Some(Some(b"a,b".to_vec())));
        assert_eq!(f(2), Some(Some(br#"say "hi""#.to_vec())));
        assert_eq!(f(3), Some(None), "an unquoted empty field is NULL");
        assert_eq!(f(4), Some(Some(Vec::new())), "a quoted empty field is an empty string");
        assert_eq!(f(5), None);
        assert_eq!(csv_field(br#""x\"y";2"#, 0, b';', b'"', b'\\', b""), Some(Some(br#"x"y"#.to_vec())));
    }
}

fn hash_value(value: Option<Vec<u8>>, ty: DistType) -> Result<Option<u64>, CoordError> {
    let Some(value) = value else { return Ok(None) };
    let text = String::from_utf8(value)
        .map_err(|_| CoordError::sql(SqlState::CHARACTER_NOT_IN_REPERTOIRE, "distribution value is not UTF-8"))?;
    let value = DistValue::from_text(ty, &text).map_err(|e| CoordError::sql(e.code(), e.to_string()))?;
    Ok(Some(value.hash()))
}

/// Hashes the distribution value in field `position` of a COPY line; `None` for NULL.
pub(crate) fn line_hash(line: &[u8], position: usize, ty: DistType) -> Result<Option<u64>, CoordError> {
    let bad_line = || CoordError::sql(SqlState::BAD_COPY_FILE_FORMAT, "COPY line has too few fields");
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

/// How the lines of a COPY stream are written.
#[derive(Debug, Clone)]
pub(crate) enum LineFormat {
    /// Text: `delimiter`-separated, backslash escapes, `null` marks NULL.
    Text { delimiter: u8, null: Vec<u8> },
    /// CSV: quoted fields may hold delimiters and newlines; an unquoted `null` is NULL; a
    /// header line is dropped.
    Csv { delimiter: u8, quote: u8, escape: u8, null: Vec<u8>, header: bool },
}

impl Default for LineFormat {
    fn default() -> Self {
        LineFormat::Text { delimiter: b'\t', null: b"\\N".to_vec() }
    }
}

/// Splits a COPY stream into lines and keeps each in its shard's buffer.
pub(crate) struct ShardRouter<'a> {
    shards: &'a [Shard],
    ty: DistType,
    /// The distribution field; `None`: every line goes to buffer 0 (a reference table).
    position: Option<usize>,
    format: LineFormat,
    /// CSV: where the scan for the current record's end stopped, and whether inside quotes.
    scanned: usize,
    quoted: bool,
    buffers: Vec<BytesMut>,
    buffered: usize,
    carry: BytesMut,
    /// Rows routed so far.
    pub rows: u64,
    header_done: bool,
}

impl<'a> ShardRouter<'a> {
    /// Routes by the value in field `position`, of type `ty`, over `shards`.
    pub fn new(shards: &'a [Shard], ty: DistType, position: usize) -> Self {
        Self::with(shards, ty, Some(position), shards.len())
    }

    /// Splits lines without routing them: every complete line goes to buffer 0 (a reference
    /// table, whose every copy takes every line).
    pub fn unrouted() -> Self {
        Self::with(&[], DistType::Text, None, 1)
    }

    fn with(shards: &'a [Shard], ty: DistType, position: Option<usize>, buffers: usize) -> Self {
        Self {
            shards,
            ty,
            position,
            buffers: vec![BytesMut::new(); buffers],
            buffered: 0,
            carry: BytesMut::new(),
            rows: 0,
            format: LineFormat::default(),
            scanned: 0,
            quoted: false,
            header_done: false,
        }
    }

    /// Reads lines in `format` instead of the default text format.
    pub fn with_format(mut self, format: LineFormat) -> Self {
        self.format = format;
        self
    }

    /// The length of the next complete record in `carry` (its newline included).
    fn next_record(&mut self) -> Option<usize> {
        match self.format {
            LineFormat::Text { .. } => self.carry.iter().position(|&b| b == b'\n').map(|end| end + 1),
            LineFormat::Csv { quote, escape, .. } => {
                let mut i = self.scanned;
                while i < self.carry.len() {
                    let b = self.carry[i];
                    if self.quoted {
                        if b == escape && escape != quote && self.carry.get(i + 1) == Some(&quote) {
                            i += 2;
                            continue;
                        }
                        if b == quote {
                            self.quoted = false;
                        }
                    } else if b == quote {
                        self.quoted = true;
                    } else if b == b'\n' {
                        self.scanned = 0;
                        return Some(i + 1);
                    }
                    i += 1;
                }
                self.scanned = i;
                None
            }
        }
    }

    /// The hash of the distribution value of one record (without its newline).
    fn record_hash(&self, record: &[u8], position: usize) -> Result<Option<u64>, CoordError> {
        match &self.format {
            LineFormat::Text { delimiter, null } => text_hash(record, position, self.ty, *delimiter, null),
            LineFormat::Csv { delimiter, quote, escape, null, .. } => {
                let record = record.strip_suffix(b"\r").unwrap_or(record);
                let value = csv_field(record, position, *delimiter, *quote, *escape, null).ok_or_else(missing_data)?;
                hash_value(value, self.ty)
            }
        }
    }

    /// Routes every complete line of `chunk` (a partial last line waits for the next chunk).
    pub fn route(&mut self, chunk: &[u8]) -> Result<(), CoordError> {
        self.carry.extend_from_slice(chunk);
        while let Some(len) = self.next_record() {
            let line = self.carry.split_to(len);
            let end = len - 1;
            if let LineFormat::Csv { header: true, .. } = self.format
                && self.rows == 0
                && !self.header_done
            {
                self.header_done = true;
                continue;
            }
            if matches!(self.format, LineFormat::Text { .. }) && &line[..end] == b"\\." {
                // The end-of-data marker of the old protocol: nothing after it counts.
                self.carry.clear();
                break;
            }
            let Some(position) = self.position else {
                self.buffers[0].extend_from_slice(&line);
                self.buffered += line.len();
                self.rows += 1;
                continue;
            };
            let hash = self.record_hash(&line[..end], position)?.ok_or_else(|| {
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
