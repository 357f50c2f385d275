//! `Wire`, the builder of the raw frontend messages a scenario step sends in one write.

use bytes::{BufMut, BytesMut};
use postgres_protocol::IsNull;
use postgres_protocol::message::frontend;

/// Frontend messages to send in one write, built with postgres-protocol.
#[derive(Default)]
pub(super) struct Wire(pub(super) BytesMut);

impl Wire {
    pub(super) fn query(mut self, sql: &str) -> Self {
        frontend::query(sql, &mut self.0).unwrap();
        self
    }

    pub(super) fn parse(mut self, name: &str, sql: &str, types: &[u32]) -> Self {
        frontend::parse(name, sql, types.iter().copied(), &mut self.0).unwrap();
        self
    }

    /// Bind with raw parameter values (`None` is NULL) already in the given formats.
    pub(super) fn bind(
        mut self,
        portal: &str,
        stmt: &str,
        formats: &[i16],
        values: &[Option<&[u8]>],
        results: &[i16],
    ) -> Self {
        let put = |v: Option<&[u8]>, buf: &mut BytesMut| match v {
            Some(b) => {
                buf.put_slice(b);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        };
        let bound = frontend::bind(
            portal,
            stmt,
            formats.iter().copied(),
            values.iter().copied(),
            put,
            results.iter().copied(),
            &mut self.0,
        );
        assert!(bound.is_ok(), "cannot encode Bind");
        self
    }

    pub(super) fn describe(mut self, kind: u8, name: &str) -> Self {
        frontend::describe(kind, name, &mut self.0).unwrap();
        self
    }

    pub(super) fn execute(mut self, portal: &str, max_rows: i32) -> Self {
        frontend::execute(portal, max_rows, &mut self.0).unwrap();
        self
    }

    pub(super) fn close(mut self, kind: u8, name: &str) -> Self {
        frontend::close(kind, name, &mut self.0).unwrap();
        self
    }

    pub(super) fn sync(mut self) -> Self {
        frontend::sync(&mut self.0);
        self
    }

    pub(super) fn flush(mut self) -> Self {
        frontend::flush(&mut self.0);
        self
    }

    /// FunctionCall with text arguments and a text result.
    pub(super) fn function_call(mut self, oid: u32, args: &[&str]) -> Self {
        let mut body = BytesMut::new();
        body.put_u32(oid);
        body.put_i16(0);
        body.put_i16(i16::try_from(args.len()).unwrap());
        for a in args {
            body.put_i32(i32::try_from(a.len()).unwrap());
            body.put_slice(a.as_bytes());
        }
        body.put_i16(0);
        self.0.put_u8(b'F');
        self.0.put_i32(i32::try_from(body.len() + 4).unwrap());
        self.0.put_slice(&body);
        self
    }

    pub(super) fn copy_data(mut self, data: &[u8]) -> Self {
        frontend::CopyData::new(data).unwrap().write(&mut self.0);
        self
    }

    pub(super) fn copy_done(mut self) -> Self {
        frontend::copy_done(&mut self.0);
        self
    }

    pub(super) fn copy_fail(mut self, why: &str) -> Self {
        frontend::copy_fail(why, &mut self.0).unwrap();
        self
    }
}
