//! Team management: the organization's members and teams, and forms to add and remove members and to
//! create and delete teams. Each change is made at the Kubernetes API as the signed-in person
//! (`console::writes`); a refusal shows the API server's own message, the webhook's rule included.

use super::{done_message, refusal_status, render};
use crate::api::{Member, Role, SubjectKind, TeamSpec};
use crate::console::error::ConsoleError;
use crate::console::gate::{CsrfForm, Viewer};
use crate::console::layout::Layout;
use crate::console::pages::overview::{TreeRow, tree};
use crate::console::writes::{self, WriteError};
use crate::http::App;
use crate::http::access::Action;
use crate::http::caller::Call;
use crate::http::routes::organization::members_view;
use crate::http::views::MemberView;
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

#[derive(Template)]
#[template(path = "console/team.html")]
struct Page {
    layout: Layout,
    org: String,
    members: Vec<MemberView>,
    tree: Vec<TreeRow>,
    done: Option<&'static str>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct Shown {
    done: Option<String>,
}

fn build(
    app: &App,
    call: &Call,
    live: &Viewer,
    done: Option<&str>,
    error: Option<String>,
) -> Result<Page, ConsoleError> {
    call.authorize(Action::Read)?;
    Ok(Page {
        layout: Layout::organization(live, call, "Team", "team"),
        org: call.org_name.clone(),
        members: members_view(call).members,
        tree: tree(app, call),
        done: done_message(done),
        error,
    })
}

pub async fn page(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    Extension(live): Extension<Viewer>,
    Query(shown): Query<Shown>,
) -> Result<Response, ConsoleError> {
    render(&build(&app, &call, &live, shown.done.as_deref(), None)?)
}

/// After a change: back to the page with what was done; a refusal: the page with the API's message.
fn outcome(
    app: &App,
    call: &Call,
    live: &Viewer,
    result: Result<(), WriteError>,
    done: &str,
) -> Result<Response, ConsoleError> {
    let err = match result {
        Ok(()) => return Ok(Redirect::to(&format!("/console/orgs/{}/team?done={done}", call.org_name)).into_response()),
        Err(err) => err,
    };
    let status = refusal_status(&err, &format!("/console/orgs/{}/team", call.org_name))?;
    let mut response = render(&build(app, call, live, None, Some(err.to_string()))?)?;
    *response.status_mut() = status;
    Ok(response)
}

fn bad(app: &App, call: &Call, live: &Viewer, message: String) -> Result<Response, ConsoleError> {
    let mut response = render(&build(app, call, live, None, Some(message))?)?;
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

#[derive(serde::Deserialize)]
pub struct MemberForm {
    kind: SubjectKind,
    name: String,
    role: Role,
}

pub async fn add_member(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    Extension(live): Extension<Viewer>,
    CsrfForm(form): CsrfForm<MemberForm>,
) -> Result<Response, ConsoleError> {
    let name = form.name.trim().to_string();
    if name.is_empty() {
        return bad(&app, &call, &live, "name: enter the person's email (User) or the group's name (Group)".into());
    }
    let member = Member { kind: form.kind, name, namespace: None, role: form.role };
    match writes::add_member(&app, &live, &call.org_name, member).await {
        Ok(false) => outcome(&app, &call, &live, Ok(()), "member-unchanged"),
        result => outcome(&app, &call, &live, result.map(|_| ()), "member-added"),
    }
}

#[derive(serde::Deserialize)]
pub struct RemoveForm {
    kind: SubjectKind,
    name: String,
}

pub async fn remove_member(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    Extension(live): Extension<Viewer>,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> Result<Response, ConsoleError> {
    let result = writes::remove_member(&app, &live, &call.org_name, form.kind, &form.name).await;
    outcome(&app, &call, &live, result, "member-removed")
}

#[derive(serde::Deserialize)]
pub struct TeamForm {
    /// The team's own part of the name: the Team is `<organization>.<name>`.
    name: String,
    #[serde(default)]
    parent: String,
    #[serde(default)]
    quota_share: String,
}

pub async fn create_team(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    Extension(live): Extension<Viewer>,
    CsrfForm(form): CsrfForm<TeamForm>,
) -> Result<Response, ConsoleError> {
    let short = form.name.trim();
    let valid = !short.is_empty()
        && short.len() <= 40
        && short.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !short.starts_with('-')
        && !short.ends_with('-')
        && !short.contains("--");
    if !valid {
        return bad(
            &app,
            &call,
            &live,
            format!(
                "name {short:?}: use 1–40 lower-case letters, digits and single dashes (it becomes namespace <slug>--<name>)"
            ),
        );
    }
    let quota_share = match form.quota_share.trim() {
        "" => None,
        text => match text.parse::<i32>() {
            Ok(share) if (1..=100).contains(&share) => Some(share),
            _ => {
                return bad(
                    &app,
                    &call,
                    &live,
                    format!("quota share {text:?}: a whole percent from 1 to 100, or empty to share"),
                );
            }
        },
    };
    let parent = Some(form.parent.trim().to_string()).filter(|p| !p.is_empty());
    let spec = TeamSpec {
        organization: call.org_name.clone(),
        parent,
        members: Vec::new(),
        quota_share,
        allow_cascade_delete: false,
    };
    let name = format!("{}.{short}", call.org_name);
    let result = writes::create_team(&app, &live, &name, spec).await;
    outcome(&app, &call, &live, result, "team-created")
}

#[derive(serde::Deserialize)]
pub struct DeleteForm {
    team: String,
}

pub async fn delete_team(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    Extension(live): Extension<Viewer>,
    CsrfForm(form): CsrfForm<DeleteForm>,
) -> Result<Response, ConsoleError> {
    // Only this organization's teams: another name is refused here, before any call.
    if !app.caches.teams_of(&call.org_name).iter().any(|t| t.metadata.name.as_deref() == Some(form.team.as_str())) {
        return bad(&app, &call, &live, format!("team {:?} is not a team of {}", form.team, call.org_name));
    }
    let result = writes::delete_team(&app, &live, &call.org_name, &form.team).await;
    outcome(&app, &call, &live, result, "team-deleted")
}
