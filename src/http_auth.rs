//! Who may read the operator's plain-HTTP endpoints (`/metrics`, `/api/v1/audit`, `/log-level`):
//! a bearer token that the API server authenticates (TokenReview) and whose user RBAC allows the
//! request (SubjectAccessReview), as kube-rbac-proxy and controller-runtime's metrics filter
//! protect Kubernetes components' endpoints. Access is granted like any other, with a ClusterRole:
//! `nonResourceURLs: ["/metrics"], verbs: ["get"]`, the same for `/log-level` (`get`, `put`).
//!
//! The audit API is the exception: every authenticated user may `get` the non-resource URLs
//! `/api/*` (the built-in `system:discovery` ClusterRole, for API discovery), so authorizing
//! `/api/v1/audit` as a URL would let every tenant read every tenant's records. It is authorized
//! as `get` on the resource `auditrecords` of the API group `atlantiplex.io`, which exists only
//! for RBAC: `apiGroups: ["atlantiplex.io"], resources: ["auditrecords"], verbs: ["get"]`.
//!
//! Usage ingestion (`crate::usage_endpoint`, on its own HTTPS port) asks the same way for a resource in a
//! namespace: `create` on `usageevents.atlantiplex.io` in the namespace an event is for
//! ([`Authorizer::check_permission`]), so a RoleBinding in a tenant namespace decides who reports for it.
//!
//! Outcomes are cached briefly, so a Prometheus scrape every 30 s costs about one pair of reviews
//! per scrape interval instead of two API calls per request.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Client};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long an outcome is reused. A revoked token or a removed RoleBinding takes effect after
/// at most this long (kube-rbac-proxy keeps TokenReviews for 2 minutes).
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// Distinct (token, path, verb) outcomes kept; a flood of made-up tokens cannot grow memory.
pub const CACHE_CAPACITY: usize = 1024;
/// A review the API server does not answer in this time fails the request (503), well within
/// Prometheus' default 10 s scrape timeout.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// The audit API's URL, authorized as [`AUDIT_GROUP`]/[`AUDIT_RESOURCE`] instead.
pub const AUDIT_PATH: &str = "/api/v1/audit";
pub const AUDIT_GROUP: &str = "atlantiplex.io";
pub const AUDIT_RESOURCE: &str = "auditrecords";

/// What a request needs, in RBAC's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Permission {
    /// A non-resource URL and verb, e.g. `get` `/metrics`.
    NonResourceUrl { path: String, verb: String },
    /// A verb on a resource that exists only for RBAC's sake: cluster-wide (`namespace` None, the
    /// audit API), or in one namespace (usage reports: a RoleBinding there grants it).
    Resource { group: &'static str, resource: &'static str, verb: String, namespace: Option<String> },
}

impl Permission {
    /// What `verb` on `path` needs; None for other paths under /api or /apis, which no grant
    /// could protect (see the module documentation).
    pub fn for_request(path: &str, verb: &str) -> Option<Self> {
        if path == AUDIT_PATH {
            return Some(Permission::Resource {
                group: AUDIT_GROUP,
                resource: AUDIT_RESOURCE,
                verb: verb.into(),
                namespace: None,
            });
        }
        let discovery = ["/api", "/apis"].iter().any(|p| path == *p || path.starts_with(&format!("{p}/")));
        (!discovery).then(|| Permission::NonResourceUrl { path: path.into(), verb: verb.into() })
    }

    /// The ClusterRole rule that grants it.
    pub fn rule(&self) -> String {
        match self {
            Permission::NonResourceUrl { path, verb } => format!("nonResourceURLs [{path}] verbs [{verb}]"),
            Permission::Resource { group, resource, verb, .. } => {
                format!("apiGroups [{group}] resources [{resource}] verbs [{verb}]")
            }
        }
    }

