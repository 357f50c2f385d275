//! The few protocol messages the session looks into or makes itself, as raw frames: reading
//! the fields of Parse, Bind, Describe, Execute and Close that routing needs, and building the
//! frames the session sends to data nodes (Query, Parse, Bind, Sync, Flush) or answers the
//! client with (ParseComplete, CommandComplete, ReadyForQuery, ...).

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{CoordError, Severity};

/// Reads NUL-terminated strings and integers out of a message body.
pub struct Fields<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    /// The fields of a whole message (type byte and length included).
    pub fn of(msg: &'a [u8]) -> Self {
        Self { body: msg, at: 5 }
    }

    fn bad() -> CoordError {
        CoordError::Protocol("invalid message format".into())
    }

    /// A NUL-terminated string (lossily decoded).
    pub fn cstr(&mut self) -> Result<&'a str, CoordError> {
        let rest = self.body.get(self.at..).ok_or_else(Self::bad)?;
        let end = rest.iter().position(|&b| b == 0).ok_or_else(Self::bad)?;
        self.at += end + 1;
        std::str::from_utf8(&rest[..end]).map_err(|_| CoordError::Protocol("invalid UTF-8 in message".into()))
    }

    /// One byte.
    pub fn byte(&mut self) -> Result<u8, CoordError> {
        let b = *self.body.get(self.at).ok_or_else(Self::bad)?;
        self.at += 1;
        Ok(b)
    }

    /// A big-endian i16.
    pub fn i16(&mut self) -> Result<i16, CoordError> {
        let s = self.body.get(self.at..self.at + 2).ok_or_else(Self::bad)?;
        self.at += 2;
        Ok(i16::from_be_bytes([s[0], s[1]]))
    }

    /// A big-endian i32.
    pub fn i32(&mut self) -> Result<i32, CoordError> {
        let s = self.body.get(self.at..self.at + 4).ok_or_else(Self::bad)?;
        self.at += 4;
        Ok(i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], CoordError> {
        let s = self.body.get(self.at..self.at + n).ok_or_else(Self::bad)?;
        self.at += n;
        Ok(s)
    }

    /// Everything not read yet.
    pub fn rest(&self) -> &'a [u8] {
        self.body.get(self.at..).unwrap_or_default()
    }
}

/// The fields of a Parse message.
pub struct ParseMsg<'a> {
    /// Statement name (empty: the unnamed statement).
    pub name: &'a str,
    /// The SQL text.
    pub sql: &'a str,
    /// Parameter type OIDs as sent (0 = unspecified).
    pub param_types: Vec<u32>,
}

impl<'a> ParseMsg<'a> {
    /// Reads a Parse message.
    pub fn read(msg: &'a [u8]) -> Result<Self, CoordError> {
        let mut f = Fields::of(msg);
        let name = f.cstr()?;
        let sql = f.cstr()?;
        let n = f.i16()?.max(0) as usize;
        let mut param_types = Vec::with_capacity(n);
        for _ in 0..n {
            param_types.push(f.i32()? as u32);
        }
        Ok(Self { name, sql, param_types })
    }
}

/// The fields of a Bind message that routing needs.
pub struct BindMsg<'a> {
    /// Portal name.
    pub portal: &'a str,
    /// Statement name.
    pub statement: &'a str,
    /// Parameter format codes as sent (none: all text; one: all that one).
    pub formats: Vec<i16>,
    /// Parameter values (`None` is NULL).
    pub values: Vec<Option<&'a [u8]>>,
    /// The rest of the message after the statement name, to rebuild it for another statement.
    pub after_names: &'a [u8],
    /// Result column format codes (none: all text; one: for all columns).
    pub result_formats: Vec<i16>,
}

