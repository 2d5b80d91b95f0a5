//! The stores the billing and metering work uses, on both backends.

use super::TestDb;
use atlantiplex_operator::keys::{self, Hasher};
use atlantiplex_operator::ledger::{Invoice, NewApiKey, SubscriptionChange};
use jiff::{SignedDuration, Timestamp};

pub async fn stripe_events_are_processed_once(db: TestDb) {
    let ledger = db.ledger().await;
    assert!(ledger.mark_stripe_event_processed("evt_1", "acme", "invoice.paid").await.unwrap());
    assert!(!ledger.mark_stripe_event_processed("evt_1", "acme", "invoice.paid").await.unwrap(), "redelivery");
    assert!(ledger.mark_stripe_event_processed("evt_2", "acme", "customer.subscription.updated").await.unwrap());
    assert!(ledger.stripe_event_processed("evt_2").await.unwrap());
    assert!(!ledger.stripe_event_processed("evt_3").await.unwrap());
}

fn change(id: &str, org: &str, at: Timestamp, plan: &str, state: &str, cents: i64) -> SubscriptionChange {
    SubscriptionChange {
        id: id.into(),
        organization: org.into(),
        at,
        plan: plan.into(),
        state: state.into(),
        price_cents: cents,
        currency: "usd".into(),
        billing_interval: "month".into(),
        reason: String::new(),
    }
}

pub async fn subscription_history_is_kept(db: TestDb) {
    let ledger = db.ledger().await;
    let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let day = SignedDuration::from_hours(24);
    assert!(ledger.record_subscription_change(&change("c1", "acme", t0, "starter", "trialing", 999)).await.unwrap());
    assert!(
        ledger
            .record_subscription_change(&change("c2", "acme", t0 + day * 14, "starter", "active", 999))
            .await
            .unwrap()
    );
    assert!(
        ledger
            .record_subscription_change(&change("c3", "acme", t0 + day * 40, "professional", "active", 2999))
            .await
            .unwrap()
    );
    assert!(
        ledger
            .record_subscription_change(&change("g1", "globex", t0 + day, "enterprise", "active", 9999))
            .await
            .unwrap()
    );
    assert!(!ledger.record_subscription_change(&change("c3", "acme", t0, "x", "x", 0)).await.unwrap(), "same id");
    let acme = ledger.subscription_history(Some("acme"), t0, t0 + day * 365).await.unwrap();
    assert_eq!(acme.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c1", "c2", "c3"]);
    assert_eq!(acme[2].price_cents, 2999);
    assert_eq!(acme[1].at, t0 + day * 14);
    let january = ledger.subscription_history(None, t0, t0 + day * 31).await.unwrap();
    assert_eq!(january.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["c1", "g1", "c2"]);
    let then = ledger.subscription_at("acme", t0 + day * 20).await.unwrap().unwrap();
    assert_eq!((then.plan.as_str(), then.state.as_str()), ("starter", "active"));
    assert!(ledger.subscription_at("acme", t0 - day).await.unwrap().is_none());
}

pub async fn invoices_are_upserted(db: TestDb) {
    let ledger = db.ledger().await;
    let t0: Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
    let mut invoice = Invoice {
        stripe_invoice_id: "in_1".into(),
        organization: "acme".into(),
        number: None,
        status: "draft".into(),
        currency: "usd".into(),
        amount_due_cents: 2999,
        amount_paid_cents: 0,
        period_start: t0,
        period_end: t0 + SignedDuration::from_hours(24 * 28),
        created_at: t0,
        hosted_url: None,
    };
    ledger.upsert_invoice(&invoice).await.unwrap();
    invoice.status = "paid".into();
    invoice.number = Some("ACME-0001".into());
    invoice.amount_paid_cents = 2999;
    invoice.hosted_url = Some("https://invoice.example/in_1".into());
    ledger.upsert_invoice(&invoice).await.unwrap();
    let mut older = invoice.clone();
    older.stripe_invoice_id = "in_0".into();
    older.created_at = t0 - SignedDuration::from_hours(24 * 31);
    ledger.upsert_invoice(&older).await.unwrap();
    let listed = ledger.invoices("acme", 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], invoice, "newest first, the latest state");
    assert_eq!(listed[1].stripe_invoice_id, "in_0");
    assert!(ledger.invoices("globex", 10).await.unwrap().is_empty());
}

