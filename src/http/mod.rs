//! The edge: actix-web routes, extractors, middleware and the single error
//! mapping. Handlers validate input, send one message to one actor, and map
//! the reply.

pub mod addresses;
pub mod admin;
pub mod api_keys;
pub mod auth;
pub mod cart_shipping;
pub mod carts;
pub mod catalog;
pub mod compression;
pub mod drain;
pub mod error;
pub mod extract;
pub mod fulfilments;
pub mod guest_checkout;
pub mod health;
pub mod idempotency;
pub mod images;
pub mod items;
pub mod media;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod orders;
pub mod pagination;
pub mod payments;
pub mod promotions;
pub mod rate_limit;
pub mod recommendations;
pub mod refunds;
pub mod returns;
pub mod shipping;
pub mod state;
pub mod stock;
pub mod tax;
pub mod variants;
pub mod webhooks;

use actix_web::middleware::from_fn;
use actix_web::web;

pub use error::ApiError;
pub use state::AppState;

/// Every route: health checks at the root, the API under `/api/v1`.
/// Routes are declared without a trailing slash; `NormalizePath` trims it
/// from requests so both forms work.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::routes)
        .configure(openapi::page_routes)
        .configure(media::routes)
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(extract::authenticate))
                .configure(openapi::routes)
                .configure(catalog::collection_routes)
                .configure(addresses::routes)
                .configure(auth::routes)
                .configure(api_keys::routes)
                .configure(recommendations::routes)
                .configure(catalog::item_routes)
                .configure(stock::routes)
                .configure(variants::routes)
                .configure(images::routes)
                .configure(orders::routes)
                .configure(fulfilments::routes)
                .configure(returns::routes)
                .configure(cart_shipping::routes)
                .configure(guest_checkout::routes)
                .configure(carts::routes)
                .configure(promotions::routes)
                .configure(shipping::routes)
                .configure(tax::routes)
                .configure(payments::routes)
                .configure(refunds::routes)
                .configure(webhooks::routes)
                .configure(admin::routes),
        );
}

/// The answer for any path no route matches.
pub async fn not_found() -> Result<actix_web::HttpResponse, ApiError> {
    Err(ApiError::NotFound("route"))
}
