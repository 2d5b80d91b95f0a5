//! The ledger against real databases: every case runs on SQLite (a temporary file) and on PostgreSQL (a server
//! this test binary starts itself; see crates/pgserver). No Kubernetes needed.

#[path = "ledger/bad_input.rs"]
mod bad_input;
#[path = "ledger/db.rs"]
mod db;
#[path = "ledger/kill9.rs"]
mod kill9;
#[path = "ledger/outage.rs"]
mod outage;
#[path = "ledger/storage.rs"]
mod storage;
#[path = "ledger/stores.rs"]
mod stores;
#[path = "ledger/usage.rs"]
mod usage;
#[path = "ledger/usage_read.rs"]
mod usage_read;
#[path = "ledger/web_sessions.rs"]
mod web_sessions;

use atlantiplex_operator::ledger::{
    self, AuditEntry, AuditLog, AuditQuery, AuditRecord, AuditResult, Backend, Durability, HealthState, Ledger,
};
use db::{TestDb, eventually};
use jiff::{SignedDuration, Timestamp};
use std::time::Duration;

/// `cases!(a, b)` makes `a::sqlite`, `a::postgres`, `b::sqlite`, `b::postgres`, each calling the case with a
/// fresh database of that backend.
macro_rules! cases {
    ($($($seg:ident)::+ => $name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::$($seg)::+(crate::TestDb::sqlite()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::$($seg)::+(crate::TestDb::postgres()).await
            }
        }
    )*};
}

cases!(
    migrations_are_idempotent => migrations,
    concurrent_connects_migrate_once => concurrent_connect,
    newer_schema_is_refused => newer_schema,
    audit_records_are_queried => audit_query,
    durable_records_are_committed => audit_durable,
    full_queue_spills_to_the_journal => queue_full,
    journal_is_replayed_at_start => journal_replay,
    retention_deletes_in_batches => retention,
    http_endpoint_serves_queries => http_endpoint,
    kill9::acknowledged_records_survive_kill9 => kill9_burst,
    stores::stripe_events_are_processed_once => stripe_events,
    stores::subscription_history_is_kept => subscription_history,
    stores::invoices_are_upserted => invoices,
    usage::events_are_stored_once_and_rolled_up => usage_events,
    usage::concurrent_batches_count_each_event_once => usage_concurrent,
    usage::storage_windows_are_replaced => usage_storage,
    usage::pushes_are_recorded_once => meter_pushes,
    usage::billing_periods_are_kept_until_reconciled => billing_periods,
    storage::samples_make_the_storage_windows => storage_samples,
    storage::old_samples_are_pruned_but_the_one_in_force_stays => storage_prune,
    usage_read::every_meter_and_organization_is_read_back => usage_read_back,
    stores::api_keys_store_only_hashes => api_keys,
    stores::rate_limits_hold_under_concurrent_bursts => rate_limits,
    stores::settings_round_trip => settings,
    web_sessions::sign_ins_are_taken_once_and_sessions_found_by_hash => web_session_store,
    bad_input::newer_schema_stops_the_binary => newer_schema_binary,
);

fn record(org: &str, actor: &str, object: &str, ago: SignedDuration) -> AuditRecord {
    let mut r = AuditRecord::new(actor, org, "Organization", object, "update", AuditResult::Allowed);
    r.at = Timestamp::now() - ago;
    r
}

async fn migrations_are_idempotent(db: TestDb) {
    let ledger = db.ledger().await;
    assert_eq!(ledger.schema_version().await.unwrap(), ledger::LATEST_VERSION);
    assert_eq!(ledger.backend(), db.backend);
    ledger.close().await;
    // Opening again applies nothing and keeps the data.
    let ledger = db.ledger().await;
    ledger.set_setting("", "k", "v").await.unwrap();
    let again = db.ledger().await;
    assert_eq!(again.setting("", "k").await.unwrap().as_deref(), Some("v"));
    for table in [
        "audit_log",
        "stripe_events",
        "subscription_history",
        "invoices",
        "usage_events",
        "usage_hourly",
        "meter_pushes",
        "storage_samples",
        "billing_periods",
        "api_keys",
    ] {
        let n: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(again.pool()).await.unwrap();
        assert_eq!(n, 0, "{table}");
    }
}

async fn concurrent_connects_migrate_once(db: TestDb) {
    // Two replicas starting at once on a fresh database: both succeed, the migration runs once.
    let (a, b, c) = tokio::join!(Ledger::connect(&db.url), Ledger::connect(&db.url), Ledger::connect(&db.url));
    let (a, _b, _c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(a.pool()).await.unwrap();
    assert_eq!(rows, ledger::LATEST_VERSION);
}

/// Marks the database as migrated by a future binary.
pub async fn apply_future_migration(ledger: &Ledger, version: i64) {
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, 'from a newer binary', $2, $3, 0)",
    )
    .bind(version)
    .bind(true)
    .bind(vec![0u8; 48])
    .execute(ledger.pool())
    .await
    .unwrap();
}

