//! Subscriptions and invoices (Owners, Admins, `read` keys).

use crate::http::App;
use crate::http::Problem;
use crate::http::access::Action;
use crate::http::caller::Call;
use crate::http::views::{BillingView, InvoiceView, SubscriptionView};
use axum::Json;
use axum::extract::{Extension, State};
use std::sync::Arc;

/// How many invoices are listed.
const INVOICES: u32 = 24;

/// The organization's subscriptions and its newest invoices.
#[utoipa::path(get, path = "/v1/organizations/{org}/billing", tag = "billing",
    params(("org" = String, Path, description = "The Organization's object name")),
    responses((status = 200, description = "Success", body = BillingView), (status = "4XX", description = "A problem: its rule, the field at fault and the fix", body = Problem, content_type = "application/problem+json")),
    security(("apiKey" = []), ("kubernetesToken" = []), ("session" = [])))]
pub async fn billing(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
) -> Result<Json<BillingView>, Problem> {
    call.authorize(Action::ReadBilling)?;
    Ok(Json(billing_view(&app, &call).await?))
}

/// Subscriptions by name and the newest invoices (the console's billing page reads the same).
pub async fn billing_view(app: &App, call: &Call) -> Result<BillingView, Problem> {
    let mut subscriptions: Vec<SubscriptionView> = app
        .caches
        .subscriptions_of(&call.org_name)
        .into_iter()
        .map(|s| {
            let status = s.status.clone().unwrap_or_default();
            SubscriptionView {
                name: s.metadata.name.clone().unwrap_or_default(),
                plan: s.spec.plan.clone(),
                stripe_state: status.stripe_state,
                trial_end: status.trial_end,
                current_period_start: status.current_period_start,
                current_period_end: status.current_period_end,
                scheduled_plan: status.scheduled_plan,
            }
        })
        .collect();
    subscriptions.sort_by(|a, b| a.name.cmp(&b.name));
    let invoices = app.ledger.invoices(&call.org_name, INVOICES).await.map_err(super::ledger_unavailable)?;
    let invoices = invoices
        .into_iter()
        .map(|i| InvoiceView {
            id: i.stripe_invoice_id,
            number: i.number,
            status: i.status,
            currency: i.currency,
            amount_due_cents: i.amount_due_cents,
            amount_paid_cents: i.amount_paid_cents,
            period_start: i.period_start.to_string(),
            period_end: i.period_end.to_string(),
            hosted_url: i.hosted_url,
        })
        .collect();
    Ok(BillingView { subscriptions, invoices })
}
