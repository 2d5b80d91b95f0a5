//! The console: server-rendered pages of the tenant API for an organization's people (overview,
//! billing, usage, team) and for the platform's admins (organizations, revenue, adoption, usage).
//!
//! - Signed in through the identity provider (`http::signin`); the pages of an organization admit the
//!   session as the tenant API does (`gate`), with the one role table deciding what each person sees.
//! - Changes go to the Kubernetes API with the person's own token (`writes`): RBAC and the admission
//!   webhook decide, and their message is what the page shows. The console has no policy of its own.
//! - Templates are compiled with the binary (askama, `templates/console/`); every asset is embedded
//!   (`assets`); pages work with JavaScript off and htmx only makes some refreshes partial.
//! - The figures are pure (`crate::revenue`, `chart`); the platform figures are computed at most every
//!   [`platform::REFRESH`] and shared by every page view (`platform`).

pub mod assets;
pub mod chart;
pub mod error;
pub mod gate;
pub mod layout;
pub mod pages;
pub mod platform;
pub mod settings;
pub mod writes;

use crate::http::App;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::routing::{get, post};
use std::sync::Arc;

/// The console's own state in the tenant API.
pub struct Console {
    /// Creates Billing Portal sessions (`--stripe-secret`), when configured.
    pub stripe: Option<stripe::Client>,
    pub platform: platform::PlatformCache,
}

impl Console {
    pub fn new(args: &settings::ConsoleArgs) -> anyhow::Result<Self> {
        let stripe = match &args.stripe_secret {
            Some(key) => {
                let mut builder = stripe::ClientBuilder::new(key);
                if let Some(base) = &args.stripe_api_base {
                    builder = builder.url(base);
                }
                Some(builder.timeout(std::time::Duration::from_secs(20)).build()?)
            }
            None => None,
        };
        Ok(Console { stripe, platform: platform::PlatformCache::default() })
    }
}

/// The console's routes (under `/console`), for the tenant API's router.
pub fn router(app: Arc<App>) -> Router<Arc<App>> {
    let organization = Router::new()
        .route("/console/orgs/{org}", get(pages::overview::page))
        .route("/console/orgs/{org}/billing", get(pages::billing::page))
        .route("/console/orgs/{org}/billing/portal", post(pages::billing::portal))
        .route("/console/orgs/{org}/billing/plan", post(pages::billing::change_plan))
        .route("/console/orgs/{org}/usage", get(pages::usage::page))
        .route("/console/orgs/{org}/team", get(pages::team::page))
        .route("/console/orgs/{org}/team/members", post(pages::team::add_member))
        .route("/console/orgs/{org}/team/members/remove", post(pages::team::remove_member))
        .route("/console/orgs/{org}/team/teams", post(pages::team::create_team))
        .route("/console/orgs/{org}/team/teams/delete", post(pages::team::delete_team))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), gate::organization));
    let signed_in = Router::new()
        .route("/console", get(pages::home::page))
        .route("/console/admin", get(pages::admin::organizations))
        .route("/console/admin/revenue", get(pages::admin::revenue))
        .route_layer(axum::middleware::from_fn_with_state(app, gate::signed_in));
    Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/console") }))
        .route("/console/assets/{file}", get(assets::serve))
        .merge(organization)
        .merge(signed_in)
        .layer(axum::middleware::map_response(with_security_headers))
}

async fn with_security_headers(mut response: axum::response::Response) -> axum::response::Response {
    security_headers(response.headers_mut());
    response
}

/// Scripts only from this origin; styles also inline (the organization's colours, chart fallbacks);
/// images also from https (an organization's own logo); no framing.
pub fn security_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; \
             frame-ancestors 'none'; form-action 'self' https:; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
