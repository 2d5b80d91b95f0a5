//! Operator settings: flags and environment variables of `atlantiplex-operator run`.

use clap::Args;

#[derive(Args, Clone, Debug)]
pub struct Settings {
    /// Tenants are served at `<slug>.<base-domain>`.
    #[arg(long, env = "ATLANTIPLEX_BASE_DOMAIN", default_value = "atlantiplex.local")]
    pub base_domain: String,
    /// IngressClass of the tenant Ingresses.
    #[arg(long, env = "ATLANTIPLEX_INGRESS_CLASS", default_value = "nginx")]
    pub ingress_class: String,
    /// Service (in the tenant's home namespace) that serves a tenant without its own backend.
    #[arg(long, env = "ATLANTIPLEX_DEFAULT_BACKEND_SERVICE", default_value = "studio")]
    pub default_backend_service: String,
    #[arg(long, env = "ATLANTIPLEX_DEFAULT_BACKEND_PORT", default_value_t = 80)]
    pub default_backend_port: i32,
    /// Namespace of the ingress controller, allowed through the tenant NetworkPolicy.
    #[arg(long, env = "ATLANTIPLEX_INGRESS_CONTROLLER_NAMESPACE", default_value = "ingress-nginx")]
    pub ingress_controller_namespace: String,
    /// DNS name of the page suspended tenants are routed to (an ExternalName Service points at it).
    #[arg(
        long,
        env = "ATLANTIPLEX_SUSPENDED_BACKEND_HOST",
        default_value = "suspended.atlantiplex-system.svc.cluster.local"
    )]
    pub suspended_backend_host: String,
    /// DNS name of the "usage limit reached" page, where a tenant whose Block meter reached 100 % is
    /// routed until the next billing period or an upgrade (an ExternalName Service points at it).
    #[arg(
        long,
        env = "ATLANTIPLEX_LIMIT_REACHED_BACKEND_HOST",
        default_value = "limit-reached.atlantiplex-system.svc.cluster.local"
    )]
    pub limit_reached_backend_host: String,
    /// cert-manager ClusterIssuer annotated on Ingresses with TLS enabled (none: bring your own Secret).
    #[arg(long, env = "ATLANTIPLEX_CLUSTER_ISSUER")]
    pub cluster_issuer: Option<String>,
    /// Deepest allowed team nesting (a top-level team is depth 1).
    #[arg(long, env = "ATLANTIPLEX_MAX_TEAM_DEPTH", default_value_t = 5)]
    pub max_team_depth: usize,
    /// Plan of an Organization without a Subscription.
    #[arg(long, env = "ATLANTIPLEX_DEFAULT_PLAN", default_value = "free")]
    pub default_plan: String,
    /// External DNS names tenants may point an ExternalName Service at: exact names, or
    /// `*.example.com` for names under a domain (comma-separated or repeated). Default: none.
    /// Cluster-internal names and IP addresses are refused whatever this says.
    #[arg(long = "allowed-external-name", env = "ATLANTIPLEX_ALLOWED_EXTERNAL_NAMES", value_delimiter = ',')]
    pub allowed_external_names: Vec<String>,
    /// Minutes between two samples of each organization's provisioned storage (the PVCs' `requests.storage`),
    /// which storage's GiB-months are computed from (at least 1).
    #[arg(long, env = "ATLANTIPLEX_STORAGE_SAMPLE_MINUTES", default_value_t = 5, value_parser = sample_minutes)]
    pub storage_sample_minutes: u64,
    /// File holding the server key API keys are hashed with (HMAC-SHA256, ≥ 32 bytes), the tenant API's
    /// `--api-key-hash-key-file`: needed to issue the keys of ApiKey objects (without it they wait, saying so).
    #[arg(long, env = "ATLANTIPLEX_API_KEY_HASH_KEY_FILE")]
    pub api_key_hash_key_file: Option<std::path::PathBuf>,
    /// For tests: seconds between storage samples, instead of `--storage-sample-minutes`.
    #[arg(long, hide = true, value_parser = clap::value_parser!(u64).range(1..))]
    pub storage_sample_seconds: Option<u64>,
}

impl Settings {
    /// How often storage is sampled.
    pub fn storage_sample_interval(&self) -> std::time::Duration {
        let seconds = self.storage_sample_seconds.unwrap_or(self.storage_sample_minutes.saturating_mul(60));
        std::time::Duration::from_secs(seconds.max(1))
    }
}

/// `--storage-sample-minutes`: whole minutes, at least one (a claim that lives less than the interval may be
/// missed, so longer intervals bill less exactly; shorter than a minute only loads the database).
fn sample_minutes(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(minutes) if minutes >= 1 => Ok(minutes),
        _ => Err(format!(
            "{text:?} is not a whole number of minutes of at least 1: storage is sampled every N minutes (default 5)"
        )),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            base_domain: "atlantiplex.local".into(),
            ingress_class: "nginx".into(),
            default_backend_service: "studio".into(),
            default_backend_port: 80,
            ingress_controller_namespace: "ingress-nginx".into(),
            suspended_backend_host: "suspended.atlantiplex-system.svc.cluster.local".into(),
            limit_reached_backend_host: "limit-reached.atlantiplex-system.svc.cluster.local".into(),
            cluster_issuer: None,
            default_plan: "free".into(),
            max_team_depth: 5,
            allowed_external_names: Vec::new(),
            storage_sample_minutes: 5,
            storage_sample_seconds: None,
            api_key_hash_key_file: None,
        }
    }
}

/// The Kubernetes client configuration: the `--kubeconfig` file when given, else the usual inference
/// ($KUBECONFIG, ~/.kube/config, the in-cluster ServiceAccount). One copy for every subcommand.
pub async fn kube_config(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Config> {
    use anyhow::Context as _;
    match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Ok(kube::Config::from_custom_kubeconfig(file, &Default::default()).await?)
        }
        None => kube::Config::infer().await.context("no Kubernetes configuration found (set --kubeconfig)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_sampling_is_every_few_minutes_and_never_under_one() {
        assert_eq!(Settings::default().storage_sample_interval(), std::time::Duration::from_secs(300));
        assert_eq!(sample_minutes("15"), Ok(15));
        let err = sample_minutes("0").unwrap_err();
        assert!(err.contains("at least 1") && err.contains("default 5"), "{err}");
        assert!(sample_minutes("0.5").is_err());
        let fast = Settings { storage_sample_seconds: Some(2), ..Settings::default() };
        assert_eq!(fast.storage_sample_interval(), std::time::Duration::from_secs(2));
    }
}
