//! Framing of PostgreSQL protocol messages after startup: a type byte and a big-endian length
//! that counts itself. Messages are passed through whole and undecoded; only the few the
//! coordinator must act on are looked into. Encoding of the coordinator's own messages is
//! pgwire's job (see [`encode`]).

use bytes::{Bytes, BytesMut};
use pgwire::messages::PgWireBackendMessage;

use crate::error::CoordError;

/// PostgreSQL refuses messages above 1 GB; so do we.
pub const MAX_MESSAGE_LEN: usize = 1 << 30;

/// Length of the complete messages at the front of `buf`, stopping at the first incomplete one;
/// `tags` receives each complete message's type byte and start offset.
#[cfg_attr(not(test), allow(dead_code, reason = "kept with its tests for framing checks"))]
pub fn complete_prefix(buf: &[u8], tags: &mut Vec<(u8, usize)>) -> Result<usize, CoordError> {
    let mut at = 0;
    tags.clear();
    while buf.len() >= at + 5 {
        let len = u32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]) as usize;
        if !(4..=MAX_MESSAGE_LEN).contains(&len) {
            return Err(CoordError::Protocol(format!("invalid message length {len}")));
        }
        if buf.len() < at + 1 + len {
            break;
        }
        tags.push((buf[at], at));
        at += 1 + len;
    }
    Ok(at)
}

/// Splits one complete message off the front of `buf`, if there is one.
pub fn take_message(buf: &mut BytesMut) -> Result<Option<(u8, Bytes)>, CoordError> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if !(4..=MAX_MESSAGE_LEN).contains(&len) {
        return Err(CoordError::Protocol(format!("invalid message length {len}")));
    }
    if buf.len() < 1 + len {
        buf.reserve(1 + len - buf.len());
        return Ok(None);
    }
    let msg = buf.split_to(1 + len).freeze();
    Ok(Some((msg[0], msg)))
}

/// Appends a message the coordinator itself sends.
pub fn encode(msg: PgWireBackendMessage, out: &mut BytesMut) {
    if let Err(e) = msg.encode(out) {
        tracing::error!(error = %e, "could not encode a backend message");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn prefix_stops_at_incomplete_message() {
        let mut buf = msg(b'Q', b"select 1\0");
        buf.extend(msg(b'S', b""));
        let whole = buf.len();
        buf.extend(&msg(b'X', b"")[..3]);
        let mut tags = Vec::new();
        assert_eq!(complete_prefix(&buf, &mut tags).unwrap(), whole);
        assert_eq!(tags, vec![(b'Q', 0), (b'S', 14)]);
    }

    #[test]
    fn bad_length_is_a_protocol_violation() {
        let buf = [b'Q', 0, 0, 0, 2];
        let err = complete_prefix(&buf, &mut Vec::new()).unwrap_err();
        assert_eq!(err.sqlstate().code(), "08P01");
    }

    #[test]
    fn take_message_splits_one() {
        let mut buf = BytesMut::from(&msg(b'Z', b"I")[..]);
        buf.extend_from_slice(&msg(b'Z', b"T")[..2]);
        let (tag, m) = take_message(&mut buf).unwrap().unwrap();
        assert_eq!((tag, m.len()), (b'Z', 6));
        assert!(take_message(&mut buf).unwrap().is_none());
    }
}
