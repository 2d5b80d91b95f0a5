//! The Stripe API as the operator uses it: a thin wrapper over async-stripe that counts every
//! request (`atlantiplex_stripe_requests_total`) and hands back plain values, so Stripe types stay
//! inside this file.

use super::keys::{self, META_SUBSCRIPTION_UID};
use crate::metrics::{Metrics, StripeLabels};
use std::collections::HashMap;
use std::sync::Arc;
use stripe::{IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_types::Expandable;

#[derive(Debug, thiserror::Error)]
pub enum StripeCallError {
    /// Stripe answered with an error (HTTP status and its message).
    #[error("Stripe refused {operation}: {message} (HTTP {status})")]
    Refused { operation: &'static str, status: u16, message: String },
    #[error("Stripe request {operation} failed: {message}")]
    Failed { operation: &'static str, message: String },
}

impl StripeCallError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, StripeCallError::Refused { status: 404, .. })
    }
}

/// A Stripe subscription, reduced to what the operator mirrors and decides on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RemoteSubscription {
    pub id: String,
    pub customer: String,
    pub status: String,
    pub trial_start: Option<i64>,
    pub trial_end: Option<i64>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    /// The flat (licensed) item and its price.
    pub item_id: Option<String>,
    pub price_id: Option<String>,
    /// Every item, metered ones included.
    pub items: Vec<super::items::CurrentItem>,
    pub cancel_at_period_end: bool,
    pub metadata: HashMap<String, String>,
    pub latest_invoice: Option<RemoteInvoice>,
    pub latest_invoice_id: Option<String>,
}

impl RemoteSubscription {
    pub fn ended(&self) -> bool {
        matches!(self.status.as_str(), "canceled" | "incomplete_expired")
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct RemoteInvoice {
    pub id: String,
    pub number: Option<String>,
    pub status: String,
    pub currency: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub period_start: i64,
    pub period_end: i64,
    pub created: i64,
    pub hosted_url: Option<String>,
}

/// What a new subscription needs.
pub struct NewSubscription<'a> {
    pub customer: &'a str,
    pub price: &'a str,
    /// Metered prices beside the flat one (usage beyond the plan's allowance).
    pub metered: &'a [String],
    pub trial_days: Option<u32>,
    pub metadata: HashMap<String, String>,
    pub idempotency_key: String,
}

/// A change of the subscription's items: the flat price, and the metered prices beside it.
pub struct PriceChange<'a> {
    pub subscription: &'a str,
    pub changes: &'a [super::items::ItemChange],
    /// `always_invoice` (charge now), `create_prorations` (credit/charge on the next invoice), `none`.
    pub proration: Proration,
    pub metadata: HashMap<String, String>,
    pub idempotency_key: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proration {
    InvoiceNow,
    NextInvoice,
    None,
}

#[derive(Clone)]
pub struct StripeApi {
    pub(super) client: stripe::Client,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str("StripeApi")
    }
}

pub(super) fn idempotent(key: &str) -> Result<RequestStrategy, StripeCallError> {
    let key = IdempotencyKey::new(key)
        .map_err(|e| StripeCallError::Failed { operation: "idempotency_key", message: e.to_string() })?;
    Ok(RequestStrategy::Idempotent(key))
}

impl StripeApi {
    pub fn new(api_key: &str, base_url: Option<&str>, metrics: Arc<Metrics>) -> Result<Self, StripeCallError> {
        let mut builder = stripe::ClientBuilder::new(api_key);
        if let Some(base) = base_url {
            builder = builder.url(base);
        }
        let client = builder
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .map_err(|e| StripeCallError::Failed { operation: "client", message: e.to_string() })?;
        Ok(Self { client, metrics })
    }

    pub(super) async fn call<T>(
        &self,
        operation: &'static str,
        request: impl std::future::Future<Output = Result<T, stripe::StripeError>>,
    ) -> Result<T, StripeCallError> {
        let result = request.await;
        let outcome = match &result {
            Ok(_) => "success",
            Err(stripe::StripeError::Stripe(_, _)) => "refused",
            Err(_) => "error",
        };
        self.metrics
            .stripe_requests
            .get_or_create(&StripeLabels { operation: operation.into(), result: outcome.into() })
            .inc();
        result.map_err(|err| match err {
            stripe::StripeError::Stripe(errors, status) => StripeCallError::Refused {
                operation,
                status,
                message: errors.message.clone().unwrap_or_else(|| format!("{:?}", errors.type_)),
            },
            other => StripeCallError::Failed { operation, message: other.to_string() },
        })
    }

    /// The price with this lookup key, if one exists.
    pub async fn find_price(&self, lookup_key: &str) -> Result<Option<String>, StripeCallError> {
        let request = stripe_product::price::ListPrice::new().lookup_keys(vec![lookup_key.to_string()]).limit(1);
        let list = self.call("list_prices", request.send(&self.client)).await?;
        Ok(list.data.into_iter().next().map(|p| p.id.to_string()))
    }

