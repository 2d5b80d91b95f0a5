//! The webhook configurations: which requests the API server sends us, and what happens when
//! the operator is down (`failurePolicy`). Scoped by selectors to our kinds and to tenant
//! namespaces, so kube-system and every unlabelled namespace never depend on the operator.

use crate::tenancy::labels::{MANAGED, ORGANIZATION};
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement, ObjectMeta};
use std::collections::BTreeMap;

pub const CONFIGURATION_NAME: &str = "atlantiplex-operator";
/// Short: a slow answer must not hold kubectl or a GitOps sync for long (the default is 10 s).
const TIMEOUT_SECONDS: i32 = 5;

/// Where the API server reaches the webhook: a Service, or a URL in development.
pub fn client_config(url: Option<&str>, service: (&str, &str), path: &str, ca_bundle: &str) -> WebhookClientConfig {
    let ca_bundle = (!ca_bundle.is_empty()).then(|| ByteString(ca_bundle.as_bytes().to_vec()));
    match url {
        Some(base) => {
            WebhookClientConfig { url: Some(format!("{}{path}", base.trim_end_matches('/'))), ca_bundle, service: None }
        }
        None => WebhookClientConfig {
            service: Some(ServiceReference {
                namespace: service.0.into(),
                name: service.1.into(),
                path: Some(path.into()),
                port: Some(443),
            }),
            ca_bundle,
            url: None,
        },
    }
}

fn rule(group: &str, resources: &[&str], operations: &[&str]) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        api_versions: Some(vec!["*".into()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        operations: Some(operations.iter().map(|o| o.to_string()).collect()),
        scope: Some(
            if group == "atlantiplex.io" || resources == ["namespaces"] { "Cluster" } else { "Namespaced" }.into(),
        ),
    }
}

fn exists(key: &str) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.into(),
            operator: "Exists".into(),
            values: None,
        }]),
        match_labels: None,
    }
}

fn tenant_namespaces() -> LabelSelector {
    LabelSelector { match_labels: Some(BTreeMap::from([(MANAGED.into(), "true".into())])), match_expressions: None }
}

fn everything() -> LabelSelector {
    LabelSelector::default()
}

/// The operator's own requests skip the webhook: it never edits a tenant's spec, and its writes
/// (namespaces, quotas, bindings... a dozen per tenant) would otherwise each wait for a round trip
/// to itself. Evaluated by the API server (CEL), so they do not reach the webhook at all.
fn skip_operator(operator: Option<&str>) -> Option<Vec<MatchCondition>> {
    let user = operator?;
    let quoted = user.replace('\\', "\\\\").replace('\'', "\\'");
    Some(vec![MatchCondition {
        name: "not-the-operator-itself".into(),
        expression: format!("request.userInfo.username != '{quoted}'"),
    }])
}

fn meta() -> ObjectMeta {
    ObjectMeta {
        name: Some(CONFIGURATION_NAME.into()),
        labels: Some(BTreeMap::from([("app.kubernetes.io/name".into(), "atlantiplex-operator".into())])),
        ..Default::default()
    }
}

/// Every validating webhook fails closed (`Fail`): each guards tenancy or isolation, and each
/// is scoped so that only tenancy requests wait for the operator.
pub fn validating(client: &WebhookClientConfig, operator: Option<&str>) -> ValidatingWebhookConfiguration {
    let all = ["CREATE", "UPDATE", "DELETE"];
    let hook = |name: &str, rules: Vec<RuleWithOperations>, namespaces: LabelSelector, objects: LabelSelector| {
        ValidatingWebhook {
            name: name.into(),
            client_config: client.clone(),
            rules: Some(rules),
            failure_policy: Some("Fail".into()),
            match_policy: Some("Equivalent".into()),
            namespace_selector: Some(namespaces),
            object_selector: Some(objects),
            side_effects: "None".into(),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            admission_review_versions: vec!["v1".into()],
            match_conditions: skip_operator(operator),
        }
    };
    ValidatingWebhookConfiguration {
        metadata: meta(),
        webhooks: Some(vec![
            // Organizations, Teams, Subscriptions: the role table and the plan's limits.
            hook(
                "tenancy.atlantiplex.io",
                vec![rule("atlantiplex.io", &["organizations", "teams", "subscriptions"], &all)],
                everything(),
                everything(),
            ),
            // Namespaces that claim an organization (or to be managed): nobody moves or forges them.
            hook(
                "namespace-ownership.atlantiplex.io",
                vec![rule("", &["namespaces"], &["CREATE", "UPDATE"])],
                everything(),
                exists(ORGANIZATION),
            ),
            hook(
                "managed-namespaces.atlantiplex.io",
                vec![rule("", &["namespaces"], &["CREATE", "UPDATE"])],
                everything(),
                exists(MANAGED),
            ),
            // What the operator manages inside tenant namespaces stays the operator's.
            hook(
                "managed-objects.atlantiplex.io",
                vec![
                    rule("", &["resourcequotas", "limitranges", "services"], &all),
                    rule("rbac.authorization.k8s.io", &["rolebindings"], &all),
                    rule("networking.k8s.io", &["networkpolicies"], &all),
                ],
                tenant_namespaces(),
                exists(MANAGED),
            ),
            // Every Service in a tenant namespace: no ExternalName or externalIPs past the tenant.
            hook(
                "tenant-services.atlantiplex.io",
                vec![rule("", &["services"], &["CREATE", "UPDATE"])],
                tenant_namespaces(),
                everything(),
            ),
            // Every Ingress in a tenant namespace: the tenant's own hosts only.
            hook(
                "tenant-ingresses.atlantiplex.io",
                vec![rule("networking.k8s.io", &["ingresses"], &all)],
                tenant_namespaces(),
                everything(),
            ),
        ]),
    }
}

/// Sign-up fills in the owner of a new Organization, and new Organizations and Teams get their
/// cleanup finalizer; without the operator, creating them fails closed like every other tenancy
/// change.
pub fn mutating(client: &WebhookClientConfig, operator: Option<&str>) -> MutatingWebhookConfiguration {
    MutatingWebhookConfiguration {
        metadata: meta(),
        webhooks: Some(vec![MutatingWebhook {
            name: "defaults.atlantiplex.io".into(),
            client_config: client.clone(),
            rules: Some(vec![rule("atlantiplex.io", &["organizations", "teams"], &["CREATE"])]),
            failure_policy: Some("Fail".into()),
            match_policy: Some("Equivalent".into()),
            namespace_selector: Some(everything()),
            object_selector: Some(everything()),
            side_effects: "None".into(),
            timeout_seconds: Some(TIMEOUT_SECONDS),
            admission_review_versions: vec!["v1".into()],
            reinvocation_policy: Some("Never".into()),
            match_conditions: skip_operator(operator),
        }]),
    }
}
