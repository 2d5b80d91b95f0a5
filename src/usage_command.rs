//! `atlantiplex-operator usage --org NAME [--since 30d] [-o table|json]`: one organization's metered usage
//! from the ledger (the same `--database-url` / `DATABASE_URL` the operator takes), against its plan when a
//! cluster is reachable (the Organization, its Subscriptions and Plan, read with the kubeconfig). The figures
//! are built by `metering::report`; this is the I/O around it.

use crate::api::{Organization, Plan, Subscription};
use crate::ledger::{self, Ledger, UsageWindow};
use crate::metering::report::{self, Inputs, Span, Window};
use crate::metering::terms::{PlanTerms, plan_terms};
use crate::metering::{intake, report_table, window_start};
use jiff::Timestamp;
use kube::Api;
use kube::api::ListParams;
use std::path::PathBuf;
use std::time::Duration;

/// How long to wait for the API server before going on without the plan.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(clap::Args, Debug, Clone)]
pub struct UsageArgs {
    /// The Organization (its object name, as `kubectl get orgs` shows it).
    #[arg(long)]
    pub org: String,
    /// The window: from this long ago (30d, 24h, 1h30m) or this RFC 3339 time, until now.
    #[arg(long, default_value = "30d")]
    pub since: String,
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// The ledger database, as the operator's: sqlite://FILE?mode=rwc, a file path, or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env = "DATABASE_URL", default_value = ledger::DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Kubeconfig for the plan and billing period (default: $KUBECONFIG, ~/.kube/config, in-cluster); without a
    /// reachable cluster the usage is shown without included amounts or overage.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The plan of an Organization without a Subscription whose status names none yet (as the operator's flag).
    #[arg(long, env = "ATLANTIPLEX_DEFAULT_PLAN", default_value = "free")]
    pub default_plan: String,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// What the cluster says about the organization.
enum Lookup {
    Found { plan: Option<Box<(String, PlanTerms)>>, stripe_period: intake::StripePeriod, notes: Vec<String> },
    NotFound,
    Unreachable(String),
}

/// The report as text (a table, or JSON), for `now`.
pub async fn usage(args: &UsageArgs, now: Timestamp) -> anyhow::Result<String> {
    let since = ledger::parse_time_bound(&args.since, now).map_err(|e| {
        anyhow::anyhow!("--since {:?}: {e}; e.g. --since 30d, --since 12h or --since 2026-03-01T00:00:00Z", args.since)
    })?;
    anyhow::ensure!(
        since < now,
        "--since {:?} is not in the past ({since}): give a duration back from now, e.g. 30d",
        args.since
    );
    let ledger = Ledger::connect(&args.database_url).await?;
    let result = report_text(args, &ledger, since, now).await;
    ledger.close().await;
    result
}

async fn report_text(args: &UsageArgs, ledger: &Ledger, since: Timestamp, now: Timestamp) -> anyhow::Result<String> {
    let org = args.org.as_str();
    let with_usage = ledger.usage_organizations().await?;
    let has_usage = with_usage.iter().any(|o| o == org);
    let lookup = lookup(args).await;
    let unknown = |why: String| {
        let known = if with_usage.is_empty() { "none".to_string() } else { with_usage.join(", ") };
        anyhow::anyhow!("{why}; organizations with usage in {}: {known}", ledger.target())
    };
    let mut notes = Vec::new();
    let (plan, stripe_period) = match lookup {
        Lookup::Found { plan, stripe_period, notes: found } => {
            notes.extend(found);
            (plan, stripe_period)
        }
        Lookup::NotFound if has_usage => {
            notes.push(format!("no Organization {org:?} in the cluster (deleted?): its plan is unknown"));
            (None, intake::StripePeriod::default())
        }
        Lookup::NotFound => {
            return Err(unknown(format!("no Organization {org:?} in the cluster and no usage for it in the ledger")));
        }
        Lookup::Unreachable(why) if has_usage => {
            notes.push(format!(
                "no cluster reachable ({why}): included amounts and overage are not shown, and the billing period \
                 is taken to be the calendar month; pass --kubeconfig to see them"
            ));
            (None, intake::StripePeriod::default())
        }
        Lookup::Unreachable(why) => {
            return Err(unknown(format!(
                "no usage for organization {org:?} in the ledger (and no cluster reachable to check it exists: {why})"
            )));
        }
    };
    let period = intake::open_period(stripe_period, now)?;
    let period_source = match stripe_period.end {
        Some(_) => "the Stripe subscription's period",
        None => "calendar month, UTC",
    };
    let windows = convert(ledger.usage_windows_all(org, window_start(since), now).await?);
    let (from, to) = period.window_starts();
    let period_windows = convert(ledger.usage_windows_all(org, from, to).await?);
    let report = report::build(Inputs {
        organization: org,
        plan: plan.as_deref().map(|(name, terms)| (name.as_str(), terms)),
        window: Span { from: since, to: now },
        windows: &windows,
        period,
        period_source,
        period_windows: &period_windows,
        notes,
    });
    Ok(match args.output {
        Format::Table => report_table::table(&report),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&report)?),
    })
}

fn convert(rows: Vec<UsageWindow>) -> Vec<Window> {
    rows.into_iter()
        .map(|w| Window { meter: w.meter, start: w.start, quantity: w.quantity, events: w.events })
        .collect()
}

async fn lookup(args: &UsageArgs) -> Lookup {
    match tokio::time::timeout(CLUSTER_TIMEOUT, read_cluster(args)).await {
        Ok(Ok(lookup)) => lookup,
        Ok(Err(err)) => Lookup::Unreachable(format!("{err:#}")),
        Err(_) => Lookup::Unreachable(format!("the API server did not answer within {}s", CLUSTER_TIMEOUT.as_secs())),
    }
}

async fn read_cluster(args: &UsageArgs) -> anyhow::Result<Lookup> {
    let config = crate::settings::kube_config(args.kubeconfig.as_deref()).await?;
    let client = kube::Client::try_from(config)?;
    let Some(org) = Api::<Organization>::all(client.clone()).get_opt(&args.org).await? else {
        return Ok(Lookup::NotFound);
    };
    let params = ListParams::default().fields(&format!("spec.organization={}", args.org));
    let subscriptions = Api::<Subscription>::all(client.clone()).list(&params).await?.items;
    let stripe_period = intake::StripePeriod::of(subscriptions.iter());
    // The plan the operator applies (its status); before its first reconcile, the same choice it would make.
    let plan_name =
        org.status.as_ref().and_then(|s| s.effective_plan.clone()).unwrap_or_else(|| {
            crate::tenancy::plan::effective_plan(&org, subscriptions.iter(), &args.default_plan).plan
        });
    let mut notes = Vec::new();
    let plan = match Api::<Plan>::all(client).get_opt(&plan_name).await? {
        None => {
            notes.push(format!("plan {plan_name:?} does not exist: included amounts and overage are not shown"));
            None
        }
        Some(plan) => match plan_terms(&plan.spec) {
            Ok(terms) => Some(Box::new((plan_name, terms))),
            Err(err) => {
                notes.push(format!("plan {plan_name:?}: {err}; included amounts and overage are not shown"));
                None
            }
        },
    };
    Ok(Lookup::Found { plan, stripe_period, notes })
}
