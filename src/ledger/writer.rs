//! `AuditLog`: audit records written off the caller's path, never dropped silently.
//!
//! Policy: `record` puts the record on a bounded in-memory queue and returns at once; a background task
//! takes up to `max_batch` records at a time and inserts them in one statement. Whatever the database cannot
//! take goes to the local [journal](super::journal) and is fsync'd there:
//! - the queue is full → the record is handed to the journal's own thread, which appends what it is given
//!   in groups with one fsync each ([spill](super::spill)); the caller does not wait for the database;
//! - an insert fails (`insert_attempts` tries, then at once while the database stays down) → the writer
//!   hands the batch to the journal.
//!
//! The writer replays the journal into the database every `retry_interval` until it succeeds, and at start,
//! so records survive a database outage and a restart. Each event is counted ([`AuditCounters`]), reported
//! by [`AuditLog::health`] and logged.
//!
//! Acknowledged means durable: [`AuditLog::record_durable`] returns after the record's batch committed in the
//! database ([`Durability::Committed`]) or after it was fsync'd to the journal ([`Durability::Journaled`]).
//! [`AuditLog::record`] is fire-and-forget and returns [`Durability::Queued`]: the record is in memory (the
//! queue, or the journal thread's next group), and a crash in the next milliseconds loses it. Only a failing
//! journal write loses a record otherwise, and that is counted in `lost`, logged as an error, and returned
//! as an error to `record_durable` callers.

use super::Ledger;
use super::audit::{AuditEntry, AuditRecord};
use super::error::{LedgerError, Result};
use super::journal::Journal;
use super::spill::{Job, Spill};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, Clone)]
pub struct AuditLogOptions {
    /// The journal file; one per process (replicas must not share one).
    pub journal_path: PathBuf,
    pub queue_capacity: usize,
    /// Records per insert statement.
    pub max_batch: usize,
    /// Tries of one batch before it goes to the journal (while the database was healthy).
    pub insert_attempts: u32,
    /// First pause between tries; doubles each try.
    pub retry_backoff: Duration,
    /// How often the journal is replayed while the database fails.
    pub retry_interval: Duration,
    /// How long a batch waits for more records before it is written: one commit (one fsync) per
    /// this interval instead of one per record under a steady trickle such as webhook decisions.
    pub linger: Duration,
    /// How long one insert may take before its batch goes to the journal: `record_durable` answers within
    /// about this even when the database hangs (a lock held elsewhere, a stalled server).
    pub write_timeout: Duration,
}

impl AuditLogOptions {
    pub fn new(journal_path: impl Into<PathBuf>) -> Self {
        AuditLogOptions {
            journal_path: journal_path.into(),
            queue_capacity: 10_000,
            max_batch: 500,
            insert_attempts: 3,
            retry_backoff: Duration::from_millis(100),
            retry_interval: Duration::from_secs(1),
            linger: Duration::from_millis(10),
            write_timeout: Duration::from_secs(5),
        }
    }

    /// Defaults for `ledger`: the journal next to a SQLite file (`<file>.audit-journal`); for PostgreSQL
    /// `atlantiplex-audit.journal` in the working directory (mount a volume there to keep it across pods).
    pub fn for_ledger(ledger: &Ledger) -> Self {
        match ledger.sqlite_path() {
            Some(db) => {
                let mut name = db.as_os_str().to_owned();
                name.push(".audit-journal");
                Self::new(name)
            }
            None => Self::new("atlantiplex-audit.journal"),
        }
    }
}

/// Where an acknowledged record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// In memory (the queue, or the journal thread's next group): not durable yet.
    Queued,
    /// Committed in the database.
    Committed,
    /// Fsync'd to the local journal; replayed into the database later.
    Journaled,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The record's id in the ledger.
    pub id: String,
    pub durability: Durability,
}

