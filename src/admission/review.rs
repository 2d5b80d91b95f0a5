//! From an AdmissionReview to a policy decision and back: typed objects, the requester, the
//! audit log line and metrics.

use super::facts::{CacheFacts, FreshFacts, PlatformAdmins};
use super::policy::{self, Decision, Facts, Operation, PolicyConfig, Request, Requester};
use crate::api::{Organization, Subscription, Team};
use crate::controller::Context;
use crate::metrics::{DecisionLabels, KindLabels, Metrics};
use crate::tenancy::labels::{ORGANIZATION_FINALIZER, ORGANIZATION_OBJECT, TEAM_FINALIZER};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation as KubeOperation};
use kube::runtime::reflector::ObjectRef;
use serde::de::DeserializeOwned;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Longest a request waits for the caches at start-up (the webhook timeout is 5 s).
const STARTUP_WAIT: Duration = Duration::from_secs(3);
/// Denials confirmed against the API server before they are given (see `Webhook::confirm`).
const CONFIRMED_RULES: [&str; 3] = ["plan-teams", "plan-users", "unknown-organization"];
/// Longest a denial's confirmation may take (the webhook timeout is 5 s); then the cached one stands.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything a webhook request needs; the context arrives once the caches are filled.
pub struct Webhook {
    pub context: Arc<OnceLock<Arc<Context>>>,
    pub policy: PolicyConfig,
    pub admins: PlatformAdmins,
    pub metrics: Arc<Metrics>,
    /// The ledger's audit log (None: decisions are only logged and counted).
    pub audit: Option<crate::ledger::AuditLog>,
    /// Whether only the API server can reach `validate` (`--webhook-client-ca`); if not, audit
    /// records say so, since a caller could have made up the requester.
    pub caller_verified: bool,
}

