//! Single sign-on end to end, against the real kube-apiserver trusting a real Ory Hydra: IdP groups
//! mapped to roles for kubectl, MFA-required organizations, session timeouts, web sign-in with
//! sessions, the IP allow-list, platform admins by IdP group, `atlantiplex-operator login`, and
//! tokens the API server must refuse. Every token comes from a login played through Hydra's admin
//! API (`devcluster::idp`); nothing impersonates anyone.

#[path = "support/sso.rs"]
mod sso_support;
#[path = "support/mod.rs"]
mod support;

use devcluster::idp::Person;
use sso_support::{PLATFORM_ADMINS, sso};
use std::time::{Duration, Instant};

/// An Organization on the enterprise plan; `owners` comma-separated emails.
fn organization(name: &str, owners: &str, security: &str) -> String {
    let owners: Vec<String> = owners.split(',').map(|o| format!("{{kind: User, name: {}}}", o.trim())).collect();
    let owner = owners.join(", ");
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Organization\nmetadata: {{name: {name}}}\nspec:\n  slug: {name}\n  displayName: {name}\n  \
         owners: [{owner}]\n  security:\n{security}---\n\
         apiVersion: atlantiplex.io/v1alpha1\nkind: Subscription\nmetadata: {{name: {name}}}\n\
         spec: {{organization: {name}, plan: enterprise, billingEmail: billing@{name}.example}}\n"
    )
}

fn ready(name: &str, owner: &str, security: &str) {
    let h = &sso().h;
    h.apply_ok(&organization(name, owner, security));
    h.wait_ready("organization", name);
    // The Subscription's plan is applied (bindings to SSO groups need the enterprise plan).
    let deadline = Instant::now() + Duration::from_secs(90);
    while h.jsonpath(&["organization", name], "{.status.effectivePlan}") != "enterprise" {
        assert!(Instant::now() < deadline, "organization {name} did not move to the enterprise plan");
        std::thread::sleep(Duration::from_millis(250));
    }
}

const SSO_WEB_OWNERS: &str = "wendy@sso-web.example, ivy@sso-web.example";

