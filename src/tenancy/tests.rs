use super::labels::*;
use super::plan::{effective_plan, usage, user_count};
use super::{Tenant, desired_tenant};
use crate::api::*;
use crate::settings::Settings;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::Deserialize;

/// The plans shipped in examples/plans.yaml, so tests check what users get.
fn shipped_plan(name: &str) -> Plan {
    serde_yaml::Deserializer::from_str(include_str!("../../examples/plans.yaml"))
        .map(|doc| Plan::deserialize(doc).expect("plan parses"))
        .find(|p| p.metadata.name.as_deref() == Some(name))
        .expect("plan exists")
}

fn org(yaml: &str) -> Organization {
    serde_yaml::from_str(yaml).expect("organization parses")
}

fn acme() -> Organization {
    org(r#"
apiVersion: atlantiplex.io/v1alpha1
kind: Organization
metadata: { name: acme-object }
spec:
  slug: acme
  displayName: Acme
  owners: [{ kind: User, name: alice }]
  members:
    - { kind: Group, name: acme-admins, role: Admin }
    - { kind: User, name: bob, role: Member }
    - { kind: User, name: carol, role: Viewer }
    - { kind: ServiceAccount, name: ci, namespace: tools, role: Member }
"#)
}

fn build(org: &Organization, plan_name: &str, suspended: bool) -> super::DesiredTenant {
    let plan = shipped_plan(plan_name);
    let settings = Settings::default();
    desired_tenant(&Tenant {
        org,
        plan_name,
        plan: &plan,
        suspended,
        usage_blocked: false,
        settings: &settings,
        home_share_ppm: super::quota::WHOLE,
    })
}

#[test]
fn a_reached_block_limit_routes_to_the_limit_reached_page_and_keeps_pods_and_data() {
    let plan = shipped_plan("free");
    let settings = Settings::default();
    let org = acme();
    let tenant = |suspended, usage_blocked| Tenant {
        org: &org,
        plan_name: "free",
        plan: &plan,
        suspended,
        usage_blocked,
        settings: &settings,
        home_share_ppm: super::quota::WHOLE,
    };
    let backend = |t: &super::DesiredTenant| {
        let rules = t.ingress.spec.clone().unwrap().rules.unwrap();
        rules[0].http.as_ref().unwrap().paths[0].backend.service.clone().unwrap().name
    };
    let blocked = desired_tenant(&tenant(false, true));
    assert_eq!(backend(&blocked), super::labels::LIMIT_REACHED_SERVICE_NAME);
    assert_eq!(blocked.quota, desired_tenant(&tenant(false, false)).quota, "workloads and data kept");
    assert_eq!(
        blocked.limit_reached_service.spec.clone().unwrap().external_name.as_deref(),
        Some(settings.limit_reached_backend_host.as_str())
    );
    assert_eq!(backend(&desired_tenant(&tenant(true, true))), SUSPENDED_SERVICE_NAME, "suspension takes precedence");
    assert_eq!(backend(&desired_tenant(&tenant(false, false))), "studio");
}

fn q(s: &str) -> Quantity {
    Quantity(s.into())
}

#[test]
fn home_namespace_is_named_after_the_slug_and_labelled_for_ownership() {
    let t = build(&acme(), "free", false);
    assert_eq!(t.namespace.metadata.name.as_deref(), Some("org-acme"));
    let labels = t.namespace.metadata.labels.clone().unwrap();
    assert_eq!(labels[MANAGED], "true");
    assert_eq!(labels[ORGANIZATION], "acme");
    assert_eq!(labels[ORGANIZATION_OBJECT], "acme-object");
    assert_eq!(labels[NAMESPACE_KIND], "home");
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "baseline");
    assert!(t.namespace.metadata.owner_references.is_none(), "no ownerReferences: CRD removal must not GC tenants");
    for meta in [&t.quota.metadata, &t.limit_range.metadata, &t.network_policy.metadata, &t.ingress.metadata] {
        assert_eq!(meta.namespace.as_deref(), Some("org-acme"));
        assert_eq!(meta.labels.as_ref().unwrap()[ORGANIZATION_OBJECT], "acme-object");
        assert!(meta.owner_references.is_none());
    }
}

#[test]
fn free_plan_quota_and_limit_range() {
    let t = build(&acme(), "free", false);
    let hard = t.quota.spec.unwrap().hard.unwrap();
    assert_eq!(t.quota.metadata.name.as_deref(), Some(QUOTA_NAME));
    assert_eq!(hard["requests.cpu"], q("2"));
    assert_eq!(hard["limits.memory"], q("8Gi"));
    assert_eq!(hard["pods"], q("20"));
    assert_eq!(hard["requests.storage"], q("5Gi"), "storage limit maps to requests.storage");
    let item = &t.limit_range.spec.unwrap().limits[0];
    assert_eq!(item.type_, "Container");
    assert_eq!(item.default.as_ref().unwrap()["cpu"], q("500m"));
    assert_eq!(item.default_request.as_ref().unwrap()["memory"], q("128Mi"));
}

