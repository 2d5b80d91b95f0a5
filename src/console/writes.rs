//! The console's changes, made at the Kubernetes API as the signed-in person: a client per change,
//! authenticated by the ID token of their sign-in (which the API server trusts as kubectl's), so RBAC
//! and the admission webhook decide exactly as for kubectl and their denial is what the page shows.
//! The console holds no privilege of its own: its ServiceAccount only reads.
//!
//! An ID token lives about an hour; a session is renewed by its refresh token when the provider gave
//! one (`--oidc-offline-access`), else the person is asked to sign in again before a change.

use crate::api::{Member, Organization, Subscription, Team, TeamSpec};
use crate::http::App;
use crate::http::signin::LiveSession;
use crate::ledger::SessionTokens;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use std::time::Duration;

/// Renew the ID token when it has less than this left (a change takes seconds).
const RENEW_BEFORE: jiff::SignedDuration = jiff::SignedDuration::from_secs(120);
/// How long a change waits for the API's caches to show it, so the page that follows does.
const CACHE_CATCH_UP: Duration = Duration::from_secs(5);

/// Why a change was not made.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The API server (RBAC or the admission webhook) refused: its message, as kubectl shows it.
    #[error("{message}")]
    Refused { code: u16, message: String },
    /// The sign-in must be renewed at the provider first.
    #[error("sign in again to make changes: {0}")]
    SignInAgain(String),
    #[error("the Kubernetes API is unavailable: {0}")]
    Unavailable(String),
}

impl From<kube::Error> for WriteError {
    fn from(err: kube::Error) -> Self {
        match err {
            kube::Error::Api(status) => WriteError::Refused { code: status.code, message: status.message },
            other => WriteError::Unavailable(other.to_string()),
        }
    }
}

/// The person's ID token, renewed if it is about to expire.
async fn id_token(app: &App, live: &LiveSession) -> Result<String, WriteError> {
    let tokens = &live.session.tokens;
    let now = jiff::Timestamp::now();
    if !tokens.id_token.is_empty() && tokens.id_token_expires_at - RENEW_BEFORE > now {
        return Ok(tokens.id_token.clone());
    }
    if tokens.refresh_token.is_empty() {
        return Err(WriteError::SignInAgain("the sign-in's ID token has expired".into()));
    }
    let signin = app.signin.as_ref().ok_or_else(|| WriteError::SignInAgain("web sign-in is off".into()))?;
    let provider = signin.provider().await.map_err(|e| WriteError::Unavailable(e.to_string()))?;
    let renewed = provider.refresh(&tokens.refresh_token).await.map_err(|e| WriteError::SignInAgain(e.to_string()))?;
    // The renewed token must be the same person: a provider must not swap identities under a session.
    if renewed.subject != live.session.subject {
        return Err(WriteError::SignInAgain("the identity provider renewed a different person".into()));
    }
    let fresh = SessionTokens {
        id_token: renewed.id_token.clone(),
        id_token_expires_at: jiff::Timestamp::from_second(renewed.expires_at).unwrap_or(now),
        refresh_token: renewed.refresh_token.unwrap_or_default(),
    };
    if !app
        .ledger
        .update_web_session_tokens(&live.id_hash, &fresh)
        .await
        .map_err(|e| WriteError::Unavailable(e.to_string()))?
    {
        return Err(WriteError::SignInAgain("this session has ended".into()));
    }
    Ok(fresh.id_token)
}

/// A client that is the person: the API server's address and CA from the console's own
/// configuration, their token and nothing else of the console's credentials.
async fn as_person(app: &App, live: &LiveSession) -> Result<kube::Client, WriteError> {
    let token = id_token(app, live).await?;
    let mut config = app.kube_config.clone();
    config.auth_info = kube::config::AuthInfo { token: Some(token.into()), ..Default::default() };
    kube::Client::try_from(config).map_err(|e| WriteError::Unavailable(e.to_string()))
}

fn field_manager() -> PatchParams {
    PatchParams { field_manager: Some("atlantiplex-console".into()), ..Default::default() }
}

