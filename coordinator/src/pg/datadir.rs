//! The data directory (PGDATA) and its log file: what state a directory is in, creating a
//! cluster with `initdb`, detecting a server still running in it, and reading the log's tail.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::account::RunAs;
use super::process::{ProcStat, describe, is_running};
use super::{PgBinaries, PgError};

/// How many log lines an error message carries.
pub(crate) const TAIL_LINES: usize = 20;

/// What a data directory holds before we start.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum DataDirState {
    /// Nothing there yet: create it and run initdb.
    Missing,
    /// An empty directory: run initdb in it.
    Empty,
    /// A cluster made by PostgreSQL `version` (the contents of `PG_VERSION`).
    Cluster { version: String },
}

/// Classifies `dir`; a non-empty directory without `PG_VERSION` is [`PgError::NotACluster`].
pub(crate) fn inspect(dir: &Path) -> Result<DataDirState, PgError> {
    if dir.symlink_metadata().is_err() {
        return Ok(DataDirState::Missing);
    }
    let context = || format!("cannot read data directory {}", dir.display());
    let mut entries = std::fs::read_dir(dir).map_err(PgError::io(context()))?;
    if entries.next().is_none() {
        return Ok(DataDirState::Empty);
    }
    match std::fs::read_to_string(dir.join("PG_VERSION")) {
        Ok(version) => Ok(DataDirState::Cluster {
            version: version.trim().to_owned(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(PgError::NotACluster {
            dir: dir.to_path_buf(),
        }),
        Err(e) => Err(PgError::io(context())(e)),
    }
}

/// The pid in `postmaster.pid` if that process is alive and is a PostgreSQL server working
/// in `dir` (every server process has its data directory as working directory). A stale file
/// left by a crash, its pid maybe reused since, is PostgreSQL's business: it replaces it.
pub(crate) fn running_pid(dir: &Path) -> Option<u32> {
    let pidfile = std::fs::read_to_string(dir.join("postmaster.pid")).ok()?;
    let pid: u32 = pidfile.lines().next()?.trim().parse().ok()?;
    let is_server =
        ProcStat::read(pid).is_some_and(|s| s.comm == "postgres" || s.comm == "postmaster");
    // Unreadable (another user's process, without root): assume it is that server.
    let works_here = match (
        std::fs::read_link(format!("/proc/{pid}/cwd")),
        dir.canonicalize(),
    ) {
        (Ok(cwd), Ok(dir)) => cwd == dir,
        _ => true,
    };
    (is_server && works_here && is_running(pid)).then_some(pid)
}

/// `<datadir>.log`, the sibling log file of a data directory.
pub(crate) fn log_path(dir: &Path) -> Result<PathBuf, PgError> {
    let name = dir.file_name().ok_or_else(|| PgError::Io {
        context: format!(
            "data directory {} has no name to derive its log file from",
            dir.display()
        ),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    let mut log_name = name.to_os_string();
    log_name.push(".log");
    Ok(dir.with_file_name(log_name))
}

/// Creates `dir` with mode 0700 (PostgreSQL's requirement), and its parents as needed.
pub(crate) fn create(dir: &Path) -> Result<(), PgError> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(PgError::io(format!(
            "cannot create directory {}",
            parent.display()
        )))?;
    }
    DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(PgError::io(format!(
            "cannot create data directory {}",
            dir.display()
        )))
}

/// Opens the log for appending.
pub(crate) fn open_log(path: &Path) -> Result<File, PgError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(PgError::io(format!(
            "cannot open log file {}",
            path.display()
        )))
}

/// The log's current length: where the next writer's part starts.
pub(crate) fn log_len(log: &File, path: &Path) -> Result<u64, PgError> {
    let meta = log.metadata().map_err(PgError::io(format!(
        "cannot read log file {}",
        path.display()
    )))?;
    Ok(meta.len())
}

/// Runs initdb on `dir` (superuser `postgres`, trust auth, UTF8, C.UTF-8), its output
/// appended to `log`.
pub(crate) fn initdb(
    bins: &PgBinaries,
    run_as: &RunAs,
    dir: &Path,
    fast: bool,
    log: &mut File,
) -> Result<(), PgError> {
    let mut cmd = run_as.command(&bins.program("initdb"));
    cmd.arg("-D").arg(dir);
    cmd.args([
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C.UTF-8",
        "--no-instructions",
    ]);
    if fast {
        cmd.arg("--no-sync");
    }
    let output = cmd
        .output()
        .map_err(PgError::io("cannot run setpriv (from util-linux)"))?;
    // Best effort: the log is for people; the error below carries what matters.
    let _ = log
        .write_all(&output.stdout)
        .and_then(|()| log.write_all(&output.stderr));
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(PgError::Command {
        command: describe(&cmd),
        status: output.status.to_string(),
        stderr: last_lines(&stderr, TAIL_LINES),
    })
}

/// Checks that the server binaries can run a cluster made by `found` (its `PG_VERSION`).
pub(crate) fn check_version(dir: &Path, found: &str, bins: &PgBinaries) -> Result<(), PgError> {
    if found == bins.major_version().to_string() {
        return Ok(());
    }
    Err(PgError::VersionMismatch {
        dir: dir.to_path_buf(),
        found: found.to_owned(),
        expected: bins.major_version(),
    })
}

/// What the log gained since byte `from` (this run's part), as text.
pub(crate) fn read_since(path: &Path, from: u64) -> String {
    let mut text = Vec::new();
    let read = File::open(path).and_then(|mut f| {
        f.seek(SeekFrom::Start(from))?;
        f.read_to_end(&mut text)
    });
    match read {
        Ok(_) => String::from_utf8_lossy(&text).into_owned(),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Why a start failed and this start's part of the log, for [`PgError::StartFailed`].
pub(crate) fn describe_tail(reason: &str, path: &Path, text: &str) -> String {
    if text.trim().is_empty() {
        return format!("{reason}; it wrote nothing to its log {}", path.display());
    }
    let tail = last_lines(text, TAIL_LINES);
    format!("{reason}; last lines of {}:\n{tail}", path.display())
}

/// The last `n` lines of `text`, without a trailing newline.
pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_file_is_a_sibling() {
        assert_eq!(
            log_path(Path::new("/var/lib/pgshard/dn1")).unwrap(),
            Path::new("/var/lib/pgshard/dn1.log")
        );
        assert_eq!(
            log_path(Path::new("/x/meta/")).unwrap(),
            Path::new("/x/meta.log")
        );
        assert!(log_path(Path::new("/")).is_err());
    }

    #[test]
    fn classifies_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        assert_eq!(inspect(&dir).unwrap(), DataDirState::Missing);
        create(&dir).unwrap();
        assert_eq!(inspect(&dir).unwrap(), DataDirState::Empty);
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        assert!(matches!(inspect(&dir), Err(PgError::NotACluster { .. })));
        std::fs::write(dir.join("PG_VERSION"), "15\n").unwrap();
        assert_eq!(
            inspect(&dir).unwrap(),
            DataDirState::Cluster {
                version: "15".into()
            }
        );
    }

    #[test]
    fn stale_or_foreign_pidfile_is_not_in_use() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(running_pid(tmp.path()), None);
        // Our own pid is alive but is not a PostgreSQL server (pid reused after a crash).
        let pidfile = format!("{}\n{}\n", std::process::id(), tmp.path().display());
        std::fs::write(tmp.path().join("postmaster.pid"), pidfile).unwrap();
        assert_eq!(running_pid(tmp.path()), None);
    }

    #[test]
    fn tails_only_this_run() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.log");
        std::fs::write(&path, "old run\n").unwrap();
        let mut log = open_log(&path).unwrap();
        let start = log_len(&log, &path).unwrap();
        let lines: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        log.write_all(lines.as_bytes()).unwrap();
        let text = read_since(&path, start);
        let tail = describe_tail("it exited", &path, &text);
        assert!(tail.starts_with("it exited; last lines of "), "{tail}");
        let expected: Vec<String> = (11..=30).map(|i| format!("line {i}")).collect();
        assert!(
            tail.ends_with(&format!(":\n{}", expected.join("\n"))),
            "{tail}"
        );
        assert!(describe_tail("it hung", &path, "\n").contains("it hung; it wrote nothing"));
    }
}