    /// Creates the product and recurring price of a plan, found again by its lookup key.
    pub async fn create_price(
        &self,
        plan: &str,
        display_name: &str,
        price: &crate::api::Price,
        lookup_key: &str,
    ) -> Result<String, StripeCallError> {
        use stripe_product::price::{
            CreatePrice, CreatePriceProductData, CreatePriceRecurring, CreatePriceRecurringInterval,
        };
        let interval = match price.interval {
            crate::api::BillingInterval::Month => CreatePriceRecurringInterval::Month,
            crate::api::BillingInterval::Year => CreatePriceRecurringInterval::Year,
        };
        let metadata: HashMap<String, String> = [(keys::META_PLAN.to_string(), plan.to_string())].into();
        let mut product = CreatePriceProductData::new(display_name);
        product.metadata = Some(metadata.clone());
        let currency: stripe_types::Currency = price.currency.parse().unwrap_or(stripe_types::Currency::USD);
        let request = CreatePrice::new(currency)
            .unit_amount(price.amount_cents)
            .recurring(CreatePriceRecurring::new(interval))
            .lookup_key(lookup_key)
            .product_data(product)
            .metadata(metadata);
        let send = request.customize().request_strategy(idempotent(&keys::price(lookup_key))?).send(&self.client);
        Ok(self.call("create_price", send).await?.id.to_string())
    }

    /// Customers with this email that the operator created for this organization.
    pub async fn find_customer(&self, email: &str, organization_uid: &str) -> Result<Option<String>, StripeCallError> {
        let request = stripe_core::customer::ListCustomer::new().email(email).limit(100);
        let list = self.call("list_customers", request.send(&self.client)).await?;
        Ok(list
            .data
            .into_iter()
            .find(|c| {
                c.metadata.as_ref().and_then(|m| m.get(keys::META_ORGANIZATION_UID)).map(String::as_str)
                    == Some(organization_uid)
            })
            .map(|c| c.id.to_string()))
    }

    pub async fn create_customer(
        &self,
        email: &str,
        name: &str,
        metadata: HashMap<String, String>,
        idempotency_key: &str,
    ) -> Result<String, StripeCallError> {
        let request = stripe_core::customer::CreateCustomer::new().email(email).name(name).metadata(metadata);
        let send = request.customize().request_strategy(idempotent(idempotency_key)?).send(&self.client);
        Ok(self.call("create_customer", send).await?.id.to_string())
    }

    pub async fn update_customer_email(&self, customer: &str, email: &str) -> Result<(), StripeCallError> {
        let request = stripe_core::customer::UpdateCustomer::new(customer).email(email);
        self.call("update_customer", request.send(&self.client)).await.map(|_| ())
    }

    /// Every subscription of the customer (any status), without their invoices.
    pub async fn customer_subscriptions(&self, customer: &str) -> Result<Vec<RemoteSubscription>, StripeCallError> {
        use stripe_billing::subscription::{ListSubscription, ListSubscriptionStatus};
        let request = ListSubscription::new().customer(customer).status(ListSubscriptionStatus::All).limit(100);
        let list = self.call("list_subscriptions", request.send(&self.client)).await?;
        Ok(list.data.into_iter().map(remote_subscription).collect())
    }

    /// The customer's live subscription that belongs to this Subscription object, if any.
    pub async fn find_subscription(
        &self,
        customer: &str,
        subscription_uid: &str,
    ) -> Result<(Option<RemoteSubscription>, Vec<RemoteSubscription>), StripeCallError> {
        let all = self.customer_subscriptions(customer).await?;
        let mine = all
            .iter()
            .filter(|s| s.metadata.get(META_SUBSCRIPTION_UID).map(String::as_str) == Some(subscription_uid))
            .find(|s| !s.ended())
            .cloned();
        Ok((mine, all))
    }

    pub async fn retrieve_subscription(&self, id: &str) -> Result<RemoteSubscription, StripeCallError> {
        let request =
            stripe_billing::subscription::RetrieveSubscription::new(id).expand(vec!["latest_invoice".to_string()]);
        Ok(remote_subscription(self.call("retrieve_subscription", request.send(&self.client)).await?))
    }

    pub async fn create_subscription(&self, new: NewSubscription<'_>) -> Result<RemoteSubscription, StripeCallError> {
        use stripe_billing::subscription::{CreateSubscription, CreateSubscriptionItems};
        let item = |price: &str| {
            let mut item = CreateSubscriptionItems::new();
            item.price = Some(price.to_string());
            item
        };
        let items: Vec<_> =
            std::iter::once(new.price).chain(new.metered.iter().map(String::as_str)).map(item).collect();
        let mut request = CreateSubscription::new()
            .customer(new.customer)
            .items(items)
            .metadata(new.metadata)
            .expand(vec!["latest_invoice".to_string()]);
        if let Some(days) = new.trial_days {
            request = request.trial_period_days(days);
        }
        let send = request.customize().request_strategy(idempotent(&new.idempotency_key)?).send(&self.client);
        Ok(remote_subscription(self.call("create_subscription", send).await?))
    }

