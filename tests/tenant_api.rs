//! The tenant API end to end (`atlantiplex-operator api`): two replicas on a real PostgreSQL ledger with the
//! operator, against the real control plane (TokenReview, SubjectAccessReview, RBAC):
//! - key lifecycle: created by an Owner, used on the other replica, listed without secrets, revoked →
//!   refused by both replicas, expiry; malformed keys, wrong checksums, unknown keys and organizations,
//!   oversized bodies;
//! - scopes and roles (ServiceAccount tokens of each role, a platform reader, a stranger);
//! - the declarative `ApiKey` and its Secret;
//! - a plan without API access; the rate limit held across the two replicas; the API-calls meter;
//! - the IP allow-list behind a trusted proxy hop, and not on a replica that trusts none;
//! - the served OpenAPI document is the committed one.

mod support;
#[path = "support/tenant_api.rs"]
mod tenant_api;

use atlantiplex_operator::ledger::Ledger;
use atlantiplex_operator::metering::{Meter, period::calendar_month};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::{cluster, eventually};
use tenant_api::{Api, organization, path};

fn create_key(scopes: &[&str]) -> String {
    json!({"name": "ci", "scopes": scopes}).to_string()
}

/// Polls `check` every 20 ms until it holds; how long it took. Fails after `limit`.
async fn within<F, Fut>(what: &str, limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn keys_are_created_used_listed_without_secrets_revoked_on_both_replicas_and_expire() {
    let h = cluster();
    let api = Api::get();
    let tokens = organization(&h, "ta-keys", Some("api-test-fast"), &["Owner"], "");
    let owner = tokens["Owner"].as_str();
    let created = api.call(0, "POST", &path("ta-keys", "/api-keys"), Some(owner), &create_key(&["read"])).await;
    assert_eq!(created.status, 201, "{created:?}");
    let body = created.json();
    let key = body["key"].as_str().expect("the key, shown once").to_string();
    assert!(key.starts_with("atp_live_") && key.len() == 45, "{key}");
    assert_eq!(body["scopes"], json!(["read"]));
    assert_eq!(body["createdBy"], "system:serviceaccount:default:ta-keys-owner");
    let id = body["id"].as_str().expect("id").to_string();

    // Used at once on the other replica (not yet in its table: looked up once).
    let org = api.call(1, "GET", &path("ta-keys", ""), Some(&key), "").await;
    assert_eq!(org.status, 200, "{org:?}");
    let org = org.json();
    assert_eq!(
        (org["name"].as_str(), org["plan"].as_str(), org["ready"].as_bool()),
        (Some("ta-keys"), Some("api-test-fast"), Some(true))
    );
    assert_eq!(org["users"]["used"], 1);

    // Listed without the secret; last use recorded.
    let listed = api.call(1, "GET", &path("ta-keys", "/api-keys"), Some(owner), "").await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert!(!listed.body.contains(&key[9..]), "the secret must never be listed: {}", listed.body);
    let entry = listed.json()["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["id"] == id.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(entry["prefix"].as_str(), Some(&key[..13]));
    assert!(entry.get("key").is_none());
    eventually("last use recorded", || async {
        let listed = api.call(0, "GET", &path("ta-keys", "/api-keys"), Some(owner), "").await.json();
        listed["keys"]
            .as_array()
            .is_some_and(|keys| keys.iter().any(|k| k["id"] == id.as_str() && k["lastUsedAt"].is_string()))
    })
    .await;

    // Revoked on replica A: refused by both.
    for replica in 0..2 {
        assert_eq!(api.call(replica, "GET", &path("ta-keys", ""), Some(&key), "").await.status, 200);
    }
    let revoked = api.call(0, "DELETE", &path("ta-keys", &format!("/api-keys/{id}")), Some(owner), "").await;
    assert_eq!(revoked.status, 200, "{revoked:?}");
    assert!(revoked.json()["revokedAt"].is_string());
    let took = within("refused on replica B", Duration::from_secs(10), || async {
        api.call(1, "GET", &path("ta-keys", ""), Some(&key), "").await.status == 401
    })
    .await;
    println!("revocation seen by the other replica after {} ms (promise: 1 s; see make bench-api)", took.as_millis());
    let refused = api.call(0, "GET", &path("ta-keys", ""), Some(&key), "").await;
    refused.assert_problem(401, "key-revoked", "was revoked");
    api.call(1, "GET", &path("ta-keys", ""), Some(&key), "").await.assert_problem(
        401,
        "key-revoked",
        "use another key",
    );

    // Expiry.
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3)).to_string();
    let body = json!({"name": "short", "expiresAt": soon}).to_string();
    let short = api.call(1, "POST", &path("ta-keys", "/api-keys"), Some(owner), &body).await;
    assert_eq!(short.status, 201, "{short:?}");
    let short = short.json()["key"].as_str().expect("key").to_string();
    assert_eq!(api.call(0, "GET", &path("ta-keys", ""), Some(&short), "").await.status, 200);
    eventually("the key expires", || async {
        api.call(0, "GET", &path("ta-keys", ""), Some(&short), "").await.status == 401
    })
    .await;
    api.call(1, "GET", &path("ta-keys", ""), Some(&short), "").await.assert_problem(
        401,
        "key-expired",
        "create a new key",
    );
    let past = json!({"name": "past", "expiresAt": "2020-01-01T00:00:00Z"}).to_string();
    api.call(0, "POST", &path("ta-keys", "/api-keys"), Some(owner), &past).await.assert_problem(
        422,
        "invalid-key-request",
        "in the past",
    );
}

