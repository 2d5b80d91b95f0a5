//! The operator binary: `run` the controllers, write the `crds`, query the `audit` log or read `usage`.

use anyhow::Context as _;
use atlantiplex_operator::admission::{self, policy::PolicyConfig, settings::AdmissionSettings};
use atlantiplex_operator::billing::{self, BillingSettings};
use atlantiplex_operator::leader;
use atlantiplex_operator::metrics::Metrics;
use atlantiplex_operator::{api, controller, ledger, settings::Settings};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about = "Multi-tenant SaaS tenancy and billing as Kubernetes custom resources")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers until SIGTERM/SIGINT.
    Run(Box<RunArgs>),
    /// Write the CustomResourceDefinitions generated from the Rust types.
    Crds {
        /// Directory to write `<plural>.yaml` into; without it, print all to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Query the audit log in the ledger database, newest first.
    Audit(AuditArgs),
    /// One organization's metered usage from the ledger, against its plan (docs/metering.md).
    Usage(atlantiplex_operator::usage_command::UsageArgs),
    /// Serve the tenant API (`/v1`, docs/tenant-api.md) until SIGTERM/SIGINT.
    Api(Box<atlantiplex_operator::http::ApiArgs>),
    /// Print the kube-apiserver --authentication-config that trusts an OpenID Connect provider with the
    /// names the operator binds (docs/sso.md).
    AuthenticationConfig(atlantiplex_operator::auth_config_command::AuthenticationConfigArgs),
    /// Sign in at the OpenID Connect provider and print a kubectl ExecCredential (a credential plugin, docs/sso.md).
    Login(atlantiplex_operator::login_command::LoginArgs),
    /// Write the tenant API's OpenAPI 3.1 document (openapi/v1.json).
    Openapi {
        /// File to write; without it, print to stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct AuditArgs {
    /// The ledger database: sqlite://FILE?mode=rwc, a file path, or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = ledger::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Only this organization's records.
    #[arg(long)]
    org: Option<String>,
    /// From this long ago (24h, 7d, 1h30m) or this RFC 3339 time.
    #[arg(long)]
    since: Option<String>,
    /// Before this long ago or this RFC 3339 time.
    #[arg(long)]
    until: Option<String>,
    /// Only this actor's records (a user, group or service account name).
    #[arg(long)]
    actor: Option<String>,
    /// At most this many records (maximum 10000).
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[arg(long, short, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Table,
    Json,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Kubeconfig to use (default: $KUBECONFIG, ~/.kube/config, or the in-cluster service account).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    #[arg(long, env = "ATLANTIPLEX_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Log filter, e.g. `info` or `atlantiplex_operator=debug,kube=info`.
    #[arg(long, env = "ATLANTIPLEX_LOG", default_value = "info")]
    log: String,
    /// Organizations reconciled at the same time.
    #[arg(long, env = "ATLANTIPLEX_CONCURRENCY", default_value_t = 16)]
    concurrency: u16,
    /// The ledger database (audit log, billing history): sqlite://FILE?mode=rwc, a file path, or
    /// postgres://USER:PASSWORD@HOST/DB. Opened and migrated at start-up.
    #[arg(long, env = "DATABASE_URL", default_value = ledger::DEFAULT_DATABASE_URL)]
    database_url: String,
    /// Audit records older than this many days are deleted (hourly, in batches).
    #[arg(long, env = "ATLANTIPLEX_AUDIT_RETENTION_DAYS", default_value_t = ledger::DEFAULT_RETENTION_DAYS,
          value_parser = clap::value_parser!(u32).range(1..))]
    audit_retention_days: u32,
    /// Where audit records wait when the database cannot take them (replayed at start-up).
    /// Default: next to the SQLite file, or ./atlantiplex-audit.journal with PostgreSQL.
    #[arg(long, env = "ATLANTIPLEX_AUDIT_JOURNAL")]
    audit_journal: Option<PathBuf>,
    #[command(flatten)]
    settings: Settings,
    #[command(flatten)]
    admission: AdmissionSettings,
    #[command(flatten)]
    billing: BillingSettings,
    #[command(flatten)]
    usage: atlantiplex_operator::usage_endpoint::UsageSettings,
    /// Run several replicas: only the holder of the Lease `atlantiplex-operator-leader` (in the
    /// operator's namespace) reconciles; every replica serves the webhook.
    #[arg(long, env = "ATLANTIPLEX_LEADER_ELECTION", num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set, default_value_t = false)]
    leader_election: bool,
    /// Requests per second the controllers send to the API server on average (0: no limit).
    #[arg(long, env = "ATLANTIPLEX_KUBE_API_QPS", default_value_t = 0.0)]
    kube_api_qps: f64,
    /// Requests the controllers may send at once before the QPS limit applies.
    #[arg(long, env = "ATLANTIPLEX_KUBE_API_BURST", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    kube_api_burst: u64,
    /// Seconds a leader lease stays valid without renewal (the leader gives up after two thirds).
    #[arg(long, env = "ATLANTIPLEX_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=300))]
    lease_seconds: u64,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Crds { out } => write_crds(out),
        Command::Run(args) => run(*args).await,
        Command::Audit(args) => audit(args).await,
        Command::Usage(args) => {
            print!("{}", atlantiplex_operator::usage_command::usage(&args, jiff::Timestamp::now()).await?);
            Ok(())
        }
        Command::AuthenticationConfig(args) => atlantiplex_operator::auth_config_command::run(args),
        Command::Login(args) => atlantiplex_operator::login_command::run(args).await,
        Command::Api(args) => atlantiplex_operator::http::serve::run(*args, shutdown_signal()).await,
        Command::Openapi { out } => {
            let document = atlantiplex_operator::http::openapi::document();
            match out {
                Some(path) => std::fs::write(&path, document).with_context(|| format!("writing {}", path.display())),
                None => {
                    print!("{document}");
                    Ok(())
                }
            }
        }
    }
}

async fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let now = jiff::Timestamp::now();
    let query = ledger::AuditQuery {
        organization: args.org,
        since: args.since.as_deref().map(|s| ledger::parse_time_bound(s, now)).transpose()?,
        until: args.until.as_deref().map(|s| ledger::parse_time_bound(s, now)).transpose()?,
        actor: args.actor,
        before: None,
        limit: Some(args.limit),
    };
    let ledger = ledger::Ledger::connect(&args.database_url).await?;
    let records = ledger.query_audit(&query).await?;
    ledger.close().await;
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&records)?),
        Output::Table => print!("{}", ledger::format::audit_table(&records)),
    }
    Ok(())
}

/// Applies audit retention now and then every hour, until the process ends.
fn spawn_retention(ledger: ledger::Ledger, days: u32) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            match ledger.apply_audit_retention(days, jiff::Timestamp::now()).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, days, "audit retention applied"),
                Err(e) => tracing::warn!(error = %e, "audit retention failed; retrying in an hour"),
            }
        }
    });
}

fn write_crds(out: Option<PathBuf>) -> anyhow::Result<()> {
    let files = api::crd_files()?;
    match out {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for (name, yaml) in files {
                std::fs::write(dir.join(&name), yaml).with_context(|| format!("writing {name}"))?;
            }
        }
        None => {
            for (_, yaml) in files {
                print!("---\n{yaml}");
            }
        }
    }
    Ok(())
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&args.log).with_context(|| format!("invalid --log filter {:?}", args.log))?;
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // Behind a reload handle, so /log-level can change the filter without a restart.
    let (filter, log_level) = tracing_subscriber::reload::Layer::new(filter);
    let ansi = std::io::stdout().is_terminal();
    let registry = tracing_subscriber::registry().with(filter);
    match args.log_format {
        LogFormat::Json => registry.with(tracing_subscriber::fmt::layer().json()).init(),
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer().with_ansi(ansi)).init(),
    }
    let ledger = ledger::Ledger::connect(&args.database_url).await?;
    tracing::info!(ledger = %ledger.target(), schema = ledger::LATEST_VERSION, "ledger database open");
    spawn_retention(ledger.clone(), args.audit_retention_days);
    let journal = match &args.audit_journal {
        Some(path) => ledger::AuditLogOptions::new(path),
        None => ledger::AuditLogOptions::for_ledger(&ledger),
    };
    let audit = ledger::AuditLog::start(ledger.clone(), journal).await.context("starting the audit log")?;
    let config = atlantiplex_operator::settings::kube_config(args.kubeconfig.as_deref()).await?;
    let client = kube::Client::try_from(config.clone())?;
    let version = client.apiserver_version().await.context("cannot reach the Kubernetes API server")?;
    tracing::info!(
        server = %version.git_version,
        base_domain = %args.settings.base_domain,
        ingress_class = %args.settings.ingress_class,
        "atlantiplex-operator starting"
    );
    let metrics = Arc::new(Metrics::new());
    let context = Arc::new(OnceLock::new());
    let policy = PolicyConfig {
        base_domain: args.settings.base_domain.clone(),
        default_plan: args.settings.default_plan.clone(),
        signup: args.admission.signup,
        signup_max_free_organizations: args.admission.signup_max_free_organizations,
        allowed_external_names: args.settings.allowed_external_names.clone(),
    };
    tokio::spawn(watch_audit(audit.clone(), metrics.clone()));
    // Revenue gauges, on every replica (a read of the ledger) from when the caches are filled.
    tokio::spawn(atlantiplex_operator::metrics::revenue::refresh_every(
        ledger.clone(),
        metrics.clone(),
        context.clone(),
    ));
    let namespace = args.admission.operator_namespace.clone();
    // Billing reads its Secret once at start-up; without it the operator runs with billing disabled.
    let billing_handle = Arc::new(
        billing::Billing::load(client.clone(), &namespace, args.billing, Some(ledger.clone()), metrics.clone()).await,
    );
    if let Some(reason) = billing_handle.disabled_reason() {
        tracing::info!(%reason, "billing disabled");
    }
    // One cache of token and access reviews for the metrics port and usage ingestion.
    let authorizer = Arc::new(atlantiplex_operator::http_auth::Authorizer::new(client.clone()));
    // The Stripe webhook shares the plain HTTP port (behind the cluster's ingress TLS) and stays
    // public: Stripe signs its calls. The audit API and the log level need an RBAC-allowed token.
    tokio::spawn(admission::serve_metrics(admission::MetricsServer {
        bind: args.admission.metrics_bind,
        metrics: metrics.clone(),
        context: context.clone(),
        public: billing::webhook::router(billing_handle.clone(), context.clone()),
        protected: ledger::http::router(ledger.clone()).merge(atlantiplex_operator::log_level::router(log_level)),
        authorizer: authorizer.clone(),
        metrics_insecure: args.admission.metrics_insecure,
    }));
    let resolver = admission::start(
        client.clone(),
        args.admission,
        policy,
        context.clone(),
        metrics.clone(),
        Some(audit.clone()),
        args.usage.certificate_names(),
    )
    .await
    .context("starting the admission webhook")?;
    // Ingestion tells the controller whose totals changed (their usage status is re-computed at once).
    let (usage_tx, usage_rx) = tokio::sync::mpsc::unbounded_channel();
    // Usage events over HTTPS with the same certificate (every replica serves them).
    let usage = atlantiplex_operator::usage_endpoint::UsageEndpoint {
        context: context.clone(),
        ledger: ledger.clone(),
        authorizer,
        max_body_bytes: args.usage.usage_max_body_bytes,
        grace: jiff::SignedDuration::from_hours(i64::from(args.usage.usage_grace_hours)),
        changed: Some(usage_tx),
        metrics: Some(metrics.clone()),
    };
    atlantiplex_operator::usage_endpoint::start(&args.usage, resolver, usage).context("starting usage ingestion")?;
    let identity = replica_identity();
    let leadership = if args.leader_election {
        let lease = Duration::from_secs(args.lease_seconds);
        let timing = leader::Timing { lease, renew_deadline: lease * 2 / 3, retry: lease / 7 };
        tracing::info!(identity, lease_seconds = args.lease_seconds, "leader election on");
        leader::Leadership::elect(client.clone(), &namespace, identity.clone(), timing)
    } else {
        leader::Leadership::always()
    };
    let elected = args.leader_election;
    // Reconciles write through a client that refuses writes the moment the lease is not held.
    let rate = (args.kube_api_qps > 0.0)
        .then(|| (args.kube_api_burst, Duration::from_secs_f64(args.kube_api_burst as f64 / args.kube_api_qps)));
    let controller_client = leadership.fenced_client(config, rate)?;
    let options = controller::Options {
        settings: args.settings,
        concurrency: args.concurrency,
        context_slot: context,
        metrics,
        audit: Some(audit.clone()),
        leadership,
        billing: billing_handle,
        usage_changed: Some(usage_rx),
        ledger: Some(ledger),
        usage_grace: jiff::SignedDuration::from_hours(i64::from(args.usage.usage_grace_hours)),
    };
    controller::run(controller_client, options, shutdown_signal()).await?;
    if elected {
        leader::release(client, &namespace, &identity).await;
    }
    // Queued records reach the database (or the journal) before the process ends.
    if let Err(err) = audit.flush().await {
        tracing::warn!(error = %err, "flushing the audit log at shutdown failed");
    }
    tracing::info!("atlantiplex-operator stopped");
    Ok(())
}

/// Exports the audit writer's counters as metrics and logs when it falls behind or fails, so a
/// full queue or a database outage is visible (records then wait in the journal, never dropped).
async fn watch_audit(audit: ledger::AuditLog, metrics: Arc<Metrics>) {
    let mut last = ledger::HealthState::Healthy;
    loop {
        let stats = audit.stats();
        metrics.set_audit(&stats);
        let health = audit.health();
        if health.state != last {
            match health.state {
                ledger::HealthState::Healthy => tracing::info!(message = %health.message, "audit log healthy again"),
                _ => {
                    tracing::warn!(state = ?health.state, message = %health.message, last_error = ?health.last_error, "audit log degraded")
                }
            }
            last = health.state;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// The Pod's name when running in a cluster (downward API), else host and process id.
fn replica_identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
