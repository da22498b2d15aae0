//! `/api/v1/payments/{id}/refunds/`: partial and repeated refunds of a
//! payment, of an amount or of order lines (admins create them; the payer
//! reads them).

use actix_web::web::{self, Data, Json};
use actix_web::HttpResponse;
use serde::Deserialize;
use utoipa::{OpenApi, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{path_id, AdminUser, Authenticated};
use super::idempotency::{answer_created, send_once, IdempotentJson};
use super::state::AppState;
use crate::actors::payments::refunds::*;
use crate::domain::payments::refund::RefundAsk;
use crate::domain::validation::ValidationErrors;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/payments/{id}/refunds")
            .route(web::get().to(list_refunds))
            .route(web::post().to(create_refund)),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(list_refunds, create_refund))]
pub struct Api;

/// Units of one order line to refund.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundLineRequest {
    /// The order line (`items[].id` of the order).
    line_id: Uuid,
    #[schema(minimum = 1, maximum = 10000)]
    quantity: i64,
}

/// Body of `POST /payments/{id}/refunds/`: an `amount`, or `lines`
/// and/or `include_shipping`, never both kinds.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefundRequest {
    /// Minor units of the payment's currency.
    #[serde(default)]
    #[schema(minimum = 1)]
    amount: Option<i64>,
    /// Order lines and units, each priced from the order's snapshot (its
    /// discount share and tax included).
    #[serde(default)]
    #[schema(max_items = 100)]
    lines: Option<Vec<RefundLineRequest>>,
    /// Refund the shipping charge and its tax (once per payment).
    #[serde(default)]
    include_shipping: Option<bool>,
    /// Kept with the refund (trimmed to 500 characters).
    #[serde(default)]
    reason: Option<String>,
}

/// What the body asks, or every field it gets wrong.
fn ask_of(body: &RefundRequest) -> Result<RefundAsk, ApiError> {
    let mut errors = ValidationErrors::new();
    let by_lines = body.lines.is_some() || body.include_shipping.is_some();
    let ask = match (body.amount, by_lines) {
        (Some(amount), false) => {
            if amount < 1 {
                errors.add("amount", "out_of_range", "amount must be at least 1");
            }
            RefundAsk::Amount(amount)
        }
        (None, true) => {
            let lines = body.lines.as_deref().unwrap_or_default();
            if lines.len() > 100 {
                errors.add("lines", "too_many", "at most 100 lines");
            }
            for (index, line) in lines.iter().enumerate() {
                if !(1..=10_000).contains(&line.quantity) {
                    errors.add(
                        &format!("lines.{index}.quantity"),
                        "out_of_range",
                        "quantity must be between 1 and 10000",
                    );
                }
            }
            let include_shipping = body.include_shipping.unwrap_or(false);
            if lines.is_empty() && !include_shipping {
                errors.add(
                    "lines",
                    "empty",
                    "name at least one line, or include_shipping",
                );
            }
            RefundAsk::Lines {
                lines: lines.iter().map(|l| (l.line_id, l.quantity)).collect(),
                include_shipping,
            }
        }
        _ => {
            errors.add(
                "amount",
                "invalid",
                "give an amount, or lines and/or include_shipping, not both",
            );
            RefundAsk::Amount(0)
        }
    };
    errors.into_result().map_err(ApiError::Validation)?;
    Ok(ask)
}

/// Refunds part of a succeeded payment (admins only): an amount, or units
/// of the order's lines (priced exactly from the order) and perhaps its
/// shipping. Any number of refunds, each run by the payment pool with the
/// provider; together they never pass the captured amount.
#[utoipa::path(post, path = "/payments/{id}/refunds", tag = "payments", operation_id = "create_refund",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment's id (a UUID)"), crate::http::idempotency::IdempotencyKeyHeader),
    request_body = RefundRequest,
    responses(
        (status = 201, description = "The refund, `pending` (replayed for a repeated key)", body = RefundView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such payment"),
        (status = 409, description = "`refund_exceeds_captured`: more than is left of the captured amount; `over_refund`: more units of a line than have shipped and are left to refund, or the shipping again; `payment_not_settled`: the order has not taken the payment yet (retry shortly); `invalid_transition`: the payment is not `succeeded` (not captured, or a full refund is under way or done)"),
        (status = 422, description = "`validation_error`: both or neither of `amount` and `lines`, a bad quantity, a line of another order; `nothing_to_refund`: the lines come to nothing"),
    ))]
async fn create_refund(
    state: Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
    request: IdempotentJson<RefundRequest>,
) -> Result<HttpResponse, ApiError> {
    let payment_id = path_id(&id, "payment")?;
    let IdempotentJson { body, raw, key } = request;
    let ask = ask_of(&body)?;
    let reason: String = body
        .reason
        .as_deref()
        .unwrap_or_default()
        .trim()
        .chars()
        .take(500)
        .collect();
    let by = admin.0;
    let message = CreateRefund {
        payment_id,
        by,
        ask,
        reason,
        return_id: None,
        key: None,
    };
    let keyed = key.for_user(by.user_id, &raw);
    send_once(&state.actors.payments, keyed, message, answer_created()).await
}

/// A payment's refunds, oldest first: its payer's, or any for an admin.
#[utoipa::path(get, path = "/payments/{id}/refunds", tag = "payments", operation_id = "list_refunds",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The payment's id (a UUID)")),
    responses(
        (status = 200, description = "The refunds", body = Vec<RefundView>),
        (status = 404, description = "`not_found`: no such payment of the caller's"),
    ))]
async fn list_refunds(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
) -> Result<Json<Vec<RefundView>>, ApiError> {
    let payment_id = path_id(&id, "payment")?;
    Ok(Json(
        state
            .actors
            .payments
            .call(ListRefunds {
                payment_id,
                viewer: user.0,
            })
            .await?,
    ))
}
