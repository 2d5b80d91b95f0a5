//! A stateful fake Stripe for lifecycle tests: customers, prices (with lookup keys), subscriptions
//! with trials, periods and statuses, invoices; `Idempotency-Key` honoured; every response
//! round-trips through async-stripe's own types (so it is exactly what they serialize and parse);
//! webhooks signed as Stripe signs them. Test hooks under `/_test` move its clock, make payments
//! fail, pay invoices, delay a response, and count calls.
#![allow(dead_code, unused_imports)] // each test binary uses a different part

mod form;
pub mod meters;
mod objects;
mod webhooks;

pub use webhooks::{post_webhook, sign};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DAY: i64 = 86_400;

#[derive(Default)]
pub struct World {
    pub now: i64,
    seq: u64,
    pub customers: BTreeMap<String, Value>,
    pub prices: BTreeMap<String, Value>,
    pub subscriptions: BTreeMap<String, Value>,
    pub invoices: BTreeMap<String, Value>,
    pub meters: BTreeMap<String, Value>,
    /// Every meter event kept (a repeated identifier is refused, not kept).
    pub meter_events: Vec<Value>,
    /// The usage lines of invoices, in order.
    pub usage_lines: Vec<meters::UsageLine>,
    idempotency: HashMap<String, (u16, Value)>,
    /// "METHOD /path" → calls, and "create_customer" etc. → objects created.
    pub calls: BTreeMap<String, u64>,
    /// Payments fail while set (card declined).
    pub failing: bool,
    /// The next POST to this path is carried out, then answered only after this delay.
    pub hang: Option<(String, Duration)>,
    /// Every event sent, in order (tests re-deliver them).
    pub events: Vec<Value>,
}

impl World {
    fn id(&mut self, prefix: &str) -> String {
        self.seq += 1;
        format!("{prefix}_fake{:06}", self.seq)
    }

    fn count(&mut self, key: &str) {
        *self.calls.entry(key.to_string()).or_default() += 1;
    }
}

pub struct Fake {
    pub world: Mutex<World>,
    pub webhook_secret: String,
    /// Where events go: `127.0.0.1:<port>` + path; None: events are only recorded.
    pub webhook_target: Mutex<Option<(u16, String)>>,
}

pub struct FakeStripe {
    pub port: u16,
    pub state: Arc<Fake>,
}

impl FakeStripe {
    pub async fn start(webhook_secret: &str) -> Self {
        let state = Arc::new(Fake {
            // The fake's clock starts at the real time (the operator judges grace and period ends by its own).
            world: Mutex::new(World { now: unix_now(), ..Default::default() }),
            webhook_secret: webhook_secret.to_string(),
            webhook_target: Mutex::new(None),
        });
        let app = Router::new()
            .route("/v1/customers", any(customers))
            .route("/v1/prices", any(prices))
            .route("/v1/subscriptions", any(subscriptions))
            .route("/v1/subscriptions/{id}", any(subscription))
            .route("/v1/billing/meters", any(billing_meters))
            .route("/v1/billing/meters/{id}/event_summaries", get(event_summaries))
            .route("/v1/billing/meter_events", post(meter_events))
            .route("/_test/advance", post(advance))
            .route("/_test/failing", post(failing))
            .route("/_test/pay", post(pay))
            .route("/_test/hang", post(hang))
            .route("/_test/counts", get(counts))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind fake stripe");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn send_webhooks_to(&self, port: u16, path: &str) {
        *self.state.webhook_target.lock().unwrap() = Some((port, path.to_string()));
    }

