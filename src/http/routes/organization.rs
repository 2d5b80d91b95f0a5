//! The organization, its members and its teams.

use super::condition_true;
use crate::api::{Member, Role, Subject, SubjectKind};
use crate::http::App;
use crate::http::Problem;
use crate::http::access::Action;
use crate::http::caller::Call;
use crate::http::views::{Counted, MemberView, MembersView, MeteredSummary, OrganizationView, TeamView, TeamsView};
use axum::Json;
use axum::extract::{Extension, State};
use std::sync::Arc;

fn kind(kind: SubjectKind) -> String {
    format!("{kind:?}")
}

fn member(subject: &Subject, role: Role) -> MemberView {
    MemberView {
        kind: kind(subject.kind),
        name: subject.name.clone(),
        namespace: subject.namespace.clone(),
        role: format!("{role:?}"),
    }
}

fn members_of(members: &[Member]) -> impl Iterator<Item = MemberView> + '_ {
    members.iter().map(|m| member(&m.subject(), m.role))
}

/// The organization: plan, phase, URL, and usage against the plan's limits.
#[utoipa::path(get, path = "/v1/organizations/{org}", tag = "organization",
    params(("org" = String, Path, description = "The Organization's object name")),
    responses((status = 200, description = "Success", body = OrganizationView), (status = "4XX", description = "A problem: its rule, the field at fault and the fix", body = Problem, content_type = "application/problem+json")),
    security(("apiKey" = []), ("kubernetesToken" = []), ("session" = [])))]
pub async fn get_organization(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
) -> Result<Json<OrganizationView>, Problem> {
    call.authorize(Action::Read)?;
    Ok(Json(organization_view(&app, &call)))
}

/// The organization as the API shows it (the console's overview reads the same).
pub fn organization_view(app: &App, call: &Call) -> OrganizationView {
    let org = &call.organization;
    let status = org.status.clone().unwrap_or_default();
    let usage = status.usage.clone().unwrap_or_default();
    let limits = call.plan.as_ref().map(|p| p.spec.limits.clone()).unwrap_or_default();
    let teams = app.caches.teams_of(&call.org_name);
    OrganizationView {
        name: call.org_name.clone(),
        slug: org.spec.slug.clone(),
        display_name: org.spec.display_name.clone(),
        plan: call.plan_name.clone(),
        phase: status.phase.map(|p| format!("{p:?}")),
        url: status.url.clone(),
        namespace: status.namespace.clone(),
        ready: condition_true(&status.conditions),
        users: Counted {
            used: i64::from(crate::tenancy::plan::user_count(org, &teams)),
            limit: limits.users.map(i64::from),
        },
        teams: Counted { used: teams.len() as i64, limit: limits.teams.map(i64::from) },
        metered: MeteredSummary {
            bandwidth: usage.bandwidth,
            storage: usage.storage,
            api_calls: usage.api_calls,
            stream_time: usage.stream_time,
        },
        rate_limit_per_minute: call
            .plan
            .as_ref()
            .and_then(|p| p.spec.rate_limit.as_ref())
            .map(|r| r.requests_per_minute.max(0) as u32),
    }
}

/// Owners and members with their roles.
#[utoipa::path(get, path = "/v1/organizations/{org}/members", tag = "organization",
    params(("org" = String, Path, description = "The Organization's object name")),
    responses((status = 200, description = "Success", body = MembersView), (status = "4XX", description = "A problem: its rule, the field at fault and the fix", body = Problem, content_type = "application/problem+json")),
    security(("apiKey" = []), ("kubernetesToken" = []), ("session" = [])))]
pub async fn members(Extension(call): Extension<Arc<Call>>) -> Result<Json<MembersView>, Problem> {
    call.authorize(Action::Read)?;
    Ok(Json(members_view(&call)))
}

/// Owners first, then members, in the order of the spec.
pub fn members_view(call: &Call) -> MembersView {
    let spec = &call.organization.spec;
    let mut members: Vec<MemberView> = spec.owners.iter().map(|s| member(s, Role::Owner)).collect();
    members.extend(members_of(&spec.members));
    MembersView { members }
}

/// Teams with their namespaces, place in the tree and members.
#[utoipa::path(get, path = "/v1/organizations/{org}/teams", tag = "organization",
    params(("org" = String, Path, description = "The Organization's object name")),
    responses((status = 200, description = "Success", body = TeamsView), (status = "4XX", description = "A problem: its rule, the field at fault and the fix", body = Problem, content_type = "application/problem+json")),
    security(("apiKey" = []), ("kubernetesToken" = []), ("session" = [])))]
pub async fn teams(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
) -> Result<Json<TeamsView>, Problem> {
    call.authorize(Action::Read)?;
    Ok(Json(teams_view(&app, &call)))
}

/// Teams by name.
pub fn teams_view(app: &App, call: &Call) -> TeamsView {
    let mut teams: Vec<TeamView> = app
        .caches
        .teams_of(&call.org_name)
        .into_iter()
        .map(|team| {
            let status = team.status.clone().unwrap_or_default();
            TeamView {
                name: team.metadata.name.clone().unwrap_or_default(),
                parent: team.spec.parent.clone(),
                namespace: status.namespace.clone(),
                path: status.path.clone(),
                members: team
                    .spec
                    .members
                    .iter()
                    .map(|m| MemberView {
                        kind: kind(m.kind),
                        name: m.name.clone(),
                        namespace: m.namespace.clone(),
                        role: format!("{:?}", m.role),
                    })
                    .collect(),
                ready: condition_true(&status.conditions),
            }
        })
        .collect();
    teams.sort_by(|a, b| a.name.cmp(&b.name));
    TeamsView { teams }
}
