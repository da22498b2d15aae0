//! `/api/v1/payments/…`: paying an order (with `Idempotency-Key`), reading
//! payments and their timelines, refunds, the provider's signed webhooks,
//! and the admin's provider-event simulation.

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{
    path_id, AdminUser, Authenticated, MaybeAuthenticated, QueryParams, ValidJson,
};
use super::idempotency::{answer_accepted, send_once, IdempotentJson, RequestKey};
use super::orders::token_viewer;
use super::pagination::{page, page_request};
use super::state::AppState;
use crate::actors::payments::messages::*;
use crate::config::Environment;
use crate::domain::pagination::Page;
use crate::domain::payments::card::{check_card, CardDetails};
use crate::domain::payments::status::PaymentStatus;
use crate::domain::validation::ValidationErrors;

/// The header carrying a webhook's signature.
pub const SIGNATURE_HEADER: &str = "emporium-signature";

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/payments")
            .route(web::get().to(list_payments))
            .route(web::post().to(create_payment)),
    )
    .service(web::resource("/payments/webhook").route(web::post().to(webhook)))
    .service(web::resource("/payments/{id}").route(web::get().to(get_payment)))
    .service(web::resource("/payments/{id}/events").route(web::get().to(events)))
    .service(web::resource("/payments/{id}/refund").route(web::post().to(refund)))
    .service(web::resource("/admin/payments/{id}/simulate").route(web::post().to(simulate)));
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    create_payment,
    list_payments,
    get_payment,
    events,
    refund,
    webhook,
    simulate
))]
pub struct Api;

/// A card. Test cards of the simulated provider: 4242 4242 4242 4242
/// succeeds, 4000 0000 0000 0002 is declined.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PaymentMethodRequest {
    /// 12-19 digits (spaces and hyphens allowed), passing the Luhn check.
    #[schema(example = "4242424242424242")]
    card_number: String,
    #[schema(minimum = 1, maximum = 12)]
    exp_month: i64,
    /// Four digits, not in the past.
    #[schema(example = 2030)]
    exp_year: i64,
    /// 3 or 4 digits.
    #[schema(example = "123")]
    cvc: String,
}

/// Body of `POST /payments/`. No amount, currency or status: the order's
/// are used, and sending them is a 422.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreatePaymentRequest {
    order_id: Uuid,
    payment_method: PaymentMethodRequest,
}

/// Pays a pending order of the caller's with a card, or a guest order with
/// its `X-Order-Token` (no login): the charge runs in the background (poll
/// the payment, or watch the order become paid). A sent token alone
/// decides: one that does not open `order_id` is a `404`.
#[utoipa::path(post, path = "/payments", tag = "payments", operation_id = "create_payment",
    security(("bearer" = []), ()),
    params(crate::http::idempotency::IdempotencyKeyHeader, crate::http::orders::OrderToken),
    request_body = CreatePaymentRequest,
    responses(
        (status = 202, description = "The payment, `processing` (replayed for a repeated key)", body = PaymentView),
        (status = 401, description = "`not_authenticated`: neither a login nor an `X-Order-Token`"),
        (status = 404, description = "`not_found`: no such order of the caller's, or the token does not open it"),
        (status = 409, description = "`order_not_payable`: the order is not pending; `payment_exists`: a payment is already running or done"),
        (status = 422, description = "`validation_error`: bad card number, expiry or CVC"),
        (status = 429, description = "`rate_limited`: too many declined or failed payments for this order or customer lately; see `Retry-After`"),
    ))]
async fn create_payment(
    req: HttpRequest,
    state: Data<AppState>,
    user: MaybeAuthenticated,
    request: IdempotentJson<CreatePaymentRequest>,
) -> Result<HttpResponse, ApiError> {
    let IdempotentJson { body, key, .. } = request;
    // Who pays, before anything else is looked at: the token's holder
    // (a guest order's), else the logged-in customer. A key is scoped to
    // the payer: a guest's to the order its token opens.
    let (by, scope) = match (token_viewer(&state, &req, body.order_id)?, user.0) {
        (Some(holder), _) => (holder, body.order_id),
        (None, Some(principal)) => (principal.into(), principal.user_id),
        (None, None) => return Err(ApiError::NotAuthenticated),
    };
    let card = CardDetails {
        number: body.payment_method.card_number,
        exp_month: body.payment_method.exp_month,
        exp_year: body.payment_method.exp_year,
        cvc: body.payment_method.cvc,
    };
    // Validation first: a request that fails it saves nothing under its key.
    let today = chrono::Utc::now();
    let summary = check_card(
        &card,
        (
            i64::from(chrono::Datelike::year(&today)),
            i64::from(chrono::Datelike::month(&today)),
        ),
    )
    .map_err(ApiError::Validation)?;
    // The key's fingerprint never sees the full number or the CVC.
    let fingerprinted = json!({
        "order_id": body.order_id,
        "payment_method": {"last4": summary.last4, "brand": summary.brand,
                           "exp_month": card.exp_month, "exp_year": card.exp_year},
    });
    let message = CreatePayment {
        by,
        order_id: body.order_id,
        card,
        key: None,
    };
    let keyed = key.for_user(scope, &fingerprinted);
    send_once(&state.actors.payments, keyed, message, answer_accepted()).await
}