#[tokio::test]
async fn bad_credentials_unknown_organizations_and_oversized_bodies_are_refused_with_the_fix() {
    let h = cluster();
    let api = Api::get();
    let tokens = organization(&h, "ta-bad", Some("api-test-fast"), &["Owner"], "");
    let owner = tokens["Owner"].as_str();
    let good = api.call(0, "POST", &path("ta-bad", "/api-keys"), Some(owner), &create_key(&["read"])).await.json();
    let key = good["key"].as_str().expect("key").to_string();
    api.call(0, "GET", &path("ta-bad", ""), None, "").await.assert_problem(401, "unauthenticated", "Authorization");
    api.call(0, "GET", &path("ta-bad", ""), Some("atp_live_short"), "").await.assert_problem(
        401,
        "malformed-key",
        "copy it whole",
    );
    let mut typo = key.clone().into_bytes();
    typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).expect("utf8");
    api.call(1, "GET", &path("ta-bad", ""), Some(&typo), "").await.assert_problem(
        401,
        "key-checksum",
        "copy the key again",
    );
    let unknown = atlantiplex_operator::keys::generate().expect("key");
    api.call(1, "GET", &path("ta-bad", ""), Some(&unknown), "").await.assert_problem(
        401,
        "unknown-key",
        "no such API key",
    );
    api.call(0, "GET", &path("ta-nobody", ""), Some(owner), "").await.assert_problem(
        404,
        "unknown-organization",
        "ta-nobody",
    );
    api.call(0, "GET", &path("ta-nobody", ""), Some(&key), "").await.assert_problem(403, "key-organization", "ta-bad");
    api.call(0, "GET", "/v1/nothing", Some(&key), "").await.assert_problem(404, "not-found", "openapi.json");
    api.call(0, "GET", &path("ta-bad", "/usage?days=7"), Some(&key), "").await.assert_problem(
        400,
        "invalid-days",
        "days=30",
    );
    let big = json!({"name": "x".repeat(70_000)}).to_string();
    api.call(0, "POST", &path("ta-bad", "/api-keys"), Some(owner), &big).await.assert_problem(
        413,
        "body-too-large",
        "65536 bytes",
    );
    api.call(1, "POST", &path("ta-bad", "/api-keys"), Some(owner), "{\"name\": 5}").await.assert_problem(
        400,
        "invalid-body",
        "openapi.json",
    );
    let unknown_scope = json!({"name": "x", "scopes": ["admin"]}).to_string();
    api.call(1, "POST", &path("ta-bad", "/api-keys"), Some(owner), &unknown_scope).await.assert_problem(
        400,
        "invalid-body",
        "unknown variant",
    );
    // Nothing was created by the refused requests.
    let listed = api.call(0, "GET", &path("ta-bad", "/api-keys"), Some(owner), "").await.json();
    assert_eq!(listed["keys"].as_array().map(Vec::len), Some(1), "{listed}");
}