    pub fn world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.state.world.lock().unwrap())
    }

    pub fn count(&self, key: &str) -> u64 {
        self.world(|w| w.calls.get(key).copied().unwrap_or(0))
    }

    /// Moves the clock forward, renewing periods and ending trials (invoices, webhooks).
    pub async fn advance(&self, secs: i64) {
        let events = self.world(|w| objects::advance(w, secs));
        webhooks::deliver(&self.state, events).await;
    }

    pub fn set_failing(&self, failing: bool) {
        self.world(|w| w.failing = failing);
    }

    /// The customer pays the subscription's open invoice (e.g. on the hosted page).
    pub async fn pay(&self, subscription: &str) {
        let events = self.world(|w| objects::pay(w, subscription));
        webhooks::deliver(&self.state, events).await;
    }

    /// Places the subscription's current period (e.g. hours in the past, around the usage a test reports).
    pub async fn set_period(&self, subscription: &str, start: i64, end: i64) {
        let events = self.world(|w| objects::set_period(w, subscription, start, end));
        webhooks::deliver(&self.state, events).await;
    }

    /// Ends the subscription's current period at the fake's now: its invoice with usage, a new period.
    pub async fn close_period(&self, subscription: &str) {
        let events = self.world(|w| objects::close_period(w, subscription));
        webhooks::deliver(&self.state, events).await;
    }

    /// Meter events kept for `customer`: (identifier, value, timestamp), in arrival order.
    pub fn meter_events_of(&self, customer: &str) -> Vec<(String, String, i64)> {
        self.world(|w| {
            w.meter_events
                .iter()
                .filter(|e| e["payload"]["stripe_customer_id"] == json!(customer))
                .map(|e| {
                    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
                    (text(&e["identifier"]), text(&e["payload"]["value"]), e["timestamp"].as_i64().unwrap_or(0))
                })
                .collect()
        })
    }

    pub fn hang_next(&self, path: &str, delay: Duration) {
        self.world(|w| w.hang = Some((path.to_string(), delay)));
    }
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"type": "invalid_request_error", "message": message}});
    (status, axum::Json(body)).into_response()
}

/// Runs a mutating request once per Idempotency-Key (a replay gets the stored answer).
async fn once(
    state: &Arc<Fake>,
    headers: &HeaderMap,
    path: &str,
    f: impl FnOnce(&mut World) -> Result<(Value, Vec<Value>), (StatusCode, String)>,
) -> Response {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (result, events, delay) = {
        let mut w = state.world.lock().unwrap();
        w.count(&format!("POST {path}"));
        if let Some(stored) = key.as_ref().and_then(|k| w.idempotency.get(k).cloned()) {
            w.count("idempotent_replay");
            return (StatusCode::from_u16(stored.0).unwrap_or(StatusCode::OK), axum::Json(stored.1)).into_response();
        }
        let delay = match w.hang.take() {
            Some((p, d)) if p == path => Some(d),
            other => {
                w.hang = other;
                None
            }
        };
        match f(&mut w) {
            Ok((value, events)) => {
                if let Some(k) = key {
                    w.idempotency.insert(k, (200, value.clone()));
                }
                (Ok(value), events, delay)
            }
            Err(e) => (Err(e), vec![], delay),
        }
    };
    webhooks::deliver(state, events).await;
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    match result {
        Ok(v) => axum::Json(v).into_response(),
        Err((s, m)) => error(s, &m),
    }
}

async fn customers(
    State(state): State<Arc<Fake>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = form::parse(query.as_deref().unwrap_or_default());
    if method == Method::GET {
        let mut w = state.world.lock().unwrap();
        w.count("GET /v1/customers");
        let email = params.get("email").cloned();
        let data: Vec<Value> = w
            .customers
            .values()
            .filter(|c| email.is_none() || c["email"].as_str() == email.as_deref())
            .map(objects::customer_out)
            .collect();
        return axum::Json(objects::list("/v1/customers", data)).into_response();
    }
    let form = form::parse(&String::from_utf8_lossy(&body));
    once(&state, &headers, "/v1/customers", |w| {
        w.count("create_customer");
        let id = w.id("cus");
        let customer = objects::new_customer(&id, w.now, &form);
        w.customers.insert(id, customer.clone());
        Ok((objects::customer_out(&customer), vec![]))
    })
    .await
}