impl<'a> BindMsg<'a> {
    /// Reads a Bind message.
    pub fn read(msg: &'a [u8]) -> Result<Self, CoordError> {
        let mut f = Fields::of(msg);
        let portal = f.cstr()?;
        let statement = f.cstr()?;
        let after_names = f.rest();
        let nf = f.i16()?.max(0) as usize;
        let mut formats = Vec::with_capacity(nf);
        for _ in 0..nf {
            formats.push(f.i16()?);
        }
        let nv = f.i16()?.max(0) as usize;
        let mut values = Vec::with_capacity(nv);
        for _ in 0..nv {
            let len = f.i32()?;
            values.push(if len < 0 { None } else { Some(f.bytes(len as usize)?) });
        }
        let nr = f.i16()?.max(0) as usize;
        let mut result_formats = Vec::with_capacity(nr);
        for _ in 0..nr {
            result_formats.push(f.i16()?);
        }
        Ok(Self { portal, statement, formats, values, after_names, result_formats })
    }

    /// Whether parameter `i` (0-based) is sent in binary.
    pub fn is_binary(&self, i: usize) -> bool {
        match self.formats.as_slice() {
            [] => false,
            [one] => *one == 1,
            many => many.get(i) == Some(&1),
        }
    }
}

/// Reads the kind byte (`S` or `P`) and name of a Describe or Close message.
pub fn target_of(msg: &[u8]) -> Result<(u8, &str), CoordError> {
    let mut f = Fields::of(msg);
    let kind = f.byte()?;
    Ok((kind, f.cstr()?))
}

/// Reads the portal name of an Execute message.
pub fn execute_portal(msg: &[u8]) -> Result<&str, CoordError> {
    Fields::of(msg).cstr()
}

/// The SQL text of a Query message.
pub fn query_text(msg: &[u8]) -> Result<&str, CoordError> {
    Fields::of(msg).cstr()
}

