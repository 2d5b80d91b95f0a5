use super::*;
use serde_json::json;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// 2026-03-10 12:00, in a calendar-month period that opened on the 1st.
fn acceptance() -> Acceptance {
    let period = Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap();
    Acceptance::new(t("2026-03-10T12:00:00Z"), &period, DEFAULT_GRACE)
}

fn event() -> Value {
    json!({
        "specversion": "1.0",
        "id": "evt-1",
        "source": "edge/eu-1",
        "type": "io.atlantiplex.usage.bandwidth",
        "time": "2026-03-10T11:59:00Z",
        "subject": "org-acme",
        "data": {"value": "1048576"}
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut e = event();
    match field.split_once('.') {
        Some((outer, inner)) => e[outer][inner] = value,
        None => e[field] = value,
    }
    e
}

fn without(field: &str) -> Value {
    let mut e = event();
    match field.split_once('.') {
        Some((outer, inner)) => e[outer].as_object_mut().unwrap().remove(inner),
        None => e.as_object_mut().unwrap().remove(field),
    };
    e
}

fn reject(e: Value) -> Rejection {
    validate(&e, &acceptance()).unwrap_err()
}

#[test]
fn a_valid_event_is_accepted_in_base_units() {
    let accepted = validate(&event(), &acceptance()).unwrap();
    assert_eq!(
        accepted,
        UsageEvent {
            source: "edge/eu-1".into(),
            id: "evt-1".into(),
            meter: Meter::Bandwidth,
            subject: "org-acme".into(),
            time: t("2026-03-10T11:59:00Z"),
            quantity: 1_048_576,
        }
    );
    assert_eq!(accepted.window(), t("2026-03-10T11:00:00Z"));
    let stream = validate(&with("type", json!("io.atlantiplex.usage.stream_time")), &acceptance()).unwrap();
    assert_eq!(stream.quantity, 1_048_576_000, "seconds are stored as milliseconds");
    let e = with("type", json!("io.atlantiplex.usage.stream_time"));
    let mut e = e;
    e["data"]["value"] = json!("12.345");
    assert_eq!(validate(&e, &acceptance()).unwrap().quantity, 12_345);
    let calls = validate(&with("type", json!("io.atlantiplex.usage.api_calls")), &acceptance()).unwrap();
    assert_eq!((calls.meter, calls.quantity), (Meter::ApiCalls, 1_048_576));
    // Extension attributes and a JSON datacontenttype are fine; offsets are normalised.
    let mut e = with("datacontenttype", json!("application/json; charset=utf-8"));
    e["traceparent"] = json!("00-abc-def-01");
    e["time"] = json!("2026-03-10T12:30:00+01:00");
    assert_eq!(validate(&e, &acceptance()).unwrap().time, t("2026-03-10T11:30:00Z"));
}

#[test]
fn missing_and_malformed_attributes_name_the_field() {
    for field in ["specversion", "id", "source", "type", "time", "subject", "data", "data.value"] {
        let r = reject(without(field));
        assert_eq!(r, Rejection::Missing { field: if field == "data.value" { "data.value" } else { field } });
        assert_eq!(r.field(), field);
        assert!(r.to_string().starts_with(&format!("{field} is missing")), "{r}");
        assert_eq!(reject(with(field, Value::Null)).rule(), "missing-field", "null counts as missing: {field}");
    }
    assert_eq!(reject(with("id", json!(42))), Rejection::NotAString { field: "id", found: "number" });
    assert_eq!(reject(with("source", json!(""))), Rejection::Empty { field: "source" });
    let long = "x".repeat(MAX_ATTRIBUTE_CHARS + 1);
    let r = reject(with("subject", json!(long)));
    assert_eq!(r, Rejection::TooLong { field: "subject", chars: 257, max: 256 });
    assert_eq!(r.user_message(), "[invalid-field] subject is 257 characters long, more than 256: shorten it");
    assert_eq!(reject(json!(["not", "an", "object"])), Rejection::NotAnObject { found: "array" });
}

#[test]
fn spec_version_type_and_content_type() {
    let r = reject(with("specversion", json!("0.3")));
    assert_eq!(
        r.user_message(),
        "[unsupported-specversion] specversion is \"0.3\": this endpoint takes CloudEvents 1.0; send \"1.0\""
    );
    let r = reject(with("type", json!("io.atlantiplex.usage.storage")));
    assert_eq!(r.rule(), "unknown-type");
    assert!(r.to_string().contains("io.atlantiplex.usage.stream_time (seconds)"), "{r}");
    let r = reject(with("datacontenttype", json!("text/plain")));
    assert_eq!((r.rule(), r.field()), ("unsupported-datacontenttype", "datacontenttype"));
    assert!(validate(&with("datacontenttype", json!("application/cloudevents+json")), &acceptance()).is_ok());
    assert_eq!(reject(with("data", json!("1024"))), Rejection::DataNotObject { found: "string" });
}

#[test]
fn times_in_the_future_or_too_old_are_refused() {
    let r = reject(with("time", json!("yesterday")));
    assert_eq!(r, Rejection::BadTime { found: "yesterday".into() });
    assert!(r.to_string().contains("RFC 3339"));
    assert_eq!(reject(with("time", json!("2026-03-10T12:00:00"))).rule(), "invalid-time", "an offset is required");
    // Up to 5 minutes ahead is clock skew; more is refused.
    assert!(validate(&with("time", json!("2026-03-10T12:05:00Z")), &acceptance()).is_ok());
    let r = reject(with("time", json!("2026-03-10T12:05:01Z")));
    assert_eq!(r.rule(), "time-in-future");
    assert!(r.to_string().contains("check the sender's clock"), "{r}");
    // Anything in the open period is taken, however late.
    assert!(validate(&with("time", json!("2026-03-01T00:00:00Z")), &acceptance()).is_ok());
    let r = reject(with("time", json!("2026-02-28T23:59:59Z")));
    assert_eq!(
        r,
        Rejection::TooOld { time: t("2026-02-28T23:59:59Z"), earliest: t("2026-03-01T00:00:00Z"), grace_hours: 48 }
    );
    assert_eq!(r.field(), "time");
    assert!(r.to_string().contains("report usage within 48h"), "{r}");
}

#[test]
fn the_period_before_takes_late_usage_during_the_grace_window() {
    let period = Period::new(t("2026-03-01T00:00:00Z"), t("2026-04-01T00:00:00Z")).unwrap();
    // One day into March: February's last 48 hours before now are still taken.
    let early = Acceptance::new(t("2026-03-02T00:00:00Z"), &period, DEFAULT_GRACE);
    assert_eq!(early.earliest(), t("2026-02-28T00:00:00Z"));
    assert!(validate(&with("time", json!("2026-02-28T00:00:00Z")), &early).is_ok());
    assert_eq!(validate(&with("time", json!("2026-02-27T23:59:59Z")), &early).unwrap_err().rule(), "time-too-old");
    // A yearly period still stops at 30 days (Stripe takes meter events up to 35 days old).
    let year = Period::new(t("2026-01-01T00:00:00Z"), t("2027-01-01T00:00:00Z")).unwrap();
    let yearly = Acceptance::new(t("2026-06-01T00:00:00Z"), &year, DEFAULT_GRACE);
    assert_eq!(yearly.earliest(), t("2026-05-02T00:00:00Z"));
}

#[test]
fn values_are_decimal_strings_of_the_meters_precision() {
    let value = |v: Value| with("data.value", v);
    let r = reject(value(json!(1024)));
    assert_eq!(r, Rejection::ValueNotString { found: "number" });
    assert!(r.to_string().contains("decimal string such as \"1024\""), "{r}");
    let r = reject(value(json!("1e6")));
    assert_eq!((r.rule(), r.field()), ("value-not-decimal", "data.value"));
    assert_eq!(reject(value(json!("-5"))).rule(), "value-negative");
    let r = reject(value(json!("10.5")));
    assert_eq!(r, Rejection::ValueFractional { found: "10.5".into(), meter: Meter::Bandwidth, max_decimals: 0 });
    assert_eq!(
        r.to_string(),
        "data.value \"10.5\" has a fractional part, but bandwidth counts whole bytes: send a whole number"
    );
    let mut stream = value(json!("1.2345"));
    stream["type"] = json!("io.atlantiplex.usage.stream_time");
    let r = reject(stream);
    assert!(r.to_string().contains("more than 3 decimal places, but stream_time counts milliseconds"), "{r}");
    let r = reject(value(json!("2000000000000000")));
    assert_eq!(r.rule(), "value-too-large");
    assert!(r.to_string().contains("split the usage into several events"), "{r}");
    assert_eq!(validate(&value(json!("0")), &acceptance()).unwrap().quantity, 0, "zero is a valid report");
}

#[test]
fn a_body_is_one_event_or_a_batch() {
    let one = serde_json::to_vec(&event()).unwrap();
    let verdicts = intake(&one, DEFAULT_MAX_BODY_BYTES, &acceptance()).unwrap();
    assert!(matches!(verdicts.as_slice(), [Verdict::Accepted(_)]));
    // A batch: each event on its own, in order; a bad one costs only itself.
    let batch = json!([event(), with("data.value", json!("-1")), 7, with("id", json!("evt-2"))]);
    let verdicts = intake(&serde_json::to_vec(&batch).unwrap(), DEFAULT_MAX_BODY_BYTES, &acceptance()).unwrap();
    assert_eq!(verdicts.len(), 4);
    assert!(matches!(&verdicts[0], Verdict::Accepted(e) if e.id == "evt-1"));
    assert!(
        matches!(&verdicts[1], Verdict::Rejected { id: Some(id), rejection } if id == "evt-1" && rejection.rule() == "value-negative")
    );
    assert!(matches!(
        &verdicts[2],
        Verdict::Rejected { id: None, rejection: Rejection::NotAnObject { found: "number" } }
    ));
    assert!(matches!(&verdicts[3], Verdict::Accepted(e) if e.id == "evt-2"));
}

#[test]
fn batch_problems_name_the_body_and_the_fix() {
    let a = acceptance();
    let err = intake(b"{not json", DEFAULT_MAX_BODY_BYTES, &a).unwrap_err();
    assert_eq!((err.rule(), err.field()), ("not-json", "body"));
    assert!(err.user_message().starts_with("[not-json] the request body is not JSON ("), "{err}");
    assert_eq!(
        intake(b"\"hello\"", DEFAULT_MAX_BODY_BYTES, &a).unwrap_err(),
        BatchError::NotEvents { found: "string" }
    );
    assert_eq!(intake(b"[]", DEFAULT_MAX_BODY_BYTES, &a).unwrap_err(), BatchError::Empty);
    let many = Value::Array(vec![event(); MAX_BATCH_EVENTS + 1]);
    let body = serde_json::to_vec(&many).unwrap();
    let err = intake(&body, usize::MAX, &a).unwrap_err();
    assert_eq!(err, BatchError::TooManyEvents { count: 1_001, max: 1_000 });
    assert!(err.to_string().contains("split it into requests of at most 1000 events"), "{err}");
    let full = Value::Array(vec![event(); MAX_BATCH_EVENTS]);
    assert_eq!(intake(&serde_json::to_vec(&full).unwrap(), usize::MAX, &a).unwrap().len(), 1_000);
    let err = intake(&body, 1_000, &a).unwrap_err();
    assert_eq!(err, BatchError::BodyTooLarge { size: body.len(), max: 1_000 });
    assert_eq!(err.rule(), "body-too-large");
}
