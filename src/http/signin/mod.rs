//! Web sign-in for the tenant API's browser routes and the console: OpenID Connect authorization
//! code with PKCE at the organization's identity provider, then a server-side session in the
//! ledger behind an HttpOnly, Secure, SameSite=Lax cookie. Every change made with a session must
//! carry its CSRF token (`X-CSRF-Token`, or the `csrf` form field). Sessions end after
//! `--session-idle-minutes` without a request (tighter on the pages of an organization whose
//! timeout is shorter) and `--session-absolute-minutes` after sign-in, and at logout.
//!
//! The person is then seen exactly as kubectl would see them (`identity::kubernetes_groups`), so
//! the one role table decides, MFA twins included.

mod cookie;
pub mod routes;
pub mod sessions;
pub mod settings;

pub use sessions::LiveSession;
pub use settings::SignInArgs;

use crate::identity::{SecondFactors, SessionLimits};
use crate::oidc::{Provider, ProviderSettings, SignInError};
use tokio::sync::OnceCell;

/// The session cookie. `__Host-`: browsers keep it only if Secure, for this host, on path `/`.
pub const SESSION_COOKIE: &str = "__Host-atlantiplex-session";
/// A session's last request is written at most this often (idle limits are minutes).
pub const TOUCH_EVERY: jiff::SignedDuration = jiff::SignedDuration::from_secs(15);

/// Web sign-in, when configured.
pub struct SignIn {
    settings: ProviderSettings,
    /// Discovered on first use, so the API starts while the provider is still coming up.
    provider: OnceCell<Provider>,
    pub limits: SessionLimits,
    pub platform_admin_groups: Vec<String>,
}

impl SignIn {
    /// From the flags; `None` when `--oidc-issuer` is not set.
    pub fn from_args(args: &SignInArgs, bind: std::net::SocketAddr) -> anyhow::Result<Option<Self>> {
        let Some(issuer) = args.oidc_issuer.clone() else { return Ok(None) };
        let read = |path: &std::path::Path, flag: &str| {
            std::fs::read(path).map_err(|e| anyhow::anyhow!("{flag} {}: {e}", path.display()))
        };
        let client_secret = match &args.oidc_client_secret_file {
            Some(path) => Some(String::from_utf8(read(path, "--oidc-client-secret-file")?)?.trim().to_string()),
            None => None,
        };
        let ca_pem = args.oidc_ca_file.as_deref().map(|p| read(p, "--oidc-ca-file")).transpose()?;
        let public = args.public_url.clone().unwrap_or_else(|| format!("https://{bind}"));
        let settings = ProviderSettings {
            issuer,
            client_id: args.oidc_client_id.clone(),
            client_secret,
            ca_pem,
            redirect_url: format!("{}/auth/callback", public.trim_end_matches('/')),
            second_factors: SecondFactors::new(args.second_factors.iter().cloned()),
            offline_access: args.oidc_offline_access,
        };
        let limits = SessionLimits {
            idle_seconds: i64::from(args.session_idle_minutes.max(1)) * 60,
            absolute_seconds: i64::from(args.session_absolute_minutes.max(1)) * 60,
        };
        Ok(Some(Self {
            settings,
            provider: OnceCell::new(),
            limits,
            platform_admin_groups: args.platform_admin_groups.clone(),
        }))
    }

    /// This server's public URL (`--public-url`), as browsers reach it.
    pub fn public_url(&self) -> &str {
        self.settings.redirect_url.trim_end_matches("/auth/callback")
    }

    pub async fn provider(&self) -> Result<&Provider, SignInError> {
        self.provider.get_or_try_init(|| Provider::discover(self.settings.clone())).await
    }
}

/// How often sessions past the absolute limit are removed (expired ones are also removed when presented).
const CLEANUP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Removes sessions older than the absolute limit and sign-ins never finished, so abandoned ones do
/// not pile up in the ledger.
pub async fn remove_old_sessions(ledger: crate::ledger::Ledger, limits: SessionLimits) {
    loop {
        if let Err(err) = ledger.delete_stale_web_logins().await {
            tracing::warn!(%err, "cannot remove unfinished sign-ins");
        }
        let before = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(limits.absolute_seconds);
        match ledger.delete_web_sessions_created_before(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "removed web sessions past their absolute limit"),
            Err(err) => tracing::warn!(%err, "cannot remove old web sessions"),
        }
        tokio::time::sleep(CLEANUP_EVERY).await;
    }
}

/// 32 random bytes, base64url: session ids, CSRF tokens.
pub fn random_token() -> String {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 32];
    // The system RNG fails only on a broken OS; a session must not start without it.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        bytes = [0u8; 32];
        tracing::error!("the system random number generator failed");
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the ledger keys a session by: the SHA-256 of the cookie's id (hex).
pub fn session_hash(id: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
