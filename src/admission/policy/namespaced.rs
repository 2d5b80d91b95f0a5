//! Rules for objects in tenant namespaces and for the namespaces themselves: what the operator
//! manages stays the operator's, namespaces stay with their organization, and tenants' own
//! Ingresses serve only their own hosts.

use super::{Decision, Operation, PolicyConfig, Request, check};
use crate::api::Organization;
use crate::tenancy::labels::{MANAGED, NAMESPACE_KIND, ORGANIZATION, ORGANIZATION_OBJECT, TEAM_OBJECT};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

const OWNERSHIP_LABELS: [&str; 5] = [MANAGED, ORGANIZATION, ORGANIZATION_OBJECT, TEAM_OBJECT, NAMESPACE_KIND];

fn label<'a>(meta: Option<&'a ObjectMeta>, key: &str) -> Option<&'a str> {
    meta?.labels.as_ref()?.get(key).map(String::as_str)
}

fn is_managed(meta: Option<&ObjectMeta>) -> bool {
    label(meta, MANAGED) == Some("true")
}

/// Namespaces: the organization labels decide which tenant a namespace belongs to (and what its
/// NetworkPolicy trusts), so only the operator and platform admins set them, and nobody moves a
/// namespace from one organization to another.
pub fn namespace(req: &Request<ObjectMeta>) -> Decision {
    let name = req.object().and_then(|m| m.name.as_deref()).unwrap_or_default();
    if req.operation == Operation::Delete {
        return Decision::allow("deletion is RBAC's decision");
    }
    let (old, new) = (label(req.old, ORGANIZATION), label(req.new, ORGANIZATION));
    if let (Some(from), Some(to)) = (old, new)
        && from != to
    {
        return Decision::deny(
            "namespace-move",
            format!(
                "namespace {name} belongs to organization {from} and cannot be moved to {to}: create a new namespace in {to} instead"
            ),
        );
    }
    let owner_refs_changed = req.old.map(|m| &m.owner_references) != req.new.map(|m| &m.owner_references)
        && req.operation == Operation::Update;
    let labels_changed = OWNERSHIP_LABELS.iter().any(|k| label(req.old, k) != label(req.new, k));
    if req.requester.platform_admin {
        return Decision::allow("platform admin");
    }
    if labels_changed || owner_refs_changed {
        return Decision::deny(
            "namespace-ownership",
            format!(
                "the atlantiplex.io labels and ownerReferences of namespace {name} say which organization it belongs to; only the operator and platform admins set them: leave them unchanged"
            ),
        );
    }
    Decision::allow("ownership unchanged")
}

/// Quotas, limit ranges, bindings, network policies, ingresses and services the operator
/// manages (labelled managed) are changed only by the operator and platform admins.
pub fn managed_object(kind: &str, req: &Request<ObjectMeta>) -> Decision {
    if !(is_managed(req.old) || is_managed(req.new)) {
        return Decision::allow("not managed by the operator");
    }
    if req.requester.platform_admin {
        return Decision::allow("platform admin");
    }
    let meta = req.object();
    let ns = meta.and_then(|m| m.namespace.as_deref()).unwrap_or_default();
    let name = meta.and_then(|m| m.name.as_deref()).unwrap_or_default();
    let what = if is_managed(req.old) {
        format!("{kind} {ns}/{name} is managed by atlantiplex-operator")
    } else {
        format!("only atlantiplex-operator creates objects labelled {MANAGED}=true")
    };
    Decision::deny(
        "managed-object",
        format!("{what}: change the Organization or Team instead (the operator reverts direct changes)"),
    )
}

/// Hosts an organization may serve: its subdomain and anything under it, and the hosts the
/// controller accepted for it (custom domains its plan allows).
pub fn organization_hosts(config: &PolicyConfig, org: &Organization) -> Vec<String> {
    let mut hosts = vec![format!("{}.{}", org.spec.slug, config.base_domain)];
    hosts.extend(org.status.as_ref().map(|s| s.hosts.clone()).unwrap_or_default());
    hosts.dedup();
    hosts
}

fn host_allowed(host: &str, allowed: &[String], subdomain: &str) -> bool {
    let host = host.strip_prefix("*.").unwrap_or(host);
    allowed.iter().any(|a| a == host) || host.ends_with(&format!(".{subdomain}"))
}

