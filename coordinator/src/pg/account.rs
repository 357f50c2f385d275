//! Which user the servers run as. PostgreSQL refuses to run as root, so when we are root
//! we run `initdb` and `postgres` as the unprivileged system account `pgshard` (created on
//! first use) and hand it the data directories. Every program is launched through
//! `setpriv --pdeathsig=INT`, so a server fast-shuts-down when its owner dies, even by SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use super::PgError;
use super::process::{run, system_program};

/// The system account that runs PostgreSQL when pgshard itself runs as root.
pub const SERVICE_ACCOUNT: &str = "pgshard";

/// Who the server processes run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunAs {
    /// We are not root: run as ourselves.
    CurrentUser,
    /// We are root: run as this unprivileged system account.
    ServiceAccount(String),
}

impl RunAs {
    /// Decides from our effective uid; as root, makes sure the service account exists.
    pub(crate) fn detect() -> Result<Self, PgError> {
        if effective_uid()? != 0 {
            return Ok(RunAs::CurrentUser);
        }
        ensure_account(SERVICE_ACCOUNT)?;
        Ok(RunAs::ServiceAccount(SERVICE_ACCOUNT.to_owned()))
    }

    /// A command that runs `program` as this user, in `/`, with SIGINT as parent-death signal.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut cmd = self.setpriv();
        cmd.arg("--pdeathsig=INT").arg("--").arg(program);
        cmd.current_dir("/");
        cmd
    }

    fn setpriv(&self) -> Command {
        let mut cmd = Command::new(system_program("setpriv"));
        if let RunAs::ServiceAccount(user) = self {
            cmd.arg(format!("--reuid={user}"))
                .arg(format!("--regid={user}"))
                .arg("--init-groups");
        }
        cmd
    }

    /// Gives `path` (recursively) to the service account; nothing to do for the current user.
    pub(crate) fn give(&self, path: &Path) -> Result<(), PgError> {
        if let RunAs::ServiceAccount(user) = self {
            run(Command::new(system_program("chown"))
                .arg("-R")
                .arg(format!("{user}:{user}"))
                .arg("--")
                .arg(path))?;
        }
        Ok(())
    }

    /// Fails with [`PgError::Unreachable`] if the service account could not reach `dir` once
    /// created: its parent, or the nearest ancestor that exists, must be traversable.
    pub(crate) fn check_can_create(&self, dir: &Path) -> Result<(), PgError> {
        let parent = dir.parent().unwrap_or(Path::new("/"));
        self.probe(&nearest_existing(parent), dir)
    }

    /// Fails with [`PgError::Unreachable`] if the service account cannot enter `dir`.
    pub(crate) fn check_reachable(&self, dir: &Path) -> Result<(), PgError> {
        self.probe(dir, dir)
    }

    /// Runs `test -x probe` as the service account; a failure is reported about `dir`.
    fn probe(&self, probe: &Path, dir: &Path) -> Result<(), PgError> {
        let RunAs::ServiceAccount(user) = self else {
            return Ok(());
        };
        let mut test = self.setpriv();
        test.arg("--")
            .arg(system_program("test"))
            .arg("-x")
            .arg(probe);
        let status = test
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(PgError::io("cannot run setpriv (from util-linux)"))?;
        if status.success() {
            Ok(())
        } else {
            Err(PgError::Unreachable {
                dir: dir.to_path_buf(),
                user: user.clone(),
            })
        }
    }
}

/// `dir` itself or its closest existing ancestor.
fn nearest_existing(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|p| p.symlink_metadata().is_ok())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

/// Our effective uid, from `/proc/self/status` (libc's `geteuid` would need `unsafe`).
fn effective_uid() -> Result<u32, PgError> {
    let status = std::fs::read_to_string("/proc/self/status");
    if let Some(euid) = status.ok().as_deref().and_then(parse_euid) {
        return Ok(euid);
    }
    let out = run(Command::new(system_program("id")).arg("-u"))?;
    out.trim().parse().map_err(|_| PgError::Command {
        command: "id -u".into(),
        status: "exit status: 0".into(),
        stderr: format!("unexpected output {:?}", out.trim()),
    })
}

/// The effective uid in the `Uid:` line (real, effective, saved, filesystem).
fn parse_euid(proc_status: &str) -> Option<u32> {
    let line = proc_status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Creates system account `user` (with its own group, no home, no shell) unless it exists.
fn ensure_account(user: &str) -> Result<(), PgError> {
    // Serialises creation between our own threads; other processes may race us, and then
    // useradd fails ("already exists" or "cannot lock /etc/passwd"), so we look again and retry.
    static CREATING: Mutex<()> = Mutex::new(());
    let _guard = CREATING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut attempts = 0;
    loop {
        if account_exists(user) {
            return Ok(());
        }
        let created = run(Command::new(system_program("useradd"))
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .args(["--user-group", user]));
        match created {
            Ok(_) => {
                tracing::info!(
                    user,
                    "created system account to run PostgreSQL (it refuses root)"
                );
                return Ok(());
            }
            Err(err) if attempts >= 10 => return Err(err),
            Err(_) => attempts += 1,
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn account_exists(user: &str) -> bool {
    Command::new(system_program("id"))
        .args(["-u", user])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::Permissions;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn parses_effective_uid() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(parse_euid(status), Some(0));
        assert_eq!(parse_euid("Name:\tx\n"), None);
    }

    #[test]
    fn nearest_existing_walks_up() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        assert_eq!(nearest_existing(&deep), dir.path());
        assert_eq!(nearest_existing(dir.path()), dir.path());
    }

    #[test]
    fn command_wraps_in_setpriv() {
        let cmd = RunAs::ServiceAccount("svc".into()).command(Path::new("/bin/postgres"));
        let args: Vec<_> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "--reuid=svc",
                "--regid=svc",
                "--init-groups",
                "--pdeathsig=INT",
                "--",
                "/bin/postgres"
            ]
        );
        let cmd = RunAs::CurrentUser.command(Path::new("/bin/postgres"));
        assert_eq!(cmd.get_args().count(), 3);
    }

    #[test]
    fn service_account_cannot_enter_private_dir() {
        let run_as = RunAs::detect().unwrap();
        if run_as == RunAs::CurrentUser {
            return; // only meaningful as root
        }
        let private = tempfile::Builder::new()
            .permissions(Permissions::from_mode(0o700))
            .tempdir()
            .unwrap();
        let data = private.path().join("data");
        let err = run_as.check_can_create(&data).unwrap_err();
        assert!(matches!(err, PgError::Unreachable { .. }), "{err}");
        std::fs::create_dir(&data).unwrap();
        run_as.give(&data).unwrap();
        let err = run_as.check_reachable(&data).unwrap_err();
        assert!(matches!(err, PgError::Unreachable { .. }), "{err}");
        assert!(
            err.to_string().contains("--dir such as /var/lib/pgshard"),
            "{err}"
        );
    }
}
