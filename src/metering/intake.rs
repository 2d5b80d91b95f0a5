//! Whose usage an event is, and the answer to a report: the decisions of `POST /v1/usage` between parsing
//! ([`super::event`]) and the ledger. Pure: the namespaces' owners, the clock and the billing periods are
//! given; the caller asks the API server who may report and the ledger what was new.
//!
//! An event's **namespace** is its `subject` up to the first `/` (`org-acme`, or `org-acme/stream-42` for a
//! stream in it). The organization is the one that namespace belongs to — read from the namespace's labels
//! in the operator's cache, never from the body — and a reporter needs RBAC's `create` on `usageevents`
//! in that namespace (see `docs/metering.md`).

use super::event::{Acceptance, Rejection, UsageEvent, validate};
use super::period::{Period, PeriodError, calendar_month, current_period};
use crate::tenancy::labels::{MANAGED, NAMESPACE_KIND, ORGANIZATION_OBJECT};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// What the namespace of an event belongs to, from its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The Organization object's name: the ledger's key for its usage.
    pub organization: String,
    /// The Stripe subscription's current period, when it is billed through Stripe.
    pub stripe_period: StripePeriod,
}

/// The billing period Stripe reports for an organization (the Subscription's status); both ends absent when
/// it is not billed through Stripe.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StripePeriod {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
}

impl StripePeriod {
    /// The period of the organization's Subscription that ends last.
    pub fn of<'a>(subscriptions: impl IntoIterator<Item = &'a crate::api::Subscription>) -> StripePeriod {
        let parse = |t: Option<&String>| t.and_then(|t| t.parse::<Timestamp>().ok());
        subscriptions
            .into_iter()
            .filter_map(|s| s.status.as_ref())
            .map(|s| StripePeriod {
                start: parse(s.current_period_start.as_ref()),
                end: parse(s.current_period_end.as_ref()),
            })
            .filter(|p| p.end.is_some())
            .max_by_key(|p| p.end)
            .unwrap_or_default()
    }
}

/// The namespace a subject names: up to the first `/`.
pub fn subject_namespace(subject: &str) -> &str {
    subject.split_once('/').map_or(subject, |(namespace, _)| namespace)
}

/// The organization (object name) a managed tenant namespace — home or team — belongs to; None for any
/// other namespace.
pub fn namespace_organization(labels: &BTreeMap<String, String>) -> Option<&str> {
    let managed = labels.get(MANAGED).is_some_and(|v| v == "true");
    let tenant = labels.get(NAMESPACE_KIND).is_some_and(|k| k == "home" || k == "team");
    labels.get(ORGANIZATION_OBJECT).map(String::as_str).filter(|o| managed && tenant && !o.is_empty())
}

/// The billing period open at `now`: Stripe's (from a Subscription that mirrored only the end, the month
/// before it), rolled on as `period::current_period` does; else the calendar month.
pub fn open_period(stripe_period: StripePeriod, now: Timestamp) -> Result<Period, PeriodError> {
    let stripe = match (stripe_period.start, stripe_period.end) {
        (Some(start), Some(end)) if start < end => Some(Period::new(start, end)?),
        (_, Some(end)) => {
            let start = end
                .to_zoned(jiff::tz::TimeZone::UTC)
                .checked_sub(jiff::Span::new().months(1))
                .map_err(|_| PeriodError::OutOfRange(end))?
                .timestamp();
            Some(Period::new(start, end)?)
        }
        (_, None) => None,
    };
    Ok(current_period(stripe, now)?.period)
}

/// The namespaces the events name (by their `subject`, when it is a string), for the caller to look up.
pub fn named_namespaces(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| e.get("subject").and_then(Value::as_str))
        .map(|s| subject_namespace(s).to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// One event judged: accepted for an organization, or rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    Accepted { organization: String, namespace: String, event: UsageEvent },
    Rejected { id: Option<String>, rejection: Rejection },
}

/// Each event validated against its organization's open period (`owners`: the namespaces that belong to an
/// organization; any other namespace is `unknown-namespace`).
pub fn judge(
    events: &[Value],
    owners: &BTreeMap<String, Owner>,
    now: Timestamp,
    grace: SignedDuration,
) -> Result<Vec<Judged>, PeriodError> {
    let month = calendar_month(now)?;
    let mut judged = Vec::with_capacity(events.len());
    for event in events {
        let namespace = event.get("subject").and_then(Value::as_str).map(subject_namespace);
        let owner = namespace.and_then(|n| owners.get(n));
        let period = match owner {
            Some(owner) => open_period(owner.stripe_period, now)?,
            None => month,
        };
        let acceptance = Acceptance::new(now, &period, grace);
        let id = || event.get("id").and_then(Value::as_str).map(str::to_string);
        judged.push(match (validate(event, &acceptance), owner) {
            (Err(rejection), _) => Judged::Rejected { id: id(), rejection },
            (Ok(accepted), Some(owner)) => Judged::Accepted {
                organization: owner.organization.clone(),
                namespace: subject_namespace(&accepted.subject).to_string(),
                event: accepted,
            },
            (Ok(accepted), None) => Judged::Rejected {
                id: id(),
                rejection: Rejection::UnknownNamespace {
                    namespace: subject_namespace(&accepted.subject).to_string(),
                    subject: accepted.subject,
                },
            },
        });
    }
    Ok(judged)
}

