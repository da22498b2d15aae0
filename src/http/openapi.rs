//! The OpenAPI 3.1 document, derived from the code: each module of the edge
//! lists its annotated handlers in its own `Api`, and this file gathers them
//! and adds what holds for every operation (security schemes, the problem
//! responses the shared extractors and middleware can give).
//!
//! Served at `/api/v1/openapi.json`, shown at `/api/docs/`, printed by
//! `emporium openapi`; `docs/openapi.json` is a committed copy a test keeps
//! current.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::web;
use actix_web::HttpResponse;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    Content, OpenApi as Document, Ref, RefOr, Response, ResponseBuilder, Schema,
};
use utoipa::{Modify, OpenApi};

use super::error::PROBLEM_JSON;
use super::{
    addresses, admin, api_keys, auth, cart_shipping, carts, catalog, fulfilments, guest_checkout,
    health, images, media, metrics, orders, payments, promotions, recommendations, refunds,
    returns, shipping, stock, tax, variants, webhooks,
};

/// The document's route, inside the `/api/v1` scope.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/openapi.json").route(web::get().to(document)));
}

/// The page's route, at the root.
pub fn page_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/docs").route(web::get().to(docs_page)))
        .service(web::resource("/api/docs/redoc.standalone.js").route(web::get().to(docs_script)));
}

/// The operations of this module.
#[derive(OpenApi)]
#[openapi(paths(document, docs_page, docs_script))]
struct OwnApi;

/// The root of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Emporium API",
        description = "E-commerce backend: accounts, catalog, orders, payments and \
            recommendations. Errors are RFC 9457 problem details with a stable `code`.",
        license(name = "MIT")
    ),
    nest(
        (path = "/api/v1", api = auth::Api),
        (path = "/api/v1", api = api_keys::Api),
        (path = "/api/v1", api = addresses::Api),
        (path = "/api/v1", api = catalog::Api),
        (path = "/api/v1", api = variants::Api),
        (path = "/api/v1", api = images::Api),
        (path = "/api/v1", api = stock::Api),
        (path = "/api/v1", api = recommendations::Api),
        (path = "/api/v1", api = orders::Api),
        (path = "/api/v1", api = fulfilments::Api),
        (path = "/api/v1", api = returns::Api),
        (path = "/api/v1", api = carts::Api),
        (path = "/api/v1", api = cart_shipping::Api),
        (path = "/api/v1", api = guest_checkout::Api),
        (path = "/api/v1", api = promotions::Api),
        (path = "/api/v1", api = shipping::Api),
        (path = "/api/v1", api = tax::Api),
        (path = "/api/v1", api = payments::Api),
        (path = "/api/v1", api = refunds::Api),
        (path = "/api/v1", api = webhooks::Api),
        (path = "/api/v1", api = admin::Api),
    ),
    components(schemas(
        super::error::Problem,
        crate::domain::validation::FieldError,
        crate::domain::catalog::facets::Facets,
        crate::domain::events::CloudEventEnvelope,
        crate::domain::events::CustomerData,
        crate::domain::events::ProductData,
        crate::domain::events::VariantStockData,
        crate::domain::events::OrderData,
        crate::domain::events::OrderLineData,
        crate::domain::events::FulfilmentData,
        crate::domain::events::LineQuantityData,
        crate::domain::events::PaymentData,
        crate::domain::events::RefundData,
        crate::domain::events::ReturnData
    )),
    tags(
        (name = "auth", description = "Accounts and JWT tokens"),
        (name = "catalog", description = "Categories and products"),
        (name = "stock", description = "Stock locations, per-location stock and the movement ledger (admins)"),
        (name = "recommendations", description = "Similar products, bought together, for you"),
        (name = "carts", description = "Server-side carts: a customer's, or a guest's opened by its token"),
        (name = "promotions", description = "Discount codes (admins)"),
        (name = "shipping", description = "Shipping zones and methods (admins)"),
        (name = "tax", description = "Tax classes and rates (admins)"),
        (name = "orders", description = "Placing and moving orders"),
        (name = "payments", description = "Paying orders, refunds, provider webhooks"),
        (name = "webhooks", description = "Subscriptions to the shop's events, signed as Standard Webhooks (admins, or keys with webhooks:manage)"),
        (name = "admin", description = "Operators' introspection"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
pub struct ApiDoc;

/// The whole document: the API's operations, the root ones (health,
/// metrics), and what holds for every operation.
pub fn build() -> Document {
    let mut doc = ApiDoc::openapi();
    doc.merge(health::Api::openapi());
    doc.merge(media::Api::openapi());
    doc.merge(metrics::Api::openapi());
    doc.merge(OwnApi::openapi());
    CommonResponses.modify(&mut doc);
    doc
}

/// The document as served and committed.
pub fn document_json() -> String {
    // A derived document always serialises.
    #[allow(clippy::expect_used)]
    build()
        .to_pretty_json()
        .expect("the OpenAPI document serialises")
}

/// Built once: the document depends on the code only.
static DOCUMENT: LazyLock<String> = LazyLock::new(document_json);

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(DOCUMENT.as_str())
}

/// Redoc's standalone bundle, vendored (assets/redoc/README.md gives its
/// version, digest and licence): the page works offline and cannot change
/// under us.
const REDOC_JS: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");

/// What the page may load: its own script and the document, nothing from
/// elsewhere. Redoc's styles are injected at run time (`'unsafe-inline'`
/// for styles only) and its search runs in a worker built from a blob.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; \
    base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A page pointing the vendored Redoc at the document.
const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Emporium API</title>
</head>
<body>
  <redoc spec-url="/api/v1/openapi.json"></redoc>
  <script src="/api/docs/redoc.standalone.js"></script>
</body>
</html>
"#;

/// A human-readable rendering of this document (Redoc, served from this
/// binary), under a strict Content-Security-Policy.
#[utoipa::path(get, path = "/api/docs", tag = "operations", operation_id = "api_docs",
    responses((status = 200, description = "An HTML page", content_type = "text/html", body = String)))]
