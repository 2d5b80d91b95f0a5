//! The platform's pages, for platform admins (`--platform-admin-group`): every organization with
//! filters (plan, phase, over a limit, past due), feature adoption and the platform's usage; and
//! revenue — MRR, ARR, the month's movements, churn, trial conversion and ARPA (`crate::revenue`).

use super::render;
use crate::console::chart::{ChartSeries, MonthMovements, daily_bars, data_table, format_quantity, movements_bars};
use crate::console::error::ConsoleError;
use crate::console::gate::Viewer;
use crate::console::layout::Layout;
use crate::console::pages::overview::meter_label;
use crate::console::pages::usage::readable;
use crate::console::platform::{PlatformFigures, USAGE_DAYS};
use crate::http::App;
use crate::metering::Meter;
use crate::revenue::{CurrencyReport, format_cents, format_rate};
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

/// Rows shown at once; filters narrow the rest.
const MAX_ROWS: usize = 200;

fn platform_admin(live: &Viewer) -> Result<(), ConsoleError> {
    if live.requester.platform_admin {
        return Ok(());
    }
    Err(ConsoleError::Problem(Box::new(crate::http::Problem::new(
        StatusCode::FORBIDDEN,
        "platform-admins-only",
        "Platform admins only",
        "session",
        format!(
            "{} is not in a platform admin group (--platform-admin-group): the platform pages show every organization",
            live.session.email
        ),
    ))))
}

async fn figures(app: &Arc<App>) -> Result<Arc<PlatformFigures>, ConsoleError> {
    Ok(app.console.platform.get(app).await.map_err(crate::http::routes::ledger_unavailable)?)
}

pub struct OrgRow {
    pub name: String,
    pub display_name: String,
    pub plan: String,
    pub phase: String,
    pub users: String,
    pub teams: usize,
    pub state: String,
    pub mrr: String,
    pub over_limit: bool,
    pub past_due: bool,
}

pub struct Adoption {
    pub feature: &'static str,
    pub count: usize,
    pub percent: String,
}

#[derive(serde::Deserialize, Default)]
pub struct Filters {
    #[serde(default)]
    plan: String,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    over: Option<String>,
    #[serde(default)]
    past_due: Option<String>,
    #[serde(default)]
    q: String,
}

#[derive(Template)]
#[template(path = "console/admin.html")]
struct OrganizationsPage {
    layout: Layout,
    rows: Vec<OrgRow>,
    matching: usize,
    total: usize,
    plans: Vec<String>,
    filters: Filters,
    adoption: Vec<Adoption>,
    usage: Vec<(String, String, String)>,
    computed_at: String,
}

fn over_limit(org: &crate::api::Organization) -> bool {
    let conditions = org.status.as_ref().map(|s| s.conditions.as_slice()).unwrap_or_default();
    ["WithinLimits", crate::metering::status::CONDITION]
        .iter()
        .any(|kind| crate::api::condition(conditions, kind).is_some_and(|c| c.status == "False"))
}

