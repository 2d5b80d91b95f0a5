//! Web sign-in flags of `atlantiplex-operator api` (off without `--oidc-issuer`).

use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct SignInArgs {
    /// The OpenID Connect issuer people sign in at (https). Without it, web sign-in is off and only API
    /// keys and Kubernetes tokens are accepted.
    #[arg(long, env = "ATLANTIPLEX_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// This server's OAuth client at the issuer.
    #[arg(long, env = "ATLANTIPLEX_OIDC_CLIENT_ID", default_value = "atlantiplex-console")]
    pub oidc_client_id: String,
    /// File holding the client's secret (none: a public client, PKCE alone).
    #[arg(long, env = "ATLANTIPLEX_OIDC_CLIENT_SECRET_FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// PEM of a private CA that signed the issuer's certificate.
    #[arg(long, env = "ATLANTIPLEX_OIDC_CA_FILE")]
    pub oidc_ca_file: Option<PathBuf>,
    /// This server's public https URL, as browsers reach it: the callback is `<url>/auth/callback`.
    #[arg(long, env = "ATLANTIPLEX_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// `amr` values that count as a second factor (as the API server's authentication config).
    #[arg(long = "second-factor", env = "ATLANTIPLEX_SECOND_FACTORS", value_delimiter = ',',
          default_values_t = crate::identity::DEFAULT_SECOND_FACTORS.map(String::from))]
    pub second_factors: Vec<String>,
    /// A web session ends after this many minutes without a request (an organization's
    /// sessionTimeoutMinutes, capped by its plan's, tightens it on its pages).
    #[arg(long, env = "ATLANTIPLEX_SESSION_IDLE_MINUTES", default_value_t = 60)]
    pub session_idle_minutes: u32,
    /// A web session ends this many minutes after sign-in, however active.
    #[arg(long, env = "ATLANTIPLEX_SESSION_ABSOLUTE_MINUTES", default_value_t = 720)]
    pub session_absolute_minutes: u32,
    /// Ask the issuer for `offline_access`: its refresh token renews the ID token the console makes
    /// changes with, so changes work for the whole session (without it, once the ID token expires —
    /// an hour at most providers — the console asks to sign in again before a change). The client must
    /// be allowed the scope and the `refresh_token` grant.
    #[arg(long, env = "ATLANTIPLEX_OIDC_OFFLINE_ACCESS")]
    pub oidc_offline_access: bool,
    /// People in this group read every organization (platform admins); `oidc:<group>` names an IdP group.
    #[arg(long = "platform-admin-group", env = "ATLANTIPLEX_PLATFORM_ADMIN_GROUPS", value_delimiter = ',')]
    pub platform_admin_groups: Vec<String>,
}
