use super::*;
use crate::api::{Subject, SubjectKind};

fn user(name: &str) -> Subject {
    Subject { kind: SubjectKind::User, name: name.into(), namespace: None }
}

#[test]
fn people_in_mfa_organizations_are_bound_through_their_twin() {
    assert_eq!(bound_subject(&user("hank@globex.example"), false), user("hank@globex.example"));
    let twin = bound_subject(&user("hank@globex.example"), true);
    assert_eq!((twin.kind, twin.name.as_str()), (SubjectKind::Group, "hank@globex.example#mfa"));
    let group = Subject { kind: SubjectKind::Group, name: idp_group("globex:engineering"), namespace: None };
    assert_eq!(bound_subject(&group, true).name, "oidc:globex:engineering#mfa");
    assert_eq!(bound_subject(&bound_subject(&group, true), true).name, "oidc:globex:engineering#mfa", "idempotent");
}

#[test]
fn service_accounts_keep_their_binding_under_mfa() {
    let sa = Subject { kind: SubjectKind::ServiceAccount, name: "argocd".into(), namespace: Some("argocd".into()) };
    assert_eq!(bound_subject(&sa, true), sa);
}

#[test]
fn kubernetes_groups_match_the_authentication_config() {
    let groups = vec!["acme:owners".to_string()];
    assert_eq!(kubernetes_groups("a@acme.example", &groups, false), ["oidc:acme:owners", "system:authenticated"]);
    assert_eq!(
        kubernetes_groups("a@acme.example", &groups, true),
        ["oidc:acme:owners", "oidc:acme:owners#mfa", "a@acme.example#mfa", "system:authenticated"]
    );
    assert!(has_mfa_twin(&kubernetes_groups("a@acme.example", &groups, true)));
    assert!(!has_mfa_twin(&kubernetes_groups("a@acme.example", &groups, false)));
}

#[test]
fn second_factors_are_a_setting() {
    let amr = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(SecondFactors::default().used_in(&amr(&["pwd", "otp"])));
    assert!(!SecondFactors::default().used_in(&amr(&["pwd"])));
    let custom = SecondFactors::new(["webauthn".to_string()]);
    assert!(custom.used_in(&amr(&["webauthn"])) && !custom.used_in(&amr(&["otp"])));
}

#[test]
fn the_stricter_timeout_applies() {
    assert_eq!(effective_timeout_minutes(Some(30), Some(60)), Some(30));
    assert_eq!(effective_timeout_minutes(Some(90), Some(60)), Some(60), "the plan caps the organization");
    assert_eq!(effective_timeout_minutes(None, Some(60)), Some(60));
    assert_eq!(effective_timeout_minutes(None, None), None);
}

#[test]
fn kubectl_writes_need_a_recent_login() {
    let now = 1_800_000_000;
    assert_eq!(kubectl_write_check(Some(now - 29 * 60), now, Some(30)), SessionCheck::Fresh);
    assert_eq!(
        kubectl_write_check(Some(now - 31 * 60), now, Some(30)),
        SessionCheck::TooOld { age_minutes: 31, limit_minutes: 30 }
    );
    assert_eq!(kubectl_write_check(None, now, Some(30)), SessionCheck::Fresh, "certificates have no login time");
    assert_eq!(kubectl_write_check(Some(0), now, None), SessionCheck::Fresh, "no timeout set");
}

#[test]
fn web_sessions_end_when_idle_or_too_old() {
    let limits = SessionLimits { idle_seconds: 1800, absolute_seconds: 43_200 };
    let state = SessionState { created_at: 0, last_seen_at: 1000 };
    assert_eq!(web_session_verdict(state, limits, 2000), WebSessionVerdict::Active);
    assert_eq!(web_session_verdict(state, limits, 3000), WebSessionVerdict::Idle { limit_seconds: 1800 });
    let busy = SessionState { created_at: 0, last_seen_at: 43_000 };
    assert_eq!(web_session_verdict(busy, limits, 43_300), WebSessionVerdict::Expired { limit_seconds: 43_200 });
    assert_eq!(limits.for_organization(Some(10)).idle_seconds, 600);
    assert_eq!(limits.for_organization(Some(600)).idle_seconds, 1800, "never looser than the global limit");
}

#[test]
fn the_authentication_config_maps_email_groups_and_twins() {
    let factors = SecondFactors::default();
    let yaml = authentication_config(&AuthenticationConfig {
        issuer: "https://127.0.0.1:4444/",
        audiences: &["kubectl".to_string()],
        certificate_authority: Some("PEM"),
        second_factors: &factors,
    });
    let doc: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("valid YAML");
    let jwt = &doc["jwt"][0];
    assert_eq!(jwt["claimMappings"]["username"]["claim"], "email");
    let groups = jwt["claimMappings"]["groups"]["expression"].as_str().expect("expression");
    assert!(groups.contains("'oidc:' + g + '#mfa'") && groups.contains("'otp', 'mfa'"), "{groups}");
    assert_eq!(jwt["issuer"]["certificateAuthority"], "PEM");
}
