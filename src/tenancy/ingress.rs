//! The tenant's Ingress: `<slug>.<baseDomain>` plus verified custom domains, to the tenant's
//! backend, or to the suspended page while the tenant is suspended.

use super::Tenant;
use super::labels::{INGRESS_NAME, LIMIT_REACHED_SERVICE_NAME, SUSPENDED_SERVICE_NAME, TENANT_ANNOTATION};
use super::network::allowed_cidrs;
use k8s_openapi::api::core::v1::{Service, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    IngressTLS, ServiceBackendPort,
};
use std::collections::BTreeMap;

/// The Ingress and the hosts it serves (the subdomain first).
pub fn ingress(tenant: &Tenant, warnings: &mut Vec<String>) -> (Ingress, Vec<String>) {
    let settings = tenant.settings;
    let spec = tenant.org.spec.ingress.clone().unwrap_or_default();
    let mut hosts = vec![format!("{}.{}", tenant.slug(), settings.base_domain)];
    if !spec.custom_domains.is_empty() {
        if tenant.plan.spec.features.custom_domains {
            hosts.extend(spec.custom_domains.iter().cloned());
        } else {
            warnings.push(format!(
                "spec.ingress.customDomains ignored: plan {} does not include custom domains (upgrade to a plan with features.customDomains)",
                tenant.plan_name
            ));
        }
    }
    let (service, port) = if tenant.suspended {
        (SUSPENDED_SERVICE_NAME.to_string(), 80)
    } else if tenant.usage_blocked {
        (LIMIT_REACHED_SERVICE_NAME.to_string(), 80)
    } else {
        match &spec.backend {
            Some(backend) => (backend.service.clone(), backend.port),
            None => (settings.default_backend_service.clone(), settings.default_backend_port),
        }
    };
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: service,
            port: Some(ServiceBackendPort { number: Some(port), name: None }),
        }),
        resource: None,
    };
    let rules = hosts
        .iter()
        .map(|host| IngressRule {
            host: Some(host.clone()),
            http: Some(HTTPIngressRuleValue {
                paths: vec![HTTPIngressPath {
                    path: Some("/".into()),
                    path_type: "Prefix".into(),
                    backend: backend.clone(),
                }],
            }),
        })
        .collect();

    let mut annotations = BTreeMap::from([(TENANT_ANNOTATION.to_string(), tenant.slug().to_string())]);
    let cidrs = allowed_cidrs(tenant);
    if !cidrs.is_empty() {
        annotations.insert("nginx.ingress.kubernetes.io/whitelist-source-range".into(), cidrs.join(","));
    }
    let tls = spec.tls.then(|| {
        if let Some(issuer) = &settings.cluster_issuer {
            annotations.insert("cert-manager.io/cluster-issuer".into(), issuer.clone());
        }
        vec![IngressTLS { hosts: Some(hosts.clone()), secret_name: Some(format!("{}-tls", tenant.slug())) }]
    });
    let mut metadata = tenant.meta(INGRESS_NAME);
    metadata.annotations = Some(annotations);
    let ingress = Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: Some(settings.ingress_class.clone()),
            rules: Some(rules),
            tls,
            default_backend: None,
        }),
        status: None,
    };
    (ingress, hosts)
}

/// Ingress backends must live in the Ingress's namespace, so the suspended page is reached
/// through an ExternalName Service in every tenant namespace.
pub fn suspended_service(tenant: &Tenant) -> Service {
    Service {
        metadata: tenant.meta(SUSPENDED_SERVICE_NAME),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(tenant.settings.suspended_backend_host.clone()),
            ..Default::default()
        }),
        status: None,
    }
}

/// The "usage limit reached" page (`--limit-reached-backend-host`) behind an ExternalName Service, where the
/// tenant's Ingress points while a Block meter is at 100 % (suspension takes precedence).
pub fn limit_reached_service(tenant: &Tenant) -> Service {
    Service {
        metadata: tenant.meta(LIMIT_REACHED_SERVICE_NAME),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(tenant.settings.limit_reached_backend_host.clone()),
            ..Default::default()
        }),
        status: None,
    }
}
