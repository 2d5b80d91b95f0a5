//! Billing: the subscription's state, trial and period, the upcoming invoice so far (the plan's flat
//! price and metered overage), invoices with their hosted pages, the Stripe Billing Portal, and the
//! plan change — made as the signed-in person, so the webhook's `billing-owners-only` and
//! `downgrade` rules decide it.

use super::{done_message, refusal_status, render};
use crate::api::Role;
use crate::console::error::{ConsoleError, error_page};
use crate::console::gate::{CsrfForm, Viewer};
use crate::console::layout::Layout;
use crate::console::writes::{self, WriteError};
use crate::http::App;
use crate::http::access::{Action, Grant};
use crate::http::caller::Call;
use crate::http::routes::{billing, usage};
use crate::http::views::{InvoiceView, SubscriptionView};
use crate::revenue::format_cents;
use askama::Template;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

pub struct PlanChoice {
    pub name: String,
    pub label: String,
    pub current: bool,
}

pub struct InvoiceRow {
    pub number: String,
    pub period: String,
    pub status: String,
    pub due: String,
    pub paid: String,
    pub hosted_url: Option<String>,
}

fn invoice_row(i: InvoiceView) -> InvoiceRow {
    let day = |t: &str| t.get(..10).unwrap_or(t).to_string();
    InvoiceRow {
        number: i.number.clone().unwrap_or_else(|| i.id.clone()),
        period: format!("{} → {}", day(&i.period_start), day(&i.period_end)),
        due: money(i.amount_due_cents, &i.currency),
        paid: money(i.amount_paid_cents, &i.currency),
        status: i.status,
        hosted_url: i.hosted_url,
    }
}

pub struct Line {
    pub what: String,
    pub amount: String,
}

