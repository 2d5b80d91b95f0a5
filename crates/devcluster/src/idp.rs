//! Playing the identity provider's login and consent app through Hydra's admin API, as the SSO
//! tests and the development login page do: the person's email, groups and authentication methods
//! (`amr`: `["pwd"]`, or `["pwd", "otp"]` for a second factor) are decided by the caller, and Hydra
//! issues real, signed tokens for them.

use crate::IdentityInfo;
use anyhow::{Context, Result, bail};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Method, StatusCode, Url};
use std::collections::BTreeMap;

/// Who signs in, and how.
#[derive(Clone, Debug)]
pub struct Person<'a> {
    pub email: &'a str,
    pub groups: &'a [&'a str],
    /// RFC 8176 method references: `pwd` alone, or with `otp` for a second factor.
    pub amr: &'a [&'a str],
}

impl<'a> Person<'a> {
    pub fn password_only(email: &'a str, groups: &'a [&'a str]) -> Self {
        Self { email, groups, amr: &["pwd"] }
    }
    pub fn with_second_factor(email: &'a str, groups: &'a [&'a str]) -> Self {
        Self { email, groups, amr: &["pwd", "otp"] }
    }
}

/// Hydra's public and admin APIs, trusting the plane's CA.
pub struct Idp {
    pub info: IdentityInfo,
    http: Client,
}

impl Idp {
    pub fn new(info: &IdentityInfo) -> Result<Self> {
        let ca = std::fs::read(&info.ca_file).with_context(|| format!("reading {}", info.ca_file.display()))?;
        let http = Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca)?)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { info: info.clone(), http })
    }

    /// Creates (or replaces) an OAuth client, e.g. `{"client_id": "kubectl", "redirect_uris": [...],
    /// "token_endpoint_auth_method": "none", ...}`.
    pub async fn ensure_client(&self, client: serde_json::Value) -> Result<()> {
        let id = client["client_id"].as_str().context("client_id is required")?.to_string();
        let body = serde_json::to_vec(&client)?;
        let created = self.admin(Method::POST, "/admin/clients", Some(body.clone())).await?;
        if created.0 == StatusCode::CONFLICT {
            let replaced = self.admin(Method::PUT, &format!("/admin/clients/{id}"), Some(body)).await?;
            if !replaced.0.is_success() {
                bail!("replacing OAuth client {id}: {} {}", replaced.0, replaced.1);
            }
        } else if !created.0.is_success() {
            bail!("creating OAuth client {id}: {} {}", created.0, created.1);
        }
        Ok(())
    }

    /// Sets how long the client's ID tokens live (e.g. `"1s"`, for expiry tests).
    pub async fn set_id_token_lifespan(&self, client_id: &str, lifespan: &str) -> Result<()> {
        let body = serde_json::json!({ "authorization_code_grant_id_token_lifespan": lifespan });
        let (status, text) = self
            .admin(Method::PUT, &format!("/admin/clients/{client_id}/lifespans"), Some(serde_json::to_vec(&body)?))
            .await?;
        if !status.is_success() {
            bail!("setting the lifespans of {client_id}: {status} {text}");
        }
        Ok(())
    }

    /// Follows a sign-in URL through Hydra, accepting the login (as `person`) and the consent,
    /// until Hydra sends the browser back to the client; returns that URL (code and state, or an
    /// error). Cookies are kept between the hops, as a browser would.
    pub async fn sign_in(&self, auth_url: &str, person: &Person<'_>) -> Result<String> {
        let mut cookies: BTreeMap<String, String> = BTreeMap::new();
        let mut next = auth_url.to_string();
        for _ in 0..12 {
            let url = Url::parse(&next)?;
            let query: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
            if let Some(challenge) = query.get("login_challenge") {
                next = self.accept_login(challenge, person).await?;
                continue;
            }
            if let Some(challenge) = query.get("consent_challenge") {
                next = self.accept_consent(challenge, person).await?;
                continue;
            }
            if !next.starts_with(&self.info.issuer) {
                return Ok(next);
            }
            let header = cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            let response = self.http.get(url).header(COOKIE, header).send().await?;
            for value in response.headers().get_all(SET_COOKIE) {
                if let Some((pair, _)) = value.to_str().unwrap_or_default().split_once(';')
                    && let Some((name, value)) = pair.split_once('=')
                {
                    cookies.insert(name.trim().to_string(), value.to_string());
                }
            }
            let status = response.status();
            let Some(location) = response.headers().get(LOCATION).and_then(|l| l.to_str().ok()).map(String::from)
            else {
                bail!("hydra answered {status} without a redirect: {}", response.text().await.unwrap_or_default());
            };
            next = Url::parse(&next)?.join(&location)?.to_string();
        }
        bail!("sign-in did not come back to the client after 12 redirects (last: {next})")
    }

    /// An ID token for a public client (kubectl's) whose redirect URI nobody serves: the code is
    /// taken from the redirect and exchanged directly.
    pub async fn id_token(&self, client_id: &str, redirect_uri: &str, person: &Person<'_>) -> Result<String> {
        let mut auth = Url::parse(&format!("{}oauth2/auth", self.info.issuer))?;
        auth.query_pairs_mut()
            .append_pair("client_id", client_id)
            .append_pair("response_type", "code")
            .append_pair("scope", "openid email groups")
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", "devcluster-state-0123456789")
            .append_pair("prompt", "login");
        let back = Url::parse(&self.sign_in(auth.as_str(), person).await?)?;
        let query: BTreeMap<String, String> = back.query_pairs().into_owned().collect();
        let code = query.get("code").with_context(|| format!("no code in {back}"))?;
        let response = self
            .http
            .post(format!("{}oauth2/token", self.info.issuer))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect_uri),
                ("client_id", client_id),
            ])
            .send()
            .await?;
        let status = response.status();
        let body: serde_json::Value = serde_json::from_str(&response.text().await?)?;
        body["id_token"].as_str().map(String::from).with_context(|| format!("token endpoint answered {status}: {body}"))
    }

    /// Hydra's login request for a challenge (`oidc_context.acr_values` says whether MFA was asked for).
    pub async fn login_request(&self, challenge: &str) -> Result<serde_json::Value> {
        self.flow_request("login", challenge).await
    }

    /// Accepts a login as `person`; returns where the browser goes next.
    pub async fn accept_login(&self, challenge: &str, person: &Person<'_>) -> Result<String> {
        let second = person.amr.iter().any(|m| *m != "pwd");
        let body = serde_json::json!({
            "subject": person.email,
            "amr": person.amr,
            "acr": if second { "urn:atlantiplex:mfa" } else { "urn:atlantiplex:pwd" },
            "remember": false,
        });
        let path = format!("/admin/oauth2/auth/requests/login/accept?login_challenge={challenge}");
        self.redirect_to(Method::PUT, &path, body).await
    }

    /// Accepts a consent, granting what was asked and putting the person's email and groups in the ID token.
    pub async fn accept_consent(&self, challenge: &str, person: &Person<'_>) -> Result<String> {
        let request = self.consent_request(challenge).await?;
        self.accept_consent_request(challenge, &request, person).await
    }

    /// Like [`Idp::accept_consent`] for a consent request already read (its `subject` names who).
    pub async fn accept_consent_request(
        &self,
        challenge: &str,
        request: &serde_json::Value,
        person: &Person<'_>,
    ) -> Result<String> {
        let body = serde_json::json!({
            "grant_scope": request["requested_scope"],
            "grant_access_token_audience": request["requested_access_token_audience"],
            "remember": false,
            "session": { "id_token": { "email": person.email, "email_verified": true, "groups": person.groups } },
        });
        let path = format!("/admin/oauth2/auth/requests/consent/accept?consent_challenge={challenge}");
        self.redirect_to(Method::PUT, &path, body).await
    }

    /// Hydra's consent request for a challenge.
    pub async fn consent_request(&self, challenge: &str) -> Result<serde_json::Value> {
        self.flow_request("consent", challenge).await
    }

    /// The login or consent request behind a challenge.
    async fn flow_request(&self, flow: &str, challenge: &str) -> Result<serde_json::Value> {
        let path = format!("/admin/oauth2/auth/requests/{flow}?{flow}_challenge={challenge}");
        let (status, text) = self.admin(Method::GET, &path, None).await?;
        if !status.is_success() {
            bail!("reading the {flow} request: {status} {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }

    async fn redirect_to(&self, method: Method, path: &str, body: serde_json::Value) -> Result<String> {
        let (status, text) = self.admin(method, path, Some(serde_json::to_vec(&body)?)).await?;
        if !status.is_success() {
            bail!("hydra admin {path}: {status} {text}");
        }
        let answer: serde_json::Value = serde_json::from_str(&text)?;
        answer["redirect_to"].as_str().map(String::from).with_context(|| format!("no redirect_to in {answer}"))
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<(StatusCode, String)> {
        let mut request = self.http.request(method, format!("{}{path}", self.info.admin_url));
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let response = request.send().await?;
        Ok((response.status(), response.text().await?))
    }
}