    /// What the cache keys it by besides the token and verb: the path, or the resource and namespace.
    fn scope(&self) -> String {
        match self {
            Permission::NonResourceUrl { path, .. } => path.clone(),
            Permission::Resource { group, resource, namespace, .. } => {
                format!("resource:{group}/{resource}/{}", namespace.as_deref().unwrap_or(""))
            }
        }
    }

    fn verb(&self) -> &str {
        match self {
            Permission::NonResourceUrl { verb, .. } | Permission::Resource { verb, .. } => verb,
        }
    }
}

/// What the check decided for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Allowed {
        user: String,
        /// The user's groups, as the TokenReview gave them.
        groups: Vec<String>,
        /// When the person signed in at the identity provider (an OIDC token's `auth_time`, from
        /// the user's extra; see `identity`), for the session-age rule.
        authenticated_at: Option<i64>,
    },
    /// 401: no bearer token, or one the API server does not accept.
    Unauthenticated(String),
    /// 403: an authenticated user whom RBAC does not allow `verb` on `path`; `rule` grants it
    /// (empty: nothing can).
    Forbidden { user: String, path: String, verb: String, rule: String, reason: String },
    /// 503: the API server could not be asked. Never cached.
    Unavailable(String),
}

impl Outcome {
    /// The HTTP answer for anything but `Allowed`: the status and a body that says what to do.
    pub fn refusal(&self) -> Option<(StatusCode, String)> {
        match self {
            Outcome::Allowed { .. } => None,
            Outcome::Unauthenticated(why) => Some((StatusCode::UNAUTHORIZED, format!("Unauthorized: {why}\n"))),
            Outcome::Forbidden { user, path, verb, rule, reason } => {
                let reason = if reason.is_empty() { String::new() } else { format!(" ({reason})") };
                let fix = if rule.is_empty() {
                    "no RBAC rule can grant it".to_string()
                } else {
                    format!("grant it the ClusterRole rule {rule} through a ClusterRoleBinding")
                };
                Some((
                    StatusCode::FORBIDDEN,
                    format!("Forbidden: user {user:?} may not {verb} {path}{reason}: {fix}\n"),
                ))
            }
            Outcome::Unavailable(why) => Some((StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n"))),
        }
    }
}

/// Why a request carries no usable bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    NotText,
    NotBearer,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let problem = match self {
            TokenError::Missing => "no Authorization header",
            TokenError::NotText => "the Authorization header is not text",
            TokenError::NotBearer => "the Authorization header is not a bearer token",
        };
        write!(
            f,
            "{problem}: send `Authorization: Bearer <token>` with a token the Kubernetes API server accepts \
             (e.g. a ServiceAccount's, from `kubectl create token`)"
        )
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, TokenError> {
    let value = headers.get(header::AUTHORIZATION).ok_or(TokenError::Missing)?;
    let value = value.to_str().map_err(|_| TokenError::NotText)?;
    match value.trim().split_once(char::is_whitespace) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(TokenError::NotBearer),
    }
}

/// The RBAC verb of a request: its HTTP method in lower case, as the API server names verbs
/// on non-resource URLs (`get`, `put`, ...).
pub fn verb(method: &Method) -> String {
    method.as_str().to_ascii_lowercase()
}

/// The SubjectAccessReview asking whether `user` holds `permission`.
pub fn access_review(user: &UserInfo, permission: &Permission) -> SubjectAccessReview {
    let (non_resource_attributes, resource_attributes) = match permission {
        Permission::NonResourceUrl { path, verb } => {
            (Some(NonResourceAttributes { path: Some(path.clone()), verb: Some(verb.clone()) }), None)
        }
        Permission::Resource { group, resource, verb, namespace } => (
            None,
            Some(ResourceAttributes {
                group: Some(group.to_string()),
                resource: Some(resource.to_string()),
                verb: Some(verb.clone()),
                namespace: namespace.clone(),
                ..Default::default()
            }),
        ),
    };
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: user.username.clone(),
            groups: user.groups.clone(),
            uid: user.uid.clone(),
            extra: user.extra.clone(),
            non_resource_attributes,
            resource_attributes,
        },
        ..Default::default()
    }
}

