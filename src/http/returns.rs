//! `/api/v1/orders/{id}/returns/…`: a customer asks to return delivered
//! units; admins approve, reject, receive (restocking or not), close and
//! refund them.

use actix_web::web::{self, Bytes, Data, Json};
use actix_web::HttpResponse;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{parse_json, path_id, AdminUser, Authenticated, ValidJson};
use super::state::AppState;
use crate::actors::orders::returns::*;
use crate::actors::payments::refunds::{RefundReturn, RefundView};
use crate::domain::validation::ValidationErrors;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/orders/{id}/returns")
            .route(web::get().to(list_returns))
            .route(web::post().to(create_return)),
    )
    .service(
        web::resource("/orders/{id}/returns/{return_id}/approve").route(web::post().to(approve)),
    )
    .service(web::resource("/orders/{id}/returns/{return_id}/reject").route(web::post().to(reject)))
    .service(web::resource("/orders/{id}/returns/{return_id}/close").route(web::post().to(close)))
    .service(
        web::resource("/orders/{id}/returns/{return_id}/receive").route(web::post().to(receive)),
    )
    .service(
        web::resource("/orders/{id}/returns/{return_id}/refund").route(web::post().to(refund)),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(list_returns, create_return, approve, reject, close, receive, refund))]
pub struct Api;

/// The order a route is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; handlers take the raw segment
struct OrderPath {
    /// The order's id (a UUID); anything else is a 404.
    id: String,
}

/// The order and return a route is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; handlers take the raw segments
struct ReturnPath {
    /// The order's id (a UUID); anything else is a 404.
    id: String,
    /// The return's id (a UUID); anything else is a 404.
    return_id: String,
}

/// Units of one line to return.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReturnLineRequest {
    /// The order line (`items[].id`).
    line_id: Uuid,
    #[schema(minimum = 1, maximum = 10000)]
    quantity: i64,
    /// Why (at most 500 characters).
    #[serde(default)]
    reason: Option<String>,
}

/// Body of `POST /orders/{id}/returns/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateReturnRequest {
    /// 1 to 100 entries; entries naming one line add up.
    #[schema(min_items = 1, max_items = 100)]
    lines: Vec<ReturnLineRequest>,
    /// At most 2000 characters.
    #[serde(default)]
    note: Option<String>,
}

/// Body of `…/reject/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RejectRequest {
    /// Told to the customer (1 to 500 characters).
    reason: String,
}

/// What arrived of one line.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReceivedLineRequest {
    line_id: Uuid,
    /// Units that arrived, at most what the return asked.
    #[schema(minimum = 0, maximum = 10000)]
    quantity: i64,
    /// Back on a shelf; `false` for damaged units.
    restock: bool,
    /// Which shelf; default: where the line's last delivered parcel left.
    #[serde(default)]
    location_id: Option<Uuid>,
}

/// Body of `…/receive/`: lines not named arrived with nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReceiveRequest {
    #[schema(max_items = 100)]
    lines: Vec<ReceivedLineRequest>,
}

/// Body of `…/refund/`: nothing refunds the received units' exact value.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReturnRefundRequest {
    /// Another amount, in minor units.
    #[serde(default)]
    #[schema(minimum = 1)]
    amount: Option<i64>,
    #[serde(default)]
    reason: Option<String>,
}

/// The empty body the decisions without fields accept.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NoBody {}

fn text(errors: &mut ValidationErrors, field: &str, raw: Option<String>, max: usize) -> String {
    let text = raw.unwrap_or_default().trim().to_owned();
    if text.chars().count() > max {
        errors.add(field, "too_long", format!("at most {max} characters"));
    }
    text
}

fn ids(path: &(String, String)) -> Result<(Uuid, Uuid), ApiError> {
    Ok((path_id(&path.0, "order")?, path_id(&path.1, "return")?))
}

/// Asks to return delivered units of an order (its owner; an admin for
/// them), within `returns.window_days` of its last delivery.
#[utoipa::path(post, path = "/orders/{id}/returns", tag = "orders", operation_id = "create_return",
    security(("bearer" = [])),
    params(OrderPath),
    request_body = CreateReturnRequest,
    responses(
        (status = 201, description = "The return, `requested`", body = ReturnView),
        (status = 404, description = "`not_found`: no such order of the caller's"),
        (status = 409, description = "`over_return`: more units of a line than were delivered and not returned yet"),
        (status = 422, description = "`validation_error`: no lines, a bad quantity, a line of another order, a reason or note too long; `return_window_closed`: nothing delivered yet, or delivered too long ago"),
    ))]
