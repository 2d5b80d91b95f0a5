//! `atlantiplex-operator api`'s flags.

use super::rate_limit::Store;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Debug, Clone)]
pub struct ApiArgs {
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Log filter, e.g. `info` or `atlantiplex_operator=debug`.
    #[arg(long, env = "ATLANTIPLEX_LOG", default_value = "info")]
    pub log: String,
    /// JSON logs (one object per line) instead of text.
    #[arg(long, env = "ATLANTIPLEX_LOG_JSON")]
    pub log_json: bool,
    /// Address of the HTTPS server.
    #[arg(long, env = "ATLANTIPLEX_API_BIND", default_value = "0.0.0.0:8443")]
    pub bind: SocketAddr,
    /// Directory with tls.crt and tls.key (a kubernetes.io/tls Secret), re-read when they change. Without it
    /// a self-signed certificate for localhost is made at start-up (development only).
    #[arg(long, env = "ATLANTIPLEX_API_TLS_DIR")]
    pub tls_dir: Option<PathBuf>,
    /// The ledger: sqlite://FILE?mode=rwc, a file path, or postgres://USER:PASSWORD@HOST/DB (required for
    /// more than one replica: keys, rate limits and usage are shared there).
    #[arg(long, env = "DATABASE_URL", default_value = crate::ledger::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// File holding the server key API keys are hashed with (HMAC-SHA256; ≥ 32 bytes), shared with the operator.
    #[arg(long, env = "ATLANTIPLEX_API_KEY_HASH_KEY_FILE")]
    pub api_key_hash_key_file: PathBuf,
    /// Where rate-limit state lives.
    #[arg(long, env = "ATLANTIPLEX_RATE_LIMIT_STORE", value_enum, default_value_t = Store::Auto)]
    pub rate_limit_store: Store,
    /// A proxy (CIDR or address) whose X-Forwarded-For is believed; repeat for each hop. Without it, the
    /// caller's address is the TCP peer's.
    #[arg(long = "trusted-proxy", env = "ATLANTIPLEX_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "ATLANTIPLEX_API_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// A request not answered in this many seconds is ended with 503.
    #[arg(long, env = "ATLANTIPLEX_API_REQUEST_TIMEOUT_SECONDS", default_value_t = 10)]
    pub request_timeout_seconds: u64,
    /// The plan of an Organization without a Subscription (as the operator's flag).
    #[arg(long, env = "ATLANTIPLEX_DEFAULT_PLAN", default_value = "free")]
    pub default_plan: String,
    /// How many hours after a billing period closed its late usage is still taken (as the operator's flag).
    #[arg(long, env = "ATLANTIPLEX_USAGE_GRACE_HOURS", default_value_t = 48)]
    pub usage_grace_hours: u32,
    #[command(flatten)]
    pub signin: super::signin::SignInArgs,
    #[command(flatten)]
    pub console: crate::console::settings::ConsoleArgs,
}