/// Replaces the Organization's `spec.members`, guarded by the resourceVersion it was read at, so a
/// concurrent change is never overwritten. `false`: the edit changed nothing, and nothing was sent.
async fn set_members(client: kube::Client, org: &str, edit: impl FnOnce(&mut Vec<Member>)) -> Result<bool, WriteError> {
    let api: Api<Organization> = Api::all(client);
    let current = api.get(org).await?;
    let mut members = current.spec.members.clone();
    edit(&mut members);
    if members == current.spec.members {
        return Ok(false);
    }
    let version = current.metadata.resource_version.clone().unwrap_or_default();
    let patch = serde_json::json!([
        { "op": "test", "path": "/metadata/resourceVersion", "value": version },
        { "op": "add", "path": "/spec/members", "value": members },
    ]);
    let patch: json_patch::Patch = serde_json::from_value(patch).map_err(|e| WriteError::Unavailable(e.to_string()))?;
    api.patch(org, &field_manager(), &Patch::Json::<()>(patch)).await?;
    Ok(true)
}

/// Adds (or re-roles) a member; `false` when they already had that role.
pub async fn add_member(app: &App, live: &LiveSession, org: &str, member: Member) -> Result<bool, WriteError> {
    let client = as_person(app, live).await?;
    let (kind, name, role) = (member.kind, member.name.clone(), member.role);
    let changed = set_members(client, org, |members| {
        match members
            .iter_mut()
            .find(|m| m.kind == member.kind && m.name == member.name && m.namespace == member.namespace)
        {
            Some(existing) => existing.role = member.role,
            None => members.push(member),
        }
    })
    .await?;
    if !changed {
        return Ok(false);
    }
    wait_for_cache(|| {
        app.caches
            .organization(org)
            .is_some_and(|o| o.spec.members.iter().any(|m| m.kind == kind && m.name == name && m.role == role))
    })
    .await;
    Ok(true)
}

pub async fn remove_member(
    app: &App,
    live: &LiveSession,
    org: &str,
    kind: crate::api::SubjectKind,
    name: &str,
) -> Result<(), WriteError> {
    let client = as_person(app, live).await?;
    if !set_members(client, org, |members| members.retain(|m| !(m.kind == kind && m.name == name))).await? {
        return Err(WriteError::Refused {
            code: 404,
            message: format!("{name} is not a member of {org}: nothing to remove"),
        });
    }
    wait_for_cache(|| {
        app.caches.organization(org).is_some_and(|o| !o.spec.members.iter().any(|m| m.kind == kind && m.name == name))
    })
    .await;
    Ok(())
}

pub async fn create_team(app: &App, live: &LiveSession, name: &str, spec: TeamSpec) -> Result<(), WriteError> {
    let client = as_person(app, live).await?;
    let organization = spec.organization.clone();
    let team = Team::new(name, spec);
    Api::<Team>::all(client)
        .create(&PostParams { field_manager: field_manager().field_manager, ..Default::default() }, &team)
        .await?;
    wait_for_cache(|| app.caches.teams_of(&organization).iter().any(|t| t.metadata.name.as_deref() == Some(name)))
        .await;
    Ok(())
}

pub async fn delete_team(app: &App, live: &LiveSession, organization: &str, name: &str) -> Result<(), WriteError> {
    let client = as_person(app, live).await?;
    Api::<Team>::all(client).delete(name, &DeleteParams::default()).await?;
    wait_for_cache(|| {
        app.caches
            .teams_of(organization)
            .iter()
            .all(|t| t.metadata.name.as_deref() != Some(name) || t.metadata.deletion_timestamp.is_some())
    })
    .await;
    Ok(())
}

/// Moves the organization's Subscription to `plan` (the webhook decides: owners only, no downgrade
/// below current usage).
pub async fn change_plan(app: &App, live: &LiveSession, subscription: &str, plan: &str) -> Result<(), WriteError> {
    let client = as_person(app, live).await?;
    let patch = serde_json::json!({ "spec": { "plan": plan } });
    Api::<Subscription>::all(client).patch(subscription, &field_manager(), &Patch::Merge(&patch)).await?;
    wait_for_cache(|| app.caches.subscription(subscription).is_some_and(|s| s.spec.plan == plan)).await;
    Ok(())
}

/// Waits (briefly) until the API's caches show a change, so the page after it does too; the change
/// is made either way.
async fn wait_for_cache(shows: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + CACHE_CATCH_UP;
    while !shows() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