#[test]
fn professional_quota_is_larger_and_enterprise_has_no_storage_cap() {
    let pro = build(&acme(), "professional", false).quota.spec.unwrap().hard.unwrap();
    assert_eq!(pro["pods"], q("200"));
    // Until usage is pushed to Stripe the shipped plans cap storage at what they include.
    assert_eq!(pro["requests.storage"], q("500Gi"));
    let ent = build(&acme(), "enterprise", false).quota.spec.unwrap().hard.unwrap();
    assert!(!ent.contains_key("requests.storage"));
    assert!(!ent.contains_key("pods"));
}

#[test]
fn suspension_cuts_pods_to_zero_and_routes_to_the_suspended_page() {
    let t = build(&acme(), "professional", true);
    let hard = t.quota.spec.unwrap().hard.unwrap();
    assert_eq!(hard["pods"], q("0"));
    assert_eq!(hard["requests.storage"], q("500Gi"), "data is kept");
    let rules = t.ingress.spec.unwrap().rules.unwrap();
    let backend = rules[0].http.as_ref().unwrap().paths[0].backend.service.clone().unwrap();
    assert_eq!(backend.name, SUSPENDED_SERVICE_NAME);
    assert_eq!(
        t.suspended_service.spec.unwrap().external_name.as_deref(),
        Some(Settings::default().suspended_backend_host.as_str())
    );
}

#[test]
fn one_binding_per_role_mapped_to_the_builtin_cluster_roles() {
    let t = build(&acme(), "free", false);
    let by_name = |name: &str| t.bindings.iter().find(|b| b.metadata.name.as_deref() == Some(name)).unwrap();
    let owner = by_name("atlantiplex-owner");
    assert_eq!(owner.role_ref.name, "admin");
    let owners: Vec<_> = owner.subjects.as_ref().unwrap().iter().map(|s| (s.kind.as_str(), s.name.as_str())).collect();
    assert_eq!(owners, [("User", "alice")]);
    assert_eq!(by_name("atlantiplex-admin").role_ref.name, "admin");
    assert_eq!(by_name("atlantiplex-admin").subjects.as_ref().unwrap()[0].kind, "Group");
    let member = by_name("atlantiplex-member");
    assert_eq!(member.role_ref.name, "edit");
    let members: Vec<_> = member.subjects.as_ref().unwrap().iter().map(|s| s.name.as_str()).collect();
    assert_eq!(members, ["bob", "ci"]);
    let sa = member.subjects.as_ref().unwrap().iter().find(|s| s.kind == "ServiceAccount").unwrap();
    assert_eq!(sa.namespace.as_deref(), Some("tools"));
    assert_eq!(by_name("atlantiplex-viewer").role_ref.name, "view");
    assert_eq!(t.absent_bindings, ["atlantiplex-teamadmin"], "TeamAdmin is granted on teams only");
}

#[test]
fn a_subject_is_bound_once_at_its_strongest_role_and_empty_roles_are_removed() {
    let mut o = acme();
    o.spec.members =
        vec![Member { kind: SubjectKind::User, name: "alice".into(), namespace: None, role: Role::Viewer }];
    let t = build(&o, "free", false);
    assert_eq!(t.bindings.len(), 1, "alice is an owner; her viewer grant is subsumed");
    assert_eq!(t.bindings[0].metadata.name.as_deref(), Some("atlantiplex-owner"));
    assert_eq!(
        t.absent_bindings,
        ["atlantiplex-admin", "atlantiplex-teamadmin", "atlantiplex-member", "atlantiplex-viewer"]
    );
}

#[test]
fn ingress_serves_the_subdomain_with_the_default_backend() {
    let t = build(&acme(), "free", false);
    assert_eq!(t.hosts, ["acme.atlantiplex.local"]);
    assert_eq!(t.url, "http://acme.atlantiplex.local");
    assert_eq!(t.ingress.metadata.annotations.as_ref().unwrap()[TENANT_ANNOTATION], "acme");
    let spec = t.ingress.spec.unwrap();
    assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
    let backend = spec.rules.unwrap()[0].http.as_ref().unwrap().paths[0].backend.service.clone().unwrap();
    assert_eq!((backend.name.as_str(), backend.port.unwrap().number), ("studio", Some(80)));
    assert!(t.warnings.is_empty());
}