#[tokio::test]
async fn scopes_and_roles_decide_what_each_caller_may_do() {
    let h = cluster();
    let api = Api::get();
    let tokens = organization(&h, "ta-roles", Some("api-test-fast"), &["Owner", "Admin", "Member", "Viewer"], "");
    let key_with = |scopes: &'static [&'static str]| {
        let owner = tokens["Owner"].clone();
        async move {
            let created = api.call(0, "POST", &path("ta-roles", "/api-keys"), Some(&owner), &create_key(scopes)).await;
            assert_eq!(created.status, 201, "{created:?}");
            created.json()["key"].as_str().expect("key").to_string()
        }
    };
    let reader = key_with(&["read"]).await;
    let reporter = key_with(&["usage:write"]).await;
    let manager = key_with(&["keys:write", "read"]).await;
    let event =
        json!({"specversion": "1.0", "id": "e1", "source": "edge/test", "type": "io.atlantiplex.usage.bandwidth",
        "time": jiff::Timestamp::now().to_string(), "subject": "org-ta-roles", "data": {"value": "1000"}})
        .to_string();

    // Keys: by scope.
    for endpoint in ["", "/members", "/teams", "/billing", "/usage", "/audit"] {
        assert_eq!(
            api.call(1, "GET", &path("ta-roles", endpoint), Some(&reader), "").await.status,
            200,
            "read {endpoint}"
        );
    }
    api.call(0, "POST", &path("ta-roles", "/usage"), Some(&reader), &event).await.assert_problem(
        403,
        "scope",
        "usage:write",
    );
    let reported = api.call(0, "POST", &path("ta-roles", "/usage"), Some(&reporter), &event).await;
    assert_eq!(reported.status, 202, "{reported:?}");
    assert_eq!(reported.json()["accepted"], 1);
    let again = api.call(1, "POST", &path("ta-roles", "/usage"), Some(&reporter), &event).await;
    assert_eq!(again.json()["duplicate"], 1, "{again:?}");
    let foreign = event.replace("org-ta-roles", "org-ta-keys");
    let foreign = api.call(1, "POST", &path("ta-roles", "/usage"), Some(&reporter), &foreign).await;
    assert_eq!(
        (foreign.status, foreign.json()["rejected"].as_i64()),
        (202, Some(1)),
        "another organization's namespace: {foreign:?}"
    );
    api.call(0, "GET", &path("ta-roles", ""), Some(&reporter), "").await.assert_problem(403, "scope", "scope read");
    assert_eq!(
        api.call(0, "POST", &path("ta-roles", "/api-keys"), Some(&manager), &create_key(&["read"])).await.status,
        201
    );
    api.call(0, "POST", &path("ta-roles", "/api-keys"), Some(&manager), &create_key(&["usage:write"]))
        .await
        .assert_problem(403, "scope-escalation", "[usage:write]");

    // People: by role (the webhook's role table).
    let (admin, member, viewer) = (&tokens["Admin"], &tokens["Member"], &tokens["Viewer"]);
    assert_eq!(api.call(1, "GET", &path("ta-roles", "/api-keys"), Some(admin), "").await.status, 200);
    assert_eq!(api.call(1, "GET", &path("ta-roles", "/billing"), Some(admin), "").await.status, 200);
    for person in [member, viewer] {
        assert_eq!(api.call(0, "GET", &path("ta-roles", "/members"), Some(person), "").await.status, 200);
        api.call(0, "GET", &path("ta-roles", "/billing"), Some(person), "").await.assert_problem(
            403,
            "role",
            "Owner or Admin",
        );
        api.call(0, "GET", &path("ta-roles", "/api-keys"), Some(person), "").await.assert_problem(
            403,
            "role",
            "manage API keys",
        );
    }
    let members = api.call(0, "GET", &path("ta-roles", "/members"), Some(viewer), "").await.json();
    let roles: Vec<&str> =
        members["members"].as_array().expect("members").iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["Owner", "Admin", "Member", "Viewer"]);
    // Someone without a role sees no such organization; a platform reader (RBAC list organizations) reads.
    let stranger = h.service_account_token("ta-stranger", &[]);
    api.call(0, "GET", &path("ta-roles", ""), Some(&stranger), "").await.assert_problem(
        404,
        "unknown-organization",
        "ta-roles",
    );
    let platform = h.service_account_token(
        "ta-platform",
        &["{apiGroups: [atlantiplex.io], resources: [organizations], verbs: [get, list]}"],
    );
    assert_eq!(api.call(1, "GET", &path("ta-roles", "/billing"), Some(&platform), "").await.status, 200);
    api.call(1, "GET", &path("ta-roles", "/api-keys"), Some(&platform), "").await.assert_problem(
        403,
        "role",
        "manage API keys",
    );
    // The audit log of the organization only, in pages.
    let page = api.call(0, "GET", &path("ta-roles", "/audit?limit=1"), Some(admin), "").await.json();
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(1), "{page}");
    let cursor = page["nextCursor"].as_str().expect("more than one record").to_string();
    let next =
        api.call(0, "GET", &path("ta-roles", &format!("/audit?limit=1&cursor={cursor}")), Some(admin), "").await.json();
    assert_ne!(next["entries"][0]["id"], page["entries"][0]["id"]);
    api.call(0, "GET", &path("ta-roles", "/audit?cursor=nonsense"), Some(admin), "").await.assert_problem(
        400,
        "invalid-cursor",
        "nextCursor",
    );
}