fn team(org: &str, name: &str) -> String {
    format!(
        "apiVersion: atlantiplex.io/v1alpha1\nkind: Team\nmetadata: {{name: {org}.{name}}}\nspec: {{organization: {org}}}\n"
    )
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn idp_groups_reach_kubectl_through_the_organizations_group_mappings() {
    let s = sso();
    ready(
        "sso-acme",
        "alice@sso-acme.example",
        "    ssoGroupMappings:\n      - {group: 'sso-acme:engineers', role: Member}\n      - {group: 'sso-acme:auditors', role: Viewer}\n",
    );
    let bob = s.id_token(&Person::password_only("bob@sso-acme.example", &["sso-acme:engineers"])).await;
    let carol = s.id_token(&Person::password_only("carol@sso-acme.example", &["sso-acme:auditors"])).await;
    let dave = s.id_token(&Person::password_only("dave@elsewhere.example", &[])).await;

    let who = s.kubectl_with_token(&bob, &["auth", "whoami", "-o", "json"], None);
    assert!(who.status.success(), "{}", stderr(&who));
    let review: serde_json::Value = serde_json::from_slice(&who.stdout).expect("SelfSubjectReview");
    let user = &review["status"]["userInfo"];
    assert_eq!(user["username"], "bob@sso-acme.example", "the email claim is the user name");
    let groups: Vec<&str> = user["groups"].as_array().unwrap().iter().filter_map(|g| g.as_str()).collect();
    assert!(groups.contains(&"oidc:sso-acme:engineers"), "{groups:?}");
    assert!(!groups.iter().any(|g| g.ends_with("#mfa")), "no MFA twins without a second factor: {groups:?}");
    assert_eq!(user["extra"]["atlantiplex.io/amr"], serde_json::json!(["pwd"]));

    let can_i = |token: &str, verb: &str| {
        let out = s.kubectl_with_token(token, &["auth", "can-i", verb, "configmaps", "-n", "org-sso-acme"], None);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    assert!(can_i(&bob, "create") && can_i(&bob, "get"), "engineers are Members (edit)");
    assert!(!can_i(&carol, "create") && can_i(&carol, "get"), "auditors are Viewers (view)");
    assert!(!can_i(&dave, "get"), "no mapped group, no access");

    let configmap =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sso-written, namespace: org-sso-acme}\ndata: {by: sso}\n";
    let written = s.kubectl_with_token(&bob, &["apply", "-f", "-"], Some(configmap));
    assert!(written.status.success(), "a Member writes: {}", stderr(&written));
    let refused = s.kubectl_with_token(&carol, &["delete", "configmap", "sso-written", "-n", "org-sso-acme"], None);
    assert!(!refused.status.success() && stderr(&refused).contains("forbidden"), "{}", stderr(&refused));
}

#[tokio::test]
async fn an_mfa_organization_refuses_a_password_only_owner_until_they_sign_in_with_a_second_factor() {
    let s = sso();
    ready("sso-globex", "hank@sso-globex.example", "    mfaRequired: true\n");
    let password = s.id_token(&Person::password_only("hank@sso-globex.example", &[])).await;
    let mfa = s.id_token(&Person::with_second_factor("hank@sso-globex.example", &[])).await;

    let read = s.kubectl_with_token(&password, &["get", "configmaps", "-n", "org-sso-globex"], None);
    assert!(!read.status.success() && stderr(&read).contains("forbidden"), "reads refused too: {}", stderr(&read));
    let org = s.kubectl_with_token(&password, &["get", "organization", "sso-globex"], None);
    assert!(!org.status.success(), "the Organization itself is out of reach: {}", stderr(&org));
    let create = s.kubectl_with_token(&password, &["create", "-f", "-"], Some(&team("sso-globex", "video")));
    support::assert_denied_by(
        &stderr(&create),
        "mfa-required",
        "organization sso-globex requires MFA: sign in again with a second factor",
    );

    let read = s.kubectl_with_token(&mfa, &["get", "configmaps", "-n", "org-sso-globex"], None);
    assert!(read.status.success(), "the same owner with a second factor reads: {}", stderr(&read));
    let create = s.kubectl_with_token(&mfa, &["create", "-f", "-"], Some(&team("sso-globex", "video")));
    assert!(create.status.success(), "and writes: {}", stderr(&create));

    // The tenant API says the same to the same tokens.
    let api = s.browser();
    let bearer = |token: &str| format!("Bearer {token}");
    let path = "/v1/organizations/sso-globex";
    api.request("GET", path, &[("authorization", &bearer(&password))], None).await.assert_problem(
        403,
        "mfa-required",
        "organization sso-globex requires MFA",
    );
    assert_eq!(api.request("GET", path, &[("authorization", &bearer(&mfa))], None).await.status, 200);
}

#[tokio::test]
async fn writes_need_a_login_younger_than_the_organizations_session_timeout() {
    let s = sso();
    ready("sso-timeout", "tina@sso-timeout.example", "    sessionTimeoutMinutes: 1\n");
    let token = s.id_token(&Person::password_only("tina@sso-timeout.example", &[])).await;
    let dry_run = |name: &str| {
        s.kubectl_with_token(&token, &["create", "--dry-run=server", "-f", "-"], Some(&team("sso-timeout", name)))
    };
    let fresh = dry_run("fresh");
    assert!(fresh.status.success(), "a fresh login writes: {}", stderr(&fresh));
    let api = s.browser();
    let bearer = format!("Bearer {token}");
    let new_key = |name: &str| {
        let body = format!(r#"{{"name": "{name}", "scopes": ["read"]}}"#);
        let api = &api;
        let bearer = bearer.clone();
        async move {
            let headers = [("authorization", bearer.as_str()), ("content-type", "application/json")];
            api.request("POST", "/v1/organizations/sso-timeout/api-keys", &headers, Some(&body)).await
        }
    };
    assert_eq!(new_key("fresh").await.status, 201, "and through the tenant API");
    // The login ages in real time: wait for the minute to pass (the denial, not a guessed delay).
    let deadline = Instant::now() + Duration::from_secs(240);
    let denial = loop {
        let out = dry_run("stale");
        if !out.status.success() {
            break stderr(&out);
        }
        assert!(Instant::now() < deadline, "a login older than the 1-minute timeout was still allowed to write");
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    support::assert_denied_by(&denial, "session-expired", "accepts changes only within 1 minutes of signing in");
    new_key("stale").await.assert_problem(403, "session-expired", "accepts changes only within 1 minutes");
    let read = s.kubectl_with_token(&token, &["get", "configmaps", "-n", "org-sso-timeout"], None);
    assert!(read.status.success(), "reads last as long as the token: {}", stderr(&read));
}

#[tokio::test]
async fn web_sign_in_uses_code_pkce_a_secure_cookie_csrf_and_logout() {
    let s = sso();
    ready("sso-web", SSO_WEB_OWNERS, "    sessionTimeoutMinutes: 5\n");
    let wendy = Person::password_only("wendy@sso-web.example", &[]);
    let mut browser = s.browser();

    let start = browser.get("/auth/login?return_to=/v1/organizations/sso-web").await;
    assert_eq!(start.status, 303, "{start:?}");
    let to_idp = start.location().to_string();
    let issuer = &s.h.plane.identity.as_ref().unwrap().issuer;
    assert!(to_idp.starts_with(&format!("{issuer}oauth2/auth?")), "{to_idp}");
    for part in ["code_challenge=", "code_challenge_method=S256", "state=", "nonce=", "client_id=atlantiplex-console"] {
        assert!(to_idp.contains(part), "{part} in {to_idp}");
    }
    let back = s.idp().sign_in(&to_idp, &wendy).await.expect("signed in at Hydra");
    assert!(back.starts_with(&format!("https://127.0.0.1:{}/auth/callback?code=", s.api_port)), "{back}");
    let done = browser.get_url(&back).await;
    assert_eq!((done.status, done.location()), (303, "/v1/organizations/sso-web"), "{done:?}");
    let set = done.set_cookie();
    for attribute in ["__Host-atlantiplex-session=", "HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    browser.get_url(&back).await.assert_problem(400, "sign-in-state", "already finished");
    browser.cookie = done.session_cookie();

    let org = browser.get("/v1/organizations/sso-web").await;
    assert_eq!(org.status, 200, "{org:?}");
    let session = browser.get("/v1/session").await.json();
    assert_eq!(
        (session["email"].as_str(), session["secondFactor"].as_bool()),
        (Some("wendy@sso-web.example"), Some(false))
    );

    let key = r#"{"name": "from-the-web", "scopes": ["read"]}"#;
    let path = "/v1/organizations/sso-web/api-keys";
    browser.request("POST", path, &[("content-type", "application/json")], Some(key)).await.assert_problem(
        403,
        "csrf",
        "CSRF token",
    );
    let csrf = browser.csrf().await;
    let created = browser
        .request("POST", path, &[("content-type", "application/json"), ("x-csrf-token", &csrf)], Some(key))
        .await;
    assert_eq!(created.status, 201, "with the CSRF token the Owner creates a key: {created:?}");

    let cookie = browser.cookie.clone().unwrap();
    let mut tampered = s.browser();
    let last = if cookie.ends_with('A') { 'B' } else { 'A' };
    tampered.cookie = Some(format!("{}{last}", &cookie[..cookie.len() - 1]));
    tampered.get("/v1/organizations/sso-web").await.assert_problem(401, "session-unknown", "sign in again");
    s.browser().get("/auth/callback?code=x&state=forged").await.assert_problem(400, "sign-in-state", "start again");
    s.browser().get("/auth/callback?error=access_denied&error_description=nope").await.assert_problem(
        400,
        "sign-in-refused",
        "access_denied",
    );

    let form = [("content-type", "application/x-www-form-urlencoded")];
    browser.request("POST", "/auth/logout", &form, Some("csrf=wrong")).await.assert_problem(403, "csrf", "CSRF");
    let out = browser.request("POST", "/auth/logout", &form, Some(&format!("csrf={csrf}"))).await;
    assert_eq!((out.status, out.location()), (303, "/auth/signed-out"), "{out:?}");
    assert!(out.set_cookie().contains("Max-Age=0"), "the cookie is cleared: {out:?}");
    browser.get("/v1/organizations/sso-web").await.assert_problem(401, "session-unknown", "ended");

    // Only this site's paths are return targets.
    let start = s.browser().get("/auth/login?return_to=https://evil.example/").await;
    let back = s.idp().sign_in(start.location(), &wendy).await.expect("signed in");
    assert_eq!(s.browser().get_url(&back).await.location(), "/v1/session", "no open redirect");
}

#[tokio::test]
async fn web_sessions_end_when_idle_or_too_old_with_the_organizations_tighter_limit() {
    let s = sso();
    ready("sso-web", SSO_WEB_OWNERS, "    sessionTimeoutMinutes: 5\n");
    let age = |column: &str, minutes: i64, email: &str| {
        format!("UPDATE web_sessions SET {column} = {column} - {} WHERE email = '{email}'", minutes * 60_000_000)
    };
    // Identities of their own: the other web test's sessions (wendy's) are not aged by this one.
    let idle = Person::password_only("ivy@sso-web.example", &[]);
    let browser = s.web_sign_in(&idle, "/v1/session").await;
    assert_eq!(browser.get("/v1/organizations/sso-web").await.status, 200);
    s.ledger_exec(&age("last_seen_at_us", 10, "ivy@sso-web.example")).await;
    browser.get("/v1/organizations/sso-web").await.assert_problem(401, "session-idle", "more than 5 minutes");
    assert_eq!(browser.get("/v1/session").await.status, 200, "elsewhere the 60-minute idle limit still holds");

    s.ledger_exec(&age("last_seen_at_us", 120, "ivy@sso-web.example")).await;
    browser.get("/v1/session").await.assert_problem(401, "session-idle", "more than 60 minutes");
    browser.get("/v1/session").await.assert_problem(401, "session-unknown", "ended");

    let browser = s.web_sign_in(&Person::password_only("abe@sso-web.example", &[]), "/v1/session").await;
    s.ledger_exec(&age("created_at_us", 13 * 60, "abe@sso-web.example")).await;
    browser.get("/v1/session").await.assert_problem(401, "session-expired", "at most 720 minutes");
}

#[tokio::test]
async fn opening_an_mfa_organization_without_a_second_factor_asks_for_one() {
    let s = sso();
    ready("sso-globex", "hank@sso-globex.example", "    mfaRequired: true\n");
    let browser = s.web_sign_in(&Person::password_only("hank@sso-globex.example", &[]), "/v1/session").await;
    let page = browser.request("GET", "/v1/organizations/sso-globex", &[("accept", "text/html")], None).await;
    assert_eq!(page.status, 303, "{page:?}");
    let again = page.location().to_string();
    assert_eq!(again, "/auth/login?return_to=/v1/organizations/sso-globex&second_factor=true");
    let api = browser.get("/v1/organizations/sso-globex").await;
    api.assert_problem(403, "mfa-required", "organization sso-globex requires MFA: sign in again with a second factor");
    assert_eq!(api.json()["sign_in"], again.as_str());

    let mut browser = browser;
    let start = browser.get(&again).await;
    let to_idp = start.location().to_string();
    assert!(to_idp.contains("prompt=login") && to_idp.contains("acr_values=urn%3Aatlantiplex%3Amfa"), "{to_idp}");
    let back = s.idp().sign_in(&to_idp, &Person::with_second_factor("hank@sso-globex.example", &[])).await.unwrap();
    let done = browser.get_url(&back).await;
    assert_eq!(done.location(), "/v1/organizations/sso-globex");
    browser.cookie = done.session_cookie();
    assert_eq!(browser.get("/v1/organizations/sso-globex").await.status, 200);
    assert_eq!(browser.get("/v1/session").await.json()["secondFactor"], true);
}

#[tokio::test]
async fn the_ip_allow_list_holds_for_web_sessions() {
    let s = sso();
    ready("sso-fenced", "fay@sso-fenced.example", "    ipAllowList: [203.0.113.0/24]\n");
    let browser = s.web_sign_in(&Person::password_only("fay@sso-fenced.example", &[]), "/v1/session").await;
    browser.get("/v1/organizations/sso-fenced").await.assert_problem(403, "ip-allow-list", "127.0.0.1");
}

#[tokio::test]
async fn platform_admins_are_named_by_an_idp_group() {
    let s = sso();
    ready(
        "sso-acme",
        "alice@sso-acme.example",
        "    ssoGroupMappings:\n      - {group: 'sso-acme:engineers', role: Member}\n      - {group: 'sso-acme:auditors', role: Viewer}\n",
    );
    let root = s.id_token(&Person::password_only("root@platform.example", &[PLATFORM_ADMINS])).await;
    let dave = s.id_token(&Person::password_only("dave@elsewhere.example", &[])).await;
    let org = organization("sso-by-admin", "someone@customer.example", "    mfaRequired: false\n");
    let refused = s.kubectl_with_token(&dave, &["create", "--dry-run=server", "-f", "-"], Some(&org));
    assert!(!refused.status.success(), "not a platform admin: {}", stderr(&refused));
    let created = s.kubectl_with_token(&root, &["create", "--dry-run=server", "-f", "-"], Some(&org));
    assert!(created.status.success(), "oidc:{PLATFORM_ADMINS} is a platform admin group: {}", stderr(&created));

    let browser =
        s.web_sign_in(&Person::password_only("root@platform.example", &[PLATFORM_ADMINS]), "/v1/session").await;
    assert_eq!(browser.get("/v1/session").await.json()["platformAdmin"], true);
    assert_eq!(browser.get("/v1/organizations/sso-acme").await.status, 200, "platform admins read every organization");
}

#[tokio::test]
async fn tokens_of_another_audience_tampered_or_expired_are_refused() {
    let s = sso();
    let idp = s.idp();
    let person = Person::password_only("eve@sso-acme.example", &[]);
    let other = idp.id_token("other-app", sso_support::KUBECTL_REDIRECT, &person).await.expect("token");
    let unauthorized = |token: &str| {
        let out = s.kubectl_with_token(token, &["auth", "whoami"], None);
        !out.status.success() && stderr(&out).contains("Unauthorized")
    };
    assert!(unauthorized(&other), "an ID token for another client is not kubectl's");
    let good = s.id_token(&person).await;
    assert!(!unauthorized(&good));
    let (head, signature) = good.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
    assert!(unauthorized(&format!("{head}.{flipped}{}", &signature[1..])), "a tampered signature");

    idp.ensure_client(serde_json::json!({
        "client_id": "short-lived", "redirect_uris": [sso_support::KUBECTL_REDIRECT], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"], "response_types": ["code"], "scope": "openid email groups",
    }))
    .await
    .unwrap();
    idp.set_id_token_lifespan("short-lived", "2s").await.unwrap();
    let short = idp.id_token("short-lived", sso_support::KUBECTL_REDIRECT, &person).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !unauthorized(&short) {
        assert!(Instant::now() < deadline, "an expired ID token was still accepted");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test]
async fn atlantiplex_operator_login_signs_in_and_prints_an_exec_credential_for_kubectl() {
    use std::io::BufRead as _;
    let s = sso();
    let identity = s.h.plane.identity.clone().unwrap();
    let cache = s.h.plane.dir.join("login-cache");
    let login = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_atlantiplex-operator"));
        cmd.args(["login", "--issuer", &identity.issuer, "--no-browser", "--second-factor"])
            .args(["--listen", &format!("127.0.0.1:{}", s.login_port)])
            .arg("--ca-file")
            .arg(&identity.ca_file)
            .arg("--cache-dir")
            .arg(&cache)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd.spawn().expect("login starts")
    };
    let mut child = login();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.trim().starts_with("https://").then(|| l.trim().to_string()));
    let url = url.expect("the sign-in URL on stderr");
    let back = s.idp().sign_in(&url, &Person::with_second_factor("lena@sso-acme.example", &[])).await.unwrap();
    assert!(back.starts_with(&format!("http://127.0.0.1:{}/callback?", s.login_port)), "{back}");
    let page = s.browser().get_url(&back).await;
    assert_eq!(page.status, 200, "{page:?}");
    let out = child.wait_with_output().expect("login finishes");
    assert!(out.status.success(), "login failed");
    let credential: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ExecCredential JSON");
    assert_eq!(credential["kind"], "ExecCredential");
    let token = credential["status"]["token"].as_str().unwrap().to_string();
    let who = s.kubectl_with_token(&token, &["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"], None);
    assert_eq!(String::from_utf8_lossy(&who.stdout), "lena@sso-acme.example", "{}", stderr(&who));

    let again = login().wait_with_output().expect("second run");
    assert!(again.status.success());
    let cached: serde_json::Value = serde_json::from_slice(&again.stdout).expect("cached ExecCredential");
    assert_eq!(cached["status"]["token"], token.as_str(), "a valid cached token is reused without a sign-in");
}

#[tokio::test]
async fn strangers_and_other_tenants_get_nothing_from_the_sign_in_routes() {
    let s = sso();
    ready("sso-web", SSO_WEB_OWNERS, "    sessionTimeoutMinutes: 5\n");
    ready(
        "sso-acme",
        "alice@sso-acme.example",
        "    ssoGroupMappings:\n      - {group: 'sso-acme:engineers', role: Member}\n      - {group: 'sso-acme:auditors', role: Viewer}\n",
    );
    // No credentials at all.
    let stranger = s.browser();
    stranger.get("/v1/session").await.assert_problem(401, "session-none", "sign in at /auth/login");
    let anonymous = stranger.get("/v1/organizations/sso-web").await;
    anonymous.assert_problem(401, "unauthenticated", "or sign in on the web at /auth/login");
    assert_eq!(anonymous.json()["sign_in"], "/auth/login?return_to=/v1/organizations/sso-web");
    let out = stranger.request("POST", "/auth/logout", &[], None).await;
    assert_eq!((out.status, out.location()), (303, "/auth/signed-out"), "nothing to end: {out:?}");
    stranger.get("/auth/callback?code=stolen&state=guessed").await.assert_problem(400, "sign-in-state", "start again");

    // A signed-in owner of another organization.
    let wendy = s.web_sign_in(&Person::password_only("wendy@sso-web.example", &[]), "/v1/session").await;
    let csrf = wendy.csrf().await;
    wendy.get("/v1/organizations/sso-acme").await.assert_problem(404, "unknown-organization", "sso-acme");
    let key = r#"{"name": "not-mine", "scopes": ["read"]}"#;
    let headers = [("content-type", "application/json"), ("x-csrf-token", csrf.as_str())];
    wendy.request("POST", "/v1/organizations/sso-acme/api-keys", &headers, Some(key)).await.assert_problem(
        404,
        "unknown-organization",
        "sso-acme",
    );
}
