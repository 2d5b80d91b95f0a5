//! The audit journal: an append-only file of JSON lines that holds what the database could not take (a full
//! queue, the database down). An append is fsync'd before it counts as acknowledged; the writer replays the
//! file into the database (idempotently, by id) at start and once the database answers again, then deletes it.
//!
//! A replay first renames the file to `<journal>.replaying`, so appends go on into a fresh file meanwhile; a
//! replay cut short (crash, database down again) leaves that file, and the next replay resumes with it.

use super::Ledger;
use super::audit::AuditEntry;
use super::error::{LedgerError, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(crate) struct Journal {
    path: PathBuf,
    replaying: PathBuf,
    /// The append handle, opened on first use; `None` after a replay moved the file away.
    file: Mutex<Option<File>>,
    /// Lines appended and not yet replayed (both files).
    pending: AtomicU64,
}

/// What one replay did.
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    pub inserted: u64,
    pub lines: u64,
    /// Unparsable lines: a write torn by a crash (never acknowledged, since the fsync did not return).
    pub corrupt: u64,
}

impl Journal {
    pub(crate) fn open(path: &Path) -> Result<Journal> {
        let mut replaying = path.as_os_str().to_owned();
        replaying.push(".replaying");
        let journal = Journal {
            path: path.to_path_buf(),
            replaying: PathBuf::from(replaying),
            file: Mutex::new(None),
            pending: AtomicU64::new(0),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| journal.error(format!("creating {}: {e}", dir.display())))?;
        }
        let pending = count_lines(&journal.path).and_then(|a| Ok(a + count_lines(&journal.replaying)?));
        journal.pending.store(pending.map_err(|e| journal.error(e))?, Ordering::Relaxed);
        Ok(journal)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    fn error(&self, cause: impl std::fmt::Display) -> LedgerError {
        LedgerError::Journal { path: self.path.display().to_string(), cause: cause.to_string() }
    }

    /// Appends the entries and fsyncs: when this returns Ok they survive a crash.
    pub(crate) fn append(&self, entries: &[AuditEntry]) -> Result<()> {
        let mut buf = Vec::with_capacity(entries.len() * 256);
        for entry in entries {
            serde_json::to_writer(&mut buf, entry).map_err(|e| self.error(e))?;
            buf.push(b'\n');
        }
        let mut guard = self.file.lock().map_err(|_| self.error("lock poisoned"))?;
        if guard.is_none() {
            *guard = Some(self.open_for_append().map_err(|e| self.error(e))?);
        }
        let file = guard.as_mut().ok_or_else(|| self.error("not open"))?;
        file.write_all(&buf).and_then(|()| file.sync_data()).map_err(|e| self.error(e))?;
        self.pending.fetch_add(entries.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn open_for_append(&self) -> std::io::Result<File> {
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&self.path)?;
        // A crash mid-append leaves a line without its newline; end it so the next line stays whole.
        let len = file.metadata()?.len();
        if len > 0 {
            let mut last = [0u8];
            file.seek(SeekFrom::Start(len - 1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        sync_dir(&self.path);
        Ok(file)
    }

    /// Inserts every journaled entry into the database, `batch` per statement (each within `limit`), then
    /// removes the file.
    pub(crate) async fn replay(&self, ledger: &Ledger, batch: usize, limit: Duration) -> Result<Replayed> {
        let mut done = Replayed::default();
        for _ in 0..2 {
            // The leftover of an interrupted replay first, then whatever was appended since.
            if !self.replaying.exists() && !self.move_active_aside()? {
                break;
            }
            let part = self.replay_file(ledger, batch.max(1), limit).await?;
            done.inserted += part.inserted;
            done.lines += part.lines;
            done.corrupt += part.corrupt;
        }
        Ok(done)
    }

    /// Renames the active file to the replay file; false when there is nothing to replay.
    fn move_active_aside(&self) -> Result<bool> {
        let mut guard = self.file.lock().map_err(|_| self.error("lock poisoned"))?;
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.len() > 0 => {}
            Ok(_) | Err(_) => return Ok(false),
        }
        *guard = None;
        std::fs::rename(&self.path, &self.replaying).map_err(|e| self.error(e))?;
        sync_dir(&self.path);
        Ok(true)
    }

    async fn replay_file(&self, ledger: &Ledger, batch: usize, limit: Duration) -> Result<Replayed> {
        let file = File::open(&self.replaying).map_err(|e| self.error(e))?;
        let mut lines = BufReader::new(file).lines();
        let mut done = Replayed::default();
        loop {
            let mut entries = Vec::with_capacity(batch);
            for line in lines.by_ref() {
                let line = line.map_err(|e| self.error(e))?;
                done.lines += 1;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<AuditEntry>(&line) {
                    Ok(entry) => entries.push(entry),
                    Err(e) => {
                        done.corrupt += 1;
                        tracing::warn!(journal = %self.replaying.display(), error = %e, "skipping a torn journal line");
                    }
                }
                if entries.len() >= batch {
                    break;
                }
            }
            if entries.is_empty() {
                break;
            }
            done.inserted += ledger.insert_audit_batch_within(&entries, limit).await?;
        }
        std::fs::remove_file(&self.replaying).map_err(|e| self.error(e))?;
        sync_dir(&self.path);
        let _ = self.pending.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| Some(p.saturating_sub(done.lines)));
        Ok(done)
    }
}

fn count_lines(path: &Path) -> std::io::Result<u64> {
    match File::open(path) {
        Ok(file) => {
            let mut n = 0;
            for line in BufReader::new(file).split(b'\n') {
                if !line?.is_empty() {
                    n += 1;
                }
            }
            Ok(n)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Makes a create, rename or unlink in the journal's directory durable (best effort: some filesystems refuse).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
