//! An organization at a glance: plan and phase, its addresses, usage against the plan's limits, members
//! and roles, the team tree with namespaces and quota shares, and recent audit records.

use super::{number, render};
use crate::console::chart::meter_bar;
use crate::console::error::ConsoleError;
use crate::console::gate::Viewer;
use crate::console::layout::Layout;
use crate::http::App;
use crate::http::access::Action;
use crate::http::caller::Call;
use crate::http::routes::{organization, usage};
use crate::http::views::{MemberView, OrganizationView};
use crate::ledger::AuditQuery;
use askama::Template;
use axum::extract::{Extension, State};
use axum::response::Response;
use std::sync::Arc;

const RECENT_AUDIT: u32 = 10;

/// One team in the tree, in depth-first order.
pub struct TreeRow {
    pub name: String,
    pub depth: usize,
    pub namespace: String,
    pub quota_share: Option<i32>,
    pub members: usize,
    pub ready: bool,
}

pub struct AuditRow {
    pub at: String,
    pub actor: String,
    pub what: String,
    pub result: String,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
struct Page {
    layout: Layout,
    org: OrganizationView,
    hosts: Vec<String>,
    bars: Vec<String>,
    members: Vec<MemberView>,
    tree: Vec<TreeRow>,
    audit: Option<Vec<AuditRow>>,
}

/// Teams in depth-first order of their path (`org/parent/child`), with their depth for indenting.
pub fn tree(app: &App, call: &Call) -> Vec<TreeRow> {
    let mut teams = app.caches.teams_of(&call.org_name);
    let path = |t: &crate::api::Team| {
        t.status.as_ref().and_then(|s| s.path.clone()).unwrap_or_else(|| t.metadata.name.clone().unwrap_or_default())
    };
    teams.sort_by_key(|t| path(t));
    teams
        .iter()
        .map(|t| {
            let status = t.status.clone().unwrap_or_default();
            TreeRow {
                name: t.metadata.name.clone().unwrap_or_default(),
                depth: path(t).matches('/').count().saturating_sub(1),
                namespace: status.namespace.clone().unwrap_or_default(),
                quota_share: t.spec.quota_share,
                members: t.spec.members.len(),
                ready: crate::http::routes::condition_true(&status.conditions),
            }
        })
        .collect()
}

pub async fn page(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    Extension(live): Extension<Viewer>,
) -> Result<Response, ConsoleError> {
    call.authorize(Action::Read)?;
    let org = organization::organization_view(&app, &call);
    let used = usage::usage_view(&app, &call, 30).await?;
    let mut bars = vec![
        meter_bar("Users", org.users.used as f64, org.users.limit.map(|l| l as f64), "users"),
        meter_bar("Teams", org.teams.used as f64, org.teams.limit.map(|l| l as f64), "teams"),
    ];
    bars.extend(used.meters.iter().map(|m| {
        // The report says "unlimited" for a meter without a limit.
        let included = m.included.as_deref().filter(|i| *i != "unlimited").map(number);
        let used = number(&m.period_billed);
        // API calls are billed per thousand; people count them one by one.
        match m.meter.as_str() {
            "api_calls" => meter_bar("API calls", used * 1000.0, included.map(|i| i * 1000.0), "calls"),
            meter => meter_bar(&meter_label(meter), used, included, &m.billing_unit),
        }
    }));
    let audit = match call.authorize(Action::ReadAudit) {
        Err(_) => None,
        Ok(()) => {
            let query = AuditQuery {
                organization: Some(call.org_name.clone()),
                limit: Some(RECENT_AUDIT),
                ..Default::default()
            };
            let entries = app.ledger.query_audit(&query).await.map_err(crate::http::routes::ledger_unavailable)?;
            Some(
                entries
                    .into_iter()
                    .map(|e| AuditRow {
                        at: short_time(&e.record.at),
                        actor: e.record.actor,
                        what: format!("{} {} {}", e.record.action, e.record.kind, e.record.object),
                        result: e.record.result.as_str().to_string(),
                    })
                    .collect(),
            )
        }
    };
    let hosts = call.organization.status.as_ref().map(|s| s.hosts.clone()).unwrap_or_default();
    render(&Page {
        layout: Layout::organization(&live, &call, "Overview", "overview"),
        members: organization::members_view(&call).members,
        tree: tree(&app, &call),
        org,
        hosts,
        bars,
        audit,
    })
}

/// The meter's name as people say it.
pub fn meter_label(meter: &str) -> String {
    match meter {
        "bandwidth" => "Bandwidth".into(),
        "storage" => "Storage".into(),
        "api_calls" => "API calls".into(),
        "stream_time" => "Stream time".into(),
        other => other.to_string(),
    }
}

/// `2026-11-30 14:05 UTC`.
pub fn short_time(at: &jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M UTC").to_string()
}
