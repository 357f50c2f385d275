//! One raw protocol connection to a data node.
//!
//! Startup and authentication (trust, cleartext, md5, SCRAM-SHA-256) are driven here with
//! postgres-protocol's message builders; after ReadyForQuery the connection is a byte pipe that
//! the session forwards messages through undecoded.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::{backend, frontend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::stream::NodeStream;
use crate::error::CoordError;
use crate::wire::take_message;

/// An established connection to a data node, idle and ready for a query.
#[derive(Debug)]
pub struct DnConn {
    /// The socket.
    pub stream: NodeStream,
    /// Bytes read from the node but not yet consumed.
    pub read_buf: BytesMut,
    /// ParameterStatus messages the node sent at startup, raw, in order.
    pub startup_params: Vec<Bytes>,
    /// The node's server_version, for logging.
    pub server_version: String,
    /// BackendKeyData: the node backend's pid and secret, to cancel its queries.
    pub backend_pid: i32,
    /// Secret key paired with `backend_pid`.
    pub backend_secret: i32,
}

/// Why a data-node connection could not be made.
#[derive(Debug)]
pub enum StartupFailure {
    /// The node answered with an ErrorResponse (bad database, role, password...): forward it.
    Refused(Bytes),
    /// The node could not be reached or broke the protocol.
    Failed(CoordError),
}

impl From<CoordError> for StartupFailure {
    fn from(e: CoordError) -> Self {
        StartupFailure::Failed(e)
    }
}