async fn create_return(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
    body: ValidJson<CreateReturnRequest>,
) -> Result<HttpResponse, ApiError> {
    let order_id = path_id(&id, "order")?;
    let body = body.0;
    let mut errors = ValidationErrors::new();
    if body.lines.is_empty() || body.lines.len() > 100 {
        errors.add("lines", "invalid", "1 to 100 lines");
    }
    let mut lines = Vec::new();
    for (index, l) in body.lines.into_iter().enumerate() {
        if !(1..=10_000).contains(&l.quantity) {
            errors.add(
                &format!("lines.{index}.quantity"),
                "out_of_range",
                "quantity must be between 1 and 10000",
            );
        }
        let reason = text(&mut errors, &format!("lines.{index}.reason"), l.reason, 500);
        lines.push((l.line_id, i32::try_from(l.quantity).unwrap_or(0), reason));
    }
    let note = text(&mut errors, "note", body.note, 2000);
    errors.into_result().map_err(ApiError::Validation)?;
    let view = state
        .actors
        .orders
        .call(CreateReturn {
            order_id,
            by: user.0,
            lines,
            note,
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// An order's returns, oldest first: its owner's, or any for an admin.
#[utoipa::path(get, path = "/orders/{id}/returns", tag = "orders", operation_id = "list_returns",
    security(("bearer" = [])),
    params(OrderPath),
    responses(
        (status = 200, description = "The returns", body = Vec<ReturnView>),
        (status = 404, description = "`not_found`: no such order of the caller's"),
    ))]
async fn list_returns(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
) -> Result<Json<Vec<ReturnView>>, ApiError> {
    let order_id = path_id(&id, "order")?;
    Ok(Json(
        state
            .actors
            .orders
            .call(ListReturns {
                order_id,
                viewer: user.0,
            })
            .await?,
    ))
}

async fn decide(
    state: &AppState,
    admin: AdminUser,
    path: &(String, String),
    decision: ReturnDecision,
) -> Result<Json<ReturnView>, ApiError> {
    let (order_id, return_id) = ids(path)?;
    Ok(Json(
        state
            .actors
            .orders
            .call(DecideReturn {
                order_id,
                return_id,
                by: admin.0,
                decision,
            })
            .await?,
    ))
}

fn no_fields(body: &Bytes) -> Result<(), ApiError> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        parse_json::<Option<NoBody>>(body)?;
    }
    Ok(())
}

/// Approves a requested return (admins only): the customer sends the
/// goods.
#[utoipa::path(post, path = "/orders/{id}/returns/{return_id}/approve", tag = "orders", operation_id = "approve_return",
    security(("bearer" = [])),
    params(ReturnPath),
    request_body(content = Option<NoBody>, description = "Nothing, or `{}`"),
    responses(
        (status = 200, description = "The return, `approved`", body = ReturnView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order, or no such return of it"),
        (status = 409, description = "`invalid_transition`: the return is not `requested`"),
    ))]
async fn approve(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<Json<ReturnView>, ApiError> {
    no_fields(&body)?;
    decide(&state, admin, &path, ReturnDecision::Approve).await
}

/// Rejects a requested return with a reason (admins only); its units
/// may be asked for again.
#[utoipa::path(post, path = "/orders/{id}/returns/{return_id}/reject", tag = "orders", operation_id = "reject_return",
    security(("bearer" = [])),
    params(ReturnPath),
    request_body = RejectRequest,
    responses(
        (status = 200, description = "The return, `rejected`", body = ReturnView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order, or no such return of it"),
        (status = 409, description = "`invalid_transition`: the return is not `requested`"),
        (status = 422, description = "`validation_error`: no reason, or one over 500 characters"),
    ))]
async fn reject(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: ValidJson<RejectRequest>,
) -> Result<Json<ReturnView>, ApiError> {
    let mut errors = ValidationErrors::new();
    let reason = text(&mut errors, "reason", Some(body.0.reason), 500);
    if reason.is_empty() {
        errors.add("reason", "blank", "say why");
    }
    errors.into_result().map_err(ApiError::Validation)?;
    decide(&state, admin, &path, ReturnDecision::Reject { reason }).await
}

