//! ResourceQuota and LimitRange from the plan.

use super::Tenant;
use super::labels::{LIMIT_RANGE_NAME, QUOTA_SHARE_ANNOTATION};
use super::quantity::{from_milli, to_milli};
use k8s_openapi::api::core::v1::{LimitRange, LimitRangeItem, LimitRangeSpec, ResourceQuota, ResourceQuotaSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;

/// Container defaults when a plan sets none, so quota-counted pods without requests still start.
const FALLBACK_LIMITS: [(&str, &str); 2] = [("cpu", "500m"), ("memory", "512Mi")];
const FALLBACK_REQUESTS: [(&str, &str); 2] = [("cpu", "100m"), ("memory", "128Mi")];

/// Parts per million: the unit of quota shares.
pub const WHOLE: i64 = 1_000_000;

/// The plan's budget: its quota, plus `requests.storage` from the storage limit.
pub fn plan_budget(tenant: &Tenant) -> BTreeMap<String, Quantity> {
    let plan = &tenant.plan.spec;
    let mut hard: BTreeMap<String, Quantity> = plan.quota.clone();
    if let Some(storage) = &plan.limits.storage {
        hard.entry("requests.storage".into()).or_insert_with(|| storage.clone());
    }
    hard
}

/// The quota of one namespace of the tenant holding `share_ppm` of the budget, rounded down so
/// the namespaces together never exceed the plan. A suspended tenant keeps its data but can
/// start no pods.
pub fn resource_quota(tenant: &Tenant, meta: ObjectMeta, share_ppm: i64) -> ResourceQuota {
    let mut hard: BTreeMap<String, Quantity> = plan_budget(tenant)
        .into_iter()
        .map(|(resource, total)| {
            if share_ppm >= WHOLE {
                return (resource, total);
            }
            // The CRD schema only admits valid quantities; anything else grants nothing.
            let mut share = to_milli(&total).map(|milli| milli * share_ppm as i128 / WHOLE as i128).unwrap_or(0);
            // Only CPU is divisible below one unit; counts (pods, services, ...) must be integers.
            if !resource.contains("cpu") {
                share -= share % 1000;
            }
            (resource, from_milli(share))
        })
        .collect();
    if tenant.suspended {
        hard.insert("pods".into(), Quantity("0".into()));
    }
    let mut meta = meta;
    meta.annotations = Some(BTreeMap::from([(QUOTA_SHARE_ANNOTATION.to_string(), share_ppm.to_string())]));
    ResourceQuota {
        metadata: meta,
        spec: Some(ResourceQuotaSpec { hard: Some(hard), ..Default::default() }),
        ..Default::default()
    }
}

/// A namespace asking for part of the organization's budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaClaim {
    pub namespace: String,
    /// The Team asking (None for the home namespace).
    pub team: Option<String>,
    /// Explicit share in percent.
    pub percent: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    /// Namespace → share in parts per million; the shares sum to at most [`WHOLE`].
    pub shares: BTreeMap<String, i64>,
    /// Team → why its explicit share was not granted.
    pub rejected: BTreeMap<String, String>,
}

/// The allocation rule: explicit team shares are granted oldest team first while they fit in
/// 100%; what they leave is split equally between the home namespace and every team without a
/// granted share. `claims` come in creation order, the home namespace first.
pub fn allocate(claims: &[QuotaClaim]) -> Allocation {
    let mut allocation = Allocation::default();
    let mut granted: i64 = 0;
    let mut equal: Vec<&QuotaClaim> = Vec::new();
    for claim in claims {
        match (claim.percent, &claim.team) {
            (Some(percent), Some(team)) => {
                let ppm = i64::from(percent) * (WHOLE / 100);
                if granted + ppm <= WHOLE {
                    granted += ppm;
                    allocation.shares.insert(claim.namespace.clone(), ppm);
                } else {
                    allocation.rejected.insert(
                        team.clone(),
                        format!(
                            "spec.quotaShare {percent}% does not fit: other teams already hold {}% of the plan; lower it to at most {}% or remove it to share equally",
                            granted / (WHOLE / 100),
                            (WHOLE - granted) / (WHOLE / 100)
                        ),
                    );
                    equal.push(claim);
                }
            }
            _ => equal.push(claim),
        }
    }
    if !equal.is_empty() {
        let each = (WHOLE - granted) / equal.len() as i64;
        for claim in equal {
            allocation.shares.insert(claim.namespace.clone(), each);
        }
    }
    allocation
}

pub fn limit_range(tenant: &Tenant) -> LimitRange {
    let defaults = tenant.plan.spec.container_defaults.clone().unwrap_or_default();
    let or_fallback = |given: BTreeMap<String, Quantity>, fallback: [(&str, &str); 2]| {
        if given.is_empty() {
            fallback.iter().map(|(k, v)| (k.to_string(), Quantity(v.to_string()))).collect()
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