async fn prices(
    State(state): State<Arc<Fake>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = form::parse(query.as_deref().unwrap_or_default());
    if method == Method::GET {
        let mut w = state.world.lock().unwrap();
        w.count("GET /v1/prices");
        let keys = form::list(&params, "lookup_keys");
        let data: Vec<Value> = w
            .prices
            .values()
            .filter(|p| keys.is_empty() || p["lookup_key"].as_str().is_some_and(|k| keys.iter().any(|x| x == k)))
            .map(objects::price_out)
            .collect();
        return axum::Json(objects::list("/v1/prices", data)).into_response();
    }
    let form = form::parse(&String::from_utf8_lossy(&body));
    once(&state, &headers, "/v1/prices", |w| {
        let lookup = form.get("lookup_key").cloned();
        if lookup.as_ref().is_some_and(|k| w.prices.values().any(|p| p["lookup_key"].as_str() == Some(k))) {
            return Err((StatusCode::BAD_REQUEST, "A price with this lookup_key already exists".into()));
        }
        w.count("create_price");
        let id = w.id("price");
        let product = w.id("prod");
        let price = objects::new_price(&id, &product, w.now, &form);
        w.prices.insert(id, price.clone());
        Ok((objects::price_out(&price), vec![]))
    })
    .await
}

async fn subscriptions(
    State(state): State<Arc<Fake>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = form::parse(query.as_deref().unwrap_or_default());
    if method == Method::GET {
        let mut w = state.world.lock().unwrap();
        w.count("GET /v1/subscriptions");
        let customer = params.get("customer").cloned();
        let data: Vec<Value> = w
            .subscriptions
            .values()
            .filter(|s| customer.is_none() || s["customer"].as_str() == customer.as_deref())
            .map(|s| objects::subscription_out(s, None))
            .collect();
        return axum::Json(objects::list("/v1/subscriptions", data)).into_response();
    }
    let form = form::parse(&String::from_utf8_lossy(&body));
    once(&state, &headers, "/v1/subscriptions", |w| {
        let customer = form.get("customer").cloned().unwrap_or_default();
        if !w.customers.contains_key(&customer) {
            return Err((StatusCode::BAD_REQUEST, format!("No such customer: '{customer}'")));
        }
        let mut prices = vec![];
        for i in 0.. {
            let Some(price_id) = form.get(&format!("items[{i}][price]")) else { break };
            let Some(price) = w.prices.get(price_id).cloned() else {
                return Err((StatusCode::BAD_REQUEST, format!("No such price: '{price_id}'")));
            };
            prices.push(price);
        }
        if prices.is_empty() {
            return Err((StatusCode::BAD_REQUEST, "Missing required param: items.".into()));
        }
        w.count("create_subscription");
        let (sub, events) = objects::create_subscription(w, &customer, &prices, &form);
        let expand = form::list(&form, "expand").contains(&"latest_invoice".to_string());
        let out = objects::subscription_out(&sub, expand.then_some(&*w));
        Ok((out, events))
    })
    .await
}

async fn subscription(
    State(state): State<Arc<Fake>>,
    Path(id): Path<String>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = form::parse(query.as_deref().unwrap_or_default());
    if method == Method::GET {
        let mut w = state.world.lock().unwrap();
        w.count("GET /v1/subscriptions/{id}");
        let Some(sub) = w.subscriptions.get(&id).cloned() else {
            return error(StatusCode::NOT_FOUND, &format!("No such subscription: '{id}'"));
        };
        let expand = form::list(&params, "expand").contains(&"latest_invoice".to_string());
        return axum::Json(objects::subscription_out(&sub, expand.then_some(&*w))).into_response();
    }
    if method == Method::DELETE {
        let events = {
            let mut w = state.world.lock().unwrap();
            w.count("DELETE /v1/subscriptions/{id}");
            let Some(sub) = w.subscriptions.get(&id).cloned() else {
                return error(StatusCode::NOT_FOUND, &format!("No such subscription: '{id}'"));
            };
            if sub["status"] == "canceled" {
                return error(StatusCode::BAD_REQUEST, "subscription already canceled");
            }
            objects::set_status(&mut w, &id, "canceled", "customer.subscription.deleted")
        };
        let out = state.world.lock().unwrap().subscriptions.get(&id).map(|s| objects::subscription_out(s, None));
        webhooks::deliver(&state, events).await;
        return axum::Json(out.unwrap_or_default()).into_response();
    }
    let form = form::parse(&String::from_utf8_lossy(&body));
    once(&state, &headers, "/v1/subscriptions/{id}", |w| {
        if !w.subscriptions.contains_key(&id) {
            return Err((StatusCode::NOT_FOUND, format!("No such subscription: '{id}'")));
        }
        let events = objects::update_subscription(w, &id, &form)?;
        let expand = form::list(&form, "expand").contains(&"latest_invoice".to_string());
        let sub = w.subscriptions.get(&id).cloned().unwrap_or_default();
        Ok((objects::subscription_out(&sub, expand.then_some(&*w)), events))
    })
    .await
}

