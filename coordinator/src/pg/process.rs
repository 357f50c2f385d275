//! Process plumbing without `unsafe`: running helper programs, sending signals with the
//! `kill` program, reading `/proc`, and the long-lived spawner thread that owns every server
//! process (so `--pdeathsig` fires only when the whole coordinator dies).

use std::ffi::OsStr;
use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::PgError;

/// How often we poll for a state change of a child process.
const POLL: Duration = Duration::from_millis(20);

/// Finds a system program in PATH, then in the usual sbin/bin directories (root's PATH under
/// `su`/`sudo` may lack `/usr/sbin`). Falls back to the bare name, so spawning reports it.
pub(crate) fn system_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let standard = [
        "/usr/local/sbin",
        "/usr/local/bin",
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    ];
    std::env::split_paths(&path)
        .chain(standard.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// The command line of `cmd`, for error messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut words = vec![cmd.get_program().to_string_lossy().into_owned()];
    words.extend(cmd.get_args().map(quote));
    words.join(" ")
}

fn quote(arg: &OsStr) -> String {
    let arg = arg.to_string_lossy();
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@+".contains(c))
    {
        arg.into_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` to completion and returns its stdout; a non-zero exit becomes
/// [`PgError::Command`] carrying the command line and its stderr.
pub(crate) fn run(cmd: &mut Command) -> Result<String, PgError> {
    let output = cmd
        .output()
        .map_err(PgError::io(format!("cannot run `{}`", describe(cmd))))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(PgError::Command {
            command: describe(cmd),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// Sends `signal` (a name such as `INT`) to each pid with the `kill` program.
pub(crate) fn signal(signal: &str, pids: &[u32]) -> Result<(), PgError> {
    if pids.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new(system_program("kill"));
    cmd.arg("-s").arg(signal).arg("--");
    cmd.args(pids.iter().map(u32::to_string));
    run(&mut cmd).map(drop)
}

/// Waits up to `timeout` for `child` to exit; `None` if it is still running.
pub(crate) fn wait_exit(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(POLL);
    }
}

/// State, parent pid and command name of a process, from `/proc/<pid>/stat`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ProcStat {
    pub(crate) comm: String,
    pub(crate) state: char,
    pub(crate) ppid: u32,
}

impl ProcStat {
    /// Parses `pid (comm) S ppid ...`; the name may itself contain spaces and parentheses.
    pub(crate) fn parse(line: &str) -> Option<ProcStat> {
        let open = line.find('(')?;
        let close = line.rfind(')')?;
        let comm = line.get(open + 1..close)?.to_owned();
        let mut rest = line.get(close + 1..)?.split_whitespace();
        let state = rest.next()?.chars().next()?;
        let ppid = rest.next()?.parse().ok()?;
        Some(ProcStat { comm, state, ppid })
    }

    /// Reads the stat of `pid`; `None` if there is no such process.
    pub(crate) fn read(pid: u32) -> Option<ProcStat> {
        let line = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        ProcStat::parse(&line)
    }
}

/// True if `pid` exists and is not a zombie.
pub(crate) fn is_running(pid: u32) -> bool {
    ProcStat::read(pid).is_some_and(|stat| stat.state != 'Z')
}

/// Live children of `pid` (PostgreSQL's backends and auxiliary processes).
pub(crate) fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&child| ProcStat::read(child).is_some_and(|s| s.ppid == pid && s.state != 'Z'))
        .collect()
}

/// Waits up to `timeout` until none of `pids` is running; true if they are all gone.
pub(crate) fn wait_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while pids.iter().any(|&pid| is_running(pid)) {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(POLL);
    }
    true
}

struct SpawnRequest {
    command: Command,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// Spawns `command` from a thread that lives as long as the process.
///
/// Linux delivers the parent-death signal (`setpriv --pdeathsig`) when the *thread* that
/// forked the child exits, not the process. Spawning from whatever thread calls
/// [`PgInstance::start`](super::PgInstance::start) would stop the server when, say, a tokio
/// blocking thread retires; one dedicated thread that never exits avoids that trap.
pub(crate) fn spawn_owned(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Result<mpsc::Sender<SpawnRequest>, String>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<SpawnRequest>();
        thread::Builder::new()
            .name("pg-spawner".into())
            .spawn(move || {
                for mut request in requests {
                    // The requester blocks on the answer, so this send only fails if it panicked.
                    let _ = request.reply.send(request.command.spawn());
                }
            })
            .map(|_| sender)
            .map_err(|e| format!("cannot start the pg-spawner thread: {e}"))
    });
    let spawner = spawner.as_ref().map_err(|e| io::Error::other(e.clone()))?;
    let (reply, answer) = mpsc::channel();
    spawner
        .send(SpawnRequest { command, reply })
        .map_err(|_| io::Error::other("the pg-spawner thread has stopped"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the pg-spawner thread has stopped"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_odd_names() {
        let stat = ProcStat::parse("4242 (postgres: a (b) c) S 17 4242 4242 0 -1").unwrap();
        assert_eq!(
            stat,
            ProcStat {
                comm: "postgres: a (b) c".into(),
                state: 'S',
                ppid: 17
            }
        );
        assert_eq!(ProcStat::parse("garbage"), None);
    }

    #[test]
    fn own_process_is_running_and_child_is_listed() {
        assert!(is_running(std::process::id()));
        let mut sleep = Command::new("sleep");
        sleep.arg("30");
        let mut child = spawn_owned(sleep).unwrap();
        assert_eq!(ProcStat::read(child.id()).unwrap().ppid, std::process::id());
        assert!(children_of(std::process::id()).contains(&child.id()));
        signal("KILL", &[child.id()]).unwrap();
        assert!(
            wait_exit(&mut child, Duration::from_secs(5))
                .unwrap()
                .is_some()
        );
        assert!(!is_running(child.id()));
    }

    #[test]
    fn failed_command_reports_stderr() {
        let err = run(Command::new("sh").args(["-c", "echo oops >&2; exit 3"])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c 'echo oops >&2; exit 3'"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.ends_with(": oops"), "{text}");
    }
}
