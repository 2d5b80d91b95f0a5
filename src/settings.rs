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
        }
    }
}
