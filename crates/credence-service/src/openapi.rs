//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Credence decision service", description = "Real-time credit decisions with a durable, hash-chained decision log."),
    paths(
        crate::routes::decide,
        crate::routes::list_decisions,
        crate::routes::get_decision,
        crate::routes::replay_decision,
        crate::routes::upload_strategy,
        crate::routes::list_strategies,
        crate::routes::active_strategy,
        crate::routes::get_strategy,
        crate::routes::approve_strategy,
        crate::routes::activate_strategy,
        crate::routes::rollback_strategy,
        crate::routes::create_key,
        crate::routes::list_keys,
        crate::routes::revoke_key,
        crate::routes::audit_events,
        crate::routes::create_webhook,
        crate::routes::list_webhooks,
        crate::routes::delete_webhook,
        crate::routes::list_cases,
        crate::routes::get_case,
        crate::routes::act_on_case,
        crate::routes::open_account,
        crate::routes::list_accounts,
        crate::routes::get_account,
        crate::routes::list_account_events,
        crate::routes::post_account_events,
        crate::routes::account_drawdown,
        crate::routes::review_account,
        crate::routes::set_account_status,
        crate::routes::monitoring,
        crate::routes::healthz,
        crate::routes::readyz,
        crate::routes::metrics_text,
    ),
    components(schemas(crate::error::ApiError, crate::error::ErrorCode, crate::auth::Role)),
    modifiers(&BearerKeys)
)]
struct ApiDoc;

struct BearerKeys;

impl Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document as JSON text.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