/// Running totals, as plain atomics so they can be exported as metrics.
#[derive(Debug, Default)]
pub struct AuditCounters {
    /// Records accepted onto the queue.
    pub queued: AtomicU64,
    /// Records committed to the database (from the queue or the journal).
    pub written: AtomicU64,
    /// Failed insert statements (queue batches and journal replays).
    pub failed: AtomicU64,
    /// Inserts tried again after a failure (a batch's later tries and every journal replay after a failure).
    pub retries: AtomicU64,
    /// Records appended to the journal (queue full, or the database failing).
    pub journaled: AtomicU64,
    /// Records replayed from the journal into the database.
    pub replayed: AtomicU64,
    /// Records lost because the journal could not be written either (each also returned as an error).
    pub lost: AtomicU64,
}

/// A snapshot of the counters plus the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditStats {
    pub queued: u64,
    pub written: u64,
    pub failed: u64,
    pub retries: u64,
    pub journaled: u64,
    pub replayed: u64,
    pub lost: u64,
    pub queue_depth: u64,
    pub queue_capacity: u64,
    pub journal_pending: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum HealthState {
    /// Records reach the database.
    Healthy,
    /// The database works but records wait: the queue is over half full or the journal is being replayed.
    Behind,
    /// The last insert failed; records go to the journal.
    Failing,
}

/// For a status condition: state, why, and the numbers behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditHealth {
    pub state: HealthState,
    pub message: String,
    pub last_error: Option<String>,
    pub queue_depth: u64,
    pub journal_pending: u64,
}

enum Msg {
    Record(AuditEntry, Option<oneshot::Sender<Result<Durability>>>),
    Flush(oneshot::Sender<()>),
}

struct Shared {
    counters: Arc<AuditCounters>,
    journal: Arc<Journal>,
    failing: AtomicBool,
    last_error: Mutex<Option<String>>,
    capacity: usize,
}

/// The audit writer handle. Clone it freely; the writer task ends when the last clone is dropped, after
/// writing what is queued.
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    spill: Spill,
    shared: Arc<Shared>,
}

impl AuditLog {
    /// Opens the journal, replays what an earlier run left there (when the database answers), and starts the
    /// writer task. Must be called inside a Tokio runtime.
    pub async fn start(ledger: Ledger, options: AuditLogOptions) -> Result<AuditLog> {
        let capacity = options.queue_capacity.max(1);
        let counters = Arc::new(AuditCounters::default());
        let journal = Arc::new(Journal::open(&options.journal_path)?);
        let spill = Spill::start(journal.clone(), counters.clone())?;
        let shared = Arc::new(Shared {
            counters,
            journal,
            failing: AtomicBool::new(false),
            last_error: Mutex::new(None),
            capacity,
        });
        let (tx, rx) = mpsc::channel(capacity);
        let writer = Writer { ledger, shared: shared.clone(), spill: spill.clone(), options };
        if writer.shared.journal.pending() > 0 {
            tracing::info!(
                journal = %writer.shared.journal.path().display(),
                records = writer.shared.journal.pending(),
                "replaying audit records journaled by an earlier run"
            );
            writer.replay().await;
        }
        tokio::spawn(writer.run(rx));
        Ok(AuditLog { tx, spill, shared })
    }

    /// Queues a record and returns at once; when the queue is full the record goes to the journal thread.
    pub fn record(&self, record: AuditRecord) -> Result<Accepted> {
        let entry = new_entry(record);
        let id = entry.id.clone();
        match self.tx.try_send(Msg::Record(entry, None)) {
            Ok(()) => {
                self.shared.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(mpsc::error::TrySendError::Full(Msg::Record(entry, _)))
            | Err(mpsc::error::TrySendError::Closed(Msg::Record(entry, _))) => {
                self.spill.send(Job { entries: vec![entry], ack: None }).inspect_err(|e| {
                    self.shared.counters.lost.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, "an audit record is LOST: the journal thread is gone");
                })?;
            }
            Err(_) => return Err(LedgerError::Closed),
        }
        Ok(Accepted { id, durability: Durability::Queued })
    }

