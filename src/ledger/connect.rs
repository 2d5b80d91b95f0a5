//! Opening the ledger: URL forms, start-up checks, migrations, and errors that say what to fix.

use super::error::{LedgerError, Result};
use super::migrations::{LATEST_VERSION, migrator};
use super::{Backend, LedgerOptions};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::MigrateError;
use sqlx::{AnyConnection, AnyPool, Connection as _};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Where the ledger lives, parsed from the URL (or plain file path) the user gave.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Target {
    /// `path` is None for `sqlite::memory:`.
    Sqlite {
        url: String,
        path: Option<PathBuf>,
    },
    Postgres {
        url: String,
        redacted: String,
    },
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target> {
        let invalid = |reason: &str| LedgerError::InvalidUrl { url: redact(url), reason: reason.to_string() };
        if url.trim().is_empty() {
            return Err(invalid("empty (use sqlite://FILE?mode=rwc, a file path, or postgres://...)"));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            if rest.starts_with(":memory:") || rest.contains("mode=memory") {
                return Ok(Target::Sqlite { url: url.to_string(), path: None });
            }
            let file = rest.trim_start_matches("//").split('?').next().unwrap_or_default();
            if file.is_empty() {
                return Err(invalid("no file name (use e.g. sqlite://atlantiplex-ledger.db?mode=rwc)"));
            }
            return Ok(Target::Sqlite { url: url.to_string(), path: Some(PathBuf::from(file)) });
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Target::Postgres { url: url.to_string(), redacted: redact(url) });
        }
        if url.contains("://") {
            return Err(invalid("unsupported scheme (use sqlite://FILE?mode=rwc, a file path, or postgres://...)"));
        }
        // A plain path: SQLite, created when missing. sqlx percent-decodes the path part.
        let encoded = url.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
        Ok(Target::Sqlite { url: format!("sqlite://{encoded}?mode=rwc"), path: Some(PathBuf::from(url)) })
    }

    pub(crate) fn backend(&self) -> Backend {
        match self {
            Target::Sqlite { .. } => Backend::Sqlite,
            Target::Postgres { .. } => Backend::Postgres,
        }
    }

    /// For messages: the file path, or the URL without its password.
    pub(crate) fn display(&self) -> String {
        match self {
            Target::Sqlite { path: Some(p), .. } => p.display().to_string(),
            Target::Sqlite { path: None, url } => url.clone(),
            Target::Postgres { redacted, .. } => redacted.clone(),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

pub(crate) async fn open(target: &Target, options: &LedgerOptions) -> Result<AnyPool> {
    sqlx::any::install_default_drivers();
    match target {
        Target::Sqlite { url, path: Some(path) } => open_sqlite_file(url, path, options).await,
        Target::Sqlite { url, path: None } => {
            // Every connection to :memory: is a database of its own: keep exactly one, forever.
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect(url)
                .await?;
            let migrator = migrator().await.map_err(|e| migrate_error(target, e))?;
            migrator.run(&pool).await.map_err(|e| migrate_error(target, e))?;
            Ok(pool)
        }
        Target::Postgres { url, .. } => open_postgres(target, url, options).await,
    }
}

async fn open_postgres(target: &Target, url: &str, options: &LedgerOptions) -> Result<AnyPool> {
    let unreachable = |cause: String| LedgerError::Unreachable {
        url: target.display(),
        timeout_secs: options.connect_timeout.as_secs(),
        cause,
    };
    // One direct connection first: the pool retries until its timeout and then reports only "timed out",
    // while this keeps the real cause (connection refused, authentication failed, no such database).
    match tokio::time::timeout(options.connect_timeout, AnyConnection::connect(url)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) => return Err(unreachable(postgres_cause(&e))),
        Err(_) => return Err(unreachable("timed out".to_string())),
    }
    let pool = AnyPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.connect_timeout)
        .connect(url)
        .await
        .map_err(|e| unreachable(postgres_cause(&e)))?;
    // sqlx takes a PostgreSQL advisory lock around the migrations: replicas starting together wait in turn.
    let migrator = migrator().await.map_err(|e| migrate_error(target, e))?;
    migrator.run(&pool).await.map_err(|e| migrate_error(target, e))?;
    Ok(pool)
}

