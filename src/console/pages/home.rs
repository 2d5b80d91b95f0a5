//! The first page after sign-in: the organizations the person has a role in (by the one role table,
//! team roles included), and for platform admins the way to the platform pages.

use super::render;
use crate::admission::policy::{mfa_required, organization_role, sso_enabled};
use crate::console::error::ConsoleError;
use crate::console::gate::Viewer;
use crate::console::layout::Layout;
use crate::http::App;
use crate::http::access::team_role;
use askama::Template;
use axum::extract::{Extension, State};
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::Arc;

pub struct Membership {
    pub name: String,
    pub display_name: String,
    pub role: String,
    pub plan: String,
}

#[derive(Template)]
#[template(path = "console/home.html")]
struct Page {
    layout: Layout,
    memberships: Vec<Membership>,
}

pub async fn page(State(app): State<Arc<App>>, Extension(live): Extension<Viewer>) -> Result<Response, ConsoleError> {
    let who = &live.requester;
    // Teams grouped once: one pass over them, not one per organization.
    let mut teams: BTreeMap<String, Vec<crate::api::Team>> = BTreeMap::new();
    for team in app.caches.teams() {
        teams.entry(team.spec.organization.clone()).or_default().push(team);
    }
    let mut memberships: Vec<Membership> = app
        .caches
        .organizations()
        .into_iter()
        .filter_map(|org| {
            let name = org.metadata.name.clone()?;
            let plan_name = org.status.as_ref().and_then(|s| s.effective_plan.clone()).unwrap_or_default();
            let plan = app.caches.plan(&plan_name);
            let team_role = team_role(teams.get(&name).into_iter().flatten(), who, mfa_required(&org));
            let role = organization_role(&org, who, sso_enabled(plan.as_ref())).or(team_role)?;
            Some(Membership {
                name,
                display_name: org.spec.display_name.clone(),
                role: format!("{role:?}"),
                plan: plan_name,
            })
        })
        .collect();
    memberships.sort_by(|a, b| a.display_name.cmp(&b.display_name).then(a.name.cmp(&b.name)));
    render(&Page { layout: Layout::platform(&live, "Organizations", "home"), memberships })
}
