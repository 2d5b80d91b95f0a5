//! MFA and session age (the identity gate) and the MFA-aware role table.

use super::*;
use crate::api::Organization;

const NOW: i64 = 1_800_000_000;

fn globex(mfa: bool, timeout: Option<i32>) -> Organization {
    let timeout = timeout.map(|t| format!("\n    sessionTimeoutMinutes: {t}")).unwrap_or_default();
    serde_yaml::from_str(&format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {{name: globex}}\nspec:\n  slug: globex\n  displayName: Globex\n  \
         owners: [{{kind: User, name: hank@globex.example}}, {{kind: ServiceAccount, name: argocd, namespace: argocd}}]\n  \
         security:\n    mfaRequired: {mfa}\n    ssoGroupMappings: [{{group: 'globex:eng', role: Member}}]{timeout}\n"
    ))
    .unwrap()
}

fn plan(timeout: i32) -> Plan {
    let mut plan: Plan = include_str!("../../../examples/plans.yaml")
        .split("\n---\n")
        .map(|doc| serde_yaml::from_str::<Plan>(doc).unwrap())
        .find(|p| p.metadata.name.as_deref() == Some("enterprise"))
        .unwrap();
    plan.spec.session_timeout_minutes = Some(timeout);
    plan
}

/// A person as kube-apiserver's OIDC authenticator presents them (see `identity`).
fn person(email: &str, idp_groups: &[&str], mfa: bool, signed_in_minutes_ago: i64) -> Requester {
    let idp: Vec<String> = idp_groups.iter().map(|g| g.to_string()).collect();
    Requester {
        username: email.into(),
        groups: crate::identity::kubernetes_groups(email, &idp, mfa),
        authenticated_at: Some(NOW - signed_in_minutes_ago * 60),
        now: NOW,
        ..Default::default()
    }
}

#[test]
fn an_mfa_organization_refuses_a_password_only_owner_in_plain_words() {
    let org = globex(true, None);
    let plan = plan(480);
    let denial = identity_gate(&org, "enterprise", Some(&plan), &person("hank@globex.example", &[], false, 1)).unwrap();
    assert_eq!(denial.rule, "mfa-required");
    assert!(denial.message.contains("organization globex requires MFA: sign in again with a second factor"));
    assert_eq!(identity_gate(&org, "enterprise", Some(&plan), &person("hank@globex.example", &[], true, 1)), None);
    assert_eq!(organization_role(&org, &person("hank@globex.example", &[], false, 1), true), None);
    assert_eq!(organization_role(&org, &person("hank@globex.example", &[], true, 1), true), Some(Role::Owner));
}

#[test]
fn sso_groups_count_through_their_twins_in_mfa_organizations() {
    let org = globex(true, None);
    assert_eq!(organization_role(&org, &person("eve@globex.example", &["globex:eng"], false, 1), true), None);
    assert_eq!(
        organization_role(&org, &person("eve@globex.example", &["globex:eng"], true, 1), true),
        Some(Role::Member)
    );
    let open = globex(false, None);
    assert_eq!(
        organization_role(&open, &person("eve@globex.example", &["globex:eng"], false, 1), true),
        Some(Role::Member)
    );
    assert_eq!(
        organization_role(&open, &person("eve@globex.example", &["globex:eng"], false, 1), false),
        None,
        "no SSO on the plan"
    );
}

#[test]
fn strangers_machines_and_admins_pass_the_gate_to_the_ordinary_rules() {
    let org = globex(true, Some(5));
    assert_eq!(identity_gate(&org, "enterprise", None, &person("mallory@evil.example", &[], false, 1)), None);
    let argocd = Requester { username: "system:serviceaccount:argocd:argocd".into(), now: NOW, ..Default::default() };
    assert_eq!(identity_gate(&org, "enterprise", None, &argocd), None);
    let admin = Requester { platform_admin: true, ..person("root@platform.example", &[], false, 600) };
    assert_eq!(identity_gate(&org, "enterprise", None, &admin), None);
}

#[test]
fn writes_need_a_login_younger_than_the_organizations_timeout_capped_by_the_plan() {
    let hank = |ago| person("hank@globex.example", &[], true, ago);
    let org = globex(false, Some(30));
    assert_eq!(identity_gate(&org, "enterprise", Some(&plan(480)), &hank(29)), None);
    let denial = identity_gate(&org, "enterprise", Some(&plan(480)), &hank(31)).unwrap();
    assert_eq!(denial.rule, "session-expired");
    assert!(denial.message.contains("signed in 31 minutes ago") && denial.message.contains("within 30 minutes"));
    let loose = globex(false, Some(600));
    assert!(
        identity_gate(&loose, "enterprise", Some(&plan(60)), &hank(61)).is_some(),
        "the plan caps the organization"
    );
    let certificate = Requester { authenticated_at: None, ..hank(0) };
    assert_eq!(identity_gate(&org, "enterprise", Some(&plan(1)), &certificate), None);
}
