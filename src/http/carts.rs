//! `/api/v1/cart/…` (the customer's own cart) and `/api/v1/carts/…` (guest
//! carts, opened with `X-Cart-Token`). Every answer is the cart priced now.

use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::addresses::shipping_address_of;
use super::error::ApiError;
use super::extract::{path_id, Authenticated, ValidJson};
use super::idempotency::{answer_created, send_once, IdempotentJson};
use super::items::named_item;
use super::rate_limit::{client_ip, throttle};
use super::state::AppState;
use crate::actors::carts::messages::*;
use crate::actors::carts::promotions::{ApplyPromotion, RemovePromotion};
use crate::actors::orders::messages::OrderView;
use crate::domain::carts::CartView;
use crate::domain::orders::address::ShippingAddress;

/// The header that opens a guest cart.
pub const CART_TOKEN_HEADER: &str = "x-cart-token";

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/cart")
            .route(web::get().to(get_cart))
            .route(web::delete().to(clear_cart)),
    )
    .service(web::resource("/cart/items").route(web::post().to(add_item)))
    .service(
        web::resource("/cart/items/{product_id}")
            .route(web::patch().to(set_quantity))
            .route(web::delete().to(remove_item)),
    )
    .service(web::resource("/cart/merge").route(web::post().to(merge)))
    .service(
        web::resource("/cart/promotion")
            .route(web::post().to(apply_promotion))
            .route(web::delete().to(remove_promotion)),
    )
    .service(web::resource("/cart/checkout").route(web::post().to(checkout)))
    .service(web::resource("/carts").route(web::post().to(create_guest)))
    .service(
        web::resource("/carts/{id}")
            .route(web::get().to(get_guest))
            .route(web::delete().to(delete_guest)),
    )
    .service(web::resource("/carts/{id}/items").route(web::post().to(add_guest_item)))
    .service(
        web::resource("/carts/{id}/items/{product_id}")
            .route(web::patch().to(set_guest_quantity))
            .route(web::delete().to(remove_guest_item)),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    get_cart,
    clear_cart,
    add_item,
    set_quantity,
    remove_item,
    merge,
    apply_promotion,
    remove_promotion,
    checkout,
    create_guest,
    get_guest,
    delete_guest,
    add_guest_item,
    set_guest_quantity,
    remove_guest_item
))]
pub struct Api;

/// Body of `POST …/items/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddItemRequest {
    /// A product with exactly one variant (else 422 `variant_required`).
    product_id: Option<Uuid>,
    /// The variant to add; give this or `product_id`.
    variant_id: Option<Uuid>,
    /// Added to the line's quantity; the line may hold at most
    /// `carts.max_quantity` (100 by default) and the product's stock.
    #[schema(minimum = 1)]
    quantity: i32,
}

/// Body of `PATCH …/items/{product_id}/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetQuantityRequest {
    /// The line's new quantity; 0 removes it.
    #[schema(minimum = 0)]
    quantity: i32,
}

/// Body of `POST /cart/merge/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MergeRequest {
    cart_id: Uuid,
    token: String,
}

/// Body of `POST /cart/promotion/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PromotionRequest {
    /// Matched case-insensitively.
    #[schema(min_length = 1, max_length = 32)]
    code: String,
}

/// Body of `POST /cart/checkout/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckoutRequest {
    /// Where the order goes; or give `shipping_address_id` instead.
    #[serde(default)]
    shipping_address: Option<ShippingAddress>,
    /// One of the caller's addresses (`/auth/me/addresses/`), copied into
    /// the order.
    #[serde(default)]
    shipping_address_id: Option<uuid::Uuid>,
    /// The shipping method; absent: the cart's choice (`PUT
    /// /cart/shipping/`), which also gives the address when neither
    /// address field is sent.
    #[serde(default)]
    shipping_method_id: Option<uuid::Uuid>,
    /// The total the customer was shown, in minor units: when given and
    /// the order would charge anything else (a price or the discount
    /// changed meanwhile), nothing is placed and the answer is `409
    /// total_changed`.
    #[serde(default)]
    #[schema(minimum = 0)]
    expected_total: Option<i64>,
}

/// A guest cart's id.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; handlers read the raw request
struct GuestId {
    /// The guest cart's id (a UUID).
    id: String,
}

/// The secret that opens a guest cart.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by the document only
struct CartToken {
    /// The token `POST /carts/` answered; it opens the cart. Missing or
    /// wrong, the cart is `404` as if it did not exist (so a cart id tells
    /// nothing without its token), which is why it is not marked required.
    #[param(rename = "X-Cart-Token")]
    token: Option<String>,
}

/// The product of a cart line.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only
struct LineRef {
    /// The line's variant id (a UUID); the id of a product with one
    /// variant also names its line.
    product_id: String,
}

