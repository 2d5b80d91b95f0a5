//! Usage events as reporters send them: CloudEvents 1.0 in structured JSON mode, one object or a JSON array
//! (a batch) of up to 1,000. The organization is not in the event: it comes from the caller's credentials.
//!
//! ```json
//! {"specversion": "1.0", "id": "9f1c2b7e-0001", "source": "edge/eu-1", "type": "io.atlantiplex.usage.bandwidth",
//!  "time": "2026-03-10T12:34:56Z", "subject": "org-acme", "data": {"value": "1048576"}}
//! ```
//!
//! [`intake`] checks a request body as a whole ([`BatchError`]: too large, not JSON, not events, too many) and
//! then each event on its own ([`Verdict`]: accepted, or rejected with a [`Rejection`] naming the field and the
//! fix), so one bad event never costs the others. Duplicates are the ledger's to find (unique on organization,
//! source and id): a valid event sent twice is accepted twice here and stored once.

use super::meter::Meter;
use super::period::Period;
use super::units::{DecimalError, parse_decimal};
use super::window::window_start;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const SPEC_VERSION: &str = "1.0";
/// Events per request at most.
pub const MAX_BATCH_EVENTS: usize = 1_000;
/// A request body's default size limit: 1,000 events of about 1 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;
/// How far ahead of the server's clock an event may be (as Stripe allows for meter events).
pub const MAX_FUTURE: SignedDuration = SignedDuration::from_mins(5);
/// How late an event may arrive for the period before the open one, unless configured otherwise.
pub const DEFAULT_GRACE: SignedDuration = SignedDuration::from_hours(48);
/// Never older than this, whatever the period: Stripe refuses meter events older than 35 days, and this
/// leaves 5 days for a stalled push to catch up.
pub const MAX_AGE: SignedDuration = SignedDuration::from_hours(30 * 24);
/// Longest `id`, `source` and `subject`, in characters.
pub const MAX_ATTRIBUTE_CHARS: usize = 256;

/// An accepted event, its value in the meter's base unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvent {
    pub source: String,
    pub id: String,
    pub meter: Meter,
    /// What in the organization used it: a namespace or a stream.
    pub subject: String,
    pub time: Timestamp,
    /// Bytes, calls or milliseconds (see [`Meter::base_unit`]).
    pub quantity: i64,
}

impl UsageEvent {
    /// The start of the hourly window the event counts in.
    pub fn window(&self) -> Timestamp {
        window_start(self.time)
    }
}

/// Which event times are accepted, decided from the clock and the open billing period (both given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acceptance {
    pub now: Timestamp,
    /// The start of the billing period open at `now`.
    pub period_start: Timestamp,
    /// How late usage of the period before may still arrive (default [`DEFAULT_GRACE`]).
    pub grace: SignedDuration,
}

impl Acceptance {
    pub fn new(now: Timestamp, open: &Period, grace: SignedDuration) -> Acceptance {
        Acceptance { now, period_start: open.start, grace }
    }

    /// The earliest time accepted: the open period's start, or `grace` ago, whichever is earlier (so the
    /// previous period takes late usage for `grace` after it closed) — and never more than [`MAX_AGE`] ago.
    pub fn earliest(&self) -> Timestamp {
        let late = self.now.saturating_sub(self.grace).unwrap_or(Timestamp::MIN);
        let oldest = self.now.saturating_sub(MAX_AGE).unwrap_or(Timestamp::MIN);
        self.period_start.min(late).max(oldest)
    }

    /// The latest time accepted: [`MAX_FUTURE`] ahead of `now`.
    pub fn latest(&self) -> Timestamp {
        self.now.saturating_add(MAX_FUTURE).unwrap_or(Timestamp::MAX)
    }
}

/// A request body refused as a whole; `field` is always `body`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("the request body is {size} bytes, more than the {max} allowed: send fewer events per request")]
    BodyTooLarge { size: usize, max: usize },
    #[error("the request body is not JSON ({detail}): send one CloudEvent object, or a JSON array of them")]
    NotJson { detail: String },
    #[error("the request body is a JSON {found}: send one CloudEvent object, or a JSON array of them")]
    NotEvents { found: &'static str },
    #[error("the batch is an empty array: send at least one event")]
    Empty,
    #[error("the batch holds {count} events, more than {max}: split it into requests of at most {max} events")]
    TooManyEvents { count: usize, max: usize },
}