    /// Returns once the record is durable: committed in the database, or (queue full, database down) fsync'd
    /// to the journal.
    pub async fn record_durable(&self, record: AuditRecord) -> Result<Accepted> {
        let entry = new_entry(record);
        let (ack, acked) = oneshot::channel();
        match self.tx.try_send(Msg::Record(entry.clone(), Some(ack))) {
            Ok(()) => {
                self.shared.counters.queued.fetch_add(1, Ordering::Relaxed);
                match acked.await {
                    Ok(Ok(durability)) => Ok(Accepted { id: entry.id, durability }),
                    Ok(Err(e)) => Err(e),
                    // The writer is gone (runtime shutting down): keep the record ourselves.
                    Err(_) => self.spill(entry).await,
                }
            }
            Err(_) => self.spill(entry).await,
        }
    }

    /// Waits until everything accepted before the call is in the database or the journal, and (when the
    /// database answers) the journal has been replayed.
    pub async fn flush(&self) -> Result<()> {
        // A barrier through the journal thread first: earlier spills are then on disk for the replay.
        self.spill.write(Vec::new()).await?;
        let (done, finished) = oneshot::channel();
        self.tx.send(Msg::Flush(done)).await.map_err(|_| LedgerError::Closed)?;
        finished.await.map_err(|_| LedgerError::Closed)
    }

    pub fn counters(&self) -> &AuditCounters {
        &self.shared.counters
    }

    pub fn stats(&self) -> AuditStats {
        let c = &self.shared.counters;
        AuditStats {
            queued: c.queued.load(Ordering::Relaxed),
            written: c.written.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            journaled: c.journaled.load(Ordering::Relaxed),
            replayed: c.replayed.load(Ordering::Relaxed),
            lost: c.lost.load(Ordering::Relaxed),
            queue_depth: self.queue_depth(),
            queue_capacity: self.shared.capacity as u64,
            journal_pending: self.shared.journal.pending(),
        }
    }

    fn queue_depth(&self) -> u64 {
        self.shared.capacity.saturating_sub(self.tx.capacity()) as u64
    }

    pub fn health(&self) -> AuditHealth {
        let queue_depth = self.queue_depth();
        let journal_pending = self.shared.journal.pending();
        let last_error = self.shared.last_error.lock().ok().and_then(|e| e.clone());
        let journal = self.shared.journal.path().display();
        let (state, message) = if self.shared.failing.load(Ordering::Relaxed) {
            (
                HealthState::Failing,
                format!(
                    "writing audit records to the database fails ({}); {journal_pending} records are kept in the \
                     journal {journal} and retried",
                    last_error.as_deref().unwrap_or("unknown error")
                ),
            )
        } else if journal_pending > 0 || queue_depth * 2 > self.shared.capacity as u64 {
            (
                HealthState::Behind,
                format!("audit records are behind: {queue_depth} queued, {journal_pending} in the journal {journal}"),
            )
        } else {
            (HealthState::Healthy, "audit records are written to the database".to_string())
        };
        AuditHealth { state, message, last_error, queue_depth, journal_pending }
    }

    /// The journal path (for messages and operators' runbooks).
    pub fn journal_path(&self) -> &std::path::Path {
        self.shared.journal.path()
    }

    async fn spill(&self, entry: AuditEntry) -> Result<Accepted> {
        let id = entry.id.clone();
        self.spill.write(vec![entry]).await?;
        Ok(Accepted { id, durability: Durability::Journaled })
    }
}

fn new_entry(record: AuditRecord) -> AuditEntry {
    AuditEntry { id: uuid::Uuid::now_v7().to_string(), record }
}

impl Shared {
    fn set_failing(&self, err: &LedgerError) {
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::error!(error = %err, "writing audit records fails; journaling them and retrying");
        }
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(err.to_string());
        }
    }

    fn set_healthy(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("audit records reach the database again");
        }
    }
}

struct Writer {
    ledger: Ledger,
    shared: Arc<Shared>,
    spill: Spill,
    options: AuditLogOptions,
}

