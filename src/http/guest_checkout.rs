//! `POST /api/v1/carts/{id}/checkout/`: a guest cart becomes an order that
//! belongs to no user, records the shopper's email, and is opened by the
//! `order_token` in the reply (`X-Order-Token` on `GET /orders/{id}/` and
//! `POST /payments/`).

use actix_web::http::StatusCode;
use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::carts::guest;
use super::error::ApiError;
use super::idempotency::{answer_created, send_once_then, IdempotentJson};
use super::rate_limit::{client_ip, throttle};
use super::state::AppState;
use crate::actors::carts::messages::{CartOwner, Checkout, Shopper};
use crate::actors::orders::messages::OrderView;
use crate::domain::idempotency::SavedResponse;
use crate::domain::orders::address::ShippingAddress;
use crate::domain::orders::guest::{guest_email, OrderTokenKey};
use crate::domain::validation::ValidationErrors;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/carts/{id}/checkout").route(web::post().to(checkout)));
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(checkout), components(schemas(GuestOrder)))]
pub struct Api;

/// Body of `POST /carts/{id}/checkout/`. A guest has no address book, so
/// `shipping_address_id` is refused (422 `unknown_field`) like any field
/// not listed here.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct GuestCheckoutRequest {
    /// Where the shop writes about the order; recorded on it.
    #[schema(example = "ann@example.com", max_length = 254)]
    email: String,
    /// Where the order goes; absent: the cart's choice (`PUT
    /// /carts/{id}/shipping/`).
    #[serde(default)]
    shipping_address: Option<ShippingAddress>,
    /// The shipping method; absent: the cart's choice.
    #[serde(default)]
    shipping_method_id: Option<Uuid>,
    /// The total the shopper was shown, in minor units: any other total
    /// places nothing (`409 total_changed`).
    #[serde(default)]
    #[schema(minimum = 0)]
    expected_total: Option<i64>,
}

/// A guest order as placed: the order, and the secret that opens it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GuestOrder {
    pub order: OrderView,
    /// Send it as `X-Order-Token` to read (`GET /orders/{id}/`) and pay
    /// (`POST /payments/`) the order. Derived from the order, never
    /// stored: a replay with the same `Idempotency-Key` answers the same
    /// token.
    pub order_token: String,
}

/// A placed order's answer with its token added, for the first answer and
/// each replay alike (the saved answer holds the order alone, so no table
/// holds the token). Other answers pass unchanged.
fn with_token(tokens: &OrderTokenKey, saved: SavedResponse) -> SavedResponse {
    if saved.status != StatusCode::CREATED.as_u16() {
        return saved;
    }
    let Ok(order) = serde_json::from_slice::<serde_json::Value>(&saved.body) else {
        return saved;
    };
    let Some(id) = order["id"].as_str().and_then(|id| Uuid::parse_str(id).ok()) else {
        return saved;
    };
    let reply = serde_json::json!({"order": order, "order_token": tokens.token(id)});
    match serde_json::to_vec(&reply) {
        Ok(body) => SavedResponse { body, ..saved },
        Err(_) => saved,
    }
}

/// Turns a guest cart into an order, exactly once, under the customer
/// checkout's rules: stock reserved, the order priced now with shipping
/// and tax, the cart emptied. The order belongs to no user and records
/// `email`; the reply's `order_token` (shown with every answer of this
/// key, stored nowhere) opens it. With the same `Idempotency-Key`, a retry
/// answers the same order and token.
#[utoipa::path(post, path = "/carts/{id}/checkout", tag = "carts", operation_id = "guest_checkout",
    params(
        ("id" = String, Path, description = "The guest cart's id (a UUID)"),
        ("X-Cart-Token" = Option<String>, Header, description = "The cart's token; missing or wrong, the cart is `404`"),
        crate::http::idempotency::IdempotencyKeyHeader,
    ),
    request_body = GuestCheckoutRequest,
    responses(
        (status = 201, description = "The order and its token (replayed for a repeated key)", body = GuestOrder),
        (status = 404, description = "`not_found`: no such cart, or the token does not open it"),
        (status = 409, description = "`cart_empty`; `cart_not_ready`: a line is unavailable; `insufficient_stock`; `checkout_in_progress`; `total_changed`"),
        (status = 422, description = "`validation_error`: missing or bad `email`, bad address, or none given nor chosen, `shipping_address_id` (guests have no address book); `shipping_required`, `no_shipping_to_destination`, `shipping_method_ineligible`"),
        (status = 429, description = "`rate_limited`: too many guest checkouts from this address; see `Retry-After`"),
    ))]
async fn checkout(
    req: HttpRequest,
    state: Data<AppState>,
    id: web::Path<String>,
    request: IdempotentJson<GuestCheckoutRequest>,
) -> Result<HttpResponse, ApiError> {
    let IdempotentJson { body, raw, key } = request;
    // Validation first: a request that fails it saves nothing under its
    // key, and costs the client no checkout of its allowance.
    let mut errors = ValidationErrors::new();
    let email = errors.check(guest_email(&body.email));
    let shipping_address = match body
        .shipping_address
        .map(ShippingAddress::validate)
        .transpose()
    {
        Ok(address) => address,
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    // Both problems are named at once; no email means an error was named.
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    let CartOwner::Guest { id: cart_id, token } = guest(&req, &id)? else {
        return Err(ApiError::NotFound("cart"));
    };
    let ip = client_ip(&req, state.settings.http.trust_forwarded_for);
    let limit = state.settings.rate_limit.guest_checkouts_per_client;
    throttle(
        &state.rate_limiter,
        &[("guest-checkout-client", &ip, limit)],
    )
    .await?;
    let message = Checkout {
        shopper: Shopper::Guest {
            cart_id,
            token,
            email,
        },
        shipping_address,
        shipping_method_id: body.shipping_method_id,
        expected_total: body.expected_total,
        key: None,
    };
    // A guest's keys are scoped to the cart (a UUID, as user ids are); the
    // carts actor checks the cart's token before it looks the key up.
    let keyed = key.for_user(cart_id, &raw);
    let tokens = state.order_tokens.clone();
    send_once_then(
        &state.actors.carts,
        keyed,
        message,
        answer_created(),
        move |saved| with_token(&tokens, saved),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(status: u16, body: serde_json::Value) -> SavedResponse {
        SavedResponse {
            status,
            content_type: "application/json".into(),
            body: serde_json::to_vec(&body).expect("json"),
            retry_after_secs: None,
        }
    }

    #[test]
    fn a_placed_order_gets_its_token_and_other_answers_pass_unchanged() {
        let key = OrderTokenKey::new(b"k");
        let id = Uuid::new_v4();
        let out = with_token(&key, saved(201, serde_json::json!({"id": id, "total": 5})));
        let reply: serde_json::Value = serde_json::from_slice(&out.body).expect("json");
        assert_eq!(reply["order"]["total"], 5);
        assert_eq!(reply["order_token"], key.token(id));
        let problem = saved(409, serde_json::json!({"code": "cart_empty"}));
        assert_eq!(with_token(&key, problem.clone()).body, problem.body);
    }
}
