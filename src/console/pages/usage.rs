//! Usage analytics: a daily chart per meter over 30 or 90 days (with the same figures as a table), the
//! teams that used most, and API calls by key.

use super::render;
use crate::console::chart::{ChartSeries, daily_bars, data_table, format_quantity};
use crate::console::error::ConsoleError;
use crate::console::gate::Viewer;
use crate::console::layout::Layout;
use crate::console::pages::overview::meter_label;
use crate::http::App;
use crate::http::access::Action;
use crate::http::caller::Call;
use crate::http::routes::usage::usage_view;
use crate::metering::Meter;
use crate::metering::intake::subject_namespace;
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct MeterChart {
    pub meter: String,
    pub label: String,
    pub chart: String,
    pub table: String,
    pub total: String,
}

pub struct Ranked {
    pub name: String,
    pub detail: String,
    pub value: String,
}

#[derive(Template)]
#[template(path = "console/usage.html")]
struct Page {
    layout: Layout,
    org: String,
    days: u32,
    charts: Vec<MeterChart>,
    top_teams: Vec<Ranked>,
    keys: Vec<Ranked>,
}

#[derive(serde::Deserialize, Default)]
pub struct Shown {
    days: Option<u32>,
}

/// The base unit's quantity in the unit people read (GiB, hours, calls); the platform page uses it too.
pub fn readable(meter: Meter, quantity: i64) -> (f64, &'static str) {
    match meter {
        Meter::Bandwidth => (quantity as f64 / (1u64 << 30) as f64, "GiB"),
        Meter::Storage => (quantity as f64 / (1u64 << 30) as f64, "GiB"),
        Meter::ApiCalls => (quantity as f64, "calls"),
        Meter::StreamTime => (quantity as f64 / 3_600_000.0, "hours"),
    }
}

pub async fn page(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    Extension(live): Extension<Viewer>,
    Query(shown): Query<Shown>,
) -> Result<Response, ConsoleError> {
    call.authorize(Action::Read)?;
    let days = shown.days.unwrap_or(30);
    let view = usage_view(&app, &call, days).await?;
    let charts = view
        .meters
        .iter()
        .filter_map(|m| {
            let meter = Meter::parse(&m.meter)?;
            let points: Vec<(String, f64)> =
                m.daily.iter().map(|d| (d.day.clone(), readable(meter, d.quantity).0)).collect();
            let unit = readable(meter, 0).1;
            let label = meter_label(&m.meter);
            let title = format!("{label} per day, last {days} days");
            // The plan's included amount is per period; as a daily line it would mislead, so none is drawn.
            let series = ChartSeries { title: &title, unit, points: &points, limit: None };
            let total: f64 = points.iter().map(|(_, v)| v).sum();
            Some(MeterChart {
                meter: m.meter.clone(),
                label,
                chart: daily_bars(&series),
                table: data_table(&series),
                total: format!("{} {unit}", format_quantity(total)),
            })
        })
        .collect();
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * i64::from(days));
    let by_subject =
        app.ledger.usage_by_subject(&call.org_name, since).await.map_err(crate::http::routes::ledger_unavailable)?;
    let teams = app.caches.teams_of(&call.org_name);
    let team_of: BTreeMap<String, String> =
        teams.iter().filter_map(|t| Some((t.status.as_ref()?.namespace.clone()?, t.metadata.name.clone()?))).collect();
    // Per team, each meter in its readable unit; ranked by bandwidth, then stream time, then calls.
    let mut per_team: BTreeMap<String, BTreeMap<Meter, i64>> = BTreeMap::new();
    let mut per_key: BTreeMap<String, i64> = BTreeMap::new();
    for row in &by_subject {
        if let Some(team) = team_of.get(subject_namespace(&row.subject)) {
            *per_team.entry(team.clone()).or_default().entry(row.meter).or_default() += row.quantity;
        }
        if row.meter == Meter::ApiCalls
            && let Some((_, key)) = row.subject.split_once("/apikey:")
        {
            *per_key.entry(key.to_string()).or_default() += row.quantity;
        }
    }
    let rank = |m: &BTreeMap<Meter, i64>| {
        (m.get(&Meter::Bandwidth).copied().unwrap_or(0), m.get(&Meter::StreamTime).copied().unwrap_or(0))
    };
    let mut ranked: Vec<_> = per_team.into_iter().collect();
    ranked.sort_by(|a, b| rank(&b.1).cmp(&rank(&a.1)).then(a.0.cmp(&b.0)));
    let top_teams = ranked
        .into_iter()
        .take(10)
        .map(|(team, meters)| {
            let detail = meters
                .iter()
                .map(|(meter, q)| {
                    let (value, unit) = readable(*meter, *q);
                    format!("{} {} {unit}", meter_label(meter.as_str()), format_quantity(value))
                })
                .collect::<Vec<_>>()
                .join(" · ");
            let (value, unit) = readable(Meter::Bandwidth, meters.get(&Meter::Bandwidth).copied().unwrap_or(0));
            Ranked { name: team, detail, value: format!("{} {unit}", format_quantity(value)) }
        })
        .collect();
    let names: BTreeMap<String, String> = app
        .ledger
        .api_keys(&call.org_name)
        .await
        .map_err(crate::http::routes::ledger_unavailable)?
        .into_iter()
        .map(|k| (k.id.clone(), format!("{} ({})", k.name, k.prefix)))
        .collect();
    let mut keys: Vec<_> = per_key.into_iter().collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let keys = keys
        .into_iter()
        .map(|(id, calls)| Ranked {
            detail: id.clone(),
            name: names.get(&id).cloned().unwrap_or_else(|| format!("key {id} (deleted)")),
            value: format_quantity(calls as f64),
        })
        .collect();
    render(&Page {
        layout: Layout::organization(&live, &call, "Usage", "usage"),
        org: call.org_name.clone(),
        days,
        charts,
        top_teams,
        keys,
    })
}