/// The guest cart a request names, with the token it sent.
pub(super) fn guest(req: &HttpRequest, id: &str) -> Result<CartOwner, ApiError> {
    let id = path_id(id, "cart")?;
    let token = req
        .headers()
        .get(CART_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::NotFound("cart"))?
        .to_owned();
    Ok(CartOwner::Guest { id, token })
}

async fn cart_call<M>(state: &AppState, message: M) -> Result<Json<CartView>, ApiError>
where
    M: actix::Message<Result = Result<CartView, crate::actors::carts::CartsError>> + Send + 'static,
    crate::actors::carts::CartsActor: actix::Handler<crate::actors::runtime::Traced<M>>,
{
    Ok(Json(state.actors.carts.call(message).await?))
}

/// The caller's cart, priced now (made empty on first use).
#[utoipa::path(get, path = "/cart", tag = "carts", operation_id = "get_cart",
    security(("bearer" = [])),
    responses((status = 200, description = "The cart", body = CartView,
        headers(("x-cache-layer" = String, description = "`view` when this instance priced the cart from its in-process copies, without asking the carts domain")))))]
async fn get_cart(state: Data<AppState>, user: Authenticated) -> Result<HttpResponse, ApiError> {
    if let Some(cart) = state.actors.cart_reader.cart(user.0.user_id) {
        return Ok(HttpResponse::Ok()
            .insert_header(("x-cache-layer", "view"))
            .json(cart));
    }
    let Json(cart) = cart_call(&state, GetCart(CartOwner::User(user.0.user_id))).await?;
    Ok(HttpResponse::Ok().json(cart))
}

/// Empties the caller's cart.
#[utoipa::path(delete, path = "/cart", tag = "carts", operation_id = "clear_cart",
    security(("bearer" = [])),
    responses((status = 200, description = "The emptied cart", body = CartView)))]
async fn clear_cart(
    state: Data<AppState>,
    user: Authenticated,
) -> Result<Json<CartView>, ApiError> {
    cart_call(&state, ClearCart(CartOwner::User(user.0.user_id))).await
}

/// Adds a product to the caller's cart (to its line, if there is one).
/// Nothing is reserved until checkout.
#[utoipa::path(post, path = "/cart/items", tag = "carts", operation_id = "add_cart_item",
    security(("bearer" = [])),
    request_body = AddItemRequest,
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 409, description = "`insufficient_stock`: more than the stock; the message names what is available"),
        (status = 422, description = "`validation_error`: unknown or inactive product, quantity out of range, too many lines"),
    ))]
async fn add_item(
    state: Data<AppState>,
    user: Authenticated,
    body: ValidJson<AddItemRequest>,
) -> Result<Json<CartView>, ApiError> {
    let ValidJson(body) = body;
    let mut errors = crate::domain::validation::ValidationErrors::new();
    let (item_id, by_variant) = named_item(&mut errors, "", body.product_id, body.variant_id);
    errors.into_result().map_err(ApiError::Validation)?;
    let message = AddItem {
        owner: CartOwner::User(user.0.user_id),
        item_id,
        by_variant,
        quantity: body.quantity,
    };
    cart_call(&state, message).await
}

/// Sets a line's quantity in the caller's cart; 0 removes the line.
#[utoipa::path(patch, path = "/cart/items/{product_id}", tag = "carts", operation_id = "set_cart_item",
    security(("bearer" = [])),
    params(LineRef),
    request_body = SetQuantityRequest,
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "`not_found`: the cart holds no such product"),
        (status = 409, description = "`insufficient_stock`: more than the stock"),
        (status = 422, description = "`validation_error`: quantity out of range, or the product is no longer for sale"),
    ))]
async fn set_quantity(
    state: Data<AppState>,
    user: Authenticated,
    product_id: web::Path<String>,
    body: ValidJson<SetQuantityRequest>,
) -> Result<Json<CartView>, ApiError> {
    let message = SetItemQuantity {
        owner: CartOwner::User(user.0.user_id),
        item_id: path_id(&product_id, "cart item")?,
        quantity: body.0.quantity,
    };
    cart_call(&state, message).await
}

/// Removes a line from the caller's cart.
#[utoipa::path(delete, path = "/cart/items/{product_id}", tag = "carts", operation_id = "remove_cart_item",
    security(("bearer" = [])),
    params(LineRef),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "`not_found`: the cart holds no such product"),
    ))]
async fn remove_item(
    state: Data<AppState>,
    user: Authenticated,
    product_id: web::Path<String>,
) -> Result<Json<CartView>, ApiError> {
    let message = RemoveItem {
        owner: CartOwner::User(user.0.user_id),
        item_id: path_id(&product_id, "cart item")?,
    };
    cart_call(&state, message).await
}