/// One payment: the caller's own, or any for an admin.
#[utoipa::path(get, path = "/payments/{id}", tag = "payments", operation_id = "get_payment",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment's id (a UUID)")),
    responses(
        (status = 200, description = "The payment", body = PaymentView),
        (status = 404, description = "`not_found`: no such payment of the caller's"),
    ))]
async fn get_payment(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    let id = path_id(&id, "payment")?;
    Ok(Json(
        state
            .actors
            .payments
            .call(GetPayment { id, viewer: user.0 })
            .await?,
    ))
}

/// A payment's timeline, oldest first.
#[utoipa::path(get, path = "/payments/{id}/events", tag = "payments", operation_id = "payment_events",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment's id (a UUID)")),
    responses(
        (status = 200, description = "The timeline", body = PaymentEvents),
        (status = 404, description = "`not_found`: no such payment of the caller's"),
    ))]
async fn events(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
) -> Result<Json<PaymentEvents>, ApiError> {
    let id = path_id(&id, "payment")?;
    let events: Vec<PaymentEventView> = state
        .actors
        .payments
        .call(GetPaymentEvents { id, viewer: user.0 })
        .await?;
    Ok(Json(PaymentEvents {
        payment_id: id,
        events,
    }))
}

/// Lists payments, newest first: the caller's own, or anyone's for an
/// admin.
#[utoipa::path(get, path = "/payments", tag = "payments", operation_id = "list_payments",
    security(("bearer" = [])),
    params(
        crate::http::pagination::PageParams,
        ("status" = Option<crate::domain::payments::status::PaymentStatus>, Query, description = "Only this status"),
        ("order_id" = Option<Uuid>, Query, description = "Only this order's"),
        ("user_id" = Option<Uuid>, Query, description = "Only this customer's (ignored for customers)"),
    ),
    responses(
        (status = 200, description = "One page of payments", body = Page<PaymentView>),
        (status = 404, description = "`not_found`: the page is past the last"),
    ))]
async fn list_payments(
    req: HttpRequest,
    state: Data<AppState>,
    user: Authenticated,
) -> Result<Json<Page<PaymentView>>, ApiError> {
    let params = QueryParams::from_request(&req);
    let mut errors = ValidationErrors::new();
    let paging = page_request(&params);
    let status = params
        .get("status")
        .and_then(|s| match PaymentStatus::parse(s.trim()) {
            Some(status) => Some(status.as_str().to_owned()),
            None => {
                errors.add("status", "invalid", "not a payment status");
                None
            }
        });
    let mut uuid_param = |name: &str| {
        params
            .get(name)
            .and_then(|v| match Uuid::parse_str(v.trim()) {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.add(name, "invalid", format!("{name} must be a UUID"));
                    None
                }
            })
    };
    let order_id = uuid_param("order_id");
    let user_id = uuid_param("user_id");
    errors.into_result().map_err(ApiError::InvalidQuery)?;
    let paging = paging?;
    let (payments, count) = state
        .actors
        .payments
        .call(ListPayments {
            viewer: user.0,
            page: paging,
            status,
            order_id,
            user_id,
        })
        .await?;
    Ok(Json(page(&req, paging, count, payments)?))
}

/// Refunds a succeeded payment in full (admins only); the refund runs in
/// the background.
#[utoipa::path(post, path = "/payments/{id}/refund", tag = "payments", operation_id = "refund_payment",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment's id (a UUID)"), crate::http::idempotency::IdempotencyKeyHeader),
    request_body(content = Option<EmptyObject>, description = "Nothing, or `{}`"),
    responses(
        (status = 202, description = "The payment, `refund_pending` (replayed for a repeated key)", body = PaymentView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such payment"),
        (status = 409, description = "`invalid_transition`: the payment cannot be refunded now; `order_not_payable`: the order is not paid (it shipped first); `partially_refunded`: the payment has partial refunds (refund the rest with `POST /payments/{id}/refunds/`)"),
        (status = 413, description = "`payload_too_large`: the body is over the limit"),
        (status = 422, description = "`validation_error`: the body has fields"),
    ))]
