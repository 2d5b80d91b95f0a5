//! Usage: per meter, the open billing period against the plan and a daily series (30 or 90 days), built by
//! `metering::report` as `atlantiplex-operator usage` builds it; and ingestion for the organization's own
//! namespaces (`usage:write` keys), judged and committed like the operator's `POST /v1/usage`.

use crate::http::App;
use crate::http::Problem;
use crate::http::access::Action;
use crate::http::caller::Call;
use crate::http::views::{DayView, MeterView, UsageReportView, UsageView};
use crate::ledger::Inserted;
use crate::metering::event::{BatchError, parse_body};
use crate::metering::intake::{self, Owner, StripePeriod};
use crate::metering::report::{self, Inputs, Span, Window};
use crate::metering::terms::plan_terms;
use crate::metering::window_start;
use axum::Json;
use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// Days in the daily series: 30 (default) or 90.
    pub days: Option<u32>,
}

/// Usage per meter: the billing period so far against the plan, and a daily series.
#[utoipa::path(get, path = "/v1/organizations/{org}/usage", tag = "usage",
    params(("org" = String, Path, description = "The Organization's object name"), UsageParams),
    responses((status = 200, description = "Success", body = UsageView), (status = "4XX", description = "A problem: its rule, the field at fault and the fix", body = Problem, content_type = "application/problem+json")),
    security(("apiKey" = []), ("kubernetesToken" = []), ("session" = [])))]
pub async fn usage(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    params: Result<Query<UsageParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<UsageView>, Problem> {
    call.authorize(Action::Read)?;
    let days = params.ok().and_then(|Query(p)| p.days).unwrap_or(30);
    Ok(Json(usage_view(&app, &call, days).await?))
}

/// Per meter, the open period against the plan and a daily series of `days` (30 or 90) days.
pub async fn usage_view(app: &App, call: &Call, days: u32) -> Result<UsageView, Problem> {
    if days != 30 && days != 90 {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid-days",
            "Unsupported series length",
            "days",
            format!("days={days} is not offered: use days=30 or days=90"),
        ));
    }
    let now = jiff::Timestamp::now();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let first_day = today.saturating_sub(jiff::Span::new().days(i64::from(days) - 1));
    let since = first_day.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()).unwrap_or(now);
    let stripe_period = StripePeriod::of(app.caches.subscriptions_of(&call.org_name).iter());
    let period = intake::open_period(stripe_period, now).map_err(|e| super::ledger_unavailable(e.to_string()))?;
    let convert = |rows: Vec<crate::ledger::UsageWindow>| -> Vec<Window> {
        rows.into_iter()
            .map(|w| Window { meter: w.meter, start: w.start, quantity: w.quantity, events: w.events })
            .collect()
    };
    // The series is per day: the ledger sums the hours (a 24th of the rows to read for 90 days).
    let windows = convert(
        app.ledger.usage_days_all(&call.org_name, window_start(since), now).await.map_err(super::ledger_unavailable)?,
    );
    let (from, to) = period.window_starts();
    let period_windows =
        convert(app.ledger.usage_windows_all(&call.org_name, from, to).await.map_err(super::ledger_unavailable)?);
    let terms = call.plan.as_ref().and_then(|p| plan_terms(&p.spec).ok());
    let built = report::build(Inputs {
        organization: &call.org_name,
        plan: terms.as_ref().map(|t| (call.plan_name.as_str(), t)),
        window: Span { from: since, to: now },
        windows: &windows,
        period,
        period_source: "",
        period_windows: &period_windows,
        notes: Vec::new(),
    });
    let meters = built
        .meters
        .iter()
        .map(|m| {
            let by_day: BTreeMap<&str, (i64, i64)> =
                m.daily.iter().map(|b| (b.at.as_str(), (b.quantity, b.events))).collect();
            let daily = (0..days)
                .filter_map(|i| first_day.checked_add(jiff::Span::new().days(i64::from(i))).ok())
                .map(|day| {
                    let key = day.to_string();
                    let (quantity, events) = by_day.get(key.as_str()).copied().unwrap_or((0, 0));
                    DayView { day: key, quantity, events }
                })
                .collect();
            MeterView {
                meter: m.meter.as_str().to_string(),
                base_unit: m.base_unit.to_string(),
                billing_unit: m.billing_unit.to_string(),
                period_billed: m.period.billed.clone(),
                period_quantity: m.period.quantity,
                included: m.plan.as_ref().map(|p| p.included.clone()),
                percent: m.plan.as_ref().and_then(|p| p.percent),
                overage_cents: m.plan.as_ref().map(|p| p.cents),
                daily,
            }
        })
        .collect();
    Ok(UsageView {
        organization: call.org_name.clone(),
        days,
        period_start: built.period.from.to_string(),
        period_end: built.period.to.to_string(),
        meters,
    })
}

fn batch_problem(err: &BatchError) -> Problem {
    let status = match err {
        BatchError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    Problem::new(status, err.rule(), "The request body is not a usage report", err.field(), err)
}

/// Reports usage events (CloudEvents, one or a batch) for the organization's own namespaces.
#[utoipa::path(post, path = "/v1/organizations/{org}/usage", tag = "usage",
    params(("org" = String, Path, description = "The Organization's object name")),
    request_body(content = Object, content_type = "application/cloudevents-batch+json",
        description = "One CloudEvent or a batch; `subject` names the namespace (docs/metering.md)"),
    responses((status = 202, description = "Success", body = UsageReportView), (status = "4XX", description = "A problem: its rule, the field at fault and the fix", body = Problem, content_type = "application/problem+json")),
    security(("apiKey" = []), ("kubernetesToken" = []), ("session" = [])))]
pub async fn ingest(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    body: Body,
) -> Result<(StatusCode, Json<UsageReportView>), Problem> {
    call.authorize(Action::WriteUsage)?;
    let max = app.max_body_bytes;
    let bytes = axum::body::to_bytes(body, max).await.map_err(|_| super::too_large(max))?;
    let events = parse_body(&bytes, max).map_err(|e| batch_problem(&e))?;
    let stripe_period = StripePeriod::of(app.caches.subscriptions_of(&call.org_name).iter());
    let owner = Owner { organization: call.org_name.clone(), stripe_period };
    let mut owners = BTreeMap::new();
    let home = call.organization.status.as_ref().and_then(|s| s.namespace.clone());
    let teams = app.caches.teams_of(&call.org_name).into_iter().filter_map(|t| t.status.and_then(|s| s.namespace));
    for namespace in home.into_iter().chain(teams) {
        owners.insert(namespace, owner.clone());
    }
    let judged = intake::judge(&events, &owners, jiff::Timestamp::now(), app.usage_grace)
        .map_err(|e| super::ledger_unavailable(e.to_string()))?;
    let mut new = BTreeMap::new();
    for (organization, events) in intake::by_organization(&judged) {
        let batch: Vec<_> = events.iter().map(|(_, e)| (*e).clone()).collect();
        let inserted = app.ledger.insert_usage_events(organization, &batch).await.map_err(|err| {
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger-unavailable",
                "Usage not recorded",
                "body",
                format!("the ledger did not commit the events ({err}): retry the same request; events already committed come back as duplicate"),
            )
        })?;
        for ((index, _), outcome) in events.iter().zip(inserted) {
            new.insert(*index, outcome == Inserted::New);
        }
    }
    let report = intake::report(&judged, &new);
    let results = report.results.iter().filter_map(|r| serde_json::to_value(r).ok()).collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(UsageReportView {
            accepted: report.accepted,
            duplicate: report.duplicate,
            rejected: report.rejected,
            results,
        }),
    ))
}