async fn newer_schema_is_refused(db: TestDb) {
    let ledger = db.ledger().await;
    apply_future_migration(&ledger, 20990101000000).await;
    ledger.close().await;
    let err = Ledger::connect(&db.url).await.unwrap_err();
    assert_eq!(err.category(), "schema_too_new", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("schema version 20990101000000"), "{msg}");
    assert!(msg.contains(&format!("knows versions up to {}", ledger::LATEST_VERSION)), "{msg}");
    assert!(msg.contains("Upgrade this binary"), "{msg}");
}

async fn audit_records_are_queried(db: TestDb) {
    let ledger = db.ledger().await;
    let log = db.audit_log(&ledger).await;
    let h = SignedDuration::from_hours;
    for r in [
        record("acme", "alice", "a1", h(2)),
        record("acme", "bob", "a2", SignedDuration::from_mins(30)),
        record("acme", "alice", "a3", h(25)),
        record("globex", "alice", "g1", h(1)),
    ] {
        assert_eq!(log.record(r).unwrap().durability, Durability::Queued);
    }
    log.flush().await.unwrap();
    let objects = |entries: Vec<AuditEntry>| entries.into_iter().map(|e| e.record.object).collect::<Vec<_>>();
    let acme = AuditQuery { organization: Some("acme".into()), ..Default::default() };
    assert_eq!(objects(ledger.query_audit(&acme).await.unwrap()), ["a2", "a1", "a3"], "newest first");
    let since = AuditQuery { since: Some(Timestamp::now() - h(24)), ..acme.clone() };
    assert_eq!(objects(ledger.query_audit(&since).await.unwrap()), ["a2", "a1"]);
    let until = AuditQuery { until: Some(Timestamp::now() - h(1)), ..acme.clone() };
    assert_eq!(objects(ledger.query_audit(&until).await.unwrap()), ["a1", "a3"]);
    let alice = AuditQuery { actor: Some("alice".into()), ..Default::default() };
    assert_eq!(objects(ledger.query_audit(&alice).await.unwrap()), ["g1", "a1", "a3"]);
    let one = AuditQuery { limit: Some(1), ..acme.clone() };
    assert_eq!(objects(ledger.query_audit(&one).await.unwrap()), ["a2"]);
    // Every field survives the round trip.
    let stored = ledger.query_audit(&one).await.unwrap().remove(0);
    assert_eq!(stored.record.actor, "bob");
    assert_eq!(stored.record.kind, "Organization");
    assert_eq!(stored.record.result, AuditResult::Allowed);
    let stats = log.stats();
    assert_eq!((stats.queued, stats.written, stats.failed, stats.lost, stats.queue_depth), (4, 4, 0, 0, 0));
    assert_eq!(log.health().state, HealthState::Healthy);
}

async fn durable_records_are_committed(db: TestDb) {
    let ledger = db.ledger().await;
    let log = db.audit_log(&ledger).await;
    let denied = AuditRecord::new("bob", "acme", "Team", "acme.video", "create", AuditResult::Denied)
        .with_reason("plan free allows 2 teams");
    let accepted = log.record_durable(denied.clone()).await.unwrap();
    assert_eq!(accepted.durability, Durability::Committed);
    // Visible to another connection at once: it was committed before the acknowledgement.
    let other = db.ledger().await;
    assert!(other.audit_exists(&accepted.id).await.unwrap());
    let stored = other.query_audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].record.reason, "plan free allows 2 teams");
    assert_eq!(stored[0].record.result, AuditResult::Denied);
}

/// Blocks writers to the audit table until the returned transaction ends.
async fn hold_write_lock(ledger: &Ledger) -> sqlx::Transaction<'static, sqlx::Any> {
    let mut tx = ledger.pool().begin().await.unwrap();
    let sql = match ledger.backend() {
        Backend::Postgres => "LOCK TABLE audit_log IN EXCLUSIVE MODE",
        // SQLite has one writer at a time: any write takes the lock.
        Backend::Sqlite => "INSERT INTO settings (organization, name, value, updated_at_us) VALUES ('', 'lock', '', 0)",
    };
    sqlx::query(sql).execute(&mut *tx).await.unwrap();
    tx
}

async fn full_queue_spills_to_the_journal(db: TestDb) {
    let ledger = db.ledger().await;
    let mut options = db.audit_options();
    options.queue_capacity = 8;
    options.max_batch = 4;
    // PostgreSQL waits for the lock without end: the writer gives the batch up after this.
    options.write_timeout = Duration::from_secs(1);
    let log = AuditLog::start(ledger.clone(), options).await.unwrap();
    let lock = hold_write_lock(&ledger).await;
    for i in 0..200 {
        let accepted = log.record(record("acme", "alice", &format!("o{i}"), SignedDuration::ZERO)).unwrap();
        assert_eq!(accepted.durability, Durability::Queued, "fire and forget, also when spilled");
    }
    // The writer is stuck behind the lock: at most the queue and the batch in flight stay in memory, the rest
    // goes to the journal.
    eventually(Duration::from_secs(10), "records journaled", || async { log.stats().journaled >= 200 - 8 - 4 }).await;
    assert!(log.stats().journal_pending > 0);
    assert_ne!(log.health().state, HealthState::Healthy);
    // record_durable with the writer stuck: acknowledged once fsync'd to the journal (straight away when the
    // queue is full, else after the writer gives up on the hung insert).
    let durable = log.record_durable(record("acme", "bob", "d", SignedDuration::ZERO)).await.unwrap();
    assert_eq!(durable.durability, Durability::Journaled);
    tokio::time::sleep(Duration::from_millis(300)).await;
    lock.commit().await.unwrap();
    log.flush().await.unwrap();
    assert_eq!(ledger.count_audit(Some("acme")).await.unwrap(), 201);
    let stats = log.stats();
    assert_eq!((stats.lost, stats.journal_pending, stats.queue_depth), (0, 0, 0), "{stats:?}");
    // A batch given up on may still commit once the lock is released, unseen by the writer.
    assert!(stats.replayed >= 200 - 8 - 4 && stats.written <= 201, "{stats:?}");
    assert_eq!(log.health().state, HealthState::Healthy);
    assert!(!log.journal_path().exists(), "the replayed journal is removed");
}