async fn docs_page() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, DOCS_CSP))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(DOCS_PAGE)
}

/// The page's script: Redoc's vendored standalone bundle, cached for a day.
#[utoipa::path(get, path = "/api/docs/redoc.standalone.js", tag = "operations",
    operation_id = "api_docs_script",
    responses((status = 200, description = "Redoc's standalone bundle", content_type = "text/javascript", body = String)))]
async fn docs_script() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"))
        .body(REDOC_JS)
}

/// Patch bodies that must change at least one field.
const PATCHES_OF_AT_LEAST_ONE_FIELD: &[&str] = &[
    "UpdateUserRequest",
    "ProductPatchRequest",
    "VariantPatchRequest",
    "ImagePatchRequest",
];

/// Adds, to every operation, the responses that shared code can give
/// whatever the handler: credentials refused by the authentication
/// middleware, bodies refused by the JSON extractor, NUL characters refused
/// before routing, overload and timeouts; and the bearer scheme.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /api/v1/auth/login` or `/refresh`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("emp_sk_…")
                    .description(Some(
                        "An API key from `POST /api/v1/api-keys/` (admins), sent as a bearer token. \
                         It opens only the routes its scopes name, as an admin would use them: \
                         `catalog:read` — GET under /products, /categories, /stock-locations, \
                         /stock-movements; `catalog:write` — POST, PUT, PATCH and DELETE under \
                         those; `orders:read` — GET /orders, /orders/{id}, its fulfilments and \
                         returns, and /payments, /payments/{id}, its events and refunds; \
                         `orders:write` — POST /orders/{id}/ship and /deliver, the \
                         fulfilment routes, and a return's approve, reject, close and receive; \
                         `webhooks:manage` — reserved. Every other route (accounts, users, keys, \
                         carts, checkout, refunds, rules, reports) is 403 for a key.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`observability.metrics_token`, when set."))
                    .build(),
            ),
        );
        for name in PATCHES_OF_AT_LEAST_ONE_FIELD {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(*name) {
                // `#[schema(min_properties = 1)]` comes out as
                // `maxProperties` in utoipa-gen 5.5, so it is set here.
                object.min_properties = Some(1);
            }
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            let api = path.starts_with("/api/v1/");
            for operation in operations(item) {
                add_common(operation, api);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.patch.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}

fn add_common(operation: &mut Operation, api: bool) {
    let has_body = operation.request_body.is_some();
    if api {
        note(
            operation,
            "400",
            "`invalid_query`: a parameter is invalid, or the path or query holds a NUL character",
        );
        note(
            operation,
            "401",
            "`not_authenticated`: credentials are required; `invalid_token`: the \
             bearer token sent is invalid, expired or revoked",
        );
        note(
            operation,
            "503",
            "`service_overloaded` (with `Retry-After`) or `service_unavailable`",
        );
        note(operation, "504", "`timeout`: the request took too long");
    }
    let takes_key = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| p.name == "Idempotency-Key");
    if takes_key {
        note(
            operation,
            "400",
            "`invalid_header`: the Idempotency-Key is not 1-255 printable ASCII characters",
        );
        note(
            operation,
            "409",
            "`idempotency_conflict`: a request with this key is still running",
        );
        note(
            operation,
            "422",
            "`idempotency_error`: the key was used with another request",
        );
    }
    if has_body {
        note(operation, "400", "`malformed_json`: the body is not JSON");
        note(
            operation,
            "413",
            "`payload_too_large`: the body is over the limit",
        );
        note(
            operation,
            "415",
            "`unsupported_media_type`: the body is not `application/json`",
        );
        note(
            operation,
            "422",
            "`validation_error`: fields are missing, of the wrong type, unknown or \
             invalid; `errors` names each",
        );
    }
    for (status, response) in operation.responses.responses.iter_mut() {
        if let RefOr::T(response) = response {
            if status.starts_with('4') || status.starts_with('5') {
                give_problem_body(response);
            }
        }
    }
}