/// A tenant's own Ingress in its namespace may use only the organization's hosts.
pub fn tenant_ingress(config: &PolicyConfig, org: Option<&Organization>, req: &Request<Ingress>) -> Decision {
    let metas = Request {
        operation: req.operation,
        requester: req.requester,
        old: req.old.map(|i| &i.metadata),
        new: req.new.map(|i| &i.metadata),
    };
    if is_managed(metas.old) || is_managed(metas.new) {
        return managed_object("Ingress", &metas);
    }
    if req.requester.platform_admin || req.operation == Operation::Delete {
        return Decision::allow("platform admin or deletion");
    }
    let Some(new) = req.new else { return Decision::allow("nothing to review") };
    let ns = new.metadata.namespace.as_deref().unwrap_or_default();
    let Some(org) = org else {
        return Decision::deny(
            "ingress-host",
            format!(
                "namespace {ns} belongs to no existing organization, so it may not serve any host: ask a platform admin"
            ),
        );
    };
    let allowed = organization_hosts(config, org);
    let subdomain = allowed[0].clone();
    let spec = new.spec.clone().unwrap_or_default();
    if spec.rules.as_ref().is_some_and(|rules| rules.iter().any(|r| r.host.as_deref().unwrap_or_default().is_empty())) {
        return Decision::deny(
            "ingress-host",
            format!(
                "every Ingress rule needs a host (a rule without one would catch other tenants' traffic): set host to {subdomain} or a name under it"
            ),
        );
    }
    if spec.rules.as_ref().is_none_or(Vec::is_empty) && spec.default_backend.is_some() {
        return Decision::deny(
            "ingress-host",
            format!("a defaultBackend without rules would catch every host: add a rule with host {subdomain}"),
        );
    }
    check!(annotations_checkable(&new.metadata));
    let hosts = spec
        .rules
        .iter()
        .flatten()
        .filter_map(|r| r.host.clone())
        .chain(spec.tls.iter().flatten().flat_map(|t| t.hosts.clone().unwrap_or_default()));
    for host in hosts {
        if !host_allowed(&host, &allowed, &subdomain) {
            return Decision::deny(
                "ingress-host",
                format!(
                    "host {host} is not one of organization {}'s hosts ({}, names under {subdomain}): use one of them, or add a custom domain to the Organization",
                    org.metadata.name.as_deref().unwrap_or_default(),
                    allowed.join(", ")
                ),
            );
        }
    }
    Decision::allow("hosts belong to the organization")
}

/// Ingress-controller annotations a tenant's Ingress may carry: they tune how its own hosts are
/// served. Every other annotation under an ingress controller's prefix is refused, because the
/// host rule cannot check it: some add hosts (`server-alias`), some inject configuration
/// (`*-snippet`), some send traffic elsewhere (`auth-url`, `mirror-target`, `upstream-vhost`,
/// `default-backend`, `proxy-redirect-*`). Listed in docs/security.md.
pub const ALLOWED_INGRESS_ANNOTATIONS: &[&str] = &[
    "nginx.ingress.kubernetes.io/app-root",
    "nginx.ingress.kubernetes.io/backend-protocol",
    "nginx.ingress.kubernetes.io/client-body-buffer-size",
    "nginx.ingress.kubernetes.io/cors-allow-credentials",
    "nginx.ingress.kubernetes.io/cors-allow-headers",
    "nginx.ingress.kubernetes.io/cors-allow-methods",
    "nginx.ingress.kubernetes.io/cors-allow-origin",
    "nginx.ingress.kubernetes.io/cors-expose-headers",
    "nginx.ingress.kubernetes.io/cors-max-age",
    "nginx.ingress.kubernetes.io/denylist-source-range",
    "nginx.ingress.kubernetes.io/enable-cors",
    "nginx.ingress.kubernetes.io/force-ssl-redirect",
    "nginx.ingress.kubernetes.io/limit-connections",
    "nginx.ingress.kubernetes.io/limit-rpm",
    "nginx.ingress.kubernetes.io/limit-rps",
    "nginx.ingress.kubernetes.io/proxy-body-size",
    "nginx.ingress.kubernetes.io/proxy-buffer-size",
    "nginx.ingress.kubernetes.io/proxy-buffering",
    "nginx.ingress.kubernetes.io/proxy-connect-timeout",
    "nginx.ingress.kubernetes.io/proxy-http-version",
    "nginx.ingress.kubernetes.io/proxy-read-timeout",
    "nginx.ingress.kubernetes.io/proxy-request-buffering",
    "nginx.ingress.kubernetes.io/proxy-send-timeout",
    "nginx.ingress.kubernetes.io/rewrite-target",
    "nginx.ingress.kubernetes.io/ssl-redirect",
    "nginx.ingress.kubernetes.io/use-regex",
    "nginx.ingress.kubernetes.io/whitelist-source-range",
    "nginx.ingress.kubernetes.io/x-forwarded-prefix",
];