/// The cache key: a SHA-256 of the token with the path and verb, so no token is kept in memory
/// and one token's outcome on one endpoint is never reused for another.
pub fn cache_key(token: &str, path: &str, verb: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [token, path, verb] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part.as_bytes());
    }
    let mut key = [0; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// Recent outcomes, bounded in time and size.
#[derive(Debug)]
pub struct Cache {
    ttl: Duration,
    capacity: usize,
    entries: HashMap<[u8; 32], (Instant, Outcome)>,
}

impl Cache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity, entries: HashMap::new() }
    }

    pub fn get(&mut self, key: &[u8; 32], now: Instant) -> Option<Outcome> {
        match self.entries.get(key) {
            Some((at, outcome)) if now.duration_since(*at) < self.ttl => Some(outcome.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `outcome` unless it is a failure to ask (the next request asks again). When full,
    /// expired entries go first, then the oldest.
    pub fn put(&mut self, key: [u8; 32], outcome: Outcome, now: Instant) {
        if matches!(outcome, Outcome::Unavailable(_)) || self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let ttl = self.ttl;
            self.entries.retain(|_, (at, _)| now.duration_since(*at) < ttl);
            if self.entries.len() >= self.capacity
                && let Some(oldest) = self.entries.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| *k)
            {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(key, (now, outcome));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Checks requests against the API server, with the cache in front.
pub struct Authorizer {
    client: Client,
    cache: Mutex<Cache>,
}

impl Authorizer {
    pub fn new(client: Client) -> Self {
        Self { client, cache: Mutex::new(Cache::new(CACHE_TTL, CACHE_CAPACITY)) }
    }

    /// May the sender of `headers` `verb` `path`?
    pub async fn check(&self, headers: &HeaderMap, path: &str, verb: &str) -> Outcome {
        let permission = Permission::for_request(path, verb);
        self.check_cached(headers, path, verb, permission.as_ref(), path).await
    }

    /// Does the sender of `headers` hold `permission` (e.g. `create` usageevents in one namespace)?
    /// `target` names what was asked for in a refusal.
    pub async fn check_permission(&self, headers: &HeaderMap, permission: &Permission, target: &str) -> Outcome {
        self.check_cached(headers, &permission.scope(), permission.verb(), Some(permission), target).await
    }

    /// Is the token of `headers` one the API server accepts? (TokenReview alone; `Allowed` names the user.)
    pub async fn authenticate(&self, headers: &HeaderMap) -> Outcome {
        self.check_cached(headers, "authenticate:", "", None, "").await
    }

    /// The token's user (name and groups) when the API server accepts it; otherwise the refusal.
    pub async fn authenticate_user(&self, headers: &HeaderMap) -> Result<crate::admission::policy::Requester, Outcome> {
        match self.authenticate(headers).await {
            Outcome::Allowed { user, groups, authenticated_at } => Ok(crate::admission::policy::Requester {
                username: user,
                groups,
                authenticated_at,
                now: jiff::Timestamp::now().as_second(),
                ..Default::default()
            }),
            other => Err(other),
        }
    }

    async fn check_cached(
        &self,
        headers: &HeaderMap,
        scope: &str,
        verb: &str,
        permission: Option<&Permission>,
        target: &str,
    ) -> Outcome {
        let token = match bearer_token(headers) {
            Ok(token) => token,
            Err(why) => return Outcome::Unauthenticated(why.to_string()),
        };
        let key = cache_key(token, scope, verb);
        if let Some(outcome) = self.with_cache(|cache| cache.get(&key, Instant::now())) {
            return outcome;
        }
        let review = self.review(token, target, verb, permission, scope == "authenticate:");
        let outcome = match tokio::time::timeout(REVIEW_TIMEOUT, review).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Unavailable(format!(
                "the Kubernetes API server did not answer the token and access review within {REVIEW_TIMEOUT:?}: retry"
            )),
        };
        self.with_cache(|cache| cache.put(key, outcome.clone(), Instant::now()));
        outcome
    }

    fn with_cache<T>(&self, f: impl FnOnce(&mut Cache) -> T) -> T {
        match self.cache.lock() {
            Ok(mut cache) => f(&mut cache),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Asks the API server, the only party that can tell: it signed (or, for OIDC, trusts the
    /// issuer of) the token and knows whether it was revoked (TokenReview), and it holds the RBAC
    /// rules (SubjectAccessReview). This is the "webhook" authentication and authorization of
    /// kubelets and kube-rbac-proxy; the operator needs `create` on both review resources.
    async fn review(
        &self,
        token: &str,
        path: &str,
        verb: &str,
        permission: Option<&Permission>,
        authenticate_only: bool,
    ) -> Outcome {
        let tokens: Api<TokenReview> = Api::all(self.client.clone());
        let request =
            TokenReview { spec: TokenReviewSpec { token: token.to_string(), audiences: None }, ..Default::default() };
        let status = match tokens.create(&PostParams::default(), &request).await {
            Ok(review) => review.status.unwrap_or_default(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot review a bearer token (TokenReview)");
                return Outcome::Unavailable(format!("cannot verify the token with the Kubernetes API server: {err}"));
            }
        };
        let user = match (status.authenticated, status.user) {
            (Some(true), Some(user)) => user,
            _ => {
                let why = status.error.filter(|e| !e.is_empty()).unwrap_or_else(|| "token not accepted".into());
                return Outcome::Unauthenticated(format!(
                    "the Kubernetes API server does not accept the token ({why})"
                ));
            }
        };
        let username = user.username.clone().unwrap_or_default();
        let groups = user.groups.clone().unwrap_or_default();
        let authenticated_at = crate::identity::auth_time(user.extra.as_ref());
        let forbidden = |rule: String, reason: String| Outcome::Forbidden {
            user: username.clone(),
            path: path.to_string(),
            verb: verb.to_string(),
            rule,
            reason,
        };
        if authenticate_only {
            return Outcome::Allowed { user: username, groups, authenticated_at };
        }
        let Some(permission) = permission else {
            return forbidden(String::new(), "every authenticated user may read URLs under /api and /apis".into());
        };
        let reviews: Api<SubjectAccessReview> = Api::all(self.client.clone());
        match reviews.create(&PostParams::default(), &access_review(&user, permission)).await {
            Ok(review) => {
                let status = review.status.unwrap_or_default();
                if status.allowed {
                    Outcome::Allowed { user: username, groups, authenticated_at }
                } else {
                    forbidden(permission.rule(), status.reason.unwrap_or_default())
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot authorize a request (SubjectAccessReview)");
                Outcome::Unavailable(format!("cannot check access with the Kubernetes API server: {err}"))
            }
        }
    }
}

/// `router` with every route behind the check; unknown paths stay plain 404s.
pub fn protect(router: Router, authorizer: Arc<Authorizer>) -> Router {
    router.route_layer(axum::middleware::from_fn_with_state(authorizer, require))
}

async fn require(State(authorizer): State<Arc<Authorizer>>, request: Request, next: Next) -> Response {
    // The path as sent, as the API server authorizes non-resource URLs; the routes are literal
    // paths, so a request that reached one carries exactly that path.
    let path = request.uri().path().to_string();
    let verb = verb(request.method());
    let outcome = authorizer.check(request.headers(), &path, &verb).await;
    match outcome.refusal() {
        None => next.run(request).await,
        Some((status, body)) => {
            tracing::debug!(%path, %verb, status = status.as_u16(), "metrics-port request refused");
            if status == StatusCode::UNAUTHORIZED {
                (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
            } else {
                (status, body).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn bearer_tokens_are_read_and_anything_else_is_refused_with_the_fix() {
        assert_eq!(bearer_token(&headers("Bearer abc.def")), Ok("abc.def"));
        assert_eq!(bearer_token(&headers("bearer   abc ")), Ok("abc"));
        let missing = bearer_token(&HeaderMap::new()).unwrap_err().to_string();
        assert!(missing.starts_with("no Authorization header: send") && missing.contains("kubectl create token"));
        for wrong in ["Basic dXNlcjpwdw==", "Bearer", "Bearer   ", "abc"] {
            assert_eq!(bearer_token(&headers(wrong)), Err(TokenError::NotBearer), "{wrong}");
        }
    }

    #[test]
    fn the_verb_is_the_lower_case_method() {
        assert_eq!(verb(&Method::GET), "get");
        assert_eq!(verb(&Method::PUT), "put");
    }

    #[test]
    fn urls_are_authorized_as_non_resource_urls_but_the_audit_api_as_a_resource() {
        assert_eq!(
            Permission::for_request("/log-level", "put"),
            Some(Permission::NonResourceUrl { path: "/log-level".into(), verb: "put".into() })
        );
        let audit = Permission::for_request("/api/v1/audit", "get").unwrap();
        assert_eq!(
            audit,
            Permission::Resource {
                group: "atlantiplex.io",
                resource: "auditrecords",
                verb: "get".into(),
                namespace: None
            }
        );
        assert_eq!(audit.rule(), "apiGroups [atlantiplex.io] resources [auditrecords] verbs [get]");
        assert_eq!(
            Permission::for_request("/metrics", "get").unwrap().rule(),
            "nonResourceURLs [/metrics] verbs [get]"
        );
        // system:discovery lets everyone get /api/* and /apis/*: no URL there can be protected.
        for path in ["/api", "/api/v1/other", "/apis", "/apis/x"] {
            assert_eq!(Permission::for_request(path, "get"), None, "{path}");
        }
        assert!(Permission::for_request("/apiary", "get").is_some());
    }

    #[test]
    fn the_access_review_names_the_user_and_what_it_asks_for() {
        let user = UserInfo {
            username: Some("system:serviceaccount:monitoring:prometheus".into()),
            groups: Some(vec!["system:serviceaccounts".into()]),
            uid: Some("1234".into()),
            extra: Some([("scope".to_string(), vec!["a".to_string()])].into()),
        };
        let metrics = Permission::for_request("/metrics", "get").unwrap();
        let json = serde_json::to_value(access_review(&user, &metrics)).unwrap();
        assert_eq!(
            json["spec"],
            serde_json::json!({
                "user": "system:serviceaccount:monitoring:prometheus",
                "groups": ["system:serviceaccounts"],
                "uid": "1234",
                "extra": {"scope": ["a"]},
                "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
            })
        );
        let audit = Permission::for_request("/api/v1/audit", "get").unwrap();
        let json = serde_json::to_value(access_review(&user, &audit)).unwrap();
        assert_eq!(
            json["spec"]["resourceAttributes"],
            serde_json::json!({"group": "atlantiplex.io", "resource": "auditrecords", "verb": "get"})
        );
        assert!(json["spec"].get("nonResourceAttributes").is_none());
        let usage = Permission::Resource {
            group: "atlantiplex.io",
            resource: "usageevents",
            verb: "create".into(),
            namespace: Some("org-acme".into()),
        };
        let json = serde_json::to_value(access_review(&user, &usage)).unwrap();
        assert_eq!(
            json["spec"]["resourceAttributes"],
            serde_json::json!({"group": "atlantiplex.io", "resource": "usageevents", "verb": "create", "namespace": "org-acme"})
        );
        let other = Permission::Resource {
            group: "atlantiplex.io",
            resource: "usageevents",
            verb: "create".into(),
            namespace: Some("org-other".into()),
        };
        assert_ne!(usage.scope(), other.scope(), "one namespace's outcome is never reused for another");
    }

    #[test]
    fn cache_keys_differ_by_token_path_and_verb_and_do_not_collide_on_concatenation() {
        let base = cache_key("token", "/metrics", "get");
        assert_eq!(base, cache_key("token", "/metrics", "get"));
        assert_ne!(base, cache_key("token2", "/metrics", "get"));
        assert_ne!(base, cache_key("token", "/log-level", "get"));
        assert_ne!(base, cache_key("token", "/metrics", "put"));
        assert_ne!(cache_key("ab", "c", "get"), cache_key("a", "bc", "get"));
    }

    #[test]
    fn outcomes_are_reused_until_they_expire_and_failures_to_ask_never() {
        let mut cache = Cache::new(Duration::from_secs(30), 10);
        let now = Instant::now();
        let key = cache_key("t", "/metrics", "get");
        cache.put(key, Outcome::Allowed { user: "u".into(), groups: vec![], authenticated_at: None }, now);
        assert_eq!(
            cache.get(&key, now + Duration::from_secs(29)),
            Some(Outcome::Allowed { user: "u".into(), groups: vec![], authenticated_at: None })
        );
        assert_eq!(cache.get(&key, now + Duration::from_secs(30)), None);
        assert!(cache.is_empty(), "an expired entry is dropped when found");
        let other = cache_key("t", "/api/v1/audit", "get");
        cache.put(other, Outcome::Unavailable("down".into()), now);
        assert_eq!(cache.get(&other, now), None);
        let denied = Outcome::Unauthenticated("bad token".into());
        cache.put(other, denied.clone(), now);
        assert_eq!(cache.get(&other, now), Some(denied), "refusals are cached too: a bad token costs one review");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_the_oldest() {
        let mut cache = Cache::new(Duration::from_secs(30), 3);
        let start = Instant::now();
        let allowed = Outcome::Allowed { user: "u".into(), groups: vec![], authenticated_at: None };
        for (i, token) in ["a", "b", "c"].iter().enumerate() {
            cache.put(cache_key(token, "/metrics", "get"), allowed.clone(), start + Duration::from_secs(i as u64));
        }
        cache.put(cache_key("d", "/metrics", "get"), allowed.clone(), start + Duration::from_secs(5));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get(&cache_key("a", "/metrics", "get"), start + Duration::from_secs(5)), None, "oldest out");
        assert!(cache.get(&cache_key("b", "/metrics", "get"), start + Duration::from_secs(5)).is_some());
        // Later, everything but d has expired: one insert clears them all.
        let later = start + Duration::from_secs(33);
        cache.put(cache_key("e", "/metrics", "get"), allowed.clone(), later);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&cache_key("d", "/metrics", "get"), later).is_some());
    }

    #[test]
    fn refusals_say_what_is_missing() {
        let (status, body) = Outcome::Forbidden {
            user: "system:serviceaccount:default:reader".into(),
            path: "/api/v1/audit".into(),
            verb: "get".into(),
            rule: "apiGroups [atlantiplex.io] resources [auditrecords] verbs [get]".into(),
            reason: String::new(),
        }
        .refusal()
        .unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            body,
            "Forbidden: user \"system:serviceaccount:default:reader\" may not get /api/v1/audit: grant it the \
             ClusterRole rule apiGroups [atlantiplex.io] resources [auditrecords] verbs [get] through a ClusterRoleBinding\n"
        );
        let (status, body) = Outcome::Unauthenticated("no Authorization header".into()).refusal().unwrap();
        assert_eq!((status, body.as_str()), (StatusCode::UNAUTHORIZED, "Unauthorized: no Authorization header\n"));
        assert_eq!(Outcome::Allowed { user: "u".into(), groups: vec![], authenticated_at: None }.refusal(), None);
    }
}
