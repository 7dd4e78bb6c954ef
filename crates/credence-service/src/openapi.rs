//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Credence decision service", description = "Real-time credit decisions with a durable, hash-chained decision log."),
    paths(
        crate::routes::decisions::decide,
        crate::routes::decisions::decide_by_alias,
        crate::routes::decisions::list_decisions,
        crate::routes::decisions::get_decision,
        crate::routes::decisions::replay_decision,
        crate::routes::strategies::upload_strategy,
        crate::routes::strategies::list_strategies,
        crate::routes::strategies::active_strategy,
        crate::routes::strategies::get_strategy,
        crate::routes::strategies::approve_strategy,
        crate::routes::strategies::activate_strategy,
        crate::routes::strategies::rollback_strategy,
        crate::routes::strategies::rollback_strategy_named,
        crate::routes::strategies::list_products,
        crate::routes::strategies::start_shadow,
        crate::routes::strategies::start_ramp,
        crate::routes::strategies::list_rollouts,
        crate::routes::strategies::act_on_rollout,
        crate::routes::strategies::shadow_report,
        crate::routes::decisions::decide_for_strategy,
        crate::routes::keys::create_key,
        crate::routes::keys::list_keys,
        crate::routes::keys::revoke_key,
        crate::routes::audit::audit_events,
        crate::routes::webhooks::create_webhook,
        crate::routes::webhooks::list_webhooks,
        crate::routes::webhooks::delete_webhook,
        crate::routes::cases::list_cases,
        crate::routes::cases::get_case,
        crate::routes::cases::act_on_case,
        crate::routes::cases::claim_next_case,
        crate::routes::accounts::open_account,
        crate::routes::accounts::list_accounts,
        crate::routes::accounts::get_account,
        crate::routes::accounts::list_account_events,
        crate::routes::accounts::post_account_events,
        crate::routes::accounts::account_drawdown,
        crate::routes::accounts::review_account,
        crate::routes::accounts::set_account_status,
        crate::routes::monitoring::monitoring,
        crate::routes::ops::healthz,
        crate::routes::ops::readyz,
        crate::routes::ops::metrics_text,
        crate::routes::ops::openapi_json,
        crate::workbench::queue::queue_page,
        crate::workbench::session::login_page,
        crate::workbench::session::login,
        crate::workbench::session::logout,
        crate::workbench::stats::stats_page,
        crate::workbench::stats::monitoring_page,
        crate::workbench::shadow::shadow_page,
        crate::workbench::case::case_page,
        crate::workbench::case::reveal,
        crate::workbench::case::act,
        crate::workbench::stylesheet,
    ),
    components(schemas(crate::error::ApiError, crate::error::ErrorCode, crate::auth::Role)),
    modifiers(&BearerKeys, &StandardErrors)
)]
struct ApiDoc;

/// Adds to every operation the error answers the layers around its handler can give, where
/// the handler's annotation does not already say them: the listener and the deadline (400,
/// 408, 431), authentication and roles (401, 403) where a key is required, a missing
/// resource (404) where the path names one, a conflicting state (409) on changes, the body's
/// limits (413, 415, 422) where there is a body, and storage (503). JSON operations answer
/// them as `ApiError`.
struct StandardErrors;