/// Closes a return without a refund (admins only): withdrawn before the
/// goods arrived (its units may be asked for again), or kept as received.
#[utoipa::path(post, path = "/orders/{id}/returns/{return_id}/close", tag = "orders", operation_id = "close_return",
    security(("bearer" = [])),
    params(ReturnPath),
    request_body(content = Option<NoBody>, description = "Nothing, or `{}`"),
    responses(
        (status = 200, description = "The return, `closed`", body = ReturnView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order, or no such return of it"),
        (status = 409, description = "`invalid_transition`: the return is rejected, refunded or closed"),
    ))]
async fn close(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<Json<ReturnView>, ApiError> {
    no_fields(&body)?;
    decide(&state, admin, &path, ReturnDecision::Close).await
}

/// Records what arrived of an approved return (admins only): per line,
/// the units and whether they go back on a shelf (a `return` movement in
/// the stock ledger, available at once) or not (damaged).
#[utoipa::path(post, path = "/orders/{id}/returns/{return_id}/receive", tag = "orders", operation_id = "receive_return",
    security(("bearer" = [])),
    params(ReturnPath),
    request_body = ReceiveRequest,
    responses(
        (status = 200, description = "The return, `received`", body = ReturnView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order, or no such return of it"),
        (status = 409, description = "`invalid_transition`: the return is not `approved` (received already, say)"),
        (status = 422, description = "`validation_error`: a bad quantity, an unknown location, no location for restocked units whose parcel's is unknown; `over_receipt`: more than the return asked, a line twice or not in it"),
    ))]
async fn receive(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: ValidJson<ReceiveRequest>,
) -> Result<Json<ReturnView>, ApiError> {
    let (order_id, return_id) = ids(&path)?;
    let mut errors = ValidationErrors::new();
    if body.0.lines.len() > 100 {
        errors.add("lines", "too_many", "at most 100 lines");
    }
    let mut lines = Vec::new();
    for (index, l) in body.0.lines.iter().enumerate() {
        if !(0..=10_000).contains(&l.quantity) {
            errors.add(
                &format!("lines.{index}.quantity"),
                "out_of_range",
                "quantity must be between 0 and 10000",
            );
        }
        lines.push(ReceivedLine {
            line_id: l.line_id,
            quantity: i32::try_from(l.quantity).unwrap_or(0),
            restock: l.restock,
            location_id: l.location_id,
        });
    }
    errors.into_result().map_err(ApiError::Validation)?;
    Ok(Json(
        state
            .actors
            .orders
            .call(ReceiveReturn {
                order_id,
                return_id,
                by: admin.0,
                lines,
            })
            .await?,
    ))
}

/// Refunds a received return through its payment (admins only): the
/// received units' exact value from the order, or `amount`. One refund
/// counts per return; asked again, that one is answered. The return
/// becomes `refunded` when the money has gone back.
#[utoipa::path(post, path = "/orders/{id}/returns/{return_id}/refund", tag = "orders", operation_id = "refund_return",
    security(("bearer" = [])),
    params(ReturnPath),
    request_body(content = Option<ReturnRefundRequest>, description = "Nothing, or `{amount?, reason?}`"),
    responses(
        (status = 201, description = "The refund, `pending` (or the one that counts already)", body = RefundView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order, or no such return of it"),
        (status = 409, description = "`invalid_transition`: the return is not `received`; `order_not_payable`: the order has no captured payment; `refund_exceeds_captured`, `over_refund`: more than is left to refund"),
        (status = 422, description = "`validation_error`: a bad amount; `nothing_to_refund`: nothing of the return arrived"),
    ))]
async fn refund(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (order_id, return_id) = ids(&path)?;
    let request: ReturnRefundRequest = if body.iter().all(u8::is_ascii_whitespace) {
        ReturnRefundRequest::default()
    } else {
        parse_json::<Option<ReturnRefundRequest>>(&body)?.unwrap_or_default()
    };
    let mut errors = ValidationErrors::new();
    if request.amount.is_some_and(|a| a < 1) {
        errors.add("amount", "out_of_range", "amount must be at least 1");
    }
    let reason = text(&mut errors, "reason", request.reason, 500);
    errors.into_result().map_err(ApiError::Validation)?;
    let view = state
        .actors
        .payments
        .call(RefundReturn {
            order_id,
            return_id,
            by: admin.0,
            amount: request.amount,
            reason,
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}