/// Annotation prefixes that ingress controllers read.
const INGRESS_CONTROLLER_PREFIXES: &[&str] = &[
    "nginx.ingress.kubernetes.io/",
    "ingress.kubernetes.io/",
    "nginx.org/",
    "traefik.ingress.kubernetes.io/",
    "haproxy.org/",
    "haproxy.router.openshift.io/",
    "konghq.com/",
    "projectcontour.io/",
    "alb.ingress.kubernetes.io/",
    "getambassador.io/",
    "appprotect.f5.com/",
];

fn annotations_checkable(meta: &ObjectMeta) -> Result<(), Decision> {
    for key in meta.annotations.iter().flat_map(|a| a.keys()) {
        let controller = INGRESS_CONTROLLER_PREFIXES.iter().any(|p| key.starts_with(p));
        // A snippet is configuration in any controller's dialect, whatever its prefix.
        let snippet = key.to_ascii_lowercase().contains("snippet");
        if (controller || snippet) && !ALLOWED_INGRESS_ANNOTATIONS.contains(&key.as_str()) {
            return Err(Decision::deny(
                "ingress-annotation",
                format!(
                    "annotation {key} is not allowed on a tenant's Ingress: it can add hosts, inject configuration or send traffic past the tenant's boundary, which the host rule cannot check. Remove it; the allowed ingress-controller annotations are listed in docs/security.md (e.g. rewrite-target, proxy-body-size, ssl-redirect), anything else needs a platform admin"
                ),
            ));
        }
    }
    Ok(())
}

/// Services in tenant namespaces: the operator's stay the operator's; a tenant's may not point
/// outside the tenant. An ExternalName Service is a DNS alias the ingress controller — which
/// every tenant's NetworkPolicy admits — would follow, so it may name only external names the
/// platform allows, never a cluster-internal name or an address; `externalIPs` would capture
/// traffic to those addresses cluster-wide (CVE-2020-8554), so tenants set none.
pub fn tenant_service(config: &PolicyConfig, req: &Request<Service>) -> Decision {
    let metas = Request {
        operation: req.operation,
        requester: req.requester,
        old: req.old.map(|s| &s.metadata),
        new: req.new.map(|s| &s.metadata),
    };
    if is_managed(metas.old) || is_managed(metas.new) {
        return managed_object("Service", &metas);
    }
    if req.requester.platform_admin || req.operation == Operation::Delete {
        return Decision::allow("platform admin or deletion");
    }
    let Some(new) = req.new else { return Decision::allow("nothing to review") };
    let spec = new.spec.clone().unwrap_or_default();
    if spec.external_ips.as_ref().is_some_and(|ips| !ips.is_empty()) {
        return Decision::deny(
            "service-external-ips",
            "spec.externalIPs is not allowed in a tenant namespace: it captures traffic to those addresses for the whole cluster. Remove it; expose the service through the organization's Ingress instead",
        );
    }
    if spec.type_.as_deref() != Some("ExternalName") {
        return Decision::allow("not an ExternalName Service");
    }
    let target = spec.external_name.unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
    let allowed = if config.allowed_external_names.is_empty() {
        "the platform allows none".to_string()
    } else {
        format!("allowed: {}", config.allowed_external_names.join(", "))
    };
    if cluster_internal(&target) {
        return Decision::deny(
            "external-name",
            format!(
                "spec.externalName {target:?} names a cluster-internal service or an address; through the ingress controller it would reach past the tenant's boundary. Use a Service with a selector for your own pods, or an allowed external name ({allowed})"
            ),
        );
    }
    let matches = |pattern: &String| match pattern.strip_prefix("*.") {
        Some(domain) => target.ends_with(&format!(".{}", domain.to_ascii_lowercase())),
        None => target == pattern.to_ascii_lowercase(),
    };
    if config.allowed_external_names.iter().any(matches) {
        return Decision::allow("allowed external name");
    }
    Decision::deny(
        "external-name",
        format!(
            "spec.externalName {target:?} is not an allowed external name ({allowed}): use a Service with a selector, or ask a platform admin to allow it with --allowed-external-name"
        ),
    )
}

/// Names that resolve inside the cluster (or are addresses, which reach any pod).
fn cluster_internal(name: &str) -> bool {
    let single_label = !name.contains('.'); // resolved through the pod's search path
    let address = name.parse::<std::net::IpAddr>().is_ok() || name.chars().all(|c| c.is_ascii_digit() || c == '.');
    let internal_suffix =
        [".svc", ".cluster.local", ".local", ".internal"].iter().any(|s| name.ends_with(s)) || name.contains(".svc.");
    single_label || address || internal_suffix || name == "localhost"
}
