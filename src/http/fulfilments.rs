//! `/api/v1/orders/{id}/fulfilments/…`: the parcels an order ships in.
//! Admins create them, add tracking, ship, deliver or cancel them; the
//! order's owner reads them (and in `GET /orders/{id}/`).

use actix_web::web::{self, Bytes, Data, Json};
use actix_web::HttpResponse;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{parse_json, path_id, AdminUser, Authenticated, ValidJson};
use super::state::AppState;
use crate::actors::orders::fulfilments::*;
use crate::domain::orders::fulfilment::{FulfilmentAction, TrackingChange};
use crate::domain::validation::ValidationErrors;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/orders/{id}/fulfilments")
            .route(web::get().to(list_fulfilments))
            .route(web::post().to(create_fulfilment)),
    )
    .service(
        web::resource("/orders/{id}/fulfilments/{fulfilment_id}")
            .route(web::patch().to(update_fulfilment)),
    )
    .service(
        web::resource("/orders/{id}/fulfilments/{fulfilment_id}/ship")
            .route(web::post().to(ship_fulfilment)),
    )
    .service(
        web::resource("/orders/{id}/fulfilments/{fulfilment_id}/deliver")
            .route(web::post().to(deliver_fulfilment)),
    )
    .service(
        web::resource("/orders/{id}/fulfilments/{fulfilment_id}/cancel")
            .route(web::post().to(cancel_fulfilment)),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    list_fulfilments,
    create_fulfilment,
    update_fulfilment,
    ship_fulfilment,
    deliver_fulfilment,
    cancel_fulfilment
))]
pub struct Api;

/// The order and parcel a route is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; handlers take the raw segments
struct FulfilmentPath {
    /// The order's id (a UUID); anything else is a 404.
    id: String,
    /// The fulfilment's id (a UUID); anything else is a 404.
    fulfilment_id: String,
}

/// The order a route is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; handlers take the raw segment
struct OrderPath {
    /// The order's id (a UUID); anything else is a 404.
    id: String,
}

/// Units of one order line for a parcel.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LineRequest {
    /// The order line (`items[].id` of the order); give this or
    /// `variant_id`.
    line_id: Option<Uuid>,
    /// The variant the line sold; an order has one line per variant.
    variant_id: Option<Uuid>,
    #[schema(minimum = 1, maximum = 10000)]
    quantity: i64,
}

/// Body of `POST /orders/{id}/fulfilments/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateFulfilmentRequest {
    /// 1 to 100 entries; entries naming one line add up.
    #[schema(min_items = 1, max_items = 100)]
    lines: Vec<LineRequest>,
    /// The stock location it leaves from; it must hold the units for this
    /// order. Default: the first location, by priority, holding them all.
    #[serde(default)]
    location_id: Option<Uuid>,
    #[serde(default)]
    #[schema(max_length = 100)]
    carrier: Option<String>,
    #[serde(default)]
    #[schema(max_length = 100)]
    tracking_number: Option<String>,
    /// An `http` or `https` URL.
    #[serde(default)]
    #[schema(max_length = 2000)]
    tracking_url: Option<String>,
}

/// Body of `PATCH /orders/{id}/fulfilments/{fulfilment_id}/`: fields
/// sent change, `null` clears one, fields left out stay.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateFulfilmentRequest {
    #[serde(default, deserialize_with = "super::extract::double_option")]
    #[schema(value_type = Option<String>, max_length = 100)]
    carrier: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::extract::double_option")]
    #[schema(value_type = Option<String>, max_length = 100)]
    tracking_number: Option<Option<String>>,
    /// An `http` or `https` URL.
    #[serde(default, deserialize_with = "super::extract::double_option")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    tracking_url: Option<Option<String>>,
}

/// A carrier or tracking number: trimmed, blank means none, at most 100
/// characters.
fn short_text(errors: &mut ValidationErrors, field: &str, raw: Option<String>) -> Option<String> {
    let text = raw.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())?;
    if text.chars().count() > 100 {
        errors.add(field, "too_long", "at most 100 characters");
        return None;
    }
    Some(text)
}

/// A tracking URL: an absolute `http` or `https` URL of at most 2000
/// characters; blank means none.
fn tracking_url(errors: &mut ValidationErrors, raw: Option<String>) -> Option<String> {
    let text = raw.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())?;
    if text.chars().count() > 2000 {
        errors.add("tracking_url", "too_long", "at most 2000 characters");
        return None;
    }
    match url::Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Some(text),
        _ => {
            errors.add("tracking_url", "invalid", "must be an http or https URL");
            None
        }
    }
}