#[tokio::test]
async fn a_declared_api_key_is_issued_into_a_secret_once_and_revoked_with_its_object() {
    let h = cluster();
    let api = Api::get();
    organization(&h, "ta-decl", Some("api-test-fast"), &["Owner"], "");
    h.apply_ok("apiVersion: atlantiplex.io/v1alpha1\nkind: ApiKey\nmetadata: {name: ta-decl-ci}\nspec: {organization: ta-decl, scopes: [read, usage:write]}\n");
    h.wait_ready("apikey", "ta-decl-ci");
    let encoded =
        h.kubectl_ok(&["get", "secret", "apikey-ta-decl-ci", "-n", "org-ta-decl", "-o", "jsonpath={.data.key}"]);
    use base64_decode::decode;
    let key = decode(encoded.trim());
    assert!(key.starts_with("atp_live_"), "{key}");
    assert_eq!(h.jsonpath(&["apikey", "ta-decl-ci"], "{.status.prefix}"), key[..13]);
    assert_eq!(h.jsonpath(&["apikey", "ta-decl-ci"], "{.status.secretName}"), "org-ta-decl/apikey-ta-decl-ci");
    assert_eq!(api.call(0, "GET", &path("ta-decl", ""), Some(&key), "").await.status, 200);
    // A re-apply (as GitOps does) keeps the same key.
    h.apply_ok("apiVersion: atlantiplex.io/v1alpha1\nkind: ApiKey\nmetadata: {name: ta-decl-ci}\nspec: {organization: ta-decl, scopes: [read]}\n");
    eventually("scopes follow the object", || async {
        api.call(1, "POST", &path("ta-decl", "/usage"), Some(&key), "[]").await.status == 403
    })
    .await;
    let again = decode(
        h.kubectl_ok(&["get", "secret", "apikey-ta-decl-ci", "-n", "org-ta-decl", "-o", "jsonpath={.data.key}"]).trim(),
    );
    assert_eq!(again, key, "the key is written once");
    // Through the API it cannot be revoked (the object owns it); deleting the object revokes it.
    let listed = api.call(0, "GET", &path("ta-decl", "/api-keys"), Some(&key), "").await;
    assert_eq!(listed.status, 403, "a read key does not list keys: {listed:?}");
    h.kubectl_ok(&["delete", "apikey", "ta-decl-ci", "--wait=true", "--timeout=60s"]);
    eventually("refused once its object is gone", || async {
        api.call(0, "GET", &path("ta-decl", ""), Some(&key), "").await.status == 401
    })
    .await;
    api.call(1, "GET", &path("ta-decl", ""), Some(&key), "").await.assert_problem(401, "key-revoked", "revoked");
    eventually("the Secret goes with it", || async {
        !h.kubectl(&["get", "secret", "apikey-ta-decl-ci", "-n", "org-ta-decl"]).status.success()
    })
    .await;
}

#[tokio::test]
async fn a_plan_without_api_access_is_refused_naming_the_upgrade() {
    let h = cluster();
    let api = Api::get();
    let tokens = organization(&h, "ta-free", None, &["Owner"], "");
    let refused = api.call(0, "GET", &path("ta-free", ""), Some(&tokens["Owner"]), "").await;
    refused.assert_problem(403, "plan-api-access", "upgrade to plan professional");
}