/// The namespaces the caller must be allowed to report for: those of the accepted events.
pub fn namespaces_to_authorize(judged: &[Judged]) -> BTreeSet<&str> {
    judged
        .iter()
        .filter_map(|j| match j {
            Judged::Accepted { namespace, .. } => Some(namespace.as_str()),
            Judged::Rejected { .. } => None,
        })
        .collect()
}

/// The accepted events per organization, with each one's index in the batch.
pub fn by_organization(judged: &[Judged]) -> BTreeMap<&str, Vec<(usize, &UsageEvent)>> {
    let mut groups: BTreeMap<&str, Vec<(usize, &UsageEvent)>> = BTreeMap::new();
    for (i, j) in judged.iter().enumerate() {
        if let Judged::Accepted { organization, event, .. } = j {
            groups.entry(organization.as_str()).or_default().push((i, event));
        }
    }
    groups
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Committed to the ledger by this request.
    Accepted,
    /// Already in the ledger (or earlier in this batch): counted once, nothing changed.
    Duplicate,
    Rejected,
}

impl Outcome {
    /// As in the answer and the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Rejected => "rejected",
        }
    }
}

/// One event's line in the 202 answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventResult {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
    /// `[rule] what is wrong, and the fix`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The 202 answer: counts, then one result per event in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub accepted: usize,
    pub duplicate: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
}