#[derive(Template)]
#[template(path = "console/billing.html")]
struct Page {
    layout: Layout,
    org: String,
    plan: String,
    subscription: Option<SubscriptionView>,
    upcoming: Vec<Line>,
    upcoming_total: String,
    invoices: Vec<InvoiceRow>,
    /// Why the portal button is off, if it is.
    portal_off: Option<&'static str>,
    owner: bool,
    plans: Vec<PlanChoice>,
    done: Option<&'static str>,
    error: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub struct Shown {
    done: Option<String>,
}

/// The organization's Stripe customer, once the operator has made one.
fn stripe_customer(app: &App, call: &Call) -> Option<String> {
    app.caches
        .subscriptions_of(&call.org_name)
        .iter()
        .find_map(|s| s.status.as_ref().and_then(|st| st.stripe_customer_id.clone()))
}

fn money(cents: i64, currency: &str) -> String {
    format_cents(cents, currency)
}

async fn build(
    app: &App,
    call: &Call,
    live: &Viewer,
    done: Option<&str>,
    error: Option<String>,
) -> Result<Page, ConsoleError> {
    call.authorize(Action::ReadBilling)?;
    let view = billing::billing_view(app, call).await?;
    let subscription = view.subscriptions.into_iter().next();
    let currency = call.plan.as_ref().map_or("usd".to_string(), |p| p.spec.price.currency.clone());
    let mut upcoming = Vec::new();
    let mut total = 0;
    if let Some(plan) = &call.plan {
        let price = plan.spec.price.amount_cents;
        total += price;
        upcoming.push(Line { what: format!("Plan {} (flat)", call.plan_name), amount: money(price, &currency) });
    }
    for meter in usage::usage_view(app, call, 30).await?.meters {
        if let Some(cents) = meter.overage_cents.filter(|c| *c > 0) {
            total += cents;
            upcoming.push(Line {
                what: format!(
                    "{} beyond the plan ({} {})",
                    super::overview::meter_label(&meter.meter),
                    meter.period_billed,
                    meter.billing_unit
                ),
                amount: money(cents, &currency),
            });
        }
    }
    let customer = stripe_customer(app, call);
    let portal_off = if app.console.stripe.is_none() {
        Some("Billing portal sessions are not configured on this platform (--stripe-secret).")
    } else if customer.is_none() {
        Some("This organization has no Stripe customer yet: subscribe to a paid plan first.")
    } else {
        None
    };
    let owner = call.grant == Grant::Role(Role::Owner);
    let mut plans: Vec<_> = app.caches.plans().into_iter().filter(|p| !p.spec.internal).collect();
    plans.sort_by_key(|p| p.spec.price.amount_cents);
    let plans = plans
        .iter()
        .map(|p| {
            let name = p.metadata.name.clone().unwrap_or_default();
            PlanChoice {
                label: format!(
                    "{} — {} / {}",
                    p.spec.display_name.clone().unwrap_or_else(|| name.clone()),
                    money(p.spec.price.amount_cents, &p.spec.price.currency),
                    crate::billing::keys::interval(p.spec.price.interval)
                ),
                current: name == call.plan_name,
                name,
            }
        })
        .collect();
    Ok(Page {
        layout: Layout::organization(live, call, "Billing", "billing"),
        org: call.org_name.clone(),
        plan: call.plan_name.clone(),
        subscription,
        upcoming,
        upcoming_total: money(total, &currency),
        invoices: view.invoices.into_iter().map(invoice_row).collect(),
        portal_off,
        owner,
        plans,
        done: done_message(done),
        error,
    })
}

pub async fn page(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    Extension(live): Extension<Viewer>,
    Query(shown): Query<Shown>,
) -> Result<Response, ConsoleError> {
    render(&build(&app, &call, &live, shown.done.as_deref(), None).await?)
}

#[derive(serde::Deserialize)]
pub struct NoFields {}

/// Opens a Stripe Billing Portal session for the organization's customer and sends the browser there.
pub async fn portal(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> Result<Response, ConsoleError> {
    call.authorize(Action::ReadBilling)?;
    let customer = stripe_customer(&app, &call);
    let (Some(stripe), Some(customer)) = (&app.console.stripe, customer) else {
        return Ok(error_page(
            StatusCode::CONFLICT,
            "The billing portal is not available",
            "billing-portal-off",
            "this platform has no Stripe key for portal sessions (--stripe-secret) or the organization has no Stripe customer yet: subscribe to a paid plan first",
        ));
    };
    let public = app.signin.as_ref().map(|s| s.public_url().to_string()).unwrap_or_default();
    let back = format!("{public}/console/orgs/{}/billing", call.org_name);
    let session = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
        .customer(customer)
        .return_url(back)
        .send(stripe)
        .await;
    match session {
        Ok(session) => Ok(Redirect::to(&session.url).into_response()),
        Err(err) => Ok(error_page(
            StatusCode::BAD_GATEWAY,
            "Stripe did not open the billing portal",
            "billing-portal",
            &format!("{err}: retry in a moment"),
        )),
    }
}

#[derive(serde::Deserialize)]
pub struct PlanForm {
    plan: String,
}

/// Moves the Subscription to another plan, as the person (the webhook decides).
pub async fn change_plan(
    State(app): State<Arc<App>>,
    Extension(call): Extension<Arc<Call>>,
    Extension(live): Extension<Viewer>,
    CsrfForm(form): CsrfForm<PlanForm>,
) -> Result<Response, ConsoleError> {
    let subscription = app.caches.subscriptions_of(&call.org_name).into_iter().next();
    let Some(name) = subscription.and_then(|s| s.metadata.name) else {
        return refused(
            &app,
            &call,
            &live,
            StatusCode::CONFLICT,
            "this organization has no Subscription to change: create one with kubectl (docs/billing.md)".into(),
        )
        .await;
    };
    match writes::change_plan(&app, &live, &name, &form.plan).await {
        Ok(()) => {
            Ok(Redirect::to(&format!("/console/orgs/{}/billing?done=plan-changed", call.org_name)).into_response())
        }
        Err(err) => write_refused(&app, &call, &live, err).await,
    }
}

async fn refused(
    app: &App,
    call: &Call,
    live: &Viewer,
    status: StatusCode,
    message: String,
) -> Result<Response, ConsoleError> {
    let page = build(app, call, live, None, Some(message)).await?;
    let mut response = render(&page)?;
    *response.status_mut() = status;
    Ok(response)
}

async fn write_refused(app: &App, call: &Call, live: &Viewer, err: WriteError) -> Result<Response, ConsoleError> {
    let status = refusal_status(&err, &format!("/console/orgs/{}/billing", call.org_name))?;
    refused(app, call, live, status, err.to_string()).await
}