async fn billing_meters(
    State(state): State<Arc<Fake>>,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = form::parse(query.as_deref().unwrap_or_default());
    if method == Method::GET {
        let mut w = state.world.lock().unwrap();
        w.count("GET /v1/billing/meters");
        let status = params.get("status").cloned();
        let data: Vec<Value> = w
            .meters
            .values()
            .filter(|m| status.as_ref().is_none_or(|s| m["status"].as_str() == Some(s)))
            .map(meters::meter_out)
            .collect();
        return axum::Json(objects::list("/v1/billing/meters", data)).into_response();
    }
    let form = form::parse(&String::from_utf8_lossy(&body));
    once(&state, &headers, "/v1/billing/meters", |w| Ok((meters::create_meter(w, &form)?, vec![]))).await
}

async fn meter_events(State(state): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    let form = form::parse(&String::from_utf8_lossy(&body));
    once(&state, &headers, "/v1/billing/meter_events", |w| Ok((meters::create_meter_event(w, &form)?, vec![]))).await
}

async fn event_summaries(
    State(state): State<Arc<Fake>>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = form::parse(query.as_deref().unwrap_or_default());
    let mut w = state.world.lock().unwrap();
    w.count("GET /v1/billing/meters/{id}/event_summaries");
    match meters::summaries(&w, &id, &params) {
        Ok(list) => axum::Json(list).into_response(),
        Err((status, message)) => error(status, &message),
    }
}

async fn advance(State(state): State<Arc<Fake>>, RawQuery(query): RawQuery) -> Response {
    let params = form::parse(query.as_deref().unwrap_or_default());
    let secs = params.get("secs").and_then(|s| s.parse().ok()).unwrap_or(DAY);
    let events = objects::advance(&mut state.world.lock().unwrap(), secs);
    webhooks::deliver(&state, events).await;
    "ok".into_response()
}

async fn failing(State(state): State<Arc<Fake>>, RawQuery(query): RawQuery) -> Response {
    let on = form::parse(query.as_deref().unwrap_or_default()).get("on").is_none_or(|v| v == "true");
    state.world.lock().unwrap().failing = on;
    "ok".into_response()
}

async fn pay(State(state): State<Arc<Fake>>, RawQuery(query): RawQuery) -> Response {
    let sub = form::parse(query.as_deref().unwrap_or_default()).get("subscription").cloned().unwrap_or_default();
    let events = objects::pay(&mut state.world.lock().unwrap(), &sub);
    webhooks::deliver(&state, events).await;
    "ok".into_response()
}

async fn hang(State(state): State<Arc<Fake>>, RawQuery(query): RawQuery) -> Response {
    let params = form::parse(query.as_deref().unwrap_or_default());
    let path = params.get("path").cloned().unwrap_or_default();
    let secs = params.get("secs").and_then(|s| s.parse().ok()).unwrap_or(30);
    state.world.lock().unwrap().hang = Some((path, Duration::from_secs(secs)));
    "ok".into_response()
}

async fn counts(State(state): State<Arc<Fake>>) -> Response {
    axum::Json(json!(state.world.lock().unwrap().calls)).into_response()
}