fn globex() -> Organization {
    org(r#"
apiVersion: atlantiplex.io/v1alpha1
kind: Organization
metadata: { name: globex }
spec:
  slug: globex
  displayName: Globex
  owners: [{ kind: User, name: hank }]
  ingress: { customDomains: [studio.globex.example], tls: true, backend: { service: web, port: 8080 } }
  security:
    ipAllowList: [203.0.113.0/24]
    ssoGroupMappings: [{ group: "globex:eng", role: Member }]
"#)
}

#[test]
fn enterprise_features_custom_domains_tls_allow_list_and_sso() {
    let t = build(&globex(), "enterprise", false);
    assert_eq!(t.hosts, ["globex.atlantiplex.local", "studio.globex.example"]);
    assert_eq!(t.url, "https://globex.atlantiplex.local");
    let spec = t.ingress.spec.clone().unwrap();
    let tls = &spec.tls.unwrap()[0];
    assert_eq!(tls.secret_name.as_deref(), Some("globex-tls"));
    assert_eq!(tls.hosts.as_ref().unwrap().len(), 2);
    let annotations = t.ingress.metadata.annotations.clone().unwrap();
    assert_eq!(annotations["nginx.ingress.kubernetes.io/whitelist-source-range"], "203.0.113.0/24");
    let rules = t.network_policy.spec.clone().unwrap().ingress.unwrap();
    assert_eq!(rules[1].from.as_ref().unwrap()[0].ip_block.as_ref().unwrap().cidr, "203.0.113.0/24");
    let member = t.bindings.iter().find(|b| b.metadata.name.as_deref() == Some("atlantiplex-member")).unwrap();
    assert_eq!(
        member.subjects.as_ref().unwrap()[0].name,
        "oidc:globex:eng",
        "the IdP's group, as kube-apiserver names it"
    );
    assert!(t.warnings.is_empty(), "{:?}", t.warnings);
}

#[test]
fn an_mfa_organization_binds_every_person_through_their_mfa_twin() {
    let mut org = globex();
    org.spec.security.as_mut().unwrap().mfa_required = true;
    org.spec.owners.push(crate::api::Subject {
        kind: crate::api::SubjectKind::ServiceAccount,
        name: "argocd".into(),
        namespace: Some("argocd".into()),
    });
    let t = build(&org, "enterprise", false);
    let subjects = |role: &str| {
        let binding = t.bindings.iter().find(|b| b.metadata.name.as_deref() == Some(role)).unwrap();
        binding.subjects.clone().unwrap().into_iter().map(|s| (s.kind, s.name)).collect::<Vec<_>>()
    };
    let owners = subjects("atlantiplex-owner");
    assert!(owners.contains(&("Group".into(), "hank#mfa".into())), "{owners:?}");
    assert!(owners.contains(&("ServiceAccount".into(), "argocd".into())), "machines keep their binding: {owners:?}");
    assert!(!owners.iter().any(|(_, n)| n == "hank"), "no password-only binding: {owners:?}");
    assert_eq!(subjects("atlantiplex-member"), [("Group".to_string(), "oidc:globex:eng#mfa".to_string())]);
}

#[test]
fn features_outside_the_plan_are_left_out_with_a_warning_naming_the_field() {
    let t = build(&globex(), "free", false);
    assert_eq!(t.hosts, ["globex.atlantiplex.local"]);
    assert_eq!(t.network_policy.spec.unwrap().ingress.unwrap().len(), 1, "no ipBlock rule");
    assert!(t.bindings.iter().all(|b| b.metadata.name.as_deref() != Some("atlantiplex-member")));
    let joined = t.warnings.join("\n");
    for field in ["spec.ingress.customDomains", "spec.security.ipAllowList", "spec.security.ssoGroupMappings"] {
        assert!(joined.contains(field), "warning for {field} in {joined}");
    }
}

#[test]
fn network_policy_admits_only_the_tenant_and_the_ingress_controller() {
    let t = build(&acme(), "free", false);
    let spec = t.network_policy.spec.unwrap();
    assert_eq!(spec.policy_types.unwrap(), ["Ingress"]);
    let peers = spec.ingress.unwrap()[0].from.clone().unwrap();
    let same = peers[0].namespace_selector.clone().unwrap().match_labels.unwrap();
    assert_eq!(same[ORGANIZATION], "acme");
    assert_eq!(same[MANAGED], "true");
    let ctrl = peers[1].namespace_selector.clone().unwrap().match_labels.unwrap();
    assert_eq!(ctrl["kubernetes.io/metadata.name"], "ingress-nginx");
}

fn subscription(name: &str, org: &str, plan: &str, created: &str) -> Subscription {
    serde_yaml::from_str(&format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{ name: {name}, creationTimestamp: '{created}' }}\nspec: {{ organization: {org}, plan: {plan}, billingEmail: b@x.io }}"
    ))
    .unwrap()
}

