//! The ApiKey controller: issues a declared key once and keeps the ledger's record of it in step.
//!
//! Why the Secret comes first: the key exists only in it. The key is generated and the Secret created
//! (create, never overwrite) before its hash goes to the ledger; a reconcile that fails in between finds the
//! Secret next time and stores the hash of the key it holds. So a key is never lost, never issued twice, and
//! the Secret always holds the key the ledger knows. Scope and expiry changes update the ledger row; deleting
//! the ApiKey revokes the key (finalizer) and the Secret goes with it (owner reference).

use super::{Context, conditions, publish};
use crate::api::{ApiKey, ApiKeyStatus};
use crate::error::{Error, Result};
use crate::keys::{self, Hasher};
use crate::ledger::NewApiKey;
use crate::tenancy::labels::FIELD_MANAGER;
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::{Controller, watcher};
use kube::{Api, Resource, ResourceExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const FINALIZER: &str = "atlantiplex.io/api-key";
/// The Secret's data key holding the API key.
pub const SECRET_KEY: &str = "key";
/// How often the last-use time in the status is refreshed.
const REFRESH: Duration = Duration::from_secs(300);

struct State {
    ctx: Arc<Context>,
    hasher: Result<Hasher, String>,
}

/// Runs until `stopped` (the operator's shutdown or the end of its leadership).
pub async fn run(ctx: Arc<Context>, stopped: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let hasher = match &ctx.settings.api_key_hash_key_file {
        Some(path) => Hasher::from_file(path),
        None => Err("the operator has no --api-key-hash-key-file (chart: the api-key-hash Secret)".to_string()),
    };
    if let Err(why) = &hasher {
        tracing::info!(%why, "ApiKey objects will wait");
    }
    let state = Arc::new(State { ctx: ctx.clone(), hasher });
    Controller::new(Api::<ApiKey>::all(ctx.client.clone()), watcher::Config::default())
        .graceful_shutdown_on(stopped)
        .run(reconcile, error_policy, state)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!(error = %err, "ApiKey reconcile");
            }
        })
        .await;
    tracing::info!("ApiKey controller stopped");
}

fn error_policy(key: Arc<ApiKey>, err: &Error, _: Arc<State>) -> Action {
    tracing::warn!(apikey = %key.name_any(), error = %err, "ApiKey reconcile failed; retrying");
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(key: Arc<ApiKey>, state: Arc<State>) -> Result<Action> {
    let api: Api<ApiKey> = Api::all(state.ctx.client.clone());
    finalizer(&api, FINALIZER, key, |event| async {
        match event {
            Finalizer::Apply(key) => issue(&key, &state).await,
            Finalizer::Cleanup(key) => revoke(&key, &state).await,
        }
    })
    .await
    .map_err(|e| Error::Waiting(format!("ApiKey: {e}")))
}

async fn revoke(key: &ApiKey, state: &State) -> Result<Action> {
    if let Some(ledger) = &state.ctx.ledger {
        let revoked = ledger
            .revoke_api_key(&key.spec.organization, &key.key_id())
            .await
            .map_err(|e| Error::Waiting(format!("revoking the key in the ledger: {e}")))?;
        if revoked {
            tracing::info!(apikey = %key.name_any(), organization = %key.spec.organization, "API key revoked");
        }
    }
    Ok(Action::await_change())
}

/// Ready, or why not (and whether to look again soon).
async fn issue(key: &ApiKey, state: &State) -> Result<Action> {
    let ctx = &state.ctx;
    let name = key.name_any();
    let organization = &key.spec.organization;
    let waiting = |reason: &str, message: String| (false, reason.to_string(), message);
    let expires_at = match key.spec.expires_at.as_deref().map(str::parse::<jiff::Timestamp>).transpose() {
        Ok(at) => at,
        Err(e) => {
            let message = format!("spec.expiresAt is not an RFC 3339 time ({e}): e.g. 2027-01-31T00:00:00Z");
            return write_status(key, state, None, (false, "InvalidSpec".into(), message)).await;
        }
    };
    let home = ctx.organization(organization).and_then(|o| o.status.and_then(|s| s.namespace));
    let (Some(ledger), Ok(hasher), Some(home)) = (&ctx.ledger, &state.hasher, home) else {
        let outcome = match (&ctx.ledger, &state.hasher) {
            (None, _) => waiting("NoLedger", "the operator runs without a ledger; keys cannot be recorded".into()),
            (_, Err(why)) => waiting("HashKeyMissing", format!("{why}: keys cannot be issued until it is set")),
            _ => waiting(
                "OrganizationNotReady",
                format!(
                    "organization {organization} does not exist or has no home namespace yet: the key is issued once it has"
                ),
            ),
        };
        write_status(key, state, None, outcome).await?;
        return Ok(Action::requeue(Duration::from_secs(10)));
    };
    let secret_name = key.secret_name();
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &home);
    let uid = key.uid().unwrap_or_default();
    let secret = match secrets.get_opt(&secret_name).await? {
        Some(secret) => secret,
        None => {
            let value = keys::generate().map_err(|_| Error::Waiting("no random source".into()))?;
            let created = secrets
                .create(
                    &PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() },
                    &new_secret(key, &secret_name, &home, &value),
                )
                .await;
            match created {
                Ok(secret) => {
                    let note = format!("key generated into Secret {home}/{secret_name}");
                    publish(ctx, &key.object_ref(&()), EventType::Normal, "Issued", "Issue", note).await;
                    secret
                }
                // Created meanwhile (another reconcile): read it back next round.
                Err(kube::Error::Api(s)) if s.code == 409 => return Ok(Action::requeue(Duration::from_secs(1))),
                Err(err) => return Err(err.into()),
            }
        }
    };
    let owned = secret.owner_references().iter().any(|r| r.uid == uid);
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(SECRET_KEY))
        .and_then(|v| String::from_utf8(v.0.clone()).ok())
        .filter(|v| keys::parse(v).is_ok());
    let Some(value) = value.filter(|_| owned) else {
        let message = format!(
            "Secret {home}/{secret_name} exists and was not written for this ApiKey (or holds no key): delete it, or set spec.secretName to another name"
        );
        write_status(key, state, None, (false, "SecretConflict".into(), message)).await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    };
    let scopes = keys::scopes_text(&key.spec.scopes);
    let prefix = keys::display_prefix(&value);
    let (id, hash, origin) = (key.key_id(), hasher.hash(&value), format!("ApiKey/{name}"));
    ledger
        .upsert_declared_api_key(&NewApiKey {
            id: &id,
            organization,
            name: &name,
            prefix: &prefix,
            hash: &hash,
            scopes: &scopes,
            origin: &origin,
            created_by: &origin,
            expires_at,
        })
        .await
        .map_err(|e| Error::Waiting(format!("recording the key in the ledger: {e}")))?;
    let stored = ledger.api_key(organization, &id).await.ok().flatten();
    let mut outcome = (true, "Issued".to_string(), format!("key in Secret {home}/{secret_name}, key {SECRET_KEY}"));
    if expires_at.is_some_and(|at| at <= jiff::Timestamp::now()) {
        outcome = (
            false,
            "Expired".into(),
            format!(
                "the key expired at {}: set a later spec.expiresAt, or delete this ApiKey",
                key.spec.expires_at.clone().unwrap_or_default()
            ),
        );
    } else if let Some(plan) = ctx.organization(organization).and_then(|o| o.status.and_then(|s| s.effective_plan))
        && ctx.plan(&plan).is_some_and(|p| !p.spec.features.api_access)
    {
        outcome = (
            false,
            "NoApiAccess".into(),
            format!("the key is issued, but plan {plan} has no API access: it works once {organization} upgrades"),
        );
    }
    let details = Issued {
        id,
        prefix,
        secret: format!("{home}/{secret_name}"),
        last_used_at: stored.and_then(|k| k.last_used_at).map(|t| t.to_string()),
    };
    write_status(key, state, Some(details), outcome).await?;
    Ok(Action::requeue(REFRESH))
}