async fn journal_is_replayed_at_start(db: TestDb) {
    let ledger = db.ledger().await;
    // What an earlier run left: two journaled records and a line torn by a crash mid-append.
    let entries: Vec<AuditEntry> = (0..2)
        .map(|i| AuditEntry {
            id: format!("0190-journaled-{i}"),
            record: record("acme", "system:operator", &format!("j{i}"), SignedDuration::ZERO),
        })
        .collect();
    let mut text = String::new();
    for e in &entries {
        text.push_str(&serde_json::to_string(e).unwrap());
        text.push('\n');
    }
    text.push_str(r#"{"id":"torn","at":"2026-"#);
    std::fs::write(db.journal(), text).unwrap();
    let log = db.audit_log(&ledger).await;
    // Replayed before start() returns.
    for e in &entries {
        assert!(ledger.audit_exists(&e.id).await.unwrap(), "{} replayed", e.id);
    }
    assert_eq!(ledger.count_audit(None).await.unwrap(), 2);
    assert_eq!(log.stats().replayed, 2);
    assert_eq!(log.stats().journal_pending, 0);
    assert!(!db.journal().exists());
    // Replaying the same records again (a crash after insert, before the file was removed) adds nothing.
    assert_eq!(ledger.insert_audit_batch(&entries).await.unwrap(), 0);
}

async fn retention_deletes_in_batches(db: TestDb) {
    let ledger = db.ledger().await;
    let now = Timestamp::now();
    let old: Vec<AuditEntry> = (0..12_345)
        .map(|i| AuditEntry {
            id: format!("old-{i:05}"),
            record: record("acme", "alice", "x", SignedDuration::from_hours(24 * 401) + SignedDuration::from_secs(i)),
        })
        .collect();
    let recent: Vec<AuditEntry> = (0..10)
        .map(|i| AuditEntry {
            id: format!("new-{i}"),
            record: record("acme", "alice", "x", SignedDuration::from_hours(24 * 399)),
        })
        .collect();
    assert_eq!(ledger.insert_audit_batch(&old).await.unwrap(), 12_345);
    assert_eq!(ledger.insert_audit_batch(&recent).await.unwrap(), 10);
    assert_eq!(ledger.apply_audit_retention(400, now).await.unwrap(), 12_345);
    assert_eq!(ledger.count_audit(None).await.unwrap(), 10);
    assert_eq!(ledger.apply_audit_retention(400, now).await.unwrap(), 0);
    // Smaller batches reach the same end.
    assert_eq!(ledger.delete_audit_before(now, 3).await.unwrap(), 10);
    assert!(ledger.apply_audit_retention(0, now).await.is_err(), "0 days is refused");
}

async fn http_endpoint_serves_queries(db: TestDb) {
    use tower::ServiceExt;
    let ledger = db.ledger().await;
    let entries = vec![
        AuditEntry { id: "h1".into(), record: record("acme", "alice", "a", SignedDuration::from_hours(2)) },
        AuditEntry { id: "h2".into(), record: record("acme", "bob", "b", SignedDuration::from_hours(48)) },
        AuditEntry { id: "h3".into(), record: record("globex", "carol", "c", SignedDuration::from_hours(1)) },
    ];
    ledger.insert_audit_batch(&entries).await.unwrap();
    let get = |uri: &str| {
        let app = ledger::http::router(ledger.clone());
        let request = axum::http::Request::get(uri).body(axum::body::Body::empty()).unwrap();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
        }
    };
    let (status, body) = get("/api/v1/audit?org=acme&since=24h").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 1);
    assert_eq!(body["records"][0]["id"], "h1");
    assert_eq!(body["records"][0]["organization"], "acme");
    assert_eq!(body["records"][0]["result"], "allowed");
    let (_, body) = get("/api/v1/audit?org=acme").await;
    assert_eq!(body["count"], 2);
    let (_, body) = get("/api/v1/audit?limit=1").await;
    assert_eq!(body["records"][0]["id"], "h3");
    let (status, body) = get("/api/v1/audit?since=yesterday").await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("RFC 3339"), "{body}");
}
