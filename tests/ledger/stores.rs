//! The stores the billing and metering work uses, on both backends.

use super::TestDb;
use atlantiplex_operator::ledger::{Invoice, SubscriptionChange, hash_api_key};
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
    let secret = "apx_live_3c1f1d0e9a7b";
    let hash = hash_api_key(secret);
    ledger.insert_api_key("key1", "acme", "ci", &secret[..8], &hash).await.unwrap();
    let found = ledger.find_api_key(&hash).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.organization.as_str(), found.prefix.as_str()), ("key1", "acme", "apx_live"));
    assert!(found.revoked_at.is_none());
    assert!(ledger.find_api_key(&hash_api_key("wrong")).await.unwrap().is_none());
    // The secret itself is nowhere in the table.
    let stored: Vec<String> = sqlx::query_scalar("SELECT hash FROM api_keys").fetch_all(ledger.pool()).await.unwrap();
    assert!(stored.iter().all(|h| !h.contains(secret)));
    assert!(ledger.insert_api_key("key2", "acme", "dup", "x", &hash).await.is_err(), "hashes are unique");
    assert!(!ledger.revoke_api_key("globex", "key1").await.unwrap(), "another organization's key");
    assert!(ledger.revoke_api_key("acme", "key1").await.unwrap());
    assert!(ledger.find_api_key(&hash).await.unwrap().unwrap().revoked_at.is_some());
    assert_eq!(ledger.api_keys("acme").await.unwrap().len(), 1);
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