impl DnConn {
    /// Connects to `addr` and logs in with the given startup parameters (which include `user`
    /// and `database`). The whole exchange is bounded by `timeout`.
    pub async fn connect(
        node: &str,
        addr: &str,
        params: &[(String, String)],
        password: Option<&str>,
        timeout: Duration,
    ) -> Result<DnConn, StartupFailure> {
        let unavailable = |reason: String| {
            StartupFailure::Failed(CoordError::NodeUnavailable { node: node.into(), addr: addr.into(), reason })
        };
        match tokio::time::timeout(timeout, Self::connect_inner(addr, params, password)).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(StartupFailure::Failed(CoordError::Io(e)))) => Err(unavailable(e.to_string())),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(unavailable(format!("no answer within {} ms", timeout.as_millis()))),
        }
    }

    async fn connect_inner(
        addr: &str,
        params: &[(String, String)],
        password: Option<&str>,
    ) -> Result<DnConn, StartupFailure> {
        let stream = NodeStream::connect(addr).await.map_err(CoordError::Io)?;
        let mut conn = DnConn {
            stream,
            read_buf: BytesMut::with_capacity(8192),
            startup_params: Vec::new(),
            server_version: String::new(),
            backend_pid: 0,
            backend_secret: 0,
        };
        let mut out = BytesMut::new();
        frontend::startup_message(params.iter().map(|(k, v)| (k.as_str(), v.as_str())), &mut out)
            .map_err(CoordError::Io)?;
        conn.send(&mut out).await?;
        let user = params.iter().find(|(k, _)| k == "user").map(|(_, v)| v.as_str()).unwrap_or("");
        conn.authenticate(user, password).await?;
        conn.read_until_ready().await?;
        Ok(conn)
    }

    async fn send(&mut self, out: &mut BytesMut) -> Result<(), CoordError> {
        self.stream.write_all(out).await?;
        out.clear();
        Ok(())
    }

    /// Reads one whole message.
    pub async fn read_message(&mut self) -> Result<(u8, Bytes), CoordError> {
        loop {
            if let Some(m) = take_message(&mut self.read_buf)? {
                return Ok(m);
            }
            if self.stream.read_buf(&mut self.read_buf).await? == 0 {
                return Err(CoordError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }

    async fn authenticate(&mut self, user: &str, password: Option<&str>) -> Result<(), StartupFailure> {
        let mut out = BytesMut::new();
        let need_password = || {
            password.ok_or_else(|| {
                StartupFailure::Failed(CoordError::Protocol(format!(
                    "data node asks a password for user \"{user}\" and none is configured"
                )))
            })
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            let (tag, raw) = self.read_message().await?;
            if tag == b'E' {
                return Err(StartupFailure::Refused(raw));
            }
            match parse(&raw)? {
                backend::Message::AuthenticationOk => return Ok(()),
                backend::Message::AuthenticationCleartextPassword => {
                    frontend::password_message(need_password()?.as_bytes(), &mut out).map_err(CoordError::Io)?;
                }
                backend::Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(user.as_bytes(), need_password()?.as_bytes(), body.salt());
                    frontend::password_message(hash.as_bytes(), &mut out).map_err(CoordError::Io)?;
                }
                backend::Message::AuthenticationSasl(_) => {
                    let s = ScramSha256::new(need_password()?.as_bytes(), ChannelBinding::unsupported());
                    frontend::sasl_initial_response(SCRAM_SHA_256, s.message(), &mut out).map_err(CoordError::Io)?;
                    scram = Some(s);
                }
                backend::Message::AuthenticationSaslContinue(body) => {
                    let s = scram.as_mut().ok_or_else(|| protocol("unexpected SASL continue"))?;
                    s.update(body.data()).map_err(|e| protocol(&e.to_string()))?;
                    frontend::sasl_response(s.message(), &mut out).map_err(CoordError::Io)?;
                }
                backend::Message::AuthenticationSaslFinal(body) => {
                    let s = scram.as_mut().ok_or_else(|| protocol("unexpected SASL final"))?;
                    s.finish(body.data()).map_err(|e| protocol(&e.to_string()))?;
                    continue;
                }
                _ => return Err(protocol(&format!("unsupported authentication request '{}'", tag as char)).into()),
            }
            self.send(&mut out).await?;
        }
    }

    async fn read_until_ready(&mut self) -> Result<(), StartupFailure> {
        loop {
            let (tag, raw) = self.read_message().await?;
            match tag {
                b'E' => return Err(StartupFailure::Refused(raw)),
                b'S' => {
                    if let backend::Message::ParameterStatus(p) = parse(&raw)?
                        && p.name().ok() == Some("server_version") {
                            self.server_version = p.value().unwrap_or_default().to_owned();
                        }
                    self.startup_params.push(raw);
                }
                b'K' => {
                    if let backend::Message::BackendKeyData(k) = parse(&raw)? {
                        self.backend_pid = k.process_id();
                        self.backend_secret = k.secret_key();
                    }
                }
                b'Z' => return Ok(()),
                // NoticeResponse and anything else harmless during startup.
                _ => {}
            }
        }
    }

    /// Runs simple-protocol statements (the coordinator's own, such as the reset on return to
    /// the pool) and waits for each ReadyForQuery. Fails on any ErrorResponse.
    pub async fn simple(&mut self, sql: &str) -> Result<(), CoordError> {
        let mut out = BytesMut::new();
        frontend::query(sql, &mut out)?;
        self.send(&mut out).await?;
        let mut failed = None;
        loop {
            let (tag, raw) = self.read_message().await?;
            match tag {
                b'E' => failed = Some(String::from_utf8_lossy(&raw[5..]).replace('\0', " ")),
                b'Z' => break,
                _ => {}
            }
        }
        match failed {
            Some(e) => Err(CoordError::Protocol(format!("data node refused {sql:?}: {e}"))),
            None => Ok(()),
        }
    }
}

fn parse(raw: &Bytes) -> Result<backend::Message, CoordError> {
    let mut buf = BytesMut::from(&raw[..]);
    match backend::Message::parse(&mut buf)? {
        Some(m) => Ok(m),
        None => Err(protocol("truncated message from data node")),
    }
}

fn protocol(what: &str) -> CoordError {
    CoordError::Protocol(format!("data node: {what}"))
}

/// Sends a CancelRequest for a data-node backend.
pub async fn cancel(addr: &str, pid: i32, secret: i32, timeout: Duration) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    frontend::cancel_request(pid, secret, &mut out);
    let fut = async {
        let mut s = NodeStream::connect(addr).await?;
        s.write_all(&out).await?;
        // PostgreSQL closes the connection when it has handled the request.
        let mut sink = [0u8; 1];
        let _ = s.read(&mut sink).await;
        Ok(())
    };
    tokio::time::timeout(timeout, fut).await.unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}
