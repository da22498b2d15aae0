//! `/api/v1/orders/…`: placing orders (with `Idempotency-Key`), reading
//! them, and moving them through their lifecycle.

use actix_web::web::{self, Bytes, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::addresses::shipping_address_of;
use super::error::ApiError;
use super::extract::{parse_json, path_id, Authenticated, MaybeAuthenticated, QueryParams};
use super::idempotency::{answer_created, send_once, IdempotentJson};
use super::items::named_item;
use super::pagination::{page, page_request};
use super::state::AppState;
use crate::actors::orders::messages::*;
use crate::actors::orders::OrdersError;
use crate::actors::runtime::CallError;
use crate::domain::orders::address::ShippingAddress;
use crate::domain::orders::guest::OrderViewer;
use crate::domain::orders::pricing::OrderItem;
use crate::domain::orders::status::{Action, OrderStatus};
use crate::domain::pagination::Page;
use crate::domain::validation::ValidationErrors;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/orders")
            .route(web::get().to(list_orders))
            .route(web::post().to(create_order)),
    )
    .service(web::resource("/orders/{id}").route(web::get().to(get_order)))
    .service(web::resource("/orders/{id}/cancel").route(web::post().to(cancel)))
    .service(web::resource("/orders/{id}/ship").route(web::post().to(ship)))
    .service(web::resource("/orders/{id}/deliver").route(web::post().to(deliver)));
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(create_order, list_orders, get_order, cancel, ship, deliver))]
pub struct Api;

/// The order a route is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; handlers take the raw segment
struct OrderId {
    /// The order's id (a UUID); anything else is a 404.
    id: String,
}

/// One line of a new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ItemRequest {
    /// A product with exactly one variant (else 422 `variant_required`).
    product_id: Option<Uuid>,
    /// The variant to buy; give this or `product_id`.
    variant_id: Option<Uuid>,
    #[schema(minimum = 1, maximum = 10000)]
    quantity: i32,
}

/// Body of `POST /orders/`. No prices: the catalog's are used.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateOrderRequest {
    /// 1 to 100 lines; lines of the same product are merged.
    #[schema(min_items = 1, max_items = 100)]
    items: Vec<ItemRequest>,
    /// Where the order goes; or give `shipping_address_id` instead.
    #[serde(default)]
    shipping_address: Option<ShippingAddress>,
    /// One of the caller's addresses (`/auth/me/addresses/`), copied into
    /// the order.
    #[serde(default)]
    shipping_address_id: Option<uuid::Uuid>,
    /// A shipping method offered for this destination (see
    /// `GET /cart/shipping-methods/`); required when the shop ships and a
    /// line needs shipping.
    #[serde(default)]
    shipping_method_id: Option<uuid::Uuid>,
}

/// Places an order: prices come from the catalog, stock is reserved, and
/// the order waits for payment until it expires.
#[utoipa::path(post, path = "/orders", tag = "orders", operation_id = "create_order",
    security(("bearer" = [])),
    params(crate::http::idempotency::IdempotencyKeyHeader),
    request_body = CreateOrderRequest,
    responses(
        (status = 201, description = "The order (replayed for a repeated key, with `Idempotent-Replayed: true`)", body = OrderView),
        (status = 403, description = "`email_unverified`: the shop requires a verified email to order (`auth.require_verified_email_for_checkout`)"),
        (status = 409, description = "`insufficient_stock`: `errors` names each short line"),
        (status = 404, description = "`not_found`: `shipping_address_id` names no address of the caller's"),
        (status = 422, description = "`validation_error`: no items, bad quantity, unknown or inactive product, bad address, neither or both of `shipping_address` and `shipping_address_id`; `shipping_required`: choose a method; `no_shipping_to_destination`: no zone covers the address; `shipping_method_ineligible`: the method is not offered for this order"),
    ))]
async fn create_order(
    state: Data<AppState>,
    user: Authenticated,
    request: IdempotentJson<CreateOrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let IdempotentJson { body, raw, key } = request;
    super::auth::require_verified_email(&state, &user.0).await?;
    // Validation first: a request that fails it saves nothing under its key.
    if body.items.is_empty() {
        return Err(ApiError::Validation(ValidationErrors::single(
            "items",
            "empty",
            "at least one item is required",
        )));
    }
    let mut errors = ValidationErrors::new();
    let items = body
        .items
        .iter()
        .enumerate()
        .map(|(index, i)| {
            let (id, by_variant) = named_item(
                &mut errors,
                &format!("items.{index}."),
                i.product_id,
                i.variant_id,
            );
            OrderItem {
                id,
                by_variant,
                quantity: i.quantity,
            }
        })
        .collect();
    errors.into_result().map_err(ApiError::Validation)?;
    let user_id = user.0.user_id;
    let shipping_address = shipping_address_of(
        &state,
        user_id,
        body.shipping_address,
        body.shipping_address_id,
    )
    .await?;
    let message = CreateOrder {
        order_id: None,
        buyer: crate::domain::orders::guest::Buyer::Customer(user_id),
        items,
        shipping_address,
        shipping_method_id: body.shipping_method_id,
        key: None,
        promotion: None,
        expected_total: None,
    };
    let keyed = key.for_user(user_id, &raw);
    send_once(&state.actors.orders, keyed, message, answer_created()).await
}