fn frame(tag: u8, out: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    out.put_u8(tag);
    let at = out.len();
    out.put_i32(0);
    body(out);
    let len = (out.len() - at) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

fn put_cstr(out: &mut BytesMut, s: &str) {
    out.put_slice(s.as_bytes());
    out.put_u8(0);
}

/// Appends a Query message.
pub fn query(sql: &str, out: &mut BytesMut) {
    frame(b'Q', out, |o| put_cstr(o, sql));
}

/// Appends a Parse message.
pub fn parse(name: &str, sql: &str, param_types: &[u32], out: &mut BytesMut) {
    frame(b'P', out, |o| {
        put_cstr(o, name);
        put_cstr(o, sql);
        o.put_i16(param_types.len() as i16);
        for t in param_types {
            o.put_u32(*t);
        }
    });
}

/// Appends a Bind message for `statement` with the parameters and result formats of a
/// client's Bind (`after_names`, see [`BindMsg`]).
pub fn bind_with(portal: &str, statement: &str, after_names: &[u8], out: &mut BytesMut) {
    frame(b'B', out, |o| {
        put_cstr(o, portal);
        put_cstr(o, statement);
        o.put_slice(after_names);
    });
}

/// Appends a Bind without parameters, results in text.
pub fn bind_plain(portal: &str, statement: &str, out: &mut BytesMut) {
    bind_with(portal, statement, &[0, 0, 0, 0, 0, 0], out);
}

/// Appends a Bind without parameters whose results come in `formats` (a Bind's result format
/// codes: none for all text, one for all columns, or one per column).
pub fn bind_results(portal: &str, statement: &str, formats: &[i16], out: &mut BytesMut) {
    let mut after = BytesMut::with_capacity(6 + 2 * formats.len());
    after.put_i16(0);
    after.put_i16(0);
    after.put_i16(i16::try_from(formats.len()).unwrap_or(i16::MAX));
    for f in formats {
        after.put_i16(*f);
    }
    bind_with(portal, statement, &after, out);
}

/// The part of a Bind after its names with `extra` text parameters added after the client's
/// (the format codes spelled out per parameter when the client gave one for all).
pub fn bind_tail_with(b: &BindMsg<'_>, extra: &[String]) -> Bytes {
    let n = b.values.len();
    let mut out = BytesMut::with_capacity(b.after_names.len() + 16 * extra.len() + 64);
    let count = |k: usize| i16::try_from(k).unwrap_or(i16::MAX);
    match b.formats.as_slice() {
        [] | [0] => {
            out.put_i16(count(b.formats.len()));
            out.extend(b.formats.iter().flat_map(|f| f.to_be_bytes()));
        }
        [one] => {
            out.put_i16(count(n + extra.len()));
            (0..n).for_each(|_| out.put_i16(*one));
            extra.iter().for_each(|_| out.put_i16(0));
        }
        many => {
            out.put_i16(count(many.len() + extra.len()));
            many.iter().for_each(|f| out.put_i16(*f));
            extra.iter().for_each(|_| out.put_i16(0));
        }
    }
    out.put_i16(count(n + extra.len()));
    for v in &b.values {
        match v {
            Some(v) => {
                out.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
                out.extend_from_slice(v);
            }
            None => out.put_i32(-1),
        }
    }
    for e in extra {
        out.put_i32(i32::try_from(e.len()).unwrap_or(i32::MAX));
        out.extend_from_slice(e.as_bytes());
    }
    out.put_i16(count(b.result_formats.len()));
    b.result_formats.iter().for_each(|f| out.put_i16(*f));
    out.freeze()
}

/// Appends an Execute message fetching every row.
pub fn execute(portal: &str, out: &mut BytesMut) {
    frame(b'E', out, |o| {
        put_cstr(o, portal);
        o.put_i32(0);
    });
}

/// Appends a Sync message.
pub fn sync(out: &mut BytesMut) {
    frame(b'S', out, |_| {});
}

/// Appends a Flush message.
pub fn flush(out: &mut BytesMut) {
    frame(b'H', out, |_| {});
}

/// Appends a backend message without a body (ParseComplete `1`, BindComplete `2`,
/// CloseComplete `3`, NoData `n`, EmptyQueryResponse `I`).
pub fn empty(tag: u8, out: &mut BytesMut) {
    frame(tag, out, |_| {});
}

/// Appends CommandComplete with this tag.
pub fn command_complete(tag: &str, out: &mut BytesMut) {
    frame(b'C', out, |o| put_cstr(o, tag));
}

/// Appends ReadyForQuery with this status byte.
pub fn ready(status: u8, out: &mut BytesMut) {
    frame(b'Z', out, |o| o.put_u8(status));
}

/// Appends a RowDescription of text-format columns that belong to no table.
pub fn row_description(columns: &[(&str, u32)], out: &mut BytesMut) {
    frame(b'T', out, |o| {
        o.put_i16(columns.len() as i16);
        for (name, ty) in columns {
            put_cstr(o, name);
            o.put_u32(0);
            o.put_i16(0);
            o.put_u32(*ty);
            // typlen as pg_type has it: int8 8, text and other varlena -1, void 4.
            o.put_i16(match *ty {
                20 => 8,
                2278 => 4,
                _ => -1,
            });
            o.put_i32(-1);
            o.put_i16(0);
        }
    });
}

/// Appends a DataRow (`None` is NULL).
pub fn data_row(values: &[Option<&[u8]>], out: &mut BytesMut) {
    frame(b'D', out, |o| {
        o.put_i16(values.len() as i16);
        for v in values {
            match v {
                Some(v) => {
                    o.put_i32(v.len() as i32);
                    o.put_slice(v);
                }
                None => o.put_i32(-1),
            }
        }
    });
}

/// Appends a Describe of a prepared statement.
pub fn describe_statement(name: &str, out: &mut BytesMut) {
    frame(b'D', out, |o| {
        o.put_u8(b'S');
        put_cstr(o, name);
    });
}

/// Appends a Close of a prepared statement.
pub fn close_statement(name: &str, out: &mut BytesMut) {
    frame(b'C', out, |o| {
        o.put_u8(b'S');
        put_cstr(o, name);
    });
}

/// The column names of a RowDescription.
pub fn row_description_names(msg: &[u8]) -> Result<Vec<String>, CoordError> {
    let mut f = Fields::of(msg);
    let n = f.i16()?.max(0) as usize;
    let mut names = Vec::with_capacity(n);
    for _ in 0..n {
        names.push(f.cstr()?.to_owned());
        f.bytes(18)?;
    }
    Ok(names)
}

/// The type OIDs of a ParameterDescription.
pub fn parameter_types(msg: &[u8]) -> Result<Vec<u32>, CoordError> {
    let mut f = Fields::of(msg);
    let n = f.i16()?.max(0) as usize;
    (0..n).map(|_| f.i32().map(|t| t as u32)).collect()
}

/// Appends a CopyData message.
pub fn copy_data(data: &[u8], out: &mut BytesMut) {
    frame(b'd', out, |o| o.put_slice(data));
}

/// Appends CopyDone.
pub fn copy_done(out: &mut BytesMut) {
    frame(b'c', out, |_| {});
}

/// Appends CopyFail with a reason.
pub fn copy_fail(reason: &str, out: &mut BytesMut) {
    frame(b'f', out, |o| put_cstr(o, reason));
}

/// The text columns of a DataRow (`None` is NULL).
pub fn data_row_texts(msg: &[u8]) -> Result<Vec<Option<String>>, CoordError> {
    let mut f = Fields::of(msg);
    let n = f.i16()?.max(0) as usize;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = f.i32()?;
        out.push(if len < 0 { None } else { Some(String::from_utf8_lossy(f.bytes(len as usize)?).into_owned()) });
    }
    Ok(out)
}

