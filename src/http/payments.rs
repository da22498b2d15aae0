//! `/api/v1/payments/…`: paying an order (with `Idempotency-Key`), reading
//! payments and their timelines, refunds, the provider's signed webhooks,
//! and the admin's provider-event simulation.

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{from_value, AdminUser, Authenticated, QueryParams, ValidJson};
use super::idempotency::{request_key, run_once};
use super::pagination::{page, page_request};
use super::state::AppState;
use crate::actors::payments::messages::*;
use crate::domain::pagination::Page;
use crate::domain::payments::card::{check_card, CardDetails};
use crate::domain::payments::status::PaymentStatus;
use crate::domain::validation::ValidationErrors;
use crate::store::payments::EventRow;

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PaymentMethodRequest {
    card_number: String,
    exp_month: i64,
    exp_year: i64,
    cvc: String,
}

/// Body of `POST /payments/`. No amount, currency or status: the order's
/// are used, and sending them is a 422.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePaymentRequest {
    order_id: Uuid,
    payment_method: PaymentMethodRequest,
}

fn payment_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("payment"))
}

async fn create_payment(
    req: HttpRequest,
    state: Data<AppState>,
    user: Authenticated,
    body: ValidJson<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(raw) = body;
    let key = request_key(&req)?;
    let request: CreatePaymentRequest = from_value(raw)?;
    let card = CardDetails {
        number: request.payment_method.card_number,
        exp_month: request.payment_method.exp_month,
        exp_year: request.payment_method.exp_year,
        cvc: request.payment_method.cvc,
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
        "order_id": request.order_id,
        "payment_method": {"last4": summary.last4, "brand": summary.brand,
                           "exp_month": card.exp_month, "exp_year": card.exp_year},
    });
    let payments = &state.actors.payments;
    let by = user.0;
    run_once(
        payments,
        &req,
        by.user_id,
        key,
        &fingerprinted,
        |lease| async move {
            let message = CreatePayment {
                by,
                order_id: request.order_id,
                card,
                lease,
            };
            let view = payments.call(message).await?;
            Ok(HttpResponse::Accepted().json(view))
        },
        |id| async move {
            let view = payments.call(GetPayment { id, viewer: by }).await?;
            Ok(HttpResponse::Accepted().json(view))
        },
    )
    .await
}

async fn get_payment(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
) -> Result<Json<PaymentView>, ApiError> {
    let id = payment_id(&id)?;
    Ok(Json(
        state
            .actors
            .payments
            .call(GetPayment { id, viewer: user.0 })
            .await?,
    ))
}

async fn events(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = payment_id(&id)?;
    let events: Vec<EventRow> = state
        .actors
        .payments
        .call(GetPaymentEvents { id, viewer: user.0 })
        .await?;
    Ok(Json(json!({"payment_id": id, "events": events})))
}

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

async fn refund(
    req: HttpRequest,
    state: Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = payment_id(&id)?;
    let key = request_key(&req)?;
    // No body is needed; one that is sent must be an empty object.
    let raw: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        super::extract::parse_json(&body)?
    };
    if raw != json!({}) {
        return Err(ApiError::Validation(ValidationErrors::single(
            "body",
            "unknown_field",
            "a full refund takes no fields",
        )));
    }
    let payments = &state.actors.payments;
    let by = admin.0;
    run_once(
        payments,
        &req,
        by.user_id,
        key,
        &raw,
        |lease| async move {
            let view = payments.call(RefundPayment { id, by, lease }).await?;
            Ok(HttpResponse::Accepted().json(view))
        },
        |id| async move {
            let view = payments.call(GetPayment { id, viewer: by }).await?;
            Ok(HttpResponse::Accepted().json(view))
        },
    )
    .await
}

/// Provider webhooks. No user: the signature over the exact raw bytes is
/// the authentication, checked before the body is even parsed.
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateRequest {
    event: String,
}

async fn simulate(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<SimulateRequest>,
) -> Result<HttpResponse, ApiError> {
    let payment_id = payment_id(&id)?;
    let event_id = state
        .actors
        .payments
        .call(SimulateProviderEvent {
            payment_id,
            event: body.0.event,
        })
        .await?;
    Ok(HttpResponse::Accepted().json(json!({"event_id": event_id})))
}