impl BatchError {
    /// A stable name, for problem+json `type` and metrics.
    pub fn rule(&self) -> &'static str {
        match self {
            BatchError::BodyTooLarge { .. } => "body-too-large",
            BatchError::NotJson { .. } => "not-json",
            BatchError::NotEvents { .. } => "not-events",
            BatchError::Empty => "empty-batch",
            BatchError::TooManyEvents { .. } => "batch-too-large",
        }
    }

    pub fn field(&self) -> &'static str {
        "body"
    }

    /// `[rule] message`, as the admission webhook words its denials.
    pub fn user_message(&self) -> String {
        format!("[{}] {self}", self.rule())
    }
}

/// Why one event was refused: the field, what is wrong with it, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the event is a JSON {found}: send each event as a CloudEvent object")]
    NotAnObject { found: &'static str },
    #[error("{field} is missing: a usage event needs id, source, specversion, type, time, subject and data.value")]
    Missing { field: &'static str },
    #[error("{field} must be a string, not a JSON {found}")]
    NotAString { field: &'static str, found: &'static str },
    #[error("{field} is empty: send a non-empty string")]
    Empty { field: &'static str },
    #[error("{field} is {chars} characters long, more than {max}: shorten it")]
    TooLong { field: &'static str, chars: usize, max: usize },
    #[error("specversion is {found:?}: this endpoint takes CloudEvents 1.0; send \"1.0\"")]
    SpecVersion { found: String },
    #[error(
        "type {found:?} is not a usage meter: send io.atlantiplex.usage.bandwidth (bytes), \
         io.atlantiplex.usage.stream_time (seconds) or io.atlantiplex.usage.api_calls (calls)"
    )]
    UnknownType { found: String },
    #[error(
        "datacontenttype {found:?} is not JSON: send data as a JSON object with datacontenttype application/json, \
         or leave datacontenttype out"
    )]
    DataContentType { found: String },
    #[error("time {found:?} is not an RFC 3339 timestamp: send e.g. 2026-03-10T12:00:00Z")]
    BadTime { found: String },
    #[error(
        "time {time} is more than 5 minutes ahead of the server's clock ({now}): send the time the usage happened, \
         and check the sender's clock"
    )]
    InFuture { time: Timestamp, now: Timestamp },
    #[error(
        "time {time} is before {earliest}, the earliest usage still billed (the open billing period's start, or \
         {grace_hours}h ago for late usage, whichever is earlier): it can no longer be billed; report usage within \
         {grace_hours}h of when it happened"
    )]
    TooOld { time: Timestamp, earliest: Timestamp, grace_hours: i64 },
    #[error("data must be a JSON object holding value, e.g. {{\"value\": \"1024\"}}, not a JSON {found}")]
    DataNotObject { found: &'static str },
    #[error(
        "data.value must be a decimal string such as \"1024\", not a JSON {found} (JSON numbers lose precision \
         above 2^53)"
    )]
    ValueNotString { found: &'static str },
    #[error(
        "data.value {found:?} is not a decimal number: send digits with an optional decimal point, e.g. \"1024\" or \
         \"12.5\" (no sign, exponent, separators or spaces)"
    )]
    ValueNotDecimal { found: String },
    #[error("data.value {found:?} is negative: usage only adds up; send the amount used (0 or more)")]
    ValueNegative { found: String },
    #[error("{}", fractional_message(found, *meter, *max_decimals))]
    ValueFractional { found: String, meter: Meter, max_decimals: u32 },
    #[error(
        "data.value {found:?} is more than one event may carry (10^15 {unit}): split the usage into several events"
    )]
    ValueTooLarge { found: String, unit: &'static str },
    #[error(
        "subject {subject:?} names namespace {namespace:?}, which is not an organization's namespace: set subject to \
         the tenant namespace the usage happened in (org-<slug> or <slug>--<team>), optionally followed by \
         /<what used it>, e.g. org-acme/stream-42"
    )]
    UnknownNamespace { subject: String, namespace: String },
}

