//! One OpenID Connect provider, discovered once: sign-in URLs and the code exchange.

use super::SignedIn;
use super::claims::read_verified;
use crate::identity::SecondFactors;
use openidconnect::core::{CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthenticationContextClass, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    Scope, TokenResponse, reqwest,
};

/// The `acr_values` asked for when a second factor is required (a login app may honour it).
pub const MFA_ACR: &str = "urn:atlantiplex:mfa";

type Discovered =
    CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

#[derive(Clone, Debug)]
pub struct ProviderSettings {
    /// The issuer URL, exactly as in the tokens' `iss`.
    pub issuer: String,
    pub client_id: String,
    /// None for a public client (kubectl's): PKCE alone protects the code.
    pub client_secret: Option<String>,
    /// PEM of a private CA that signed the provider's certificate.
    pub ca_pem: Option<Vec<u8>>,
    /// Where the provider sends the browser back with the code.
    pub redirect_url: String,
    pub second_factors: SecondFactors,
    /// Ask for `offline_access`, so a refresh token renews the ID token the console acts with.
    pub offline_access: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// The provider could not be reached or answered wrongly: retry later.
    #[error("the identity provider {issuer} is unavailable: {why}")]
    Unavailable { issuer: String, why: String },
    /// The provider or the token refused this sign-in: start again.
    #[error("{0}")]
    Refused(String),
}

#[derive(Clone, Copy, Debug, Default)]
pub struct LoginOptions {
    /// Ask the person to sign in again even with a live session at the provider (`prompt=login`).
    pub force_login: bool,
    /// Ask for a second factor (`acr_values`), which also forces a new login.
    pub second_factor: bool,
}

/// A sign-in started: send the browser to `url`; keep the rest for the callback.
#[derive(Clone, Debug)]
pub struct Begun {
    pub url: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

pub struct Provider {
    client: Discovered,
    http: reqwest::Client,
    factors: SecondFactors,
    issuer: String,
    offline_access: bool,
}

impl Provider {
    /// Reads the provider's discovery document (and so checks that it is reachable and trusted).
    pub async fn discover(settings: ProviderSettings) -> Result<Self, SignInError> {
        let unavailable = |why: String| SignInError::Unavailable { issuer: settings.issuer.clone(), why };
        // No redirects: a token endpoint that redirects must not take the code elsewhere.
        let mut http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &settings.ca_pem {
            let ca = reqwest::Certificate::from_pem(pem).map_err(|e| unavailable(format!("--oidc-ca-file: {e}")))?;
            http = http.add_root_certificate(ca);
        }
        let http = http.build().map_err(|e| unavailable(e.to_string()))?;
        let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| unavailable(format!("issuer URL: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| unavailable(format!("discovery failed: {e}")))?;
        let redirect = RedirectUrl::new(settings.redirect_url.clone())
            .map_err(|e| unavailable(format!("redirect URL {}: {e}", settings.redirect_url)))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        Ok(Self {
            client,
            http,
            factors: settings.second_factors,
            issuer: settings.issuer,
            offline_access: settings.offline_access,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The provider's sign-in URL, with a fresh state, nonce and PKCE challenge.
    pub fn begin(&self, options: LoginOptions) -> Begun {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = self
            .client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("groups".into()))
            .set_pkce_challenge(challenge);
        if self.offline_access {
            request = request.add_scope(Scope::new("offline_access".into()));
        }
        if options.force_login || options.second_factor {
            request = request.add_prompt(CoreAuthPrompt::Login);
        }
        if options.second_factor {
            request = request.add_auth_context_value(AuthenticationContextClass::new(MFA_ACR.into()));
        }
        let (url, state, nonce) = request.url();
        Begun {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token against the nonce.
    pub async fn finish(&self, code: &str, pkce_verifier: &str, nonce: &str) -> Result<SignedIn, SignInError> {
        let request = self.client.exchange_code(AuthorizationCode::new(code.into())).map_err(|e| {
            SignInError::Unavailable { issuer: self.issuer.clone(), why: format!("no token endpoint: {e}") }
        })?;
        let response = request
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.into()))
            .request_async(&self.http)
            .await
            .map_err(|e| SignInError::Refused(format!("the identity provider refused the code: {e}")))?;
        let id_token =
            response.id_token().ok_or_else(|| SignInError::Refused("the identity provider sent no ID token".into()))?;
        id_token
            .claims(&self.client.id_token_verifier(), &Nonce::new(nonce.into()))
            .map_err(|e| SignInError::Refused(format!("the ID token was refused: {e}")))?;
        let mut signed_in = read_verified(&id_token.to_string(), &self.factors).map_err(SignInError::Refused)?;
        signed_in.refresh_token = response.refresh_token().map(|t| t.secret().clone());
        Ok(signed_in)
    }

    /// A new ID token for a session, by its refresh token. The new token is verified like the first
    /// (its nonce, if any, was checked at sign-in); the provider may rotate the refresh token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<SignedIn, SignInError> {
        let token = RefreshToken::new(refresh_token.into());
        let request = self.client.exchange_refresh_token(&token).map_err(|e| SignInError::Unavailable {
            issuer: self.issuer.clone(),
            why: format!("no token endpoint: {e}"),
        })?;
        let response = request
            .request_async(&self.http)
            .await
            .map_err(|e| SignInError::Refused(format!("the identity provider refused to renew the sign-in: {e}")))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SignInError::Refused("the identity provider renewed no ID token".into()))?;
        id_token
            .claims(&self.client.id_token_verifier(), |_: Option<&Nonce>| Ok(()))
            .map_err(|e| SignInError::Refused(format!("the renewed ID token was refused: {e}")))?;
        let mut signed_in = read_verified(&id_token.to_string(), &self.factors).map_err(SignInError::Refused)?;
        signed_in.refresh_token =
            Some(response.refresh_token().map_or_else(|| refresh_token.to_string(), |t| t.secret().clone()));
        Ok(signed_in)
    }
}
