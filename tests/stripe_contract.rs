//! Contract: every Stripe request the operator makes, sent through the operator's own client code
//! to stripe-mock (Stripe's OpenAPI-driven mock), is accepted, and its response parses.

use atlantiplex_operator::api::{BillingInterval, Price};
use atlantiplex_operator::billing::items::{ItemChange, metered_prices};
use atlantiplex_operator::billing::meters_api::MeterEvent;
use atlantiplex_operator::billing::stripe::{NewSubscription, PriceChange, Proration, StripeApi, StripeCallError};
use atlantiplex_operator::metrics::Metrics;
use std::sync::Arc;

fn start_stripe_mock() -> (devcluster::StripeMock, u16) {
    let mock = devcluster::StripeMock::start().expect("stripe-mock starts");
    let port = mock.port;
    (mock, port)
}

#[tokio::test]
async fn every_request_the_operator_makes_is_accepted_by_stripe_mock_and_parses() {
    let (_mock, port) = start_stripe_mock();
    let metrics = Arc::new(Metrics::new());
    let api =
        StripeApi::new("sk_test_123", Some(&format!("http://127.0.0.1:{port}/")), metrics.clone()).expect("client");
    let price = Price { amount_cents: 2999, currency: "usd".into(), interval: BillingInterval::Month };
    let metadata = |k: &str| [(format!("atlantiplex_{k}"), "x".to_string())].into_iter().collect();

    api.find_price("atlantiplex-professional-2999-usd-month").await.expect("list prices");
    let price_id = api
        .create_price("professional", "Professional", &price, "atlantiplex-professional-2999-usd-month")
        .await
        .expect("create price");
    api.find_customer("billing@acme.example", "uid-1").await.expect("list customers");
    let customer = api
        .create_customer("billing@acme.example", "Acme", metadata("organization"), "atlantiplex-customer-uid-1")
        .await
        .expect("create customer");
    api.update_customer_email(&customer, "new@acme.example").await.expect("update customer");
    // stripe-mock v0.203.0 answers subscriptions without `items.data[].plan`, a field async-stripe
    // 1.0.0-rc.10 requires (real Stripe still sends it): those answers are accepted (HTTP 200) but
    // cannot parse. `subscription_fixture_differs_only_by_the_legacy_plan_field` pins down exactly that.
    accepted(api.customer_subscriptions(&customer).await, "list subscriptions");
    let new = NewSubscription {
        customer: &customer,
        price: &price_id,
        metered: &["price_metered".to_string()],
        trial_days: Some(14),
        metadata: metadata("subscription_uid"),
        idempotency_key: "atlantiplex-subscription-uid-2-1".into(),
    };
    accepted(api.create_subscription(new).await, "create subscription");
    let sub = "sub_123";
    accepted(api.retrieve_subscription(sub).await, "retrieve subscription");
    for proration in [Proration::InvoiceNow, Proration::NextInvoice, Proration::None] {
        // The flat item to another price, a metered item removed and another added: one update.
        let changes = [
            ItemChange::Replace { id: "si_123".into(), price: price_id.clone() },
            ItemChange::Remove { id: "si_456".into() },
            ItemChange::Add { price: "price_metered".into() },
        ];
        let change = PriceChange {
            subscription: sub,
            changes: &changes,
            proration,
            metadata: metadata("plan"),
            idempotency_key: format!("atlantiplex-change-uid-2-{proration:?}"),
        };
        accepted(api.change_price(change).await, "update subscription (price change)");
    }
    accepted(api.cancel_at_period_end(sub, true).await, "update subscription (cancel at period end)");
    accepted(api.cancel_subscription(sub).await, "cancel subscription");

    // Billing Meters: the meter (found by event name, else created), a graduated metered price on it, a
    // meter event with identifier and timestamp, and the summaries read back at period close.
    api.find_meter("atp_bandwidth").await.expect("list meters");
    let meter = api.create_meter("atp_bandwidth", "Atlantiplex bandwidth (GiB)").await.expect("create meter");
    let plan: atlantiplex_operator::api::Plan =
        serde_yaml::from_str(include_str!("../examples/plans.yaml").split("---").nth(1).expect("starter"))
            .expect("plan");
    let metered = metered_prices("starter", &plan);
    assert!(!metered.is_empty(), "starter bills overage");
    for price in &metered {
        api.create_metered_price("starter", price, &meter, BillingInterval::Month).await.expect("create metered price");
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let event = MeterEvent {
        event_name: "atp_bandwidth",
        customer: &customer,
        value: "12.345678",
        identifier: "atp-acme-bandwidth-492540",
        timestamp: now - 60,
    };
    api.send_meter_event(&event).await.expect("create meter event");
    let start = (now - 86_400) / 60 * 60;
    api.meter_total(&meter, &customer, start, now / 60 * 60).await.expect("list meter event summaries");

    let text = metrics.encode();
    assert!(!text.contains("result=\"refused\""), "stripe-mock refused a request: {text}");
    for operation in [
        "list_prices",
        "create_price",
        "list_customers",
        "create_customer",
        "update_customer",
        "list_meters",
        "create_meter",
        "create_meter_event",
        "list_meter_event_summaries",
    ] {
        assert!(
            text.contains(&format!("operation=\"{operation}\",result=\"success\"")),
            "{operation} not counted: {text}"
        );
    }
}

/// Accepted by stripe-mock: parsed, or answered 200 with a body that does not parse.
fn accepted<T>(result: Result<T, StripeCallError>, what: &str) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(StripeCallError::Failed { message, .. }) if message.contains("deserializing") => None,
        Err(e) => panic!("{what}: {e}"),
    }
}

/// GET on stripe-mock, raw JSON.
fn raw_get(port: u16, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer sk_test_123\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read");
    let body = reply.split("\r\n\r\n").nth(1).expect("body");
    // stripe-mock answers with chunked encoding only for large bodies; strip a chunk header if present.
    let json = body.find('{').map(|i| &body[i..]).expect("json body");
    let end = json.rfind('}').expect("json end");
    serde_json::from_str(&json[..=end]).expect("json")
}

#[tokio::test]
async fn subscription_fixture_differs_only_by_the_legacy_plan_field() {
    let (_mock, port) = start_stripe_mock();
    let mut sub = raw_get(port, "/v1/subscriptions/sub_123");
    assert!(
        sub["items"]["data"][0].get("plan").is_none(),
        "stripe-mock now sends items.data[].plan: tighten the contract test"
    );
    assert!(serde_json::from_value::<stripe_shared::Subscription>(sub.clone()).is_err());
    let item = &mut sub["items"]["data"][0];
    // The legacy plan object that real Stripe sends next to the price.
    let price = item["price"].clone();
    item["plan"] = serde_json::json!({
        "id": price["id"], "object": "plan", "active": true, "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"], "billing_scheme": "per_unit", "created": price["created"],
        "currency": price["currency"], "interval": "month", "interval_count": 1, "livemode": false,
        "metadata": {}, "meter": null, "nickname": null, "product": price["product"], "tiers_mode": null,
        "transform_usage": null, "trial_period_days": null, "usage_type": "licensed"
    });
    let parsed: Result<stripe_shared::Subscription, _> = serde_json::from_value(sub);
    assert!(parsed.is_ok(), "with the plan field the subscription parses: {:?}", parsed.err());
}