/// The answer from the judgements and, per accepted event (by index), whether the ledger found it new.
pub fn report(judged: &[Judged], new: &BTreeMap<usize, bool>) -> Report {
    let results: Vec<EventResult> = judged
        .iter()
        .enumerate()
        .map(|(index, j)| match j {
            Judged::Accepted { event, .. } => EventResult {
                index,
                id: Some(event.id.clone()),
                outcome: if new.get(&index).copied().unwrap_or(false) { Outcome::Accepted } else { Outcome::Duplicate },
                rule: None,
                field: None,
                reason: None,
            },
            Judged::Rejected { id, rejection } => EventResult {
                index,
                id: id.clone(),
                outcome: Outcome::Rejected,
                rule: Some(rejection.rule()),
                field: Some(rejection.field()),
                reason: Some(rejection.user_message()),
            },
        })
        .collect();
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    Report {
        accepted: count(Outcome::Accepted),
        duplicate: count(Outcome::Duplicate),
        rejected: count(Outcome::Rejected),
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn event(id: &str, subject: &str, time: &str) -> Value {
        json!({"specversion": "1.0", "id": id, "source": "edge", "type": "io.atlantiplex.usage.bandwidth",
               "time": time, "subject": subject, "data": {"value": "1024"}})
    }

    fn owners() -> BTreeMap<String, Owner> {
        BTreeMap::from([
            ("org-acme".to_string(), Owner { organization: "acme".into(), stripe_period: StripePeriod::default() }),
            ("acme--web".to_string(), Owner { organization: "acme".into(), stripe_period: StripePeriod::default() }),
            (
                "org-beta".to_string(),
                Owner {
                    organization: "beta".into(),
                    stripe_period: StripePeriod { start: None, end: Some(at("2026-03-25T00:00:00Z")) },
                },
            ),
        ])
    }

    #[test]
    fn the_namespace_is_the_subject_up_to_the_first_slash() {
        assert_eq!(subject_namespace("org-acme"), "org-acme");
        assert_eq!(subject_namespace("org-acme/stream-42"), "org-acme");
        assert_eq!(subject_namespace("acme--web/a/b"), "acme--web");
        let events = [event("1", "org-acme/s", "x"), event("2", "acme--web", "x"), json!({"subject": 5}), json!(1)];
        assert_eq!(named_namespaces(&events), BTreeSet::from(["org-acme".to_string(), "acme--web".to_string()]));
    }

    #[test]
    fn only_managed_tenant_namespaces_belong_to_an_organization() {
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let home = labels(&[(MANAGED, "true"), (NAMESPACE_KIND, "home"), (ORGANIZATION_OBJECT, "acme")]);
        assert_eq!(namespace_organization(&home), Some("acme"));
        let team = labels(&[(MANAGED, "true"), (NAMESPACE_KIND, "team"), (ORGANIZATION_OBJECT, "acme")]);
        assert_eq!(namespace_organization(&team), Some("acme"));
        assert_eq!(namespace_organization(&labels(&[(NAMESPACE_KIND, "home"), (ORGANIZATION_OBJECT, "acme")])), None);
        assert_eq!(namespace_organization(&labels(&[(MANAGED, "true"), (ORGANIZATION_OBJECT, "acme")])), None);
        assert_eq!(namespace_organization(&labels(&[(MANAGED, "true"), (NAMESPACE_KIND, "home")])), None);
    }

    #[test]
    fn the_open_period_is_the_month_before_the_stripe_end_or_the_calendar_month() {
        let now = at("2026-03-10T12:00:00Z");
        assert_eq!(open_period(StripePeriod::default(), now).unwrap(), calendar_month(now).unwrap());
        let end_only = StripePeriod { start: None, end: Some(at("2026-03-25T00:00:00Z")) };
        let p = open_period(end_only, now).unwrap();
        assert_eq!((p.start, p.end), (at("2026-02-25T00:00:00Z"), at("2026-03-25T00:00:00Z")));
        // Stripe's own start when the Subscription mirrors it (a period of any length).
        let both = StripePeriod { start: Some(at("2026-03-09T07:00:00Z")), end: Some(at("2026-03-25T00:00:00Z")) };
        let p = open_period(both, now).unwrap();
        assert_eq!((p.start, p.end), (at("2026-03-09T07:00:00Z"), at("2026-03-25T00:00:00Z")));
    }

    #[test]
    fn events_are_judged_for_their_namespace_s_organization_and_period() {
        let now = at("2026-03-10T12:00:00Z");
        let events = [
            event("a", "org-acme/stream-1", "2026-03-10T11:00:00Z"),
            event("b", "acme--web", "2026-03-10T11:30:00Z"),
            event("c", "kube-system", "2026-03-10T11:00:00Z"),
            // Before the calendar month and more than 48 h ago: too old for acme, in beta's Stripe period.
            event("d", "org-acme", "2026-02-27T00:00:00Z"),
            event("e", "org-beta", "2026-02-27T00:00:00Z"),
            json!({"id": "f", "subject": "org-acme"}),
        ];
        let judged = judge(&events, &owners(), now, SignedDuration::from_hours(48)).unwrap();
        let orgs: Vec<Option<&str>> = judged
            .iter()
            .map(|j| match j {
                Judged::Accepted { organization, .. } => Some(organization.as_str()),
                Judged::Rejected { .. } => None,
            })
            .collect();
        assert_eq!(orgs, [Some("acme"), Some("acme"), None, None, Some("beta"), None]);
        let Judged::Rejected { id, rejection } = &judged[2] else { panic!() };
        assert_eq!((id.as_deref(), rejection.rule(), rejection.field()), (Some("c"), "unknown-namespace", "subject"));
        assert!(rejection.user_message().contains("not an organization's namespace"), "{}", rejection.user_message());
        let Judged::Rejected { rejection, .. } = &judged[3] else { panic!() };
        assert_eq!(rejection.rule(), "time-too-old");
        let Judged::Rejected { rejection, .. } = &judged[5] else { panic!() };
        assert_eq!(rejection.rule(), "missing-field");
        assert_eq!(namespaces_to_authorize(&judged), BTreeSet::from(["org-acme", "acme--web", "org-beta"]));
        let groups = by_organization(&judged);
        assert_eq!(groups["acme"].iter().map(|(i, _)| *i).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(groups["beta"].iter().map(|(i, _)| *i).collect::<Vec<_>>(), [4]);
    }

    #[test]
    fn the_report_gives_each_event_s_outcome_in_order() {
        let now = at("2026-03-10T12:00:00Z");
        let events =
            [event("a", "org-acme", "2026-03-10T11:00:00Z"), event("b", "org-acme", "2026-03-10T11:00:00Z"), json!(7)];
        let judged = judge(&events, &owners(), now, SignedDuration::from_hours(48)).unwrap();
        let report = report(&judged, &BTreeMap::from([(0, true), (1, false)]));
        assert_eq!((report.accepted, report.duplicate, report.rejected), (1, 1, 1));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["results"][0], json!({"index": 0, "id": "a", "outcome": "accepted"}));
        assert_eq!(json["results"][1], json!({"index": 1, "id": "b", "outcome": "duplicate"}));
        assert_eq!(json["results"][2]["outcome"], "rejected");
        assert_eq!(json["results"][2]["rule"], "not-an-object");
        assert_eq!(json["results"][2]["field"], "event");
        assert!(json["results"][2]["reason"].as_str().unwrap().starts_with("[not-an-object] "));
    }
}
