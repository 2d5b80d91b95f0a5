//! Contract: every Stripe request the operator makes, sent through the operator's own client code
//! to stripe-mock (Stripe's OpenAPI-driven mock), is accepted, and its response parses.

use atlantiplex_operator::api::{BillingInterval, Price};
use atlantiplex_operator::billing::stripe::{NewSubscription, PriceChange, Proration, StripeApi};
use atlantiplex_operator::metrics::Metrics;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct StripeMock(Child);

impl Drop for StripeMock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn stripe_mock_binary() -> std::path::PathBuf {
    let cache = std::env::var_os("ATLANTIPLEX_TOOLS_CACHE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/atlantiplex-tools"));
    let bin = cache.join("bin/stripe-mock");
    assert!(bin.exists(), "stripe-mock not found at {}: run `make tools`", bin.display());
    bin
}

fn start_stripe_mock() -> (StripeMock, u16) {
    let port = devcluster::free_port().expect("free port");
    let child = Command::new(stripe_mock_binary())
        .args(["-http-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("stripe-mock starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "stripe-mock did not listen within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    (StripeMock(child), port)
}

#[tokio::test]
async fn every_request_the_operator_makes_is_accepted_by_stripe_mock_and_parses() {
    let (_mock, port) = start_stripe_mock();
    let metrics = Arc::new(Metrics::new());
    let api = StripeApi::new("sk_test_123", Some(&format!("http://127.0.0.1:{port}/")), metrics.clone()).expect("client");
    let price = Price { amount_cents: 2999, currency: "usd".into(), interval: BillingInterval::Month };
    let metadata = |k: &str| [(format!("atlantiplex_{k}"), "x".to_string())].into_iter().collect();

    api.find_price("atlantiplex-professional-2999-usd-month").await.expect("list prices");
    let price_id = api.create_price("professional", "Professional", &price, "atlantiplex-professional-2999-usd-month").await.expect("create price");
    api.find_customer("billing@acme.example", "uid-1").await.expect("list customers");
    let customer = api.create_customer("billing@acme.example", "Acme", metadata("organization"), "atlantiplex-customer-uid-1").await.expect("create customer");
    api.update_customer_email(&customer, "new@acme.example").await.expect("update customer");
    api.customer_subscriptions(&customer).await.expect("list subscriptions");
    let new = NewSubscription {
        customer: &customer,
        price: &price_id,
        trial_days: Some(14),
        metadata: metadata("subscription_uid"),
        idempotency_key: "atlantiplex-subscription-uid-2-1".into(),
    };
    let created = api.create_subscription(new).await.expect("create subscription");
    let retrieved = api.retrieve_subscription(&created.id).await.expect("retrieve subscription");
    for proration in [Proration::InvoiceNow, Proration::NextInvoice, Proration::None] {
        let change = PriceChange {
            subscription: &retrieved.id,
            item: retrieved.item_id.as_deref().unwrap_or("si_123"),
            price: &price_id,
            proration,
            metadata: metadata("plan"),
            idempotency_key: format!("atlantiplex-change-uid-2-{proration:?}"),
        };
        api.change_price(change).await.expect("update subscription (price change)");
    }
    api.cancel_at_period_end(&created.id, true).await.expect("update subscription (cancel at period end)");
    api.cancel_subscription(&created.id).await.expect("cancel subscription");

    let text = metrics.encode();
    assert!(!text.contains("result=\"error\"") && !text.contains("result=\"refused\""), "{text}");
    for operation in ["list_prices", "create_price", "list_customers", "create_customer", "update_customer", "list_subscriptions", "create_subscription", "retrieve_subscription", "update_subscription", "cancel_subscription"] {
        assert!(text.contains(&format!("operation=\"{operation}\",result=\"success\"")), "{operation} not counted: {text}");
    }
}