fn postgres_cause(err: &sqlx::Error) -> String {
    match err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("3D000") => {
            format!("{} — create it first, e.g. `createdb NAME`", db.message())
        }
        sqlx::Error::PoolTimedOut => "timed out".to_string(),
        other => other.to_string(),
    }
}

async fn open_sqlite_file(url: &str, path: &Path, options: &LedgerOptions) -> Result<AnyPool> {
    precheck_sqlite(path)?;
    let shown = path.display().to_string();
    // sqlx does not lock SQLite migrations: two replicas on one file would both try to create the tables.
    let lock = MigrationLock::acquire(path).await?;
    let mut conn = AnyConnection::connect(url).await.map_err(|e| sqlite_error(&shown, e))?;
    // WAL: readers do not block the writer; the mode is stored in the file, so this is needed once.
    sqlx::query("PRAGMA journal_mode=WAL").execute(&mut conn).await.map_err(|e| sqlite_error(&shown, e))?;
    let target = Target::Sqlite { url: url.to_string(), path: Some(path.to_path_buf()) };
    let migrator = migrator().await.map_err(|e| migrate_error(&target, e))?;
    migrator.run_direct(&mut conn).await.map_err(|e| migrate_error(&target, e))?;
    // A file that opens but cannot be written (read-only mount, permissions) shows itself only on a write.
    sqlx::query(
        "INSERT INTO settings (organization, name, value, updated_at_us) VALUES ('', 'ledger.opened_at', $1, $2) \
         ON CONFLICT (organization, name) DO UPDATE SET value = excluded.value, updated_at_us = excluded.updated_at_us",
    )
    .bind(jiff::Timestamp::now().to_string())
    .bind(jiff::Timestamp::now().as_microsecond())
    .execute(&mut conn)
    .await
    .map_err(|e| sqlite_error(&shown, e))?;
    conn.close().await.map_err(|e| sqlite_error(&shown, e))?;
    drop(lock);
    AnyPoolOptions::new()
        .max_connections(options.max_connections)
        .acquire_timeout(options.connect_timeout)
        .connect(url)
        .await
        .map_err(|e| sqlite_error(&shown, e))
}

/// What permissions say before SQLite tries (root ignores permission bits, SQLite would then write anyway;
/// the operator should not write where someone marked the database read-only).
fn precheck_sqlite(path: &Path) -> Result<()> {
    let shown = path.display().to_string();
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.is_dir() {
            return Err(LedgerError::CannotOpen { path: shown, cause: "it is a directory".into() });
        }
        if meta.permissions().readonly() {
            return Err(LedgerError::ReadOnly { path: shown, detail: "the file has no write permission".into() });
        }
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.permissions().readonly() => Err(LedgerError::ReadOnly {
            path: shown,
            detail: format!(
                "directory {} has no write permission; SQLite needs it for its -wal and -shm files",
                dir.display()
            ),
        }),
        Ok(_) => Ok(()),
        Err(e) => Err(LedgerError::CannotOpen { path: shown, cause: format!("directory {}: {e}", dir.display()) }),
    }
}

/// SQLite result codes (the low byte of extended codes) that have a clearer name for users.
fn sqlite_error(path: &str, err: sqlx::Error) -> LedgerError {
    let code = match &err {
        sqlx::Error::Database(db) => db.code().and_then(|c| c.parse::<i32>().ok()).map(|c| c & 0xff),
        _ => None,
    };
    let cause = err.to_string();
    match code {
        // SQLITE_CORRUPT, SQLITE_NOTADB
        Some(11) | Some(26) => LedgerError::Corrupt { path: path.to_string(), cause },
        // SQLITE_READONLY
        Some(8) => LedgerError::ReadOnly { path: path.to_string(), detail: cause },
        // SQLITE_CANTOPEN
        Some(14) => LedgerError::CannotOpen { path: path.to_string(), cause },
        _ => LedgerError::Database(err),
    }
}

