//! A fault-injecting TCP proxy for tests: it sits between a client (the coordinator) and a
//! server (a data node) on a loopback port and forwards bytes both ways until a fault armed on
//! it fires: when the client sends bytes containing a pattern, the connection is cut either
//! before those bytes reach the server or right after. That makes "the connection died before
//! PREPARE / after PREPARE / during COMMIT PREPARED" deterministic.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

/// When a fault cuts the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Cut when the client sends bytes containing the pattern, before they reach the server.
    BeforeClientSends(Vec<u8>),
    /// Cut when the client sends bytes containing the pattern, right after forwarding them.
    AfterClientSends(Vec<u8>),
}

struct State {
    fault: Mutex<Option<Fault>>,
    cuts: AtomicUsize,
    stopping: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

/// A running proxy; it stops (closing every connection) when dropped.
pub struct FaultProxy {
    port: u16,
    state: Arc<State>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `127.0.0.1:target`.
    pub fn start(target: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            fault: Mutex::new(None),
            cuts: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let accepting = state.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if let Ok(server) = TcpStream::connect(("127.0.0.1", target)) {
                    pump_pair(client, server, &accepting);
                }
            }
        });
        Ok(Self { port, state })
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Arms a fault; it fires once, on the first connection whose client sends the pattern.
    pub fn arm(&self, fault: Fault) {
        *self.state.fault.lock().unwrap_or_else(PoisonError::into_inner) = Some(fault);
    }

    /// Disarms the fault, if it has not fired.
    pub fn disarm(&self) {
        *self.state.fault.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// How many connections a fault has cut.
    pub fn cuts(&self) -> usize {
        self.state.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for c in self.state.conns.lock().unwrap_or_else(PoisonError::into_inner).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// Forwards both directions of one connection, each on a thread of its own.
fn pump_pair(client: TcpStream, server: TcpStream, state: &Arc<State>) {
    let (Ok(client_in), Ok(server_out), Ok(server_in), Ok(client_out)) =
        (client.try_clone(), server.try_clone(), server.try_clone(), client.try_clone())
    else {
        return;
    };
    {
        let mut conns = state.conns.lock().unwrap_or_else(PoisonError::into_inner);
        conns.push(client);
        conns.push(server);
    }
    // Once a fault fires, nothing more of the server's reaches the client.
    let severed = Arc::new(AtomicBool::new(false));
    let (up, down) = (state.clone(), severed.clone());
    thread::spawn(move || upstream(client_in, server_out, &up, &severed));
    thread::spawn(move || {
        let _ = downstream(server_in, client_out, &down);
    });
}

/// Client to server, watching for the armed pattern (also across reads: the last bytes of the
/// previous read are kept).
fn upstream(mut from: TcpStream, mut to: TcpStream, state: &State, severed: &AtomicBool) {
    let mut buf = [0u8; 16 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let chunk = &buf[..n];
        let mut window = std::mem::take(&mut tail);
        window.extend_from_slice(chunk);
        let fired = {
            let mut fault = state.fault.lock().unwrap_or_else(PoisonError::into_inner);
            let hit = match fault.as_ref() {
                // Only a match that ends in the new bytes: what the tail held was already
                // forwarded before the fault was armed.
                Some(Fault::BeforeClientSends(p) | Fault::AfterClientSends(p)) => {
                    let from = window.len().saturating_sub(chunk.len() + p.len().saturating_sub(1));
                    contains(&window[from..], p)
                }
                None => false,
            };
            if hit { fault.take() } else { None }
        };
        if fired.is_some() {
            severed.store(true, Ordering::SeqCst);
            state.cuts.fetch_add(1, Ordering::SeqCst);
        }
        match fired {
            Some(Fault::BeforeClientSends(_)) => return cut(&from, &to),
            Some(Fault::AfterClientSends(_)) => {
                let _ = to.write_all(chunk);
                let _ = to.flush();
                // Let the server read what was sent before the connection goes.
                thread::sleep(Duration::from_millis(100));
                return cut(&from, &to);
            }
            None => {}
        }
        if to.write_all(chunk).is_err() {
            break;
        }
        let keep = window.len().min(256);
        tail = window[window.len() - keep..].to_vec();
    }
    let _ = to.shutdown(Shutdown::Write);
}

fn cut(a: &TcpStream, b: &TcpStream) {
    let _ = a.shutdown(Shutdown::Both);
    let _ = b.shutdown(Shutdown::Both);
}

/// Server to client, until the connection ends or a fault severs it.
fn downstream(mut from: TcpStream, mut to: TcpStream, severed: &AtomicBool) -> std::io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 || severed.load(Ordering::SeqCst) {
            let _ = to.shutdown(Shutdown::Write);
            return Ok(());
        }
        to.write_all(&buf[..n])?;
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
