//! PostgreSQL stopped while records are written: health says so, counters show the failures and retries,
//! records go to the journal, and after the restart every record arrives.

use super::db::eventually;
use atlantiplex_operator::ledger::{
    AuditLog, AuditLogOptions, AuditRecord, AuditResult, Durability, HealthState, Ledger, LedgerOptions,
};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_then_back() {
    // A server of its own: this test stops it.
    let mut server = pgserver::PgServer::start().unwrap_or_else(|e| panic!("PostgreSQL for the ledger tests: {e:#}"));
    let url = server.create_database("outage").unwrap();
    let options = LedgerOptions { connect_timeout: Duration::from_secs(1), ..Default::default() };
    let ledger = Ledger::connect_with(&url, &options).await.unwrap();
    let mut audit = AuditLogOptions::new(server.dir().join("audit.journal"));
    audit.retry_interval = Duration::from_millis(200);
    let log = AuditLog::start(ledger.clone(), audit).await.unwrap();
    let rec =
        |i: usize| AuditRecord::new("alice", "acme", "Organization", format!("o{i}"), "update", AuditResult::Allowed);
    for i in 0..50 {
        log.record(rec(i)).unwrap();
    }
    log.flush().await.unwrap();
    assert_eq!(ledger.count_audit(None).await.unwrap(), 50);

    server.stop().unwrap();
    for i in 50..150 {
        log.record(rec(i)).unwrap();
    }
    eventually(Duration::from_secs(30), "health Failing", || async { log.health().state == HealthState::Failing })
        .await;
    // While the database is down an acknowledgement means: in the journal, fsync'd.
    let durable = log.record_durable(rec(150)).await.unwrap();
    assert_eq!(durable.durability, Durability::Journaled);
    let health = log.health();
    assert!(health.message.contains("audit.journal"), "{health:?}");
    assert!(health.last_error.is_some(), "{health:?}");
    eventually(Duration::from_secs(30), "retries while down", || async { log.stats().retries >= 2 }).await;
    let down = log.stats();
    assert!(down.failed > 0 && down.journaled > 0 && down.journal_pending > 0, "{down:?}");

    server.start_again().unwrap();
    // Steady traffic meanwhile (a record every 10 ms, well inside the retry interval): the journal is
    // replayed all the same, not only when the writer is idle.
    let traffic = {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                log.record(rec(1000 + i)).unwrap();
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    eventually(Duration::from_secs(30), "the journal replayed", || async { log.stats().journal_pending == 0 }).await;
    assert!(!traffic.is_finished(), "replayed only after the traffic stopped");
    traffic.await.unwrap();
    log.flush().await.unwrap();
    eventually(Duration::from_secs(30), "all 451 records stored", || async {
        ledger.count_audit(None).await.is_ok_and(|n| n == 451)
    })
    .await;
    eventually(Duration::from_secs(10), "health Healthy", || async { log.health().state == HealthState::Healthy })
        .await;
    let after = log.stats();
    assert_eq!((after.lost, after.journal_pending), (0, 0), "{after:?}");
    assert!(after.replayed > 0, "{after:?}");
}
