//! The OpenAPI 3.1 document of `/v1`, generated from the handlers' own annotations and types (utoipa), served
//! at `/v1/openapi.json` and committed as `openapi/v1.json`; a unit test fails when the two differ
//! (`make openapi` rewrites the file).

use super::routes::{audit, billing, keys, organization, usage};
use super::{Problem, views};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "apiKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("atp_live_…")
                    .description(Some("An organization API key: Authorization: Bearer atp_live_…"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "kubernetesToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token the Kubernetes API server accepts (TokenReview): the caller's role in the organization applies",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    crate::http::signin::SESSION_COOKIE,
                    "A web session (sign in at /auth/login). Changes also need the session's X-CSRF-Token.",
                ),
            )),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Atlantiplex tenant API", version = "v1",
        description = "An organization's data, API keys and usage. Errors are RFC 9457 problem+json naming the rule, the field and the fix. Rate limits per plan: RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset on every answer, 429 with Retry-After."),
    paths(
        organization::get_organization, organization::members, organization::teams,
        billing::billing, usage::usage, usage::ingest, audit::audit,
        keys::list, keys::create, keys::revoke, crate::http::signin::routes::session,
    ),
    components(schemas(Problem, views::OrganizationView, views::UsageReportView)),
    modifiers(&Security),
)]
pub struct ApiDoc;

/// The document as committed: pretty JSON with a final newline.
pub fn document() -> String {
    let json = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    format!("{json}\n")
}

pub async fn serve() -> Json<serde_json::Value> {
    Json(serde_json::to_value(ApiDoc::openapi()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/v1.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == super::document(),
            "openapi/v1.json differs from the handlers' document: run `make openapi` and commit the result"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_route() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().unwrap();
        for path in
            ["/v1/organizations/{org}", "/v1/organizations/{org}/api-keys/{id}", "/v1/organizations/{org}/usage"]
        {
            assert!(paths.contains_key(path), "{path} missing");
        }
    }
}