impl Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ApiError")))
                        .build(),
                )
                .build()
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let workbench = path.starts_with("/review");
            let names_a_resource = path.contains('{');
            let changes = [
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.get, false),
            ];
            for (operation, is_change) in changes {
                let Some(operation) = operation else {
                    continue;
                };
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let has_body = operation.request_body.is_some() || is_change;
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, description: &str| {
                    responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(description).into());
                };
                add(
                    "400",
                    "The request, its parameters or its body are not valid",
                );
                add(
                    "408",
                    "The request did not complete within request_timeout_ms",
                );
                add("431", "The request's headers are over the listener's limit");
                if workbench {
                    // A form the page handlers cannot read is refused as text.
                    if is_change {
                        for status in ["415", "422"] {
                            let response =
                                responses.entry(status.to_string()).or_insert_with(|| {
                                    ResponseBuilder::new()
                                        .description("The form cannot be read")
                                        .build()
                                        .into()
                                });
                            if let utoipa::openapi::RefOr::T(response) = response {
                                response
                                    .content
                                    .entry("text/plain".to_string())
                                    .or_insert_with(|| ContentBuilder::new().build());
                            }
                        }
                    }
                    continue;
                }
                add(
                    "503",
                    "Not available now: no active strategy, storage unavailable, shutting down",
                );
                if secured {
                    add(
                        "401",
                        "No key, or a key that is unknown, revoked or expired",
                    );
                    add("403", "The key's roles do not allow this");
                }
                if names_a_resource {
                    add("404", "The resource the path names does not exist");
                }
                if is_change {
                    add("409", "The resource is not in a state that allows this");
                }
                if has_body {
                    add(
                        "413",
                        "The body is over the limit (max_body_bytes, max_package_bytes)",
                    );
                    add(
                        "415",
                        "The body is not of a media type this operation takes",
                    );
                    add("422", "The body is well-formed but not acceptable");
                }
            }
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn document_json() -> serde_json::Value {
        serde_json::from_str(&document()).unwrap()
    }

    /// The shape of a template with its parameter names blanked: `/v1/decisions/{}`.
    fn template_shape(path: &str) -> String {
        let mut shape = String::new();
        let mut in_name = false;
        for c in path.chars() {
            match c {
                '{' => {
                    in_name = true;
                    shape.push('{');
                }
                '}' => {
                    in_name = false;
                    shape.push('}');
                }
                _ if in_name => {}
                _ => shape.push(c),
            }
        }
        shape
    }

    #[test]
    fn parameters_sit_where_the_routes_read_them() {
        let document = document_json();
        let paths = document["paths"].as_object().unwrap();
        let mut shapes = std::collections::BTreeMap::new();
        for (path, item) in paths {
            if let Some(previous) = shapes.insert(template_shape(path), path.clone()) {
                panic!("{path} and {previous} are the same template");
            }
            for (method, operation) in item.as_object().unwrap() {
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    let name = parameter["name"].as_str().unwrap();
                    let place = parameter["in"].as_str().unwrap();
                    let in_template = path.contains(&format!("{{{name}}}"));
                    assert_eq!(
                        place == "path",
                        in_template,
                        "{method} {path}: parameter {name} is declared in {place}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_route_is_documented_with_its_error_answers() {
        let document = document_json();
        let paths = document["paths"].as_object().unwrap();
        for expected in [
            "/openapi.json",
            "/review",
            "/review/login",
            "/review/cases/{id}/act",
            "/v1/flows/{flow}/decisions",
            "/v1/decisions/{id}",
        ] {
            assert!(paths.contains_key(expected), "{expected} is not documented");
        }
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                let responses = operation["responses"].as_object().unwrap();
                let secured = operation["security"]
                    .as_array()
                    .is_some_and(|s| !s.is_empty());
                let mut required = vec!["400", "408", "431"];
                if secured {
                    required.extend(["401", "403", "503"]);
                }
                if method == "post" && !path.starts_with("/review") {
                    required.extend(["413", "415", "422"]);
                }
                for status in required {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} does not document {status}"
                    );
                }
            }
        }
        // `details` may be null.
        let details = &document["components"]["schemas"]["ApiError"]["properties"]["details"];
        assert!(details.to_string().contains("null"), "{details}");
    }
}

#[cfg(test)]
mod record_schema_tests {
    use super::*;

    /// Deciding answers with the decision record, described field by field: what is always
    /// there is required, what may be absent (or written before versions) is not.
    #[test]
    fn decisions_answer_with_the_decision_record_schema() {
        let document: serde_json::Value = serde_json::from_str(&document()).unwrap();
        let answer = &document["paths"]["/v1/flows/{flow}/decisions"]["post"]["responses"]["200"]
            ["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(answer, "#/components/schemas/DecisionRecord");
        let schema = &document["components"]["schemas"]["DecisionRecord"];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in ["id", "outcome", "strategy_version", "trace", "as_of"] {
            assert!(required.contains(&field), "{field} required: {required:?}");
        }
        for field in ["record_version", "referral", "data", "shadow", "limit"] {
            assert!(!required.contains(&field), "{field} optional: {required:?}");
        }
        assert!(document["components"]["schemas"]["Outcome"]["enum"].is_array());
    }
}