/// Moves a guest cart into the caller's cart (quantities add, capped at
/// stock and the limits) and retires it. Merging it again changes nothing.
#[utoipa::path(post, path = "/cart/merge", tag = "carts", operation_id = "merge_cart",
    security(("bearer" = [])),
    request_body = MergeRequest,
    responses(
        (status = 200, description = "The caller's cart", body = CartView),
        (status = 404, description = "`not_found`: no such guest cart, or the token does not open it"),
    ))]
async fn merge(
    state: Data<AppState>,
    user: Authenticated,
    body: ValidJson<MergeRequest>,
) -> Result<Json<CartView>, ApiError> {
    let ValidJson(body) = body;
    let message = MergeGuestCart {
        user_id: user.0.user_id,
        cart_id: body.cart_id,
        token: body.token,
    };
    cart_call(&state, message).await
}

/// Puts a discount code on the caller's cart, if it applies now. The
/// discount shows in the cart and is checked again at checkout.
#[utoipa::path(post, path = "/cart/promotion", tag = "carts", operation_id = "apply_cart_promotion",
    security(("bearer" = [])),
    request_body = PromotionRequest,
    responses(
        (status = 200, description = "The cart, with its discount", body = CartView),
        (status = 404, description = "`not_found`: no promotion has this code"),
        (status = 409, description = "`promotion_used_up`: no uses left"),
        (status = 422, description = "`promotion_inactive`, `promotion_not_started`, `promotion_expired`, `promotion_below_minimum`, `promotion_currency_mismatch`, `promotion_already_used`"),
    ))]
async fn apply_promotion(
    state: Data<AppState>,
    user: Authenticated,
    body: ValidJson<PromotionRequest>,
) -> Result<Json<CartView>, ApiError> {
    let message = ApplyPromotion {
        user_id: user.0.user_id,
        code: body.0.code,
    };
    cart_call(&state, message).await
}

/// Takes the discount code off the caller's cart.
#[utoipa::path(delete, path = "/cart/promotion", tag = "carts", operation_id = "remove_cart_promotion",
    security(("bearer" = [])),
    responses((status = 200, description = "The cart", body = CartView)))]
async fn remove_promotion(
    state: Data<AppState>,
    user: Authenticated,
) -> Result<Json<CartView>, ApiError> {
    let message = RemovePromotion {
        user_id: user.0.user_id,
    };
    cart_call(&state, message).await
}

/// Turns the caller's cart into an order, exactly once: stock is reserved,
/// the discount code's use is counted and re-checked, the order is placed
/// at today's prices, and the cart is emptied. The client then pays the
/// order. With the same `Idempotency-Key`, a retry answers the same order.
#[utoipa::path(post, path = "/cart/checkout", tag = "carts", operation_id = "checkout",
    security(("bearer" = [])),
    params(crate::http::idempotency::IdempotencyKeyHeader),
    request_body = CheckoutRequest,
    responses(
        (status = 201, description = "The order (replayed for a repeated key)", body = OrderView),
        (status = 404, description = "`not_found`: the cart's promotion was deleted, or `shipping_address_id` names no address of the caller's"),
        (status = 403, description = "`email_unverified`: the shop requires a verified email to order (`auth.require_verified_email_for_checkout`)"),
        (status = 409, description = "`cart_empty`; `cart_not_ready`: a line is unavailable; `insufficient_stock`: stock ran out meanwhile; `promotion_used_up`; `checkout_in_progress`: another checkout of this cart is running; `total_changed`: the order's total is not `expected_total`"),
        (status = 422, description = "`validation_error`: bad address, or none given nor chosen; the promotion no longer applies (`promotion_expired`, `promotion_below_minimum`, ...); `shipping_required`, `no_shipping_to_destination`, `shipping_method_ineligible`"),
    ))]
async fn checkout(
    state: Data<AppState>,
    user: Authenticated,
    request: IdempotentJson<CheckoutRequest>,
) -> Result<HttpResponse, ApiError> {
    let IdempotentJson { body, raw, key } = request;
    let viewer = user.0;
    super::auth::require_verified_email(&state, &viewer).await?;
    // Validation first: a request that fails it saves nothing under its key.
    let shipping_address = match (body.shipping_address, body.shipping_address_id) {
        (None, None) => None,
        (inline, id) => Some(shipping_address_of(&state, viewer.user_id, inline, id).await?),
    };
    let message = Checkout {
        shopper: Shopper::Customer(viewer),
        shipping_address,
        shipping_method_id: body.shipping_method_id,
        expected_total: body.expected_total,
        key: None,
    };
    let keyed = key.for_user(viewer.user_id, &raw);
    send_once(&state.actors.carts, keyed, message, answer_created()).await
}

