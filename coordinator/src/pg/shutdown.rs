//! Stopping a server: fast shutdown (SIGINT), escalating to immediate shutdown (SIGQUIT) and
//! then to SIGKILL of the postmaster and every backend, which is also how a crash is simulated.

use std::process::Child;
use std::time::Duration;

use super::PgError;
use super::process::{children_of, signal, wait_exit, wait_gone};

/// How long a fast shutdown (SIGINT) may take before we escalate.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an immediate shutdown (SIGQUIT) may take before we kill.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long killed backends may take to disappear.
const KILL_TIMEOUT: Duration = Duration::from_secs(10);

/// Fast shutdown, escalating to immediate shutdown and then to kill.
pub(crate) fn shut_down(child: &mut Child, name: &str) -> Result<(), PgError> {
    let pid = child.id();
    let wait_error = || {
        PgError::io(format!(
            "cannot wait for PostgreSQL instance `{name}` (pid {pid})"
        ))
    };
    if let Some(status) = child.try_wait().map_err(wait_error())? {
        tracing::warn!(name, pid, %status, "PostgreSQL instance had already exited");
        return Ok(());
    }
    if let Err(err) = signal("INT", &[pid]) {
        kill_server(child, name);
        return Err(err);
    }
    if wait_exit(child, STOP_TIMEOUT)
        .map_err(wait_error())?
        .is_some()
    {
        return Ok(());
    }
    tracing::warn!(
        name,
        pid,
        "no fast shutdown within {} s, sending SIGQUIT",
        STOP_TIMEOUT.as_secs()
    );
    if signal("QUIT", &[pid]).is_ok()
        && wait_exit(child, QUIT_TIMEOUT)
            .map_err(wait_error())?
            .is_some()
    {
        return Ok(());
    }
    tracing::warn!(
        name,
        pid,
        "no immediate shutdown within {} s, killing",
        QUIT_TIMEOUT.as_secs()
    );
    kill_server(child, name);
    Ok(())
}

/// SIGKILLs the postmaster and all its children (PostgreSQL puts each backend in its own
/// session, so a process-group kill would miss them), then reaps and waits for them.
pub(crate) fn kill_server(child: &mut Child, name: &str) {
    let pid = child.id();
    // Frozen, the postmaster cannot fork a backend we would miss.
    let _ = signal("STOP", &[pid]);
    let mut pids = children_of(pid);
    pids.push(pid);
    if let Err(err) = signal("KILL", &pids) {
        tracing::debug!(name, %err, "some processes were already gone");
        let _ = child.kill();
    }
    if let Err(err) = child.wait() {
        tracing::warn!(name, pid, %err, "cannot reap the killed postmaster");
    }
    if !wait_gone(&pids, KILL_TIMEOUT) {
        tracing::warn!(
            name,
            pid,
            "processes of the killed server are still running"
        );
    }
}
