//! Flags of the admission webhook and of who counts as a platform admin.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Args, Clone, Debug)]
pub struct AdmissionSettings {
    /// Address the webhook's HTTPS server listens on.
    #[arg(long, env = "ATLANTIPLEX_WEBHOOK_BIND", default_value = "0.0.0.0:8443")]
    pub webhook_bind: SocketAddr,
    /// Service the API server calls the webhook through (`namespace/name`, port 443).
    #[arg(
        long,
        env = "ATLANTIPLEX_WEBHOOK_SERVICE",
        default_value = "atlantiplex-system/atlantiplex-operator-webhook"
    )]
    pub webhook_service: String,
    /// Development override: the API server calls this URL instead of the Service (e.g. a
    /// local control plane calling an operator on the same machine: https://127.0.0.1:8443).
    #[arg(long, env = "ATLANTIPLEX_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Use the certificate in this directory (tls.crt, tls.key, ca.crt; e.g. from cert-manager)
    /// instead of the operator's own CA.
    #[arg(long, env = "ATLANTIPLEX_WEBHOOK_CERT_DIR")]
    pub webhook_cert_dir: Option<PathBuf>,
    /// Accept admission reviews only from callers with a client certificate signed by the CA in
    /// this PEM file: the API server's, configured in its AdmissionConfiguration (see
    /// docs/security.md). Without it, anyone who reaches the port can send a review, and each
    /// audit record says its caller was not verified.
    #[arg(long, env = "ATLANTIPLEX_WEBHOOK_CLIENT_CA")]
    pub webhook_client_ca: Option<PathBuf>,
    /// Namespace of the operator (its webhook certificate Secret lives here).
    #[arg(long, env = "POD_NAMESPACE", default_value = "atlantiplex-system")]
    pub operator_namespace: String,
    /// Groups whose members are platform admins (comma-separated or repeated).
    #[arg(
        long = "platform-admin-group",
        env = "ATLANTIPLEX_PLATFORM_ADMIN_GROUPS",
        value_delimiter = ',',
        default_value = "system:masters"
    )]
    pub platform_admin_groups: Vec<String>,
    /// Users (including GitOps service accounts, `system:serviceaccount:<ns>:<name>`) who are
    /// platform admins (comma-separated or repeated).
    #[arg(long = "platform-admin-user", env = "ATLANTIPLEX_PLATFORM_ADMIN_USERS", value_delimiter = ',')]
    pub platform_admin_users: Vec<String>,
    /// Self-service sign-up: any authenticated user may create an organization on the default
    /// plan and becomes its owner.
    #[arg(long, env = "ATLANTIPLEX_SIGNUP")]
    pub signup: bool,
    /// Organizations on the default plan one user may create through sign-up.
    #[arg(long, env = "ATLANTIPLEX_SIGNUP_MAX_FREE_ORGANIZATIONS", default_value_t = 1)]
    pub signup_max_free_organizations: usize,
    /// Address of the plain-HTTP server for /metrics, /healthz, /readyz, /api/v1/audit,
    /// /log-level and the Stripe webhook.
    #[arg(long, env = "ATLANTIPLEX_METRICS_BIND", default_value = "0.0.0.0:8080")]
    pub metrics_bind: SocketAddr,
    /// Serve /metrics to anyone. By default it needs a bearer token whose user RBAC allows
    /// `get` on the non-resource URL /metrics (the audit API and /log-level always do).
    #[arg(long, env = "ATLANTIPLEX_METRICS_INSECURE")]
    pub metrics_insecure: bool,
}

impl Default for AdmissionSettings {
    fn default() -> Self {
        Self {
            webhook_bind: ([0, 0, 0, 0], 8443).into(),
            webhook_service: "atlantiplex-system/atlantiplex-operator-webhook".into(),
            webhook_url: None,
            webhook_cert_dir: None,
            webhook_client_ca: None,
            operator_namespace: "atlantiplex-system".into(),
            platform_admin_groups: vec!["system:masters".into()],
            platform_admin_users: Vec::new(),
            signup: false,
            signup_max_free_organizations: 1,
            metrics_bind: ([0, 0, 0, 0], 8080).into(),
            metrics_insecure: false,
        }
    }
}