#[test]
fn effective_plan_is_free_without_a_subscription_and_the_oldest_subscription_otherwise() {
    let o = acme();
    assert_eq!(effective_plan(&o, [], "free").plan, "free");
    let other = subscription("other", "globex", "enterprise", "2026-01-01T00:00:00Z");
    assert_eq!(effective_plan(&o, [&other], "free").plan, "free");
    let newer = subscription("newer", "acme-object", "starter", "2026-03-01T00:00:00Z");
    let older = subscription("older", "acme-object", "professional", "2026-02-01T00:00:00Z");
    let choice = effective_plan(&o, [&newer, &older, &other], "free");
    assert_eq!(choice.plan, "professional");
    assert_eq!(choice.subscription.as_deref(), Some("older"));
    assert!(choice.warnings[0].contains("ignoring newer"), "{:?}", choice.warnings);
}

#[test]
fn effective_plan_follows_the_stripe_state() {
    use crate::api::SubscriptionStatus;
    use crate::tenancy::dunning::Standing;
    let o = acme();
    let with = |state: Option<&str>, billed: Option<&str>| {
        let mut sub = subscription("s", "acme-object", "starter", "2026-01-01T00:00:00Z");
        sub.status = Some(SubscriptionStatus {
            stripe_state: state.map(str::to_string),
            plan: billed.map(str::to_string),
            past_due_since: Some("2026-01-02T00:00:00Z".into()),
            ..Default::default()
        });
        effective_plan(&o, [&sub], "free")
    };
    // Not billed (billing disabled, unbilled plan, not synced yet): spec.plan.
    assert_eq!((with(None, None).plan, with(None, None).standing), ("starter".into(), Standing::Unbilled));
    // Billed: the plan in effect, which lags spec.plan while a downgrade waits for the period end.
    assert_eq!(with(Some("active"), Some("enterprise")).plan, "enterprise");
    assert_eq!(with(Some("trialing"), None).plan, "starter");
    let past_due = with(Some("past_due"), Some("starter"));
    assert_eq!(past_due.plan, "starter");
    assert!(matches!(past_due.standing, Standing::PastDue { since: Some(_) }));
    for lapsed in ["unpaid", "canceled", "paused", "incomplete", "incomplete_expired"] {
        assert_eq!(with(Some(lapsed), Some("starter")).plan, "free", "{lapsed}");
    }
}

#[test]
fn usage_reports_used_over_limit_and_names_the_fix() {
    let mut o = acme();
    assert_eq!(user_count(&o, []), 5);
    o.spec.members.push(Member { kind: SubjectKind::User, name: "dave".into(), namespace: None, role: Role::Member });
    let (u, exceeded) = usage(&shipped_plan("free"), user_count(&o, []), 0, 1);
    assert_eq!(u.users, "6/5");
    assert_eq!(u.teams, "0/2");
    assert_eq!(exceeded, ["6 users but plan free allows 5: remove 1 or upgrade the plan"]);
    let (u, exceeded) = usage(&shipped_plan("enterprise"), 600, 50, 51);
    assert_eq!(u.users, "600/unlimited");
    assert!(exceeded.is_empty());
}

#[test]
fn building_twice_gives_identical_objects() {
    assert_eq!(build(&globex(), "enterprise", false), build(&globex(), "enterprise", false));
}

#[test]
fn organization_access_does_not_depend_on_cache_order() {
    let plan = shipped_plan("free");
    let settings = Settings::default();
    let org = acme();
    let tenant = Tenant {
        org: &org,
        plan_name: "free",
        plan: &plan,
        suspended: false,
        usage_blocked: false,
        home_share_ppm: super::quota::WHOLE,
        settings: &settings,
    };
    let team = |name: &str| -> crate::api::Team {
        serde_yaml::from_str(&format!(
            "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata: {{name: {name}}}\nspec: {{organization: acme-object}}\n"
        ))
        .unwrap()
    };
    let (a, b) = (team("acme-object.a"), team("acme-object.b"));
    let subs = ["s2".to_string(), "s1".to_string()];
    let forward = super::access::organization_access(&tenant, &[&a, &b], &subs);
    let reversed = super::access::organization_access(&tenant, &[&b, &a], &[subs[1].clone(), subs[0].clone()]);
    assert_eq!(forward, reversed);
}