fn fractional_message(found: &str, meter: Meter, max_decimals: u32) -> String {
    if max_decimals == 0 {
        format!(
            "data.value {found:?} has a fractional part, but {meter} counts whole {}: send a whole number",
            meter.event_unit()
        )
    } else {
        format!(
            "data.value {found:?} has more than {max_decimals} decimal places, but {meter} counts {}: round it to \
             {max_decimals} decimals",
            meter.base_unit()
        )
    }
}

impl Rejection {
    /// A stable name, for the per-event result and metrics.
    pub fn rule(&self) -> &'static str {
        match self {
            Rejection::NotAnObject { .. } => "not-an-object",
            Rejection::Missing { .. } => "missing-field",
            Rejection::NotAString { .. } | Rejection::Empty { .. } | Rejection::TooLong { .. } => "invalid-field",
            Rejection::SpecVersion { .. } => "unsupported-specversion",
            Rejection::UnknownType { .. } => "unknown-type",
            Rejection::DataContentType { .. } => "unsupported-datacontenttype",
            Rejection::BadTime { .. } => "invalid-time",
            Rejection::InFuture { .. } => "time-in-future",
            Rejection::TooOld { .. } => "time-too-old",
            Rejection::DataNotObject { .. } => "invalid-data",
            Rejection::ValueNotString { .. } => "value-not-a-string",
            Rejection::ValueNotDecimal { .. } => "value-not-decimal",
            Rejection::ValueNegative { .. } => "value-negative",
            Rejection::ValueFractional { .. } => "value-fractional",
            Rejection::ValueTooLarge { .. } => "value-too-large",
            Rejection::UnknownNamespace { .. } => "unknown-namespace",
        }
    }

    /// The field at fault, as a JSON path into the event (`event` for the event as a whole).
    pub fn field(&self) -> &'static str {
        match self {
            Rejection::NotAnObject { .. } => "event",
            Rejection::Missing { field }
            | Rejection::NotAString { field, .. }
            | Rejection::Empty { field }
            | Rejection::TooLong { field, .. } => field,
            Rejection::SpecVersion { .. } => "specversion",
            Rejection::UnknownType { .. } => "type",
            Rejection::DataContentType { .. } => "datacontenttype",
            Rejection::BadTime { .. } | Rejection::InFuture { .. } | Rejection::TooOld { .. } => "time",
            Rejection::DataNotObject { .. } => "data",
            Rejection::ValueNotString { .. }
            | Rejection::ValueNotDecimal { .. }
            | Rejection::ValueNegative { .. }
            | Rejection::ValueFractional { .. }
            | Rejection::ValueTooLarge { .. } => "data.value",
            Rejection::UnknownNamespace { .. } => "subject",
        }
    }

    /// `[rule] message`, as the admission webhook words its denials.
    pub fn user_message(&self) -> String {
        format!("[{}] {self}", self.rule())
    }
}

/// The outcome for one event of a batch, in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accepted(UsageEvent),
    /// `id` when the event had a readable one, so the sender can match the answer.
    Rejected {
        id: Option<String>,
        rejection: Rejection,
    },
}

/// Checks a request body and each event in it. `max_body_bytes` is usually [`DEFAULT_MAX_BODY_BYTES`].
pub fn intake(body: &[u8], max_body_bytes: usize, acceptance: &Acceptance) -> Result<Vec<Verdict>, BatchError> {
    let events = parse_body(body, max_body_bytes)?;
    Ok(events
        .iter()
        .map(|event| match validate(event, acceptance) {
            Ok(accepted) => Verdict::Accepted(accepted),
            Err(rejection) => {
                let id = event.get("id").and_then(Value::as_str).map(str::to_string);
                Verdict::Rejected { id, rejection }
            }
        })
        .collect())
}