impl Writer {
    async fn run(self, mut rx: mpsc::Receiver<Msg>) {
        let mut last_replay = tokio::time::Instant::now();
        loop {
            let first = if self.shared.journal.pending() > 0 {
                tokio::select! {
                    msg = rx.recv() => msg,
                    () = tokio::time::sleep_until(last_replay + self.options.retry_interval) => {
                        self.replay().await;
                        last_replay = tokio::time::Instant::now();
                        continue;
                    }
                }
            } else {
                rx.recv().await
            };
            let Some(first) = first else { break };
            let mut batch = Vec::new();
            let mut flushes = Vec::new();
            let mut next = Some(first);
            let linger_until = tokio::time::Instant::now() + self.options.linger;
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Record(entry, ack) => batch.push((entry, ack)),
                    Msg::Flush(done) => flushes.push(done),
                }
                if batch.len() < self.options.max_batch.max(1) {
                    next = match rx.try_recv() {
                        Ok(msg) => Some(msg),
                        // A flush is waited for: write now. Otherwise wait briefly for company.
                        Err(_) if flushes.is_empty() => {
                            tokio::time::timeout_at(linger_until, rx.recv()).await.ok().flatten()
                        }
                        Err(_) => None,
                    };
                }
            }
            if !batch.is_empty() {
                self.write(batch).await;
            }
            // Also under steady traffic (the idle timer above would never fire then).
            let due = !flushes.is_empty() || last_replay.elapsed() >= self.options.retry_interval;
            if due && self.shared.journal.pending() > 0 {
                self.replay().await;
                last_replay = tokio::time::Instant::now();
            }
            for done in flushes {
                let _ = done.send(());
            }
        }
    }

    async fn write(&self, batch: Vec<(AuditEntry, Option<oneshot::Sender<Result<Durability>>>)>) {
        let (entries, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let n = entries.len() as u64;
        // While the database is known to be down (or hung), straight to the journal: the replay every
        // `retry_interval` is the probe, and a queue behind a hung insert drains at once.
        let attempts =
            if self.shared.failing.load(Ordering::Relaxed) { 0 } else { self.options.insert_attempts.max(1) };
        let mut backoff = self.options.retry_backoff;
        for attempt in 1..=attempts {
            match self.ledger.insert_audit_batch_within(&entries, self.options.write_timeout).await {
                Ok(_) => {
                    self.shared.counters.written.fetch_add(n, Ordering::Relaxed);
                    self.shared.set_healthy();
                    for ack in acks.into_iter().flatten() {
                        let _ = ack.send(Ok(Durability::Committed));
                    }
                    return;
                }
                Err(e) => {
                    self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                    self.shared.set_failing(&e);
                    // A hung insert is not retried: that would multiply the wait.
                    if matches!(e, LedgerError::TimedOut { .. }) {
                        break;
                    }
                    if attempt < attempts {
                        self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                    }
                }
            }
        }
        let outcome = self.spill.write(entries).await;
        for ack in acks.into_iter().flatten() {
            let _ = ack.send(match &outcome {
                Ok(()) => Ok(Durability::Journaled),
                Err(e) => Err(LedgerError::Journal {
                    path: self.shared.journal.path().display().to_string(),
                    cause: e.to_string(),
                }),
            });
        }
    }

    async fn replay(&self) {
        if self.shared.failing.load(Ordering::Relaxed) {
            self.shared.counters.retries.fetch_add(1, Ordering::Relaxed);
        }
        match self.shared.journal.replay(&self.ledger, self.options.max_batch, self.options.write_timeout).await {
            Ok(done) => {
                self.shared.counters.replayed.fetch_add(done.inserted, Ordering::Relaxed);
                self.shared.counters.written.fetch_add(done.inserted, Ordering::Relaxed);
                if done.lines > 0 {
                    tracing::info!(records = done.inserted, torn_lines = done.corrupt, "audit journal replayed");
                }
                self.shared.set_healthy();
            }
            Err(e) => {
                self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
                self.shared.set_failing(&e);
            }
        }
    }
}
