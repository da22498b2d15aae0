//! `/api/v1/cart/shipping…` and `/api/v1/carts/{id}/shipping…`: the
//! shipping methods offered for the caller's cart or a guest cart, and the
//! one it chose with the address it goes to.

use actix_web::web::{self, Data, Json};
use actix_web::HttpRequest;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::addresses::shipping_address_of;
use super::carts::guest;
use super::error::ApiError;
use super::extract::{Authenticated, QueryParams, ValidJson};
use super::state::AppState;
use crate::actors::carts::messages::CartOwner;
use crate::actors::carts::shipping::*;
use crate::domain::carts::CartView;
use crate::domain::orders::address::ShippingAddress;
use crate::domain::pricing::config::check_country;
use crate::domain::pricing::rules::{Destination, MethodQuote};
use crate::domain::validation::ValidationErrors;

/// Routes of this module (registered before the cart's own).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/cart/shipping-methods").route(web::get().to(methods)))
        .service(
            web::resource("/cart/shipping")
                .route(web::put().to(choose))
                .route(web::delete().to(clear)),
        )
        .service(web::resource("/carts/{id}/shipping-methods").route(web::get().to(guest_methods)))
        .service(
            web::resource("/carts/{id}/shipping")
                .route(web::put().to(guest_choose))
                .route(web::delete().to(guest_clear)),
        );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(methods, choose, clear, guest_methods, guest_choose, guest_clear))]
pub struct Api;

/// Where to quote for.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read by the document only; the handler parses the query
struct QuoteQuery {
    /// ISO 3166-1 alpha-2; absent: the cart's chosen address.
    country: Option<String>,
    /// Narrows zones that list postal-code prefixes.
    postal_code: Option<String>,
    /// For tax rates by region (e.g. a US state).
    region: Option<String>,
}

/// Body of `PUT /cart/shipping/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChooseRequest {
    /// A method offered for this cart at the address.
    method_id: uuid::Uuid,
    /// Where it goes; or give `address_id`.
    #[serde(default)]
    address: Option<ShippingAddress>,
    /// One of the caller's addresses (`/auth/me/addresses/`), copied.
    #[serde(default)]
    address_id: Option<uuid::Uuid>,
}

/// Body of `PUT /carts/{id}/shipping/`: a guest has no address book, so
/// the address is given inline (`address_id` is refused as unknown).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct GuestChooseRequest {
    /// A method offered for this cart at the address.
    method_id: uuid::Uuid,
    /// Where it goes.
    address: ShippingAddress,
}

/// The destination a quote query names (`None`: the cart's chosen address).
fn destination_of_query(req: &HttpRequest) -> Result<Option<Destination>, ApiError> {
    let params = QueryParams::from_request(req);
    let mut errors = ValidationErrors::new();
    let destination = params.get("country").map(|country| Destination {
        country: check_country(&mut errors, "country", country),
        postal_code: params
            .get("postal_code")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        region: params
            .get("region")
            .map(|r| r.trim().to_uppercase())
            .filter(|r| !r.is_empty()),
    });
    if destination.is_none() && params.get("postal_code").is_some() {
        errors.add("country", "required", "give country with postal_code");
    }
    errors.into_result().map_err(ApiError::InvalidQuery)?;
    Ok(destination)
}

/// The methods offered for `owner`'s cart at `destination`.
async fn quotes(
    state: &AppState,
    owner: CartOwner,
    destination: Option<Destination>,
) -> Result<Json<Vec<MethodQuote>>, ApiError> {
    let quotes = state
        .actors
        .carts
        .call(QuoteCartShipping { owner, destination })
        .await
        .map_err(|e| match ApiError::from(e) {
            // No destination at all is a bad query, not a bad body.
            ApiError::Validation(v) => ApiError::InvalidQuery(v),
            other => other,
        })?;
    Ok(Json(quotes))
}

/// The shipping methods offered for the caller's cart at a destination,
/// priced for its parcel (weight and subtotal after discount), cheapest
/// first. Empty when no zone covers the destination, the cart is empty,
/// or nothing in it ships.
#[utoipa::path(get, path = "/cart/shipping-methods", tag = "carts", operation_id = "cart_shipping_methods",
    security(("bearer" = [])),
    params(QuoteQuery),
    responses(
        (status = 200, description = "The offered methods", body = [MethodQuote]),
        (status = 400, description = "`invalid_query`: unknown country, or none given and none chosen"),
    ))]
async fn methods(
    req: HttpRequest,
    state: Data<AppState>,
    user: Authenticated,
) -> Result<Json<Vec<MethodQuote>>, ApiError> {
    let destination = destination_of_query(&req)?;
    quotes(&state, CartOwner::User(user.0.user_id), destination).await
}