/// The events of a body: one object, or an array of at most [`MAX_BATCH_EVENTS`].
pub fn parse_body(body: &[u8], max_body_bytes: usize) -> Result<Vec<Value>, BatchError> {
    if body.len() > max_body_bytes {
        return Err(BatchError::BodyTooLarge { size: body.len(), max: max_body_bytes });
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| BatchError::NotJson { detail: e.to_string() })?;
    match value {
        Value::Object(_) => Ok(vec![value]),
        Value::Array(events) if events.is_empty() => Err(BatchError::Empty),
        Value::Array(events) if events.len() > MAX_BATCH_EVENTS => {
            Err(BatchError::TooManyEvents { count: events.len(), max: MAX_BATCH_EVENTS })
        }
        Value::Array(events) => Ok(events),
        other => Err(BatchError::NotEvents { found: kind(&other) }),
    }
}

/// One event, accepted or rejected for the first problem found.
pub fn validate(event: &Value, acceptance: &Acceptance) -> Result<UsageEvent, Rejection> {
    let Value::Object(event) = event else {
        return Err(Rejection::NotAnObject { found: kind(event) });
    };
    let spec_version = string(event, "specversion")?;
    if spec_version != SPEC_VERSION {
        return Err(Rejection::SpecVersion { found: spec_version.to_string() });
    }
    let id = string(event, "id")?;
    let source = string(event, "source")?;
    let event_type = string(event, "type")?;
    let meter =
        Meter::from_event_type(event_type).ok_or_else(|| Rejection::UnknownType { found: event_type.into() })?;
    let subject = string(event, "subject")?;
    let time = time(string(event, "time")?, acceptance)?;
    match event.get("datacontenttype") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if is_json_media_type(t) => {}
        Some(Value::String(t)) => return Err(Rejection::DataContentType { found: t.clone() }),
        Some(other) => return Err(Rejection::NotAString { field: "datacontenttype", found: kind(other) }),
    }
    let data = match event.get("data") {
        None | Some(Value::Null) => return Err(Rejection::Missing { field: "data" }),
        Some(Value::Object(data)) => data,
        Some(other) => return Err(Rejection::DataNotObject { found: kind(other) }),
    };
    let value = match data.get("value") {
        None | Some(Value::Null) => return Err(Rejection::Missing { field: "data.value" }),
        Some(Value::String(v)) => v,
        Some(other) => return Err(Rejection::ValueNotString { found: kind(other) }),
    };
    let quantity = parse_decimal(value, meter.event_decimals()).map_err(|e| {
        let found = value.clone();
        match e {
            DecimalError::NotDecimal => Rejection::ValueNotDecimal { found },
            DecimalError::Negative => Rejection::ValueNegative { found },
            DecimalError::TooPrecise { max_decimals } => Rejection::ValueFractional { found, meter, max_decimals },
            DecimalError::TooLarge => Rejection::ValueTooLarge { found, unit: meter.base_unit() },
        }
    })?;
    Ok(UsageEvent { source: source.into(), id: id.into(), meter, subject: subject.into(), time, quantity })
}

fn time(text: &str, acceptance: &Acceptance) -> Result<Timestamp, Rejection> {
    let time: Timestamp = text.parse().map_err(|_| Rejection::BadTime { found: text.into() })?;
    if time > acceptance.latest() {
        return Err(Rejection::InFuture { time, now: acceptance.now });
    }
    let earliest = acceptance.earliest();
    if time < earliest {
        return Err(Rejection::TooOld { time, earliest, grace_hours: acceptance.grace.as_hours() });
    }
    Ok(time)
}

/// `application/json`, `application/json; charset=utf-8`, or a `+json` type.
fn is_json_media_type(t: &str) -> bool {
    let essence = t.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

/// A required, non-empty string attribute of at most [`MAX_ATTRIBUTE_CHARS`].
fn string<'a>(event: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, Rejection> {
    match event.get(field) {
        None | Some(Value::Null) => Err(Rejection::Missing { field }),
        Some(Value::String(s)) if s.is_empty() => Err(Rejection::Empty { field }),
        Some(Value::String(s)) => {
            let chars = s.chars().count();
            if chars > MAX_ATTRIBUTE_CHARS {
                return Err(Rejection::TooLong { field, chars, max: MAX_ATTRIBUTE_CHARS });
            }
            Ok(s)
        }
        Some(other) => Err(Rejection::NotAString { field, found: kind(other) }),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests;