/// Appends a ParameterDescription with these type OIDs.
pub fn parameter_description(types: &[u32], out: &mut BytesMut) {
    frame(b't', out, |o| {
        o.put_i16(types.len() as i16);
        for t in types {
            o.put_u32(*t);
        }
    });
}

/// Appends a NoticeResponse (severity WARNING) as PostgreSQL words it.
pub fn warning(code: &str, message: &str, out: &mut BytesMut) {
    frame(b'N', out, |o| {
        for (f, v) in [(b'S', "WARNING"), (b'V', "WARNING"), (b'C', code), (b'M', message)] {
            o.put_u8(f);
            put_cstr(o, v);
        }
        o.put_u8(0);
    });
}

/// A field of an ErrorResponse or NoticeResponse (`b'M'` message, `b'C'` SQLSTATE, ...).
pub fn error_field(msg: &[u8], field: u8) -> Option<String> {
    let mut body = msg.get(5..)?;
    while let Some((&f, rest)) = body.split_first() {
        if f == 0 {
            break;
        }
        let end = rest.iter().position(|&b| b == 0)?;
        if f == field {
            return Some(String::from_utf8_lossy(&rest[..end]).into_owned());
        }
        body = &rest[end + 1..];
    }
    None
}

/// The message of an ErrorResponse.
pub fn error_message(msg: &[u8]) -> String {
    error_field(msg, b'M').unwrap_or_default()
}

/// Appends an ErrorResponse for a coordinator error.
pub fn error(err: &CoordError, out: &mut BytesMut) {
    err.encode(Severity::Error, out);
}

/// The command tag of a CommandComplete message.
pub fn command_tag(msg: &[u8]) -> &str {
    Fields::of(msg).cstr().unwrap_or_default()
}

/// A frozen copy of what `build` appends.
pub fn build(build: impl FnOnce(&mut BytesMut)) -> Bytes {
    let mut out = BytesMut::new();
    build(&mut out);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_round_trips_through_a_new_statement_name() {
        let mut out = BytesMut::new();
        // portal "p", statement "s", formats [1], values [b"\0\0\0\x07", NULL], results [0]
        frame(b'B', &mut out, |o| {
            put_cstr(o, "p");
            put_cstr(o, "s");
            o.put_i16(1);
            o.put_i16(1);
            o.put_i16(2);
            o.put_i32(4);
            o.put_slice(&[0, 0, 0, 7]);
            o.put_i32(-1);
            o.put_i16(1);
            o.put_i16(0);
        });
        let b = BindMsg::read(&out).unwrap();
        assert_eq!((b.portal, b.statement), ("p", "s"));
        assert!(b.is_binary(0) && b.is_binary(1));
        assert_eq!(b.values, vec![Some(&[0u8, 0, 0, 7][..]), None]);
        let mut again = BytesMut::new();
        bind_with("p", "other", b.after_names, &mut again);
        let c = BindMsg::read(&again).unwrap();
        assert_eq!(c.statement, "other");
        assert_eq!(c.values, b.values);
    }

    #[test]
    fn truncated_messages_are_protocol_errors() {
        let mut out = BytesMut::new();
        frame(b'P', &mut out, |o| put_cstr(o, "name-without-query"));
        assert!(ParseMsg::read(&out).is_err());
    }
}