struct Issued {
    id: String,
    prefix: String,
    secret: String,
    last_used_at: Option<String>,
}

fn new_secret(key: &ApiKey, name: &str, namespace: &str, value: &str) -> Secret {
    let owner = OwnerReference {
        api_version: ApiKey::api_version(&()).into(),
        kind: ApiKey::kind(&()).into(),
        name: key.name_any(),
        uid: key.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let labels = BTreeMap::from([
        (crate::tenancy::labels::MANAGED.to_string(), "true".to_string()),
        ("atlantiplex.io/api-key".to_string(), key.name_any()),
    ]);
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: Some(labels),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(SECRET_KEY.to_string(), ByteString(value.as_bytes().to_vec()))])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

async fn write_status(
    key: &ApiKey,
    state: &State,
    issued: Option<Issued>,
    (ok, reason, message): (bool, String, String),
) -> Result<Action> {
    let previous = key.status.clone().unwrap_or_default();
    let generation = key.metadata.generation;
    let ready = conditions::new("Ready", ok, &reason, message.clone(), generation);
    let status = ApiKeyStatus {
        key_id: issued.as_ref().map(|i| i.id.clone()).or(previous.key_id.clone()),
        prefix: issued.as_ref().map(|i| i.prefix.clone()).or(previous.prefix.clone()),
        secret_name: issued.as_ref().map(|i| i.secret.clone()).or(previous.secret_name.clone()),
        scopes: key.spec.scopes.clone(),
        expires_at: key.spec.expires_at.clone(),
        last_used_at: issued.and_then(|i| i.last_used_at).or(previous.last_used_at.clone()),
        conditions: conditions::merge(&previous.conditions, vec![ready]),
        observed_generation: generation,
    };
    if status == previous {
        return Ok(Action::await_change());
    }
    let was_ready = previous.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
    if !ok && (was_ready || previous.conditions.iter().all(|c| c.reason != reason)) {
        publish(&state.ctx, &key.object_ref(&()), EventType::Warning, &reason, "Issue", message).await;
    }
    let api: Api<ApiKey> = Api::all(state.ctx.client.clone());
    let body = serde_json::json!({"apiVersion": "atlantiplex.io/v1alpha1", "kind": "ApiKey", "status": status});
    api.patch_status(&key.name_any(), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(body)).await?;
    Ok(Action::await_change())
}