fn migrate_error(target: &Target, err: MigrateError) -> LedgerError {
    match err {
        MigrateError::VersionMissing(applied) if applied > LATEST_VERSION => {
            LedgerError::SchemaTooNew { url: target.display(), applied, known: LATEST_VERSION }
        }
        MigrateError::Execute(e) | MigrateError::ExecuteMigration(e, _) if target.backend() == Backend::Sqlite => {
            match sqlite_error(&target.display(), e) {
                LedgerError::Database(e) => LedgerError::Migration { url: target.display(), cause: e.to_string() },
                clear => clear,
            }
        }
        MigrateError::Dirty(version) => LedgerError::Migration {
            url: target.display(),
            cause: format!(
                "migration {version} was left half-applied; repair the schema by hand and delete its row from \
                 _sqlx_migrations"
            ),
        },
        other => LedgerError::Migration { url: target.display(), cause: other.to_string() },
    }
}

/// An exclusive lock on `<database>.migrate-lock` while one process migrates a SQLite file.
struct MigrationLock(std::fs::File);

impl MigrationLock {
    async fn acquire(database: &Path) -> Result<MigrationLock> {
        let mut name = database.as_os_str().to_owned();
        name.push(".migrate-lock");
        let path = PathBuf::from(name);
        let shown = database.display().to_string();
        let cannot = |e: std::io::Error| LedgerError::CannotOpen {
            path: shown.clone(),
            cause: format!("migration lock {}: {e}", path.display()),
        };
        let file = match std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path) {
            Ok(file) => file,
            // flock needs no write access: an existing lock file will do; otherwise the directory is read-only.
            Err(e) if matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem) => {
                std::fs::File::open(&path).map_err(|_| LedgerError::ReadOnly {
                    path: shown.clone(),
                    detail: format!("cannot create {}: {e}", path.display()),
                })?
            }
            Err(e) => return Err(cannot(e)),
        };
        // flock blocks the thread; keep it off the async workers.
        let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
            .await
            .map_err(|e| cannot(std::io::Error::other(e)))?
            .map_err(cannot)?;
        Ok(MigrationLock(file))
    }
}

impl Drop for MigrationLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let t = Target::parse("sqlite://data/ledger.db?mode=rwc").unwrap();
        assert_eq!(
            t,
            Target::Sqlite { url: "sqlite://data/ledger.db?mode=rwc".into(), path: Some("data/ledger.db".into()) }
        );
        let t = Target::parse("/var/lib/atlantiplex/ledger.db").unwrap();
        assert_eq!(
            t,
            Target::Sqlite {
                url: "sqlite:///var/lib/atlantiplex/ledger.db?mode=rwc".into(),
                path: Some("/var/lib/atlantiplex/ledger.db".into())
            }
        );
        assert_eq!(Target::parse("sqlite::memory:").unwrap().backend(), Backend::Sqlite);
        let t = Target::parse("postgres://app:s3cret@db:5432/ledger").unwrap();
        assert_eq!(t.backend(), Backend::Postgres);
        assert_eq!(t.display(), "postgres://app:***@db:5432/ledger");
        assert!(Target::parse("mysql://x").unwrap_err().to_string().contains("unsupported scheme"));
        assert!(Target::parse("").is_err());
        assert!(Target::parse("sqlite://?mode=rwc").is_err());
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgresql://u:p@h/db?sslmode=require"), "postgresql://u:***@h/db?sslmode=require");
        assert_eq!(redact("file.db"), "file.db");
    }
}
