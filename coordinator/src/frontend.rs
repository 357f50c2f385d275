//! The client side of a connection up to the end of authentication: SSL/GSS refusal,
//! CancelRequest, StartupMessage, protocol version negotiation, and authentication (trust or
//! SCRAM-SHA-256 through pgwire's SCRAM state machine).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use pgwire::api::auth::sasl::scram::{ScramSecret, ScramServerAuth, gen_salted_password};
use pgwire::messages::startup::{Authentication, NegotiateProtocolVersion, SecretKey};
use pgwire::messages::{DecodeContext, PgWireBackendMessage, PgWireFrontendMessage, SslNegotiationMetaMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cancel::CancelRegistry;
use crate::config::{AuthMethod, Config};
use crate::error::{CoordError, Severity};
use crate::wire::encode;

/// PostgreSQL's authentication_timeout default.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
const SCRAM_ITERATIONS: usize = 4096;

/// What the client asked for at startup, once it is authenticated.
#[derive(Debug)]
pub struct ClientStartup {
    /// Startup parameters to pass to the data node (protocol options `_pq_.*` removed).
    pub params: Vec<(String, String)>,
    /// The role name.
    pub user: String,
    /// The password the client proved, to log in to data nodes with.
    pub password: Option<String>,
}

/// What the first packet of a connection turned out to be.
pub enum Opening {
    /// A session, authenticated.
    Session(ClientStartup),
    /// A CancelRequest, already handled; close the connection.
    Cancelled,
}

/// Salted passwords computed once at start, so a login costs one HMAC round, not PBKDF2.
pub struct Authenticator {
    method: AuthMethod,
    secrets: HashMap<String, (Vec<u8>, Vec<u8>, String)>,
}

impl Authenticator {
    /// Prepares the SCRAM secrets of every configured user.
    pub fn new(config: &Config) -> Self {
        let secrets = config
            .auth
            .users
            .iter()
            .map(|u| {
                let salt: [u8; 16] = rand::random();
                let salted = gen_salted_password(&u.password, &salt, SCRAM_ITERATIONS);
                (u.name.clone(), (salt.to_vec(), salted, u.password.clone()))
            })
            .collect();
        Self { method: config.auth.method, secrets }
    }

    /// The password configured for `user`, to log in to data nodes with under trust.
    fn password_of(&self, user: &str) -> Option<String> {
        self.secrets.get(user).map(|(_, _, p)| p.clone())
    }
}

/// Runs the opening exchange, bounded by PostgreSQL's authentication timeout. On failure the
/// client has been sent a FATAL ErrorResponse where the protocol allows one.
pub async fn open(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    auth: &Authenticator,
    cancels: &Arc<CancelRegistry>,
) -> Result<Opening, CoordError> {
    match tokio::time::timeout(STARTUP_TIMEOUT, open_inner(stream, buf, auth, cancels)).await {
        Ok(Err(e)) => {
            if !matches!(e, CoordError::Io(_)) {
                let mut out = BytesMut::new();
                e.encode(Severity::Fatal, &mut out);
                let _ = stream.write_all(&out).await;
            }
            Err(e)
        }
        Ok(ok) => ok,
        Err(_) => Err(CoordError::Protocol("canceling authentication due to timeout".into())),
    }
}

async fn open_inner(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    auth: &Authenticator,
    cancels: &Arc<CancelRegistry>,
) -> Result<Opening, CoordError> {
    let mut ctx = DecodeContext::default();
    let startup = loop {
        match read_frontend(stream, buf, &ctx).await? {
            PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::PostgresSsl(_))
            | PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::PostgresGss(_)) => {
                // No TLS or GSS encryption yet: refuse, the client goes on in plain text.
                stream.write_all(b"N").await?;
            }
            PgWireFrontendMessage::SslNegotiation(SslNegotiationMetaMessage::None) => {
                ctx.awaiting_frontend_ssl = false;
            }
            PgWireFrontendMessage::CancelRequest(c) => {
                // Our keys are 4 bytes (protocol 3.0); pgwire may hand them over as bytes.
                let secret = match c.secret_key {
                    SecretKey::I32(s) => Some(s),
                    SecretKey::Bytes(b) => <[u8; 4]>::try_from(&b[..]).ok().map(i32::from_be_bytes),
                };
                if let Some(secret) = secret {
                    cancels.cancel(c.pid, secret).await;
                }
                return Ok(Opening::Cancelled);
            }
            PgWireFrontendMessage::Startup(s) => break s,
            _ => return Err(CoordError::Protocol("expected a startup message".into())),
        }
    };
    ctx.awaiting_frontend_startup = false;
    let mut out = BytesMut::new();
    if startup.protocol_number_major != 3 {
        return Err(CoordError::Unsupported(format!(
            "unsupported frontend protocol {}.{}: server supports 3.0",
            startup.protocol_number_major, startup.protocol_number_minor
        )));
    }
    let (params, protocol_options): (Vec<_>, Vec<_>) =
        startup.parameters.into_iter().partition(|(k, _)| !k.starts_with("_pq_."));
    if startup.protocol_number_minor > 0 || !protocol_options.is_empty() {
        let unsupported_options = protocol_options.into_iter().map(|(k, _)| k).collect();
        encode(
            // PostgreSQL sends the whole newest version number it speaks: 3.0.
            PgWireBackendMessage::NegotiateProtocolVersion(NegotiateProtocolVersion::new(3 << 16, unsupported_options)),
            &mut out,
        );
    }
    let user = params
        .iter()
        .find(|(k, _)| k == "user")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| CoordError::Protocol("no PostgreSQL user name specified in startup packet".into()))?;
    let password = match auth.method {
        AuthMethod::Trust => auth.password_of(&user),
        AuthMethod::ScramSha256 => Some(scram(stream, buf, &mut ctx, auth, &user, &mut out).await?),
    };
    encode(PgWireBackendMessage::Authentication(Authentication::Ok), &mut out);
    stream.write_all(&out).await?;
    Ok(Opening::Session(ClientStartup { params, user, password }))
}

