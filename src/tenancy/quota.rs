//! ResourceQuota and LimitRange from the plan.

use super::Tenant;
use super::labels::{LIMIT_RANGE_NAME, QUOTA_NAME};
use k8s_openapi::api::core::v1::{
    LimitRange, LimitRangeItem, LimitRangeSpec, ResourceQuota, ResourceQuotaSpec,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// Container defaults when a plan sets none, so quota-counted pods without requests still start.
const FALLBACK_LIMITS: [(&str, &str); 2] = [("cpu", "500m"), ("memory", "512Mi")];
const FALLBACK_REQUESTS: [(&str, &str); 2] = [("cpu", "100m"), ("memory", "128Mi")];

/// The plan's quota, plus `requests.storage` from the storage limit. A suspended tenant keeps
/// its data but can start no pods.
pub fn resource_quota(tenant: &Tenant) -> ResourceQuota {
    let plan = &tenant.plan.spec;
    let mut hard: BTreeMap<String, Quantity> = plan.quota.clone();
    if let Some(storage) = &plan.limits.storage {
        hard.entry("requests.storage".into())
            .or_insert_with(|| storage.clone());
    }
    if tenant.suspended {
        hard.insert("pods".into(), Quantity("0".into()));
    }
    ResourceQuota {
        metadata: tenant.meta(QUOTA_NAME),
        spec: Some(ResourceQuotaSpec {
            hard: Some(hard),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn limit_range(tenant: &Tenant) -> LimitRange {
    let defaults = tenant
        .plan
        .spec
        .container_defaults
        .clone()
        .unwrap_or_default();
    let or_fallback = |given: BTreeMap<String, Quantity>, fallback: [(&str, &str); 2]| {
        if given.is_empty() {
            fallback
                .iter()
                .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                .collect()
        } else {
            given
        }
    };
    LimitRange {
        metadata: tenant.meta(LIMIT_RANGE_NAME),
        spec: Some(LimitRangeSpec {
            limits: vec![LimitRangeItem {
                type_: "Container".into(),
                default: Some(or_fallback(defaults.limits, FALLBACK_LIMITS)),
                default_request: Some(or_fallback(defaults.requests, FALLBACK_REQUESTS)),
                ..Default::default()
            }],
        }),
    }
}