#[tokio::test]
async fn the_rate_limit_holds_across_both_replicas_and_every_served_call_is_metered() {
    let h = cluster();
    let api = Api::get();
    let tokens = organization(&h, "ta-rate", Some("api-test-slow"), &["Owner"], "");
    let created =
        api.call(0, "POST", &path("ta-rate", "/api-keys"), Some(&tokens["Owner"]), &create_key(&["read"])).await;
    // api-test-slow: 120 per minute (2/s), 10 at once. The key's creation was the first call.
    assert_eq!(created.status, 201, "{created:?}");
    let key = created.json()["key"].as_str().expect("key").to_string();
    let started = Instant::now();
    let mut tasks = Vec::new();
    // 3× the rate for 10 s, split between the replicas: 60 requests, one every 1/6 s.
    for i in 0..60u64 {
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(i * 1000 / 6)).await;
            Api::get().call((i % 2) as usize, "GET", &path("ta-rate", ""), Some(&key), "").await
        }));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.expect("request"));
    }
    let window = started.elapsed().as_secs_f64();
    let accepted = replies.iter().filter(|r| r.status == 200).count();
    let limited: Vec<_> = replies.iter().filter(|r| r.status == 429).collect();
    assert_eq!(accepted + limited.len(), 60, "only 200 and 429: {replies:?}");
    let most = 10.0 + 2.0 * window + 1.0;
    println!("rate limit: {accepted} of 60 accepted in {window:.1} s across 2 replicas (at most {most:.0})");
    assert!(
        (accepted as f64) <= most,
        "{accepted} accepted in {window:.1} s: more than burst + rate × time ({most:.0})"
    );
    assert!(accepted >= 10, "at least the burst passes: {accepted}");
    let ok = replies.iter().find(|r| r.status == 200).expect("one accepted");
    assert_eq!(ok.headers.get("ratelimit-limit").map(String::as_str), Some("10"));
    assert!(ok.headers.contains_key("ratelimit-remaining") && ok.headers.contains_key("ratelimit-reset"), "{ok:?}");
    let refused = limited.first().expect("one refused");
    refused.assert_problem(429, "rate-limit", "120 requests per minute");
    assert!(
        refused.headers.get("retry-after").and_then(|s| s.parse::<u64>().ok()).is_some_and(|s| s >= 1),
        "{refused:?}"
    );
    // Served calls (the create and the accepted reads) reach the API-calls meter; refused ones do not.
    let ledger = Ledger::connect(&api.database_url).await.expect("ledger");
    let period = calendar_month(jiff::Timestamp::now()).expect("period");
    let served = accepted as i64 + 1;
    eventually("served calls metered", || async {
        ledger.usage_totals("ta-rate", &period).await.expect("totals").get(&Meter::ApiCalls).copied() == Some(served)
    })
    .await;
    ledger.close().await;
}

#[tokio::test]
async fn the_ip_allow_list_is_applied_to_the_address_behind_a_trusted_proxy_only() {
    let h = cluster();
    let api = Api::get();
    let extra = "  security:\n    ipAllowList: [203.0.113.0/24]\n";
    let tokens = organization(&h, "ta-ip", Some("api-test-enterprise"), &["Owner"], extra);
    let owner = tokens["Owner"].as_str();
    let from = |address: &'static str| [("X-Forwarded-For", address)];
    // Replica A trusts 127.0.0.1 as a proxy: the address it forwards is the caller's.
    assert_eq!(api.call_with(0, "GET", &path("ta-ip", ""), Some(owner), "", &from("203.0.113.7")).await.status, 200);
    api.call_with(0, "GET", &path("ta-ip", ""), Some(owner), "", &from("203.0.113.7, 198.51.100.1"))
        .await
        .assert_problem(403, "ip-allow-list", "198.51.100.1 is not in");
    api.call(0, "GET", &path("ta-ip", ""), Some(owner), "").await.assert_problem(
        403,
        "ip-allow-list",
        "127.0.0.1 is not in",
    );
    // Replica B trusts no proxy: a header a client can set changes nothing.
    api.call_with(1, "GET", &path("ta-ip", ""), Some(owner), "", &from("203.0.113.7")).await.assert_problem(
        403,
        "ip-allow-list",
        "127.0.0.1 is not in",
    );
}

#[tokio::test]
async fn the_served_openapi_document_is_the_committed_one() {
    let api = Api::get();
    let served = api.call(0, "GET", "/v1/openapi.json", None, "").await;
    assert_eq!(served.status, 200, "{served:?}");
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/v1.json")).expect("file"),
    )
    .expect("JSON");
    assert_eq!(served.json(), committed);
}

/// Base64 of Secret data (kubectl prints it encoded), decoded without another dependency.
mod base64_decode {
    pub fn decode(text: &str) -> String {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut count = 0;
        let mut out = Vec::new();
        for c in text.bytes().filter(|c| *c != b'=') {
            let Some(v) = alphabet.iter().position(|a| *a == c) else { continue };
            bits = (bits << 6) | v as u32;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
                bits &= (1 << count) - 1;
            }
        }
        String::from_utf8(out).unwrap_or_default()
    }
}