/// Adds `text` to the description of the `status` response, creating it.
fn note(operation: &mut Operation, status: &str, text: &str) {
    let responses = &mut operation.responses.responses;
    match responses.get_mut(status) {
        Some(RefOr::T(response)) => {
            if !response.description.contains(text) {
                if response.description.is_empty() {
                    response.description = text.to_owned();
                } else {
                    response.description = format!("{}; {text}", response.description);
                }
            }
        }
        Some(RefOr::Ref(_)) => {}
        None => {
            responses.insert(
                status.to_owned(),
                RefOr::T(ResponseBuilder::new().description(text).build()),
            );
        }
    }
}

/// Error responses are problem details unless a handler said otherwise.
fn give_problem_body(response: &mut Response) {
    if response.content.is_empty() {
        response.content.insert(
            PROBLEM_JSON.to_owned(),
            Content::new(Some(Ref::from_schema_name("Problem"))),
        );
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    use super::*;

    #[test]
    fn the_vendored_viewer_is_the_one_its_readme_names() {
        let digest = hex::encode(Sha256::digest(REDOC_JS));
        let readme = include_str!("../../assets/redoc/README.md");
        assert!(
            readme.contains(&digest),
            "assets/redoc/redoc.standalone.js changed (sha256 {digest}): update its README"
        );
    }

    #[test]
    fn the_docs_page_loads_nothing_from_elsewhere() {
        assert!(!DOCS_PAGE.contains("http"), "{DOCS_PAGE}");
        assert!(DOCS_CSP.starts_with("default-src 'none'"));
        assert!(!DOCS_CSP.contains("script-src 'self' 'unsafe"));
    }

    #[test]
    fn patches_need_at_least_one_field() {
        let doc = serde_json::to_value(build()).expect("serialises");
        for name in PATCHES_OF_AT_LEAST_ONE_FIELD {
            let schema = &doc["components"]["schemas"][name];
            assert_eq!(schema["minProperties"], 1, "{name}");
            assert!(schema.get("maxProperties").is_none(), "{name}");
        }
    }

    #[test]
    fn every_operation_has_an_id_a_tag_and_problem_bodies_for_errors() {
        let doc = build();
        let mut seen = std::collections::HashSet::new();
        for (path, mut item) in doc.paths.paths {
            for op in operations(&mut item) {
                let id = op.operation_id.clone().unwrap_or_default();
                assert!(!id.is_empty(), "{path} has an operation without an id");
                assert!(seen.insert(id.clone()), "operation id {id} is used twice");
                assert!(
                    op.tags.as_ref().is_some_and(|t| !t.is_empty()),
                    "{id} has no tag"
                );
                for (status, response) in &op.responses.responses {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if status.starts_with('4') {
                        assert!(
                            response.content.contains_key(PROBLEM_JSON),
                            "{id} {status} is not a problem"
                        );
                    }
                }
            }
        }
    }
}