async fn scram(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    ctx: &mut DecodeContext,
    auth: &Authenticator,
    user: &str,
    out: &mut BytesMut,
) -> Result<String, CoordError> {
    let failed = || CoordError::AuthFailed(user.to_owned());
    encode(PgWireBackendMessage::Authentication(Authentication::SASL(vec!["SCRAM-SHA-256".into()])), out);
    stream.write_all(out).await?;
    out.clear();
    let PgWireFrontendMessage::PasswordMessageFamily(first) = read_frontend(stream, buf, ctx).await? else {
        return Err(CoordError::Protocol("expected SASL initial response".into()));
    };
    let first = first.into_sasl_initial_response().map_err(|e| CoordError::Protocol(e.to_string()))?;
    if first.auth_method != "SCRAM-SHA-256" {
        return Err(CoordError::Protocol(format!("unsupported SASL mechanism {:?}", first.auth_method)));
    }
    // An unknown user goes through the same exchange against a random secret, so the answer
    // does not tell which user names exist.
    let (secret, password) = match auth.secrets.get(user) {
        Some((salt, salted, password)) => {
            (ScramSecret::SaltedPassword { salt: salt.clone(), salted_password: salted.clone() }, Some(password))
        }
        None => {
            let salt: [u8; 16] = rand::random();
            let salted: [u8; 32] = rand::random();
            (ScramSecret::SaltedPassword { salt: salt.to_vec(), salted_password: salted.to_vec() }, None)
        }
    };
    let data = first.data.unwrap_or_default();
    let (server_first, waiting) = ScramServerAuth::new()
        .on_client_first_message_with_secret(&data, secret)
        .map_err(|_| failed())?;
    encode(PgWireBackendMessage::Authentication(Authentication::SASLContinue(Bytes::from(server_first))), out);
    stream.write_all(out).await?;
    out.clear();
    let PgWireFrontendMessage::PasswordMessageFamily(fin) = read_frontend(stream, buf, ctx).await? else {
        return Err(CoordError::Protocol("expected SASL response".into()));
    };
    let fin = fin.into_sasl_response().map_err(|e| CoordError::Protocol(e.to_string()))?;
    let server_final = waiting.on_client_final_message(&fin.data).map_err(|_| failed())?;
    let password = password.ok_or_else(failed)?;
    encode(PgWireBackendMessage::Authentication(Authentication::SASLFinal(Bytes::from(server_final))), out);
    Ok(password.clone())
}

async fn read_frontend(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    ctx: &DecodeContext,
) -> Result<PgWireFrontendMessage, CoordError> {
    loop {
        let decoded = PgWireFrontendMessage::decode(buf, ctx).map_err(|e| CoordError::Protocol(e.to_string()))?;
        if let Some(msg) = decoded {
            return Ok(msg);
        }
        if buf.len() > 64 * 1024 {
            return Err(CoordError::Protocol("startup packet too large".into()));
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(CoordError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}