pub async fn organizations(
    State(app): State<Arc<App>>,
    Extension(live): Extension<Viewer>,
    Query(filters): Query<Filters>,
) -> Result<Response, ConsoleError> {
    platform_admin(&live)?;
    let figures = figures(&app).await?;
    let organizations = app.caches.organizations();
    let mut team_counts = std::collections::BTreeMap::<String, usize>::new();
    for team in app.caches.teams() {
        *team_counts.entry(team.spec.organization.clone()).or_default() += 1;
    }
    let states: std::collections::BTreeMap<String, String> = app
        .caches
        .subscriptions()
        .into_iter()
        .map(|s| (s.spec.organization.clone(), s.status.and_then(|st| st.stripe_state).unwrap_or_default()))
        .collect();
    let total = organizations.len();
    let query = filters.q.trim().to_lowercase();
    let mut rows: Vec<OrgRow> = organizations
        .iter()
        .filter_map(|org| {
            let name = org.metadata.name.clone()?;
            let status = org.status.clone().unwrap_or_default();
            let plan = status.effective_plan.clone().unwrap_or_default();
            let phase = status.phase.map(|p| format!("{p:?}")).unwrap_or_else(|| "Provisioning".into());
            let state = states.get(&name).cloned().unwrap_or_default();
            let mrr = figures.revenue.organizations.get(&name);
            Some(OrgRow {
                mrr: mrr.map_or_else(|| "—".into(), |m| format_cents(m.mrr_cents, &m.currency)),
                users: status.usage.as_ref().map(|u| u.users.clone()).unwrap_or_default(),
                teams: team_counts.get(&name).copied().unwrap_or(0),
                over_limit: over_limit(org),
                past_due: state == "past_due",
                display_name: org.spec.display_name.clone(),
                name,
                plan,
                phase,
                state,
            })
        })
        .filter(|r| filters.plan.is_empty() || r.plan == filters.plan)
        .filter(|r| filters.phase.is_empty() || r.phase == filters.phase)
        .filter(|r| filters.over.is_none() || r.over_limit)
        .filter(|r| filters.past_due.is_none() || r.past_due)
        .filter(|r| query.is_empty() || r.name.contains(&query) || r.display_name.to_lowercase().contains(&query))
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let matching = rows.len();
    rows.truncate(MAX_ROWS);
    let percent = |count: usize| {
        if total == 0 { "—".to_string() } else { format!("{:.0} %", 100.0 * count as f64 / total as f64) }
    };
    let count = |f: &dyn Fn(&crate::api::Organization) -> bool| organizations.iter().filter(|o| f(o)).count();
    let adoption = [
        ("Custom domains", count(&|o| o.spec.ingress.as_ref().is_some_and(|i| !i.custom_domains.is_empty()))),
        ("Single sign-on", count(&|o| o.spec.security.as_ref().is_some_and(|s| !s.sso_group_mappings.is_empty()))),
        ("MFA required", count(&|o| o.spec.security.as_ref().is_some_and(|s| s.mfa_required))),
        ("API keys", count(&|o| o.metadata.name.as_ref().is_some_and(|n| figures.with_keys.contains(n)))),
        ("Teams", count(&|o| o.metadata.name.as_ref().is_some_and(|n| team_counts.contains_key(n)))),
    ]
    .into_iter()
    .map(|(feature, count)| Adoption { feature, count, percent: percent(count) })
    .collect();
    let mut plans: Vec<String> = app.caches.plans().into_iter().filter_map(|p| p.metadata.name).collect();
    plans.sort();
    render(&OrganizationsPage {
        layout: Layout::platform(&live, "Platform", "admin"),
        rows,
        matching,
        total,
        plans,
        filters,
        adoption,
        usage: platform_usage(&figures),
        computed_at: figures.computed_at.strftime("%H:%M:%S UTC").to_string(),
    })
}

/// Per meter: (heading, chart, table) of the platform's daily usage.
fn platform_usage(figures: &PlatformFigures) -> Vec<(String, String, String)> {
    let today = figures.computed_at.to_zoned(jiff::tz::TimeZone::UTC).date();
    Meter::ALL
        .iter()
        .map(|meter| {
            let unit = readable(*meter, 0).1;
            let days = figures.usage.get(meter);
            let points: Vec<(String, f64)> = (0..USAGE_DAYS)
                .rev()
                .filter_map(|back| today.checked_sub(jiff::Span::new().days(back)).ok())
                .map(|day| {
                    let key = day.to_string();
                    let quantity = days.and_then(|d| d.get(&key)).copied().unwrap_or(0);
                    (key, readable(*meter, quantity).0)
                })
                .collect();
            let title = format!("{} per day, all organizations", meter_label(meter.as_str()));
            let series = ChartSeries { title: &title, unit, points: &points, limit: None };
            let total: f64 = points.iter().map(|(_, v)| v).sum();
            let heading =
                format!("{} · {} {unit} in {USAGE_DAYS} days", meter_label(meter.as_str()), format_quantity(total));
            (heading, daily_bars(&series), data_table(&series))
        })
        .collect()
}