pub async fn api_keys_store_only_hashes(db: TestDb) {
    let ledger = db.ledger().await;
    let hasher = Hasher::new(&[9u8; 32]).unwrap();
    let secret = keys::generate().unwrap();
    let hash = hasher.hash(&secret);
    let prefix = keys::display_prefix(&secret);
    let new = |id: &'static str, hash: &'static str| NewApiKey {
        id,
        organization: "acme",
        name: "ci",
        prefix: "atp_live_abcd",
        hash,
        scopes: "read",
        origin: "api",
        created_by: "alice",
        expires_at: None,
    };
    let hash: &'static str = Box::leak(hash.into_boxed_str());
    let before = jiff::Timestamp::now();
    let stored = ledger.insert_api_key(&NewApiKey { prefix: &prefix, ..new("key1", hash) }).await.unwrap();
    assert_eq!((stored.id.as_str(), stored.organization.as_str(), stored.scopes.as_str()), ("key1", "acme", "read"));
    let found = ledger.find_api_key(hash).await.unwrap().unwrap();
    assert_eq!(found, stored);
    assert!(found.revoked_at.is_none() && found.last_used_at.is_none());
    assert!(ledger.find_api_key(&hasher.hash("wrong")).await.unwrap().is_none());
    // The secret itself is nowhere in the table.
    let stored: Vec<String> = sqlx::query_scalar("SELECT hash FROM api_keys").fetch_all(ledger.pool()).await.unwrap();
    assert!(stored.iter().all(|h| !h.contains(&secret[9..])));
    assert!(ledger.insert_api_key(&new("key2", hash)).await.is_err(), "hashes are unique");
    // Last use is recorded without counting as a change replicas must pick up.
    let used = jiff::Timestamp::now();
    ledger.touch_api_keys(&[("key1".to_string(), used)]).await.unwrap();
    let touched = ledger.api_key("acme", "key1").await.unwrap().unwrap();
    assert_eq!(touched.last_used_at.map(|t| t.as_microsecond()), Some(used.as_microsecond()));
    assert_eq!(touched.updated_at, found.updated_at);
    assert!(!ledger.revoke_api_key("globex", "key1").await.unwrap(), "another organization's key");
    assert!(ledger.revoke_api_key("acme", "key1").await.unwrap());
    assert!(!ledger.revoke_api_key("acme", "key1").await.unwrap(), "revoked once");
    assert!(ledger.find_api_key(hash).await.unwrap().unwrap().revoked_at.is_some());
    let changed = ledger.api_keys_changed_since(Some(before)).await.unwrap();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].revoked_at.is_some());
    assert_eq!(ledger.api_keys("acme").await.unwrap().len(), 1);
    // A declared key: stored once, updated when its scopes change, unchanged rows not rewritten.
    let declared = NewApiKey { origin: "ApiKey/ci", ..new("uid-1", "h-declared") };
    ledger.upsert_declared_api_key(&declared).await.unwrap();
    let first = ledger.api_key("acme", "uid-1").await.unwrap().unwrap();
    ledger.upsert_declared_api_key(&declared).await.unwrap();
    assert_eq!(ledger.api_key("acme", "uid-1").await.unwrap().unwrap(), first);
    ledger.upsert_declared_api_key(&NewApiKey { scopes: "read usage:write", ..declared.clone() }).await.unwrap();
    assert_eq!(ledger.api_key("acme", "uid-1").await.unwrap().unwrap().scopes, "read usage:write");
}

pub async fn settings_round_trip(db: TestDb) {
    let ledger = db.ledger().await;
    assert_eq!(ledger.setting("acme", "theme").await.unwrap(), None);
    ledger.set_setting("acme", "theme", "dark").await.unwrap();
    ledger.set_setting("acme", "theme", "light").await.unwrap();
    ledger.set_setting("", "theme", "system").await.unwrap();
    assert_eq!(ledger.setting("acme", "theme").await.unwrap().as_deref(), Some("light"));
    assert_eq!(ledger.setting("", "theme").await.unwrap().as_deref(), Some("system"));
}

/// DESIGN.md §9.3's statement under concurrent bursts: 64 requests at once for a key with a burst of 10
/// and a one-minute interval → exactly 10 pass, on connections racing for the same row; SQLite refuses
/// with a message (one replica limits in process).
pub async fn rate_limits_hold_under_concurrent_bursts(db: TestDb) {
    let ledger = db.ledger().await;
    let (interval, tolerance) = (60_000_000, 9 * 60_000_000);
    if db.backend == atlantiplex_operator::ledger::Backend::Sqlite {
        let err = ledger.take_rate_limit("acme", interval, tolerance).await.unwrap_err();
        assert!(err.to_string().contains("PostgreSQL"), "{err}");
        return;
    }
    let takes = (0..64).map(|_| {
        let ledger = ledger.clone();
        tokio::spawn(async move { ledger.take_rate_limit("acme", interval, tolerance).await.unwrap() })
    });
    let results = futures::future::join_all(takes).await;
    let allowed = results.iter().filter(|r| r.as_ref().unwrap().allowed).count();
    assert_eq!(allowed, 10, "exactly the burst passes");
    let refused = results.iter().map(|r| r.as_ref().unwrap()).find(|t| !t.allowed).unwrap();
    assert!(refused.tat_us - refused.now_us > tolerance, "a refusal reports the TAT that refused it");
    // Another key is untouched.
    assert!(ledger.take_rate_limit("globex", interval, tolerance).await.unwrap().allowed);
}