/// Lists an order's parcels, oldest first: its owner's or any for an
/// admin.
#[utoipa::path(get, path = "/orders/{id}/fulfilments", tag = "orders", operation_id = "list_fulfilments",
    security(("bearer" = [])),
    params(OrderPath),
    responses(
        (status = 200, description = "The order's fulfilments", body = Vec<FulfilmentView>),
        (status = 404, description = "`not_found`: no such order of the caller's"),
    ))]
async fn list_fulfilments(
    state: Data<AppState>,
    user: Authenticated,
    id: web::Path<String>,
) -> Result<Json<Vec<FulfilmentView>>, ApiError> {
    let order_id = path_id(&id, "order")?;
    Ok(Json(
        state
            .actors
            .orders
            .call(ListFulfilments {
                order_id,
                viewer: user.0.into(),
            })
            .await?,
    ))
}

/// Creates a pending parcel of some units of a paid order, from one stock
/// location (admins only). The units leave the shelves when it ships.
#[utoipa::path(post, path = "/orders/{id}/fulfilments", tag = "orders", operation_id = "create_fulfilment",
    security(("bearer" = [])),
    params(OrderPath),
    request_body = CreateFulfilmentRequest,
    responses(
        (status = 201, description = "The fulfilment, pending", body = FulfilmentView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order"),
        (status = 409, description = "`over_fulfilment`: more units of a line than are left to fulfil; `not_at_location`: the location does not hold them for this order; `stock_not_held`: the order's stock was given back; `invalid_transition`: the order is not paid or partially fulfilled"),
        (status = 422, description = "`validation_error`: no lines, a line naming neither or both of `line_id` and `variant_id`, or nothing of this order, a bad quantity, carrier or URL; `location_required`: no one location holds every unit, name one"),
    ))]