/// Makes a guest cart. Keep its token: it is shown once, and opens the
/// cart (`X-Cart-Token`) until it is merged or abandoned for
/// `carts.guest_ttl_days`.
#[utoipa::path(post, path = "/carts", tag = "carts", operation_id = "create_guest_cart",
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "The new cart's id and token", body = GuestCart),
        (status = 429, description = "`rate_limited`: too many carts from this address; see `Retry-After`"),
    ))]
async fn create_guest(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    // Anyone may make one, and each is a row: bounded per client address.
    let ip = client_ip(&req, state.settings.http.trust_forwarded_for);
    let limit = state.settings.rate_limit.guest_carts_per_client;
    throttle(&state.rate_limiter, &[("guest-cart-client", &ip, limit)]).await?;
    let cart = state.actors.carts.call(CreateGuestCart).await?;
    Ok(HttpResponse::Created().json(cart))
}

/// A guest cart, priced now.
#[utoipa::path(get, path = "/carts/{id}", tag = "carts", operation_id = "get_guest_cart",
    params(GuestId, CartToken),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "`not_found`: no such cart, or the token does not open it"),
    ))]
async fn get_guest(
    req: HttpRequest,
    state: Data<AppState>,
    id: web::Path<String>,
) -> Result<Json<CartView>, ApiError> {
    cart_call(&state, GetCart(guest(&req, &id)?)).await
}

/// Deletes a guest cart.
#[utoipa::path(delete, path = "/carts/{id}", tag = "carts", operation_id = "delete_guest_cart",
    params(GuestId, CartToken),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`not_found`: no such cart, or the token does not open it"),
    ))]
async fn delete_guest(
    req: HttpRequest,
    state: Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let CartOwner::Guest { id, token } = guest(&req, &id)? else {
        return Err(ApiError::NotFound("cart"));
    };
    state
        .actors
        .carts
        .call(DeleteGuestCart { id, token })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Adds a product to a guest cart.
#[utoipa::path(post, path = "/carts/{id}/items", tag = "carts", operation_id = "add_guest_cart_item",
    params(GuestId, CartToken),
    request_body = AddItemRequest,
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "`not_found`: no such cart, or the token does not open it"),
        (status = 409, description = "`insufficient_stock`: more than the stock"),
        (status = 422, description = "`validation_error`: unknown or inactive product, quantity out of range, too many lines"),
    ))]
async fn add_guest_item(
    req: HttpRequest,
    state: Data<AppState>,
    id: web::Path<String>,
    body: ValidJson<AddItemRequest>,
) -> Result<Json<CartView>, ApiError> {
    let ValidJson(body) = body;
    let mut errors = crate::domain::validation::ValidationErrors::new();
    let (item_id, by_variant) = named_item(&mut errors, "", body.product_id, body.variant_id);
    errors.into_result().map_err(ApiError::Validation)?;
    let message = AddItem {
        owner: guest(&req, &id)?,
        item_id,
        by_variant,
        quantity: body.quantity,
    };
    cart_call(&state, message).await
}

/// Sets a line's quantity in a guest cart; 0 removes the line.
#[utoipa::path(patch, path = "/carts/{id}/items/{product_id}", tag = "carts", operation_id = "set_guest_cart_item",
    params(GuestId, LineRef, CartToken),
    request_body = SetQuantityRequest,
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "`not_found`: no such cart or line, or the token does not open it"),
        (status = 409, description = "`insufficient_stock`: more than the stock"),
        (status = 422, description = "`validation_error`: quantity out of range, or the product is no longer for sale"),
    ))]
async fn set_guest_quantity(
    req: HttpRequest,
    state: Data<AppState>,
    path: web::Path<(String, String)>,
    body: ValidJson<SetQuantityRequest>,
) -> Result<Json<CartView>, ApiError> {
    let (id, product_id) = path.into_inner();
    let message = SetItemQuantity {
        owner: guest(&req, &id)?,
        item_id: path_id(&product_id, "cart item")?,
        quantity: body.0.quantity,
    };
    cart_call(&state, message).await
}

/// Removes a line from a guest cart.
#[utoipa::path(delete, path = "/carts/{id}/items/{product_id}", tag = "carts", operation_id = "remove_guest_cart_item",
    params(GuestId, LineRef, CartToken),
    responses(
        (status = 200, description = "The cart", body = CartView),
        (status = 404, description = "`not_found`: no such cart or line, or the token does not open it"),
    ))]
async fn remove_guest_item(
    req: HttpRequest,
    state: Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<Json<CartView>, ApiError> {
    let (id, product_id) = path.into_inner();
    let message = RemoveItem {
        owner: guest(&req, &id)?,
        item_id: path_id(&product_id, "cart item")?,
    };
    cart_call(&state, message).await
}