/// Chooses the cart's shipping method and the address it goes to. The
/// cart then shows the method's price and the tax at that address, and
/// checkout uses both unless its body says otherwise.
#[utoipa::path(put, path = "/cart/shipping", tag = "carts", operation_id = "choose_cart_shipping",
    security(("bearer" = [])),
    request_body = ChooseRequest,
    responses(
        (status = 200, description = "The cart with its shipping", body = CartView),
        (status = 404, description = "`not_found`: `address_id` names no address of the caller's"),
        (status = 409, description = "`cart_empty`: nothing to ship yet"),
        (status = 422, description = "`validation_error`: bad address, neither or both of `address` and `address_id`; `no_shipping_to_destination`; `shipping_method_ineligible`: not offered for this cart there"),
    ))]
async fn choose(
    state: Data<AppState>,
    user: Authenticated,
    body: ValidJson<ChooseRequest>,
) -> Result<Json<CartView>, ApiError> {
    let ValidJson(b) = body;
    let user_id = user.0.user_id;
    let address = shipping_address_of(&state, user_id, b.address, b.address_id)
        .await
        .map_err(|e| match e {
            // Named as this body names them.
            ApiError::Validation(v) => ApiError::Validation(v.renamed(&[
                ("shipping_address_id", "address_id"),
                ("shipping_address", "address"),
            ])),
            other => other,
        })?;
    let view = state
        .actors
        .carts
        .call(SetCartShipping {
            owner: CartOwner::User(user_id),
            method_id: b.method_id,
            address,
        })
        .await?;
    Ok(Json(view))
}

/// Forgets the cart's shipping choice.
#[utoipa::path(delete, path = "/cart/shipping", tag = "carts", operation_id = "clear_cart_shipping",
    security(("bearer" = [])),
    responses((status = 200, description = "The cart", body = CartView)))]
async fn clear(state: Data<AppState>, user: Authenticated) -> Result<Json<CartView>, ApiError> {
    let view = state
        .actors
        .carts
        .call(ClearCartShipping(CartOwner::User(user.0.user_id)))
        .await?;
    Ok(Json(view))
}

/// The shipping methods offered for a guest cart at a destination, as
/// for the customer's cart.
#[utoipa::path(get, path = "/carts/{id}/shipping-methods", tag = "carts", operation_id = "guest_cart_shipping_methods",
    params(
        ("id" = String, Path, description = "The guest cart's id (a UUID)"),
        ("X-Cart-Token" = Option<String>, Header, description = "The cart's token; missing or wrong, the cart is `404`"),
        QuoteQuery,
    ),
    responses(
        (status = 200, description = "The offered methods", body = [MethodQuote]),
        (status = 400, description = "`invalid_query`: unknown country, or none given and none chosen"),
        (status = 404, description = "`not_found`: no such cart, or the token does not open it"),
    ))]
async fn guest_methods(
    req: HttpRequest,
    state: Data<AppState>,
    id: web::Path<String>,
) -> Result<Json<Vec<MethodQuote>>, ApiError> {
    let owner = guest(&req, &id)?;
    let destination = destination_of_query(&req)?;
    quotes(&state, owner, destination).await
}

/// Chooses a guest cart's shipping method and the address it goes to; the
/// guest checkout then uses both unless its body says otherwise.
#[utoipa::path(put, path = "/carts/{id}/shipping", tag = "carts", operation_id = "choose_guest_cart_shipping",
    params(
        ("id" = String, Path, description = "The guest cart's id (a UUID)"),
        ("X-Cart-Token" = Option<String>, Header, description = "The cart's token; missing or wrong, the cart is `404`"),
    ),
    request_body = GuestChooseRequest,
    responses(
        (status = 200, description = "The cart with its shipping", body = CartView),
        (status = 404, description = "`not_found`: no such cart, or the token does not open it"),
        (status = 409, description = "`cart_empty`: nothing to ship yet"),
        (status = 422, description = "`validation_error`: bad or missing address, `address_id` (guests have no address book); `no_shipping_to_destination`; `shipping_method_ineligible`"),
    ))]
async fn guest_choose(
    req: HttpRequest,
    state: Data<AppState>,
    id: web::Path<String>,
    body: ValidJson<GuestChooseRequest>,
) -> Result<Json<CartView>, ApiError> {
    let ValidJson(b) = body;
    let address = b
        .address
        .validate_at("address.")
        .map_err(ApiError::Validation)?;
    let owner = guest(&req, &id)?;
    let view = state
        .actors
        .carts
        .call(SetCartShipping {
            owner,
            method_id: b.method_id,
            address,
        })
        .await?;
    Ok(Json(view))
}

/// Forgets a guest cart's shipping choice.
#[utoipa::path(delete, path = "/carts/{id}/shipping", tag = "carts", operation_id = "clear_guest_cart_shipping",
    params(
        ("id" = String, Path, description = "The guest cart's id (a UUID)"),
        ("X-Cart-Token" = Option<String>, Header, description = "The cart's token; missing or wrong, the cart is `404`"),
    ),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "`not_found`: no such cart, or the token does not open it"),
    ))]
async fn guest_clear(
    req: HttpRequest,
    state: Data<AppState>,
    id: web::Path<String>,
) -> Result<Json<CartView>, ApiError> {
    let owner = guest(&req, &id)?;
    let view = state.actors.carts.call(ClearCartShipping(owner)).await?;
    Ok(Json(view))
}