/// The header that opens a guest order.
pub const ORDER_TOKEN_HEADER: &str = "x-order-token";

/// The secret that opens a guest order.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by the document only; handlers read the raw request
pub(super) struct OrderToken {
    /// The `order_token` a guest checkout answered. Sent, it alone decides:
    /// it opens its own guest order and nothing else, and a token that does
    /// not open the order asked for is a `404` as if the order did not exist.
    #[param(rename = "X-Order-Token")]
    token: Option<String>,
}

/// What the request's `X-Order-Token` says of `order_id`: `None` when it
/// sent none; the token's holder when it opens the order; else a 404 (a
/// token that opens nothing tells nothing, not even that the order exists).
pub(super) fn token_viewer(
    state: &AppState,
    req: &HttpRequest,
    order_id: Uuid,
) -> Result<Option<OrderViewer>, ApiError> {
    let Some(sent) = req.headers().get(ORDER_TOKEN_HEADER) else {
        return Ok(None);
    };
    let opens = sent
        .to_str()
        .is_ok_and(|token| state.order_tokens.opens(order_id, token));
    if opens {
        Ok(Some(OrderViewer::TokenHolder))
    } else {
        Err(ApiError::NotFound("order"))
    }
}

/// One order: the caller's own, any for an admin, or a guest order for
/// whoever sends its `X-Order-Token`. Without a token or a login it is a
/// `404`, as a guest order without its token is.
#[utoipa::path(get, path = "/orders/{id}", tag = "orders", operation_id = "get_order",
    security((), ("bearer" = [])),
    params(OrderId, OrderToken),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 404, description = "`not_found`: no such order of the caller's, or the token does not open it"),
    ))]
async fn get_order(
    req: HttpRequest,
    state: Data<AppState>,
    user: MaybeAuthenticated,
    id: web::Path<String>,
) -> Result<Json<OrderView>, ApiError> {
    let id = path_id(&id, "order")?;
    let viewer = match (token_viewer(&state, &req, id)?, user.0) {
        (Some(holder), _) => holder,
        (None, Some(principal)) => principal.into(),
        (None, None) => return Err(ApiError::NotFound("order")),
    };
    Ok(Json(
        state.actors.orders.call(GetOrder { id, viewer }).await?,
    ))
}

fn timestamp(
    params: &QueryParams,
    key: &str,
    errors: &mut ValidationErrors,
) -> Option<DateTime<Utc>> {
    let raw = params.get(key)?;
    match DateTime::parse_from_rfc3339(raw.trim()) {
        // Beyond the storable years a bound selects what the nearest
        // storable one does.
        Ok(t) => Some(crate::domain::validation::clamp_time(t.with_timezone(&Utc))),
        Err(_) => {
            errors.add(key, "invalid", format!("{key} must be an RFC 3339 time"));
            None
        }
    }
}

/// Lists orders, newest first: the caller's own, or anyone's for an admin.
#[utoipa::path(get, path = "/orders", tag = "orders", operation_id = "list_orders",
    security(("bearer" = [])),
    params(
        crate::http::pagination::PageParams,
        ("status" = Option<crate::domain::orders::status::OrderStatus>, Query, description = "Only this status"),
        ("user_id" = Option<Uuid>, Query, description = "Only this customer's (ignored for customers)"),
        ("created_after" = Option<DateTime<Utc>>, Query, description = "RFC 3339 time"),
        ("created_before" = Option<DateTime<Utc>>, Query, description = "RFC 3339 time"),
    ),
    responses(
        (status = 200, description = "One page of orders", body = Page<OrderView>),
        (status = 404, description = "`not_found`: the page is past the last"),
    ))]
async fn list_orders(
    req: HttpRequest,
    state: Data<AppState>,
    user: Authenticated,
) -> Result<Json<Page<OrderView>>, ApiError> {
    let params = QueryParams::from_request(&req);
    let mut errors = ValidationErrors::new();
    let paging = page_request(&params);
    let status = params
        .get("status")
        .and_then(|s| match OrderStatus::parse(s.trim()) {
            Some(status) => Some(status.as_str().to_owned()),
            None => {
                errors.add("status", "invalid", "not an order status");
                None
            }
        });
    let user_id = params
        .get("user_id")
        .and_then(|u| match Uuid::parse_str(u.trim()) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.add("user_id", "invalid", "user_id must be a UUID");
                None
            }
        });
    let created_after = timestamp(&params, "created_after", &mut errors);
    let created_before = timestamp(&params, "created_before", &mut errors);
    errors.into_result().map_err(ApiError::InvalidQuery)?;
    let paging = paging?;
    let (orders, count) = state
        .actors
        .orders
        .call(ListOrders {
            viewer: user.0,
            page: paging,
            user_id,
            status,
            created_after,
            created_before,
        })
        .await?;
    Ok(Json(page(&req, paging, count, orders)?))
}

