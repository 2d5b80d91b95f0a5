//! NetworkPolicy isolating the tenant: ingress only from its own namespaces, the ingress
//! controller, and (plans with the feature) the organization's IP allow-list.

use super::Tenant;
use super::labels::{MANAGED, NETWORK_POLICY_NAME, ORGANIZATION};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

pub fn network_policy(tenant: &Tenant, warnings: &mut Vec<String>) -> NetworkPolicy {
    let namespace_peer = |labels: BTreeMap<String, String>| NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector { match_labels: Some(labels), ..Default::default() }),
        ..Default::default()
    };
    // Same tenant: the managed label too, so a namespace cannot join by labelling itself alone.
    let same_tenant = BTreeMap::from([
        (ORGANIZATION.to_string(), tenant.slug().to_string()),
        (MANAGED.to_string(), "true".to_string()),
    ]);
    let ingress_controller = BTreeMap::from([(
        "kubernetes.io/metadata.name".to_string(),
        tenant.settings.ingress_controller_namespace.clone(),
    )]);
    let mut rules = vec![NetworkPolicyIngressRule {
        from: Some(vec![namespace_peer(same_tenant), namespace_peer(ingress_controller)]),
        ports: None,
    }];
    let requested = tenant.org.spec.security.as_ref().is_some_and(|s| !s.ip_allow_list.is_empty());
    if requested && !tenant.plan.spec.features.ip_allow_list {
        warnings.push(format!(
            "spec.security.ipAllowList ignored: plan {} does not include IP allow-lists (upgrade to a plan with features.ipAllowList)",
            tenant.plan_name
        ));
    }
    let allow_list = allowed_cidrs(tenant);
    if !allow_list.is_empty() {
        rules.push(NetworkPolicyIngressRule {
            from: Some(
                allow_list
                    .into_iter()
                    .map(|cidr| NetworkPolicyPeer {
                        ip_block: Some(IPBlock { cidr, except: None }),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ports: None,
        });
    }
    NetworkPolicy {
        metadata: tenant.meta(NETWORK_POLICY_NAME),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(rules),
            egress: None,
        }),
    }
}

/// The organization's IP allow-list when its plan includes the feature.
pub fn allowed_cidrs(tenant: &Tenant) -> Vec<String> {
    match &tenant.org.spec.security {
        Some(security) if tenant.plan.spec.features.ip_allow_list => security.ip_allow_list.clone(),
        _ => Vec::new(),
    }
}