    pub async fn change_price(&self, change: PriceChange<'_>) -> Result<RemoteSubscription, StripeCallError> {
        use super::items::ItemChange;
        use stripe_billing::subscription::{
            UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior as P,
        };
        let items: Vec<UpdateSubscriptionItems> = change
            .changes
            .iter()
            .map(|c| {
                let mut item = UpdateSubscriptionItems::new();
                match c {
                    ItemChange::Replace { id, price } => {
                        item.id = Some(id.clone());
                        item.price = Some(price.clone());
                    }
                    ItemChange::Add { price } => item.price = Some(price.clone()),
                    ItemChange::Remove { id } => {
                        item.id = Some(id.clone());
                        item.deleted = Some(true);
                    }
                }
                item
            })
            .collect();
        let proration = match change.proration {
            Proration::InvoiceNow => P::AlwaysInvoice,
            Proration::NextInvoice => P::CreateProrations,
            Proration::None => P::None,
        };
        let request = UpdateSubscription::new(change.subscription)
            .items(items)
            .proration_behavior(proration)
            .metadata(change.metadata)
            .expand(vec!["latest_invoice".to_string()]);
        let send = request.customize().request_strategy(idempotent(&change.idempotency_key)?).send(&self.client);
        Ok(remote_subscription(self.call("update_subscription", send).await?))
    }

    /// Cancels at once (deletion, or a move to an unbilled plan).
    pub async fn cancel_subscription(&self, id: &str) -> Result<RemoteSubscription, StripeCallError> {
        let request = stripe_billing::subscription::CancelSubscription::new(id);
        Ok(remote_subscription(self.call("cancel_subscription", request.send(&self.client)).await?))
    }

    /// Ends the subscription when the paid period ends (a downgrade to an unbilled plan).
    pub async fn cancel_at_period_end(&self, id: &str, cancel: bool) -> Result<RemoteSubscription, StripeCallError> {
        let request = stripe_billing::subscription::UpdateSubscription::new(id).cancel_at_period_end(cancel);
        Ok(remote_subscription(self.call("update_subscription", request.send(&self.client)).await?))
    }
}

fn metered(price: &stripe_shared::Price) -> bool {
    price.recurring.as_ref().is_some_and(|r| r.usage_type == stripe_shared::RecurringUsageType::Metered)
}

fn remote_subscription(s: stripe_shared::Subscription) -> RemoteSubscription {
    // The flat price is the licensed item; metered items (usage) sit beside it.
    let item = s.items.data.iter().find(|i| !metered(&i.price)).or(s.items.data.first());
    let items = s
        .items
        .data
        .iter()
        .map(|i| super::items::CurrentItem {
            id: i.id.to_string(),
            price: i.price.id.to_string(),
            metered: metered(&i.price),
        })
        .collect();
    let (latest_invoice_id, latest_invoice) = match s.latest_invoice {
        Some(Expandable::Object(invoice)) => {
            (invoice.id.as_ref().map(|i| i.to_string()), Some(remote_invoice(*invoice)))
        }
        Some(Expandable::Id(id)) => (id.map(|id| id.to_string()), None),
        None => (None, None),
    };
    RemoteSubscription {
        id: s.id.to_string(),
        customer: match s.customer {
            Expandable::Id(id) => id.to_string(),
            Expandable::Object(c) => c.id.to_string(),
        },
        status: s.status.as_str().to_string(),
        trial_start: s.trial_start,
        trial_end: s.trial_end,
        current_period_start: item.map(|i| i.current_period_start),
        current_period_end: item.map(|i| i.current_period_end),
        item_id: item.map(|i| i.id.to_string()),
        price_id: item.map(|i| i.price.id.to_string()),
        items,
        cancel_at_period_end: s.cancel_at_period_end,
        metadata: s.metadata,
        latest_invoice,
        latest_invoice_id,
    }
}

fn remote_invoice(i: stripe_shared::Invoice) -> RemoteInvoice {
    RemoteInvoice {
        id: i.id.map(|id| id.to_string()).unwrap_or_default(),
        number: i.number,
        status: i.status.map(|s| s.as_str().to_string()).unwrap_or_else(|| "draft".into()),
        currency: i.currency.to_string(),
        amount_due: i.amount_due,
        amount_paid: i.amount_paid,
        period_start: i.period_start,
        period_end: i.period_end,
        created: i.created,
        hosted_url: i.hosted_invoice_url,
    }
}