impl Webhook {
    /// The context, waiting briefly while the caches fill (at start-up): a request then waits
    /// a moment instead of failing, within the API server's timeout.
    pub async fn ready_context(&self) -> Option<Arc<Context>> {
        let deadline = Instant::now() + STARTUP_WAIT;
        loop {
            if let Some(ctx) = self.context.get() {
                return Some(ctx.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Validates one review (the `/validate` endpoint).
    pub async fn validate(&self, review: AdmissionReview<DynamicObject>) -> AdmissionReview<DynamicObject> {
        let request: AdmissionRequest<DynamicObject> = match review.try_into() {
            Ok(request) => request,
            Err(_) => return AdmissionResponse::invalid("AdmissionReview without a request").into_review(),
        };
        let started = Instant::now();
        let decision = match self.context.get() {
            Some(ctx) => match self.decide(ctx, &request) {
                cached if cached.unconfirmed || (!cached.allowed && CONFIRMED_RULES.contains(&cached.rule)) => {
                    self.confirm(ctx, &request, cached).await
                }
                decision => decision,
            },
            None => Decision::deny(
                "operator-starting",
                "atlantiplex-operator is starting and its caches are not filled yet: retry in a few seconds",
            ),
        };
        let organization = self.context.get().map(|ctx| organization_of(ctx, &request)).unwrap_or_default();
        self.record(&request, &decision, started, &organization);
        let mut response = AdmissionResponse::from(&request);
        response.audit_annotations.insert("rule".into(), decision.rule.into());
        if !decision.allowed {
            response = response.deny(decision.user_message());
            response.result.code = 403;
            response.result.reason = "Forbidden".into();
        }
        response.into_review()
    }

    /// Mutates one review (the `/mutate` endpoint): sign-up defaults on new Organizations, and the
    /// cleanup finalizer on new Organizations and Teams.
    pub fn mutate(&self, review: AdmissionReview<DynamicObject>) -> AdmissionReview<DynamicObject> {
        let request: AdmissionRequest<DynamicObject> = match review.try_into() {
            Ok(request) => request,
            Err(_) => return AdmissionResponse::invalid("AdmissionReview without a request").into_review(),
        };
        let response = AdmissionResponse::from(&request);
        let (Some(ctx), Some(object), KubeOperation::Create) =
            (self.context.get(), &request.object, &request.operation)
        else {
            return response.into_review();
        };
        let raw = serde_json::to_value(object).unwrap_or_default();
        let ops = match (request.kind.group.as_str(), request.kind.kind.as_str()) {
            ("atlantiplex.io", "Organization") => {
                let requester = self.requester(ctx, &request);
                let mut ops = policy::signup_defaults(&self.policy, &requester, &raw);
                ops.extend(policy::finalizer_ops(&raw, ORGANIZATION_FINALIZER));
                ops
            }
            ("atlantiplex.io", "Team") => policy::finalizer_ops(&raw, TEAM_FINALIZER),
            _ => return response.into_review(),
        };
        let patch = serde_json::from_value::<json_patch::Patch>(serde_json::Value::Array(ops));
        match patch.map(|p| response.clone().with_patch(p)) {
            Ok(Ok(patched)) => patched.into_review(),
            _ => response.deny("internal error building the sign-up patch").into_review(),
        }
    }

    fn requester(&self, ctx: &Context, request: &AdmissionRequest<DynamicObject>) -> Requester {
        let username = request.user_info.username.clone().unwrap_or_default();
        let groups = request.user_info.groups.clone().unwrap_or_default();
        let platform_admin = self.admins.contains(ctx, &username, &groups);
        let authenticated_at = crate::identity::auth_time(request.user_info.extra.as_ref());
        Requester { username, groups, platform_admin, authenticated_at, now: jiff::Timestamp::now().as_second() }
    }

    /// A decision that rests on what the caches say about the organization — that it does not
    /// exist, or its plan's limits — is confirmed against the API server before it is given. The
    /// caches trail writes by milliseconds, so a tenant applied at once (`kubectl apply -f
    /// tenant/`: the Organization, its Subscription, then its Teams) would otherwise meet the
    /// default plan's limits, or an organization "that does not exist" (whose limits a platform
    /// admin's request would then skip), by chance. Both are rare; ordinary allowed requests never
    /// pay for this, and the API server's answer is the truth.
    async fn confirm(&self, ctx: &Context, request: &AdmissionRequest<DynamicObject>, cached: Decision) -> Decision {
        let organization = organization_of(ctx, request);
        if organization.is_empty() {
            return cached;
        }
        let fresh = async {
            let org = Api::<Organization>::all(ctx.client.clone()).get_opt(&organization).await?;
            let params = ListParams::default().fields(&format!("spec.organization={organization}"));
            let subscriptions = Api::<Subscription>::all(ctx.client.clone()).list(&params).await?.items;
            Ok::<_, kube::Error>((org, subscriptions))
        };
        match tokio::time::timeout(CONFIRM_TIMEOUT, fresh).await {
            Ok(Ok((org, subscriptions))) => {
                let facts = FreshFacts { cache: CacheFacts(ctx), name: &organization, org, subscriptions };
                self.decide_with(ctx, &facts, request)
            }
            Ok(Err(err)) => {
                tracing::warn!(%err, organization, "could not confirm a denial against the API server");
                cached
            }
            Err(_) => cached,
        }
    }

    pub fn decide(&self, ctx: &Context, request: &AdmissionRequest<DynamicObject>) -> Decision {
        self.decide_with(ctx, &CacheFacts(ctx), request)
    }

    fn decide_with(&self, ctx: &Context, facts: &dyn Facts, request: &AdmissionRequest<DynamicObject>) -> Decision {
        let operation = match request.operation {
            KubeOperation::Create => Operation::Create,
            KubeOperation::Update => Operation::Update,
            KubeOperation::Delete => Operation::Delete,
            KubeOperation::Connect => return Decision::allow("connect is not reviewed"),
        };
        let requester = self.requester(ctx, request);
        let policy = &self.policy;
        if let Some(org) = facts.organization(&organization_of(ctx, request)) {
            let (plan_name, plan) = policy::plan_of(&org, facts, policy);
            if let Some(denial) = policy::identity_gate(&org, &plan_name, plan.as_ref(), &requester) {
                return denial;
            }
        }
        macro_rules! typed {
            ($t:ty) => {
                match (typed::<$t>(&request.old_object), typed::<$t>(&request.object)) {
                    (Ok(old), Ok(new)) => (old, new),
                    (Err(e), _) | (_, Err(e)) => return unreadable(&requester, request, &e),
                }
            };
        }
        match (request.kind.group.as_str(), request.kind.kind.as_str()) {
            ("atlantiplex.io", "Organization") => {
                let (old, new) = typed!(Organization);
                let req = Request { operation, requester: &requester, old: old.as_ref(), new: new.as_ref() };
                policy::organization(policy, facts, &req)
            }
            ("atlantiplex.io", "Team") => {
                let (old, new) = typed!(Team);
                let req = Request { operation, requester: &requester, old: old.as_ref(), new: new.as_ref() };
                policy::team(policy, facts, &req)
            }
            ("atlantiplex.io", "Subscription") => {
                let (old, new) = typed!(Subscription);
                let req = Request { operation, requester: &requester, old: old.as_ref(), new: new.as_ref() };
                policy::subscription(policy, facts, &req)
            }
            ("networking.k8s.io", "Ingress") => {
                let (old, new) = typed!(Ingress);
                let namespace = request.namespace.as_deref().unwrap_or_default();
                let org = ctx
                    .namespaces
                    .get(&ObjectRef::new(namespace))
                    .and_then(|ns| ns.metadata.labels.as_ref()?.get(ORGANIZATION_OBJECT).cloned())
                    .and_then(|name| ctx.organization(&name));
                let req = Request { operation, requester: &requester, old: old.as_ref(), new: new.as_ref() };
                policy::tenant_ingress(policy, org.as_ref(), &req)
            }
            ("", "Service") => {
                let (old, new) = typed!(Service);
                let req = Request { operation, requester: &requester, old: old.as_ref(), new: new.as_ref() };
                policy::tenant_service(policy, &req)
            }
            (_, kind) => {
                let meta = |o: &Option<DynamicObject>| o.as_ref().map(|o| o.metadata.clone());
                let (old, new): (Option<ObjectMeta>, Option<ObjectMeta>) =
                    (meta(&request.old_object), meta(&request.object));
                let req = Request { operation, requester: &requester, old: old.as_ref(), new: new.as_ref() };
                if kind == "Namespace" { policy::namespace(&req) } else { policy::managed_object(kind, &req) }
            }
        }
    }

    /// The audit trail of every decision: a structured log line and a metric (the ledger
    /// stores them once it exists).
    fn record(
        &self,
        request: &AdmissionRequest<DynamicObject>,
        decision: &Decision,
        started: Instant,
        organization: &str,
    ) {
        let elapsed = started.elapsed();
        let kind = request.kind.kind.clone();
        let operation = format!("{:?}", request.operation).to_uppercase();
        tracing::info!(
            target: "atlantiplex::admission",
            allowed = decision.allowed,
            rule = decision.rule,
            user = request.user_info.username.as_deref().unwrap_or_default(),
            kind = %kind,
            name = %request.name,
            namespace = request.namespace.as_deref().unwrap_or_default(),
            operation = %operation,
            reason = %decision.message,
            micros = elapsed.as_micros() as u64,
            "admission decision"
        );
        self.metrics
            .webhook_decisions
            .get_or_create(&DecisionLabels {
                kind: kind.clone(),
                operation,
                allowed: decision.allowed.to_string(),
                rule: decision.rule.into(),
            })
            .inc();
        self.metrics.webhook_duration.get_or_create(&KindLabels { kind: kind.clone() }).observe(elapsed.as_secs_f64());
        if let Some(audit) = &self.audit {
            use crate::ledger::{AuditRecord, AuditResult};
            let object = match &request.namespace {
                Some(ns) => format!("{ns}/{}", request.name),
                None => request.name.clone(),
            };
            let result = if decision.allowed { AuditResult::Allowed } else { AuditResult::Denied };
            let actor = request.user_info.username.clone().unwrap_or_default();
            let action = format!("{:?}", request.operation).to_lowercase();
            let mut reason = format!("{}: {}", decision.rule, decision.message);
            if !self.caller_verified {
                reason.push_str(" (caller not verified: --webhook-client-ca is not set)");
            }
            let record = AuditRecord::new(actor, organization, kind, object, action, result).with_reason(reason);
            // Never blocks the request: the writer queues, batches, and spills to its journal.
            if let Err(err) = audit.record(record) {
                tracing::warn!(error = %err, "audit record not accepted");
            }
        }
    }
}

/// The organization a request concerns, for the audit record.
fn organization_of(ctx: &Context, request: &AdmissionRequest<DynamicObject>) -> String {
    let object = request.object.as_ref().or(request.old_object.as_ref());
    let field = |path: &str| object.and_then(|o| o.data.pointer(path)).and_then(|v| v.as_str()).map(String::from);
    let label = |meta: Option<&kube::core::ObjectMeta>| {
        meta.and_then(|m| m.labels.as_ref()).and_then(|l| l.get(ORGANIZATION_OBJECT)).cloned()
    };
    match (request.kind.group.as_str(), request.kind.kind.as_str()) {
        ("atlantiplex.io", "Organization") => request.name.clone(),
        ("atlantiplex.io", _) => field("/spec/organization").unwrap_or_default(),
        ("", "Namespace") => label(object.map(|o| &o.metadata)).unwrap_or_default(),
        _ => request
            .namespace
            .as_deref()
            .and_then(|ns| ctx.namespaces.get(&ObjectRef::new(ns)))
            .and_then(|ns| label(Some(&ns.metadata)))
            .unwrap_or_default(),
    }
}

fn typed<K: DeserializeOwned>(object: &Option<DynamicObject>) -> Result<Option<K>, serde_json::Error> {
    match object {
        Some(o) => Ok(Some(serde_json::from_value(serde_json::to_value(o)?)?)),
        None => Ok(None),
    }
}

/// A stored object this operator version cannot read: platform admins may still fix or remove
/// it; nobody else can be checked, so nobody else may change it.
fn unreadable(requester: &Requester, request: &AdmissionRequest<DynamicObject>, error: &serde_json::Error) -> Decision {
    if requester.platform_admin {
        return Decision::allow("platform admin (object unreadable by the policy)");
    }
    Decision::deny(
        "unreadable",
        format!(
            "{} {} cannot be read by the operator ({error}): ask a platform admin to fix it",
            request.kind.kind, request.name
        ),
    )
}