/// Optional body of a transition: why it happens.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TransitionRequest {
    /// Kept in the order's history (trimmed to 500 characters).
    #[serde(default)]
    reason: String,
}

/// The reason a transition's optional body gives.
fn reason_of(body: &Bytes) -> Result<String, ApiError> {
    // No body, or `null`, means no reason.
    let request: TransitionRequest = if body.iter().all(u8::is_ascii_whitespace) {
        TransitionRequest::default()
    } else {
        parse_json::<Option<TransitionRequest>>(body)?.unwrap_or_default()
    };
    Ok(request.reason.trim().chars().take(500).collect::<String>())
}

async fn transition(
    state: &AppState,
    user: Authenticated,
    id: &str,
    body: &Bytes,
    action: Action,
) -> Result<Json<OrderView>, ApiError> {
    let id = path_id(id, "order")?;
    let reason = reason_of(body)?;
    let view = state
        .actors
        .orders
        .call(TransitionOrder {
            id,
            action,
            by: user.0,
            reason,
        })
        .await?;
    Ok(Json(view))
}

/// Cancels a pending or paid order (its owner or an admin). A pending
/// order's stock is released at once. A paid order with no fulfilment is
/// refunded in full: it goes `refund_pending`, then `refunded`, and its
/// stock is released when the money is back.
#[utoipa::path(post, path = "/orders/{id}/cancel", tag = "orders", operation_id = "cancel_order",
    security(("bearer" = [])),
    params(OrderId),
    request_body(content = Option<TransitionRequest>, description = "Optional: why"),
    responses(
        (status = 200, description = "The order (`cancelled`, or `refund_pending` for a paid one)", body = OrderView),
        (status = 403, description = "`permission_denied`: not allowed to make this transition"),
        (status = 404, description = "`not_found`: no such order of the caller's"),
        (status = 409, description = "`invalid_transition`: not from the order's current status; `order_has_fulfilments`: a paid order with parcels (cancel pending ones first; shipped goods come back as a return); `order_not_payable`: it shipped while the refund was asked"),
    ))]
async fn cancel(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
    body: Bytes,
) -> Result<Json<OrderView>, ApiError> {
    let order_id = path_id(&id, "order")?;
    let reason = reason_of(&body)?;
    let asked = state
        .actors
        .orders
        .call(TransitionOrder {
            id: order_id,
            action: Action::Cancel,
            by: user.0,
            reason,
        })
        .await;
    match asked {
        Err(CallError::Domain(OrdersError::CancelByRefund { payment_id })) => {
            // The one route that speaks to two domains: orders decided the
            // cancel is a refund, payments makes it (once: a payment has
            // one full refund), and the order as it is now is the answer.
            let payment_id = Uuid::parse_str(&payment_id)
                .map_err(|_| ApiError::Internal(anyhow::anyhow!("a payment id that is no UUID")))?;
            state
                .actors
                .payments
                .call(crate::actors::payments::messages::RefundPayment {
                    id: payment_id,
                    by: user.0,
                    key: None,
                })
                .await?;
            Ok(Json(
                state
                    .actors
                    .orders
                    .call(GetOrder {
                        id: order_id,
                        viewer: user.0.into(),
                    })
                    .await?,
            ))
        }
        other => Ok(Json(other?)),
    }
}

/// Marks a paid order shipped (admins only).
#[utoipa::path(post, path = "/orders/{id}/ship", tag = "orders", operation_id = "ship_order",
    security(("bearer" = [])),
    params(OrderId),
    request_body(content = Option<TransitionRequest>, description = "Optional: why"),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order"),
        (status = 409, description = "`invalid_transition`: not from the order's current status"),
    ))]
async fn ship(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
    body: Bytes,
) -> Result<Json<OrderView>, ApiError> {
    transition(&state, user, &id, &body, Action::Ship).await
}

/// Marks a shipped order delivered (admins only).
#[utoipa::path(post, path = "/orders/{id}/deliver", tag = "orders", operation_id = "deliver_order",
    security(("bearer" = [])),
    params(OrderId),
    request_body(content = Option<TransitionRequest>, description = "Optional: why"),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order"),
        (status = 409, description = "`invalid_transition`: not from the order's current status"),
    ))]
async fn deliver(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
    body: Bytes,
) -> Result<Json<OrderView>, ApiError> {
    transition(&state, user, &id, &body, Action::Deliver).await
}
