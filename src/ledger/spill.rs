//! The journal's writer thread: records the database cannot take are handed here and appended to the journal
//! in groups, one fsync per group (group commit), on a thread of its own — so a flood of spills neither costs
//! one fsync per record nor blocks the async runtime's workers (which the database writer needs).

use super::audit::AuditEntry;
use super::error::{LedgerError, Result};
use super::journal::Journal;
use super::writer::AuditCounters;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use tokio::sync::oneshot;

/// Jobs waiting for the thread; beyond this the sender waits for the disk (the last resort of back-pressure).
const BACKLOG: usize = 100_000;
/// Records per append + fsync at most.
const GROUP: usize = 20_000;

pub(crate) struct Job {
    pub entries: Vec<AuditEntry>,
    /// Answered once the entries are fsync'd (or failed); an empty job with an ack is a barrier.
    pub ack: Option<oneshot::Sender<Result<()>>>,
}

#[derive(Clone)]
pub(crate) struct Spill {
    tx: SyncSender<Job>,
}

impl Spill {
    pub(crate) fn start(journal: Arc<Journal>, counters: Arc<AuditCounters>) -> Result<Spill> {
        let (tx, rx) = sync_channel(BACKLOG);
        std::thread::Builder::new()
            .name("audit-journal".into())
            .spawn(move || run(&journal, &counters, rx))
            .map_err(|e| LedgerError::Journal { path: "audit-journal thread".into(), cause: e.to_string() })?;
        Ok(Spill { tx })
    }

    /// Hands entries to the journal thread; returns at once unless it is `BACKLOG` jobs behind.
    pub(crate) fn send(&self, job: Job) -> Result<()> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => self.tx.send(job).map_err(|_| LedgerError::Closed),
            Err(TrySendError::Disconnected(_)) => Err(LedgerError::Closed),
        }
    }

    /// Hands entries over and waits (asynchronously) until they are fsync'd.
    pub(crate) async fn write(&self, entries: Vec<AuditEntry>) -> Result<()> {
        let (ack, done) = oneshot::channel();
        self.send(Job { entries, ack: Some(ack) })?;
        done.await.map_err(|_| LedgerError::Closed)?
    }
}

fn run(journal: &Journal, counters: &AuditCounters, rx: Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut count = jobs[0].entries.len();
        while count < GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.entries.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let entries: Vec<AuditEntry> = jobs.iter_mut().flat_map(|j| std::mem::take(&mut j.entries)).collect();
        let outcome = if entries.is_empty() { Ok(()) } else { journal.append(&entries) };
        let n = entries.len() as u64;
        match &outcome {
            Ok(()) if n > 0 => {
                let before = counters.journaled.fetch_add(n, Ordering::Relaxed);
                // Once per ten thousand, so a flood of spills does not flood the log too.
                if before == 0 || before / 10_000 != (before + n) / 10_000 {
                    tracing::warn!(
                        journal = %journal.path().display(),
                        journaled_total = before + n,
                        "audit records go to the journal (queue full or database failing) until the database catches up"
                    );
                }
            }
            Ok(()) => {}
            Err(e) => {
                counters.lost.fetch_add(n, Ordering::Relaxed);
                tracing::error!(error = %e, records = n, "audit records LOST: the database and the journal both failed");
            }
        }
        for job in jobs {
            if let Some(ack) = job.ack {
                let _ = ack.send(match &outcome {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        Err(LedgerError::Journal { path: journal.path().display().to_string(), cause: e.to_string() })
                    }
                });
            }
        }
    }
}
