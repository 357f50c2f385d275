//! Finding the PostgreSQL server programs (`postgres`, `initdb`, `pg_isready`) and their
//! major version.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::PgError;
use super::process::run;

/// Environment variable naming the bin directory to use, overriding the search.
pub const BINDIR_ENV: &str = "PGSHARD_PG_BINDIR";

/// Programs a bin directory must hold to be usable.
const REQUIRED: [&str; 3] = ["postgres", "initdb", "pg_isready"];

/// Where Debian and Ubuntu install one bin directory per major version.
const VERSIONED_ROOT: &str = "/usr/lib/postgresql";

/// A directory of PostgreSQL server programs and their major version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    bindir: PathBuf,
    major: u32,
}

/// Where to look; built from the environment by [`PgBinaries::discover`], by hand in tests.
#[derive(Debug, Default)]
struct Search {
    /// `PGSHARD_PG_BINDIR`: if set, the only place looked at.
    override_dir: Option<PathBuf>,
    /// The `pg_config` program to ask for `--bindir`.
    pg_config: Option<PathBuf>,
    /// The value of `PATH`.
    path: Option<OsString>,
    /// The directory holding `<major>/bin` directories.
    versioned_root: Option<PathBuf>,
}

impl PgBinaries {
    /// Finds server binaries: `$PGSHARD_PG_BINDIR` if set (and nothing else), else
    /// `pg_config --bindir`, then `PATH`, then the highest `/usr/lib/postgresql/<major>/bin`.
    pub fn discover() -> Result<Self, PgError> {
        Self::discover_in(&Search {
            override_dir: std::env::var_os(BINDIR_ENV)
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from),
            pg_config: Some(PathBuf::from("pg_config")),
            path: std::env::var_os("PATH"),
            versioned_root: Some(PathBuf::from(VERSIONED_ROOT)),
        })
    }

    fn discover_in(search: &Search) -> Result<Self, PgError> {
        if let Some(dir) = &search.override_dir {
            if let Some(missing) = missing_program(dir) {
                return Err(PgError::BadBindir {
                    dir: dir.clone(),
                    missing,
                });
            }
            return Self::at(dir.clone());
        }
        let bindir = candidates(search)
            .into_iter()
            .find(|dir| missing_program(dir).is_none())
            .ok_or(PgError::NoBinaries)?;
        Self::at(bindir)
    }

    /// Uses `bindir`, reading the major version from `postgres --version`.
    fn at(bindir: PathBuf) -> Result<Self, PgError> {
        let output = run(Command::new(bindir.join("postgres")).arg("--version"))?;
        let major = parse_major(&output).ok_or_else(|| PgError::Command {
            command: format!("{} --version", bindir.join("postgres").display()),
            status: "exit status: 0".into(),
            stderr: format!("unrecognised version output {:?}", output.trim()),
        })?;
        Ok(PgBinaries { bindir, major })
    }

    /// The directory holding `postgres`, `initdb` and `pg_isready`.
    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// The major version, e.g. 15 (from `postgres --version`).
    pub fn major_version(&self) -> u32 {
        self.major
    }

    /// The full path of program `name` (e.g. `initdb`) in the bin directory.
    pub(crate) fn program(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }
}

/// Candidate bin directories in search order (duplicates are harmless).
fn candidates(search: &Search) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(pg_config) = &search.pg_config
        && let Ok(out) = run(Command::new(pg_config).arg("--bindir")) {
            dirs.push(PathBuf::from(out.trim()));
        }
    for dir in std::env::split_paths(search.path.as_deref().unwrap_or_default()) {
        let postgres = dir.join("postgres");
        if is_executable(&postgres) {
            // /usr/local/bin/postgres may be a lone symlink; its target's directory has the rest.
            if let Some(real) = std::fs::canonicalize(&postgres)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                dirs.push(real);
            }
            dirs.push(dir);
        }
    }
    if let Some(root) = &search.versioned_root {
        dirs.extend(versioned_bindirs(root));
    }
    dirs
}

/// `<root>/<major>/bin` for every numeric `<major>`, highest first.
fn versioned_bindirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut majors: Vec<u32> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    majors.sort_unstable_by(|a, b| b.cmp(a));
    majors
        .into_iter()
        .map(|major| root.join(major.to_string()).join("bin"))
        .collect()
}

/// The first required program missing from `dir`, if any.
fn missing_program(dir: &Path) -> Option<&'static str> {
    REQUIRED
        .into_iter()
        .find(|name| !is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The major version in `postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)`.
fn parse_major(version_output: &str) -> Option<u32> {
    let (_, rest) = version_output.split_once("(PostgreSQL) ")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_major_versions() {
        assert_eq!(
            parse_major("postgres (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_major("postgres (PostgreSQL) 17devel"), Some(17));
        assert_eq!(parse_major("postgres (PostgreSQL) 9.6.24"), Some(9));
        assert_eq!(parse_major("something else"), None);
    }

    #[test]
    fn discovers_installed_binaries() {
        let bins = PgBinaries::discover().unwrap();
        assert!(bins.bindir().join("initdb").is_file());
        assert!(bins.major_version() >= 10);
    }

    #[test]
    fn override_to_empty_dir_names_the_missing_program() {
        let empty = tempfile::tempdir().unwrap();
        let search = Search {
            override_dir: Some(empty.path().into()),
            ..Search::default()
        };
        let err = PgBinaries::discover_in(&search).unwrap_err();
        assert!(
            matches!(
                &err,
                PgError::BadBindir {
                    missing: "postgres",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("PGSHARD_PG_BINDIR="), "{err}");
    }

    #[test]
    fn override_wins_over_the_search() {
        let real = PgBinaries::discover().unwrap();
        let search = Search {
            override_dir: Some(real.bindir().into()),
            ..Search::default()
        };
        assert_eq!(PgBinaries::discover_in(&search).unwrap(), real);
    }

    #[test]
    fn nothing_found_is_no_binaries() {
        let empty = tempfile::tempdir().unwrap();
        let search = Search {
            override_dir: None,
            pg_config: Some(empty.path().join("no-such-pg_config")),
            path: Some(empty.path().as_os_str().to_owned()),
            versioned_root: Some(empty.path().into()),
        };
        let err = PgBinaries::discover_in(&search).unwrap_err();
        assert!(matches!(err, PgError::NoBinaries), "{err}");
        assert!(err.to_string().contains("apt-get install postgresql"));
    }

    #[test]
    fn path_symlink_resolves_to_full_bindir() {
        let real = PgBinaries::discover().unwrap();
        let fake_path = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(real.program("postgres"), fake_path.path().join("postgres"))
            .unwrap();
        let search = Search {
            path: Some(fake_path.path().as_os_str().to_owned()),
            ..Search::default()
        };
        let found = PgBinaries::discover_in(&search).unwrap();
        assert_eq!(
            found.bindir(),
            std::fs::canonicalize(real.bindir()).unwrap()
        );
    }
}