async fn refund(
    state: Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
    key: RequestKey,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "payment")?;
    // No body is needed (none, or `null`); one that is sent must be an
    // empty object.
    let raw: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        super::extract::parse_json::<Option<serde_json::Value>>(&body)?.unwrap_or_else(|| json!({}))
    };
    if raw != json!({}) {
        return Err(ApiError::Validation(ValidationErrors::single(
            "body",
            "unknown_field",
            "a full refund takes no fields",
        )));
    }
    let by = admin.0;
    let message = RefundPayment { id, by, key: None };
    let keyed = key.for_user(by.user_id, &raw);
    send_once(&state.actors.payments, keyed, message, answer_accepted()).await
}

/// Provider webhooks. No user: the signature over the exact raw bytes is
/// the authentication, checked before the body is even parsed.
/// The payment provider's signed events (`charge.succeeded`,
/// `charge.failed`, `charge.refunded`, `charge.dispute_created`). The
/// signature over the raw body is the authentication; a repeated event id
/// changes nothing.
#[utoipa::path(post, path = "/payments/webhook", tag = "payments", operation_id = "payment_webhook",
    params(("emporium-signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">`")),
    request_body(content = Object, description = "The provider's event, as signed"),
    responses(
        (status = 200, description = "What the event did", body = WebhookOutcome),
        (status = 400, description = "`invalid_signature`: missing, malformed, stale or wrong signature; `invalid_event`: the signed body is not an event"),
        (status = 413, description = "`payload_too_large`: the body is over the limit"),
    ))]
async fn webhook(
    req: HttpRequest,
    state: Data<AppState>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let limit = state.settings.http.body_limit_bytes;
    if body.len() > limit {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let signature = req
        .headers()
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let outcome = state
        .actors
        .payments
        .call(ReceiveWebhook {
            signature,
            body: body.to_vec(),
        })
        .await?;
    Ok(HttpResponse::build(StatusCode::OK).json(outcome))
}

/// A payment's timeline.
#[derive(Serialize, ToSchema)]
struct PaymentEvents {
    payment_id: Uuid,
    events: Vec<PaymentEventView>,
}

/// An empty JSON object.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // documents a body that has no fields
struct EmptyObject {}

/// Body of `POST /admin/payments/{id}/simulate/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SimulateRequest {
    /// Checked by the provider simulator, which names the events it sends.
    #[schema(value_type = ProviderEventKind, inline)]
    event: String,
}

/// The events the simulated provider can send of its own accord.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the values `SimulateRequest::event` takes
enum ProviderEventKind {
    #[schema(rename = "charge.succeeded")]
    Succeeded,
    #[schema(rename = "charge.failed")]
    Failed,
    #[schema(rename = "charge.refunded")]
    Refunded,
    #[schema(rename = "charge.dispute_created")]
    DisputeCreated,
}

/// The id of the event the simulated provider sent.
#[derive(Serialize, ToSchema)]
struct SimulatedEvent {
    event_id: String,
}

/// Makes the simulated provider send one of its own events for a payment
/// (admins only; for drills and demos; absent in production).
#[utoipa::path(post, path = "/admin/payments/{id}/simulate", tag = "admin", operation_id = "simulate_provider_event",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment's id (a UUID)")),
    request_body = SimulateRequest,
    responses(
        (status = 202, description = "The event was sent", body = SimulatedEvent),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such payment, or the instance runs in production"),
        (status = 422, description = "`validation_error`: unknown event"),
    ))]
async fn simulate(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<SimulateRequest>,
) -> Result<HttpResponse, ApiError> {
    // A drill tool: in production an admin could mark an order paid with
    // no charge behind it, so the route does not exist there.
    if state.settings.app.environment == Environment::Production {
        return Err(ApiError::NotFound("route"));
    }
    let payment_id = path_id(&id, "payment")?;
    let event_id = state
        .actors
        .payments
        .call(SimulateProviderEvent {
            payment_id,
            event: body.0.event,
        })
        .await?;
    Ok(HttpResponse::Accepted().json(SimulatedEvent { event_id }))
}