async fn create_fulfilment(
    state: Data<AppState>,
    admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<CreateFulfilmentRequest>,
) -> Result<HttpResponse, ApiError> {
    let order_id = path_id(&id, "order")?;
    let body = body.0;
    let mut errors = ValidationErrors::new();
    if body.lines.is_empty() {
        errors.add("lines", "empty", "at least one line is required");
    }
    if body.lines.len() > 100 {
        errors.add("lines", "too_many", "at most 100 lines");
    }
    let mut lines = Vec::new();
    for (index, l) in body.lines.iter().enumerate() {
        let line = match (l.line_id, l.variant_id) {
            (Some(id), None) => Some(LineRef::Line(id)),
            (None, Some(id)) => Some(LineRef::Variant(id)),
            _ => {
                errors.add(
                    &format!("lines.{index}"),
                    "invalid",
                    "give exactly one of line_id and variant_id",
                );
                None
            }
        };
        if !(1..=10_000).contains(&l.quantity) {
            errors.add(
                &format!("lines.{index}.quantity"),
                "out_of_range",
                "quantity must be between 1 and 10000",
            );
        }
        if let (Some(line), Ok(quantity)) = (line, i32::try_from(l.quantity)) {
            lines.push(ParcelLine { line, quantity });
        }
    }
    let tracking = Tracking {
        carrier: short_text(&mut errors, "carrier", body.carrier),
        tracking_number: short_text(&mut errors, "tracking_number", body.tracking_number),
        tracking_url: tracking_url(&mut errors, body.tracking_url),
    };
    errors.into_result().map_err(ApiError::Validation)?;
    let view = state
        .actors
        .orders
        .call(CreateFulfilment {
            order_id,
            by: admin.0,
            lines,
            location_id: body.location_id,
            tracking,
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Changes a parcel's carrier and tracking (admins only), until it is
/// cancelled.
#[utoipa::path(patch, path = "/orders/{id}/fulfilments/{fulfilment_id}", tag = "orders", operation_id = "update_fulfilment",
    security(("bearer" = [])),
    params(FulfilmentPath),
    request_body = UpdateFulfilmentRequest,
    responses(
        (status = 200, description = "The fulfilment", body = FulfilmentView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order, or no such fulfilment of it"),
        (status = 409, description = "`invalid_transition`: the fulfilment is cancelled"),
        (status = 422, description = "`validation_error`: a carrier or tracking number over 100 characters, a URL that is not http(s)"),
    ))]
async fn update_fulfilment(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: ValidJson<UpdateFulfilmentRequest>,
) -> Result<Json<FulfilmentView>, ApiError> {
    let order_id = path_id(&path.0, "order")?;
    let fulfilment_id = path_id(&path.1, "fulfilment")?;
    let body = body.0;
    let mut errors = ValidationErrors::new();
    let change = TrackingChange {
        carrier: body.carrier.map(|c| short_text(&mut errors, "carrier", c)),
        tracking_number: body
            .tracking_number
            .map(|n| short_text(&mut errors, "tracking_number", n)),
        tracking_url: body.tracking_url.map(|u| tracking_url(&mut errors, u)),
    };
    errors.into_result().map_err(ApiError::Validation)?;
    Ok(Json(
        state
            .actors
            .orders
            .call(UpdateFulfilment {
                order_id,
                fulfilment_id,
                by: admin.0,
                change,
            })
            .await?,
    ))
}

async fn act(
    state: &AppState,
    admin: AdminUser,
    path: &(String, String),
    body: &Bytes,
    action: FulfilmentAction,
) -> Result<Json<FulfilmentView>, ApiError> {
    let order_id = path_id(&path.0, "order")?;
    let fulfilment_id = path_id(&path.1, "fulfilment")?;
    // No body, `null` or `{}`: these actions take nothing.
    if !body.iter().all(u8::is_ascii_whitespace) {
        parse_json::<Option<NoBody>>(body)?;
    }
    Ok(Json(
        state
            .actors
            .orders
            .call(ActOnFulfilment {
                order_id,
                fulfilment_id,
                by: admin.0,
                action,
            })
            .await?,
    ))
}

/// The empty body the parcel actions accept.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NoBody {}

/// Ships a pending parcel (admins only): its units become a `sale` in
/// the stock ledger at its location, and the order becomes
/// `partially_fulfilled` or `fulfilled`.
#[utoipa::path(post, path = "/orders/{id}/fulfilments/{fulfilment_id}/ship", tag = "orders", operation_id = "ship_fulfilment",
    security(("bearer" = [])),
    params(FulfilmentPath),
    request_body(content = Option<NoBody>, description = "Nothing, or `{}`"),
    responses(
        (status = 200, description = "The fulfilment, shipped", body = FulfilmentView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order, or no such fulfilment of it"),
        (status = 409, description = "`invalid_transition`: the fulfilment is not pending, or the order cannot ship now (a refund is pending)"),
    ))]
async fn ship_fulfilment(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<Json<FulfilmentView>, ApiError> {
    act(&state, admin, &path, &body, FulfilmentAction::Ship).await
}

/// Marks a shipped parcel delivered (admins only); the order becomes
/// `delivered` when every unit has shipped and every parcel arrived.
#[utoipa::path(post, path = "/orders/{id}/fulfilments/{fulfilment_id}/deliver", tag = "orders", operation_id = "deliver_fulfilment",
    security(("bearer" = [])),
    params(FulfilmentPath),
    request_body(content = Option<NoBody>, description = "Nothing, or `{}`"),
    responses(
        (status = 200, description = "The fulfilment, delivered", body = FulfilmentView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order, or no such fulfilment of it"),
        (status = 409, description = "`invalid_transition`: the fulfilment has not shipped or was delivered"),
    ))]
async fn deliver_fulfilment(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<Json<FulfilmentView>, ApiError> {
    act(&state, admin, &path, &body, FulfilmentAction::Deliver).await
}

/// Cancels a pending parcel (admins only): its units can go into another.
#[utoipa::path(post, path = "/orders/{id}/fulfilments/{fulfilment_id}/cancel", tag = "orders", operation_id = "cancel_fulfilment",
    security(("bearer" = [])),
    params(FulfilmentPath),
    request_body(content = Option<NoBody>, description = "Nothing, or `{}`"),
    responses(
        (status = 200, description = "The fulfilment, cancelled", body = FulfilmentView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such order, or no such fulfilment of it"),
        (status = 409, description = "`invalid_transition`: the fulfilment is not pending"),
    ))]
async fn cancel_fulfilment(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<Json<FulfilmentView>, ApiError> {
    act(&state, admin, &path, &body, FulfilmentAction::Cancel).await
}