pub struct MonthRow {
    pub month: String,
    pub start: String,
    pub new: String,
    pub expansion: String,
    pub reactivation: String,
    pub contraction: String,
    pub churn: String,
    pub net_new: String,
    pub end: String,
    pub customers: usize,
    pub logo_churn: String,
    pub revenue_churn: String,
    pub net_revenue_churn: String,
    pub trial_conversion: String,
    pub arpa: String,
}

pub struct CurrencyView {
    pub currency: String,
    pub mrr: String,
    pub arr: String,
    pub paying: usize,
    pub arpa: String,
    pub net_new: String,
    pub chart: String,
    pub months: Vec<MonthRow>,
}

#[derive(Template)]
#[template(path = "console/revenue.html")]
struct RevenuePage {
    layout: Layout,
    currencies: Vec<CurrencyView>,
    computed_at: String,
}

fn currency_view(currency: &str, report: &CurrencyReport) -> CurrencyView {
    let money = |cents: i64| format_cents(cents, currency);
    let signed = |cents: i64| if cents > 0 { format!("+{}", money(cents)) } else { money(cents) };
    let movements: Vec<(String, MonthMovements)> = report
        .months
        .iter()
        .map(|m| {
            (
                m.month.clone(),
                MonthMovements {
                    new: m.new_cents,
                    expansion: m.expansion_cents,
                    reactivation: m.reactivation_cents,
                    contraction: m.contraction_cents,
                    churn: m.churn_cents,
                },
            )
        })
        .collect();
    let months = report
        .months
        .iter()
        .rev()
        .map(|m| MonthRow {
            month: m.month.clone(),
            start: money(m.start_mrr_cents),
            new: money(m.new_cents),
            expansion: money(m.expansion_cents),
            reactivation: money(m.reactivation_cents),
            contraction: money(m.contraction_cents),
            churn: money(m.churn_cents),
            net_new: signed(m.net_new_cents),
            end: money(m.end_mrr_cents),
            customers: m.customers_end,
            logo_churn: format_rate(m.logo_churn_rate),
            revenue_churn: format_rate(m.gross_revenue_churn_rate),
            net_revenue_churn: format_rate(m.net_revenue_churn_rate),
            trial_conversion: format_rate(m.trial_conversion_rate),
            arpa: m.arpa_cents.map_or_else(|| "—".into(), money),
        })
        .collect();
    CurrencyView {
        currency: currency.to_uppercase(),
        mrr: money(report.current.mrr_cents),
        arr: money(report.current.arr_cents),
        paying: report.current.paying_customers,
        arpa: report.current.arpa_cents.map_or_else(|| "—".into(), money),
        net_new: report.months.last().map_or_else(|| "—".into(), |m| signed(m.net_new_cents)),
        chart: movements_bars(&movements),
        months,
    }
}

pub async fn revenue(
    State(app): State<Arc<App>>,
    Extension(live): Extension<Viewer>,
) -> Result<Response, ConsoleError> {
    platform_admin(&live)?;
    let figures = figures(&app).await?;
    let mut currencies: Vec<CurrencyView> =
        figures.revenue.currencies.iter().map(|(currency, report)| currency_view(currency, report)).collect();
    // The main currency first: the one with the most MRR.
    currencies.sort_by_key(|c| {
        std::cmp::Reverse(figures.revenue.currencies.get(&c.currency.to_lowercase()).map_or(0, |r| r.current.mrr_cents))
    });
    render(&RevenuePage {
        layout: Layout::platform(&live, "Revenue", "revenue"),
        currencies,
        computed_at: figures.computed_at.strftime("%H:%M:%S UTC").to_string(),
    })
}

/// For the template: the filter's current values.
impl OrganizationsPage {
    fn over_checked(&self) -> bool {
        self.filters.over.is_some()
    }

    fn past_due_checked(&self) -> bool {
        self.filters.past_due.is_some()
    }
}
