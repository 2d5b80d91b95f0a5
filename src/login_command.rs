//! `atlantiplex-operator login`: signs a person in at the OpenID Connect provider (authorization code
//! with PKCE, the browser sent back to a loopback address, RFC 8252) and prints a kubectl
//! `ExecCredential` with the ID token. Used as a kubectl credential plugin (docs/sso.md), it is run
//! by kubectl whenever the cached token is about to expire.

use crate::identity::SecondFactors;
use crate::oidc::{LoginOptions, Provider, ProviderSettings};
use anyhow::{Context as _, bail};
use axum::extract::Query;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the person has to finish signing in.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(300);
/// A cached token is reused while it has at least this long left.
const REUSE_MARGIN_SECONDS: i64 = 60;

#[derive(clap::Args, Debug)]
pub struct LoginArgs {
    /// The issuer URL (https).
    #[arg(long, env = "ATLANTIPLEX_OIDC_ISSUER")]
    pub issuer: String,
    /// kubectl's OAuth client at the issuer (a public client: PKCE, no secret).
    #[arg(long, default_value = "kubectl")]
    pub client_id: String,
    /// PEM of a private CA that signed the issuer's certificate.
    #[arg(long, env = "ATLANTIPLEX_OIDC_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Where the browser comes back: register http://<listen>/callback as the client's redirect URI.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Ask for a second factor (organizations with mfaRequired) and refuse a login without one.
    #[arg(long)]
    pub second_factor: bool,
    /// Sign in again even if a cached token is still valid (e.g. after a session-expired denial).
    #[arg(long)]
    pub force: bool,
    /// Print the sign-in URL only; do not try to open a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Where tokens are cached (default: $XDG_CACHE_HOME/atlantiplex/login or ~/.cache/atlantiplex/login).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// `amr` values that count as a second factor.
    #[arg(long = "accept-second-factor", value_delimiter = ',', default_values_t = crate::identity::DEFAULT_SECOND_FACTORS.map(String::from))]
    pub accepted_second_factors: Vec<String>,
}

pub async fn run(args: LoginArgs) -> anyhow::Result<()> {
    let cache = cache_file(&args)?;
    if !args.force
        && let Some(cached) = reusable(&cache)
    {
        println!("{cached}");
        return Ok(());
    }
    let listener = tokio::net::TcpListener::bind(args.listen).await.with_context(|| {
        format!(
            "--listen {} is in use: finish or stop the other sign-in, or pick another port registered at the provider",
            args.listen
        )
    })?;
    let ca_pem = match &args.ca_file {
        Some(path) => Some(std::fs::read(path).with_context(|| format!("--ca-file {}", path.display()))?),
        None => None,
    };
    let provider = Provider::discover(ProviderSettings {
        issuer: args.issuer.clone(),
        client_id: args.client_id.clone(),
        client_secret: None,
        ca_pem,
        redirect_url: format!("http://{}/callback", args.listen),
        second_factors: SecondFactors::new(args.accepted_second_factors.clone()),
        offline_access: false,
    })
    .await?;
    let begun = provider.begin(LoginOptions { force_login: true, second_factor: args.second_factor });
    eprintln!("Sign in at:\n  {}", begun.url);
    if !args.no_browser {
        // Best effort: without a desktop the URL above is the way.
        let _ = std::process::Command::new("xdg-open")
            .arg(&begun.url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
    let query = tokio::time::timeout(SIGN_IN_TIMEOUT, callback(listener))
        .await
        .context("no sign-in within 5 minutes: run the command again")??;
    if let Some(error) = query.get("error") {
        bail!(
            "the identity provider refused the sign-in: {error} {}",
            query.get("error_description").cloned().unwrap_or_default()
        );
    }
    if query.get("state") != Some(&begun.state) {
        bail!("the sign-in came back with another state (a stale or forged redirect): run the command again");
    }
    let code = query.get("code").context("the identity provider sent no code")?;
    let person = provider.finish(code, &begun.pkce_verifier, &begun.nonce).await?;
    if args.second_factor && !person.second_factor {
        bail!(
            "signed in as {} without a second factor (amr {:?}): sign in again and use one",
            person.email,
            person.amr
        );
    }
    let expires = jiff::Timestamp::from_second(person.expires_at).context("the token's expiry is out of range")?;
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": { "token": person.id_token, "expirationTimestamp": expires.to_string() },
    })
    .to_string();
    if let Some(parent) = cache.parent() {
        std::fs::create_dir_all(parent)?;
    }
    write_private(&cache, credential.as_bytes())
        .with_context(|| format!("caching the token in {}", cache.display()))?;
    eprintln!("Signed in as {}{}", person.email, if person.second_factor { " (with a second factor)" } else { "" });
    println!("{credential}");
    Ok(())
}

/// Serves the loopback redirect once and returns its query.
async fn callback(listener: tokio::net::TcpListener) -> anyhow::Result<HashMap<String, String>> {
    let (tx, rx) = tokio::sync::oneshot::channel::<HashMap<String, String>>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(move |Query(query): Query<HashMap<String, String>>| {
            let tx = tx.clone();
            async move {
                if let Some(tx) = tx.lock().ok().and_then(|mut slot| slot.take()) {
                    let _ = tx.send(query);
                }
                axum::response::Html(
                    "<!doctype html><p>Signed in. You can close this tab and return to the terminal.</p>",
                )
            }
        }),
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await;
    });
    let query = rx.await.context("the sign-in page closed before the provider sent the browser back")?;
    let _ = stop_tx.send(());
    let _ = server.await;
    Ok(query)
}

/// The token is a credential: readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(bytes)
}

fn cache_file(args: &LoginArgs) -> anyhow::Result<PathBuf> {
    let dir = match &args.cache_dir {
        Some(dir) => dir.clone(),
        None => {
            let base = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")));
            base.context("neither XDG_CACHE_HOME nor HOME is set: pass --cache-dir")?.join("atlantiplex/login")
        }
    };
    let key = format!("{}|{}|{}", args.issuer, args.client_id, args.second_factor);
    let digest = ring::digest::digest(&ring::digest::SHA256, key.as_bytes());
    let name: String = digest.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect();
    Ok(dir.join(format!("{name}.json")))
}

/// The cached ExecCredential, if it is still valid for a while.
fn reusable(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let expires: jiff::Timestamp = value["status"]["expirationTimestamp"].as_str()?.parse().ok()?;
    (expires.as_second() - jiff::Timestamp::now().as_second() > REUSE_MARGIN_SECONDS).then_some(text)
}
