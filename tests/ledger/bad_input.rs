//! Bad input at start-up: each gives a specific error naming the file or URL and the fix, never a panic —
//! from the library and from the `atlantiplex-operator audit` command.

use super::TestDb;
use atlantiplex_operator::ledger::{Ledger, LedgerOptions};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("atlantiplex-ledger-bad-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn operator(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_atlantiplex-operator"));
    cmd.args(args).env_remove("DATABASE_URL");
    cmd
}

/// Exit status non-zero, the message on stderr, no panic.
fn assert_clear_failure(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded: {stderr}");
    assert!(stderr.contains(expected), "stderr lacks {expected:?}:\n{stderr}");
    assert!(!stderr.contains("panicked"), "panicked:\n{stderr}");
}

#[tokio::test]
async fn corrupt_sqlite_file() {
    let dir = temp_dir("corrupt");
    let file = dir.join("ledger.db");
    std::fs::write(&file, b"this is not a database, just some garbage bytes that are long enough ".repeat(100))
        .unwrap();
    let err = Ledger::connect(file.to_str().unwrap()).await.unwrap_err();
    assert_eq!(err.category(), "corrupt", "{err}");
    let msg = err.to_string();
    assert!(msg.contains(file.to_str().unwrap()) && msg.contains("restore it from a backup"), "{msg}");
    let out = operator(&["audit", "--database-url", file.to_str().unwrap()]).output().unwrap();
    assert_clear_failure(&out, "is not a valid database file");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn read_only_sqlite_file_and_directory() {
    let dir = temp_dir("readonly");
    let file = dir.join("ledger.db");
    Ledger::connect(file.to_str().unwrap()).await.unwrap().close().await;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = Ledger::connect(file.to_str().unwrap()).await.unwrap_err();
    assert_eq!(err.category(), "read_only", "{err}");
    assert!(err.to_string().contains("make the file and its directory writable"), "{err}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let ro_dir = dir.join("ro");
    std::fs::create_dir(&ro_dir).unwrap();
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let err = Ledger::connect(ro_dir.join("ledger.db").to_str().unwrap()).await.unwrap_err();
    assert_eq!(err.category(), "read_only", "{err}");
    assert!(err.to_string().contains("-wal and -shm"), "{err}");
    std::fs::set_permissions(&ro_dir, std::fs::Permissions::from_mode(0o755)).unwrap();

    let err = Ledger::connect(dir.join("missing/ledger.db").to_str().unwrap()).await.unwrap_err();
    assert_eq!(err.category(), "cannot_open", "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A file the operator's user cannot write although its mode has write bits (owned by another user): SQLite
/// itself refuses the write. Run as `nobody` when the tests run as root; otherwise make the file root's... we
/// cannot, so then the mode-bit case above covers it.
#[tokio::test]
async fn sqlite_file_of_another_user() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return;
    }
    let dir = temp_dir("otheruser");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.join("ledger.db");
    Ledger::connect(file.to_str().unwrap()).await.unwrap().close().await;
    let mut cmd = operator(&["audit", "--database-url", file.to_str().unwrap()]);
    // SAFETY: setgid/setuid only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert_clear_failure(&out, "is read-only");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn unreachable_postgres() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://ledger:s3cret@127.0.0.1:{port}/ledger");
    let options = LedgerOptions { connect_timeout: Duration::from_secs(2), ..Default::default() };
    let started = Instant::now();
    let err = Ledger::connect_with(&url, &options).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(err.category(), "unreachable", "{err}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("postgres://ledger:***@127.0.0.1:{port}/ledger")), "{msg}");
    assert!(!msg.contains("s3cret"), "the password leaked: {msg}");
    let out = operator(&["audit", "--database-url", &url]).output().unwrap();
    assert_clear_failure(&out, "cannot reach the database");
}

#[tokio::test]
async fn missing_postgres_database() {
    let server = pgserver::shared().unwrap_or_else(|e| panic!("{e:#}"));
    let err = Ledger::connect(&server.url("no_such_database")).await.unwrap_err();
    assert!(err.to_string().contains("createdb"), "{err}");
}

#[test]
fn bad_cli_arguments() {
    let out = operator(&["audit", "--database-url", "mysql://x/y"]).output().unwrap();
    assert_clear_failure(&out, "unsupported scheme");
    let out = operator(&["audit", "--database-url", "sqlite::memory:", "--since", "yesterday"]).output().unwrap();
    assert_clear_failure(&out, "RFC 3339");
}

/// The binary refuses a database a newer binary migrated (both backends; see `cases!`).
pub async fn newer_schema_stops_the_binary(db: TestDb) {
    let ledger = db.ledger().await;
    super::apply_future_migration(&ledger, 20990101000000).await;
    ledger.close().await;
    let out = operator(&["audit", "--database-url", &db.url]).output().unwrap();
    assert_clear_failure(&out, "Upgrade this binary");
    assert!(Path::new(&db.dir).exists());
}
