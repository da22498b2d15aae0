//! `/api/v1/shipping/…`: shipping zones and their methods, managed by
//! admins. A destination no zone covers has no methods; a shop with no
//! active method ships at no charge.

use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::ApiError;
use super::extract::{path_id, AdminUser, QueryParams, ValidJson};
use super::state::AppState;
use crate::actors::orders::rules::*;
use crate::domain::pricing::config::{MethodDraft, ZoneDraft};
use crate::domain::pricing::shipping::Rate;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/shipping/zones")
            .route(web::get().to(list_zones))
            .route(web::post().to(create_zone)),
    )
    .service(
        web::resource("/shipping/zones/{id}")
            .route(web::get().to(get_zone))
            .route(web::put().to(replace_zone))
            .route(web::delete().to(delete_zone)),
    )
    .service(
        web::resource("/shipping/methods")
            .route(web::get().to(list_methods))
            .route(web::post().to(create_method)),
    )
    .service(
        web::resource("/shipping/methods/{id}")
            .route(web::get().to(get_method))
            .route(web::put().to(replace_method))
            .route(web::delete().to(delete_method)),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    list_zones,
    create_zone,
    get_zone,
    replace_zone,
    delete_zone,
    list_methods,
    create_method,
    get_method,
    replace_method,
    delete_method
))]
pub struct Api;

/// Body of `POST /shipping/zones/` and `PUT /shipping/zones/{id}/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ZoneRequest {
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \\t\\n\\r]")]
    name: String,
    /// ISO 3166-1 alpha-2 codes (any case), at least one.
    #[schema(min_items = 1, max_items = 249, example = json!(["FR", "DE"]))]
    countries: Vec<String>,
    /// Narrows the countries to postal codes starting with one of these
    /// (spaces and dashes ignored); absent or empty: whole countries. A
    /// destination is served by the zones that cover it most closely.
    #[schema(max_items = 1000)]
    postal_code_prefixes: Option<Vec<String>>,
}

impl From<ZoneRequest> for ZoneDraft {
    fn from(r: ZoneRequest) -> Self {
        ZoneDraft {
            name: r.name,
            countries: r.countries,
            postal_code_prefixes: r.postal_code_prefixes.unwrap_or_default(),
        }
    }
}

/// Body of `POST /shipping/methods/` and `PUT /shipping/methods/{id}/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct MethodRequest {
    zone_id: uuid::Uuid,
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \\t\\n\\r]")]
    name: String,
    #[schema(max_length = 100)]
    carrier: Option<String>,
    /// ISO 4217; offered only to carts in this currency.
    #[schema(example = "EUR")]
    currency: String,
    /// `{"kind": "flat", "amount": 490}`, `{"kind": "weight", "bands":
    /// [{"up_to_grams": 1000, "amount": 500}]}` or `{"kind": "subtotal",
    /// "bands": [{"up_to": 5000, "amount": 490}]}`. A parcel past the last
    /// band is not offered the method.
    rate: Rate,
    /// Free from this subtotal after discount (inclusive), minor units.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    free_over: Option<i64>,
    #[schema(minimum = 0, maximum = 365)]
    min_days: Option<i64>,
    #[schema(minimum = 0, maximum = 365)]
    max_days: Option<i64>,
    /// The tax class shipping is taxed at; default `standard`.
    tax_class: Option<String>,
    /// Default `true`.
    is_active: Option<bool>,
}

impl From<MethodRequest> for MethodDraft {
    fn from(r: MethodRequest) -> Self {
        MethodDraft {
            zone_id: r.zone_id,
            name: r.name,
            carrier: r.carrier,
            currency: r.currency,
            rate: r.rate,
            free_over: r.free_over,
            min_days: r.min_days,
            max_days: r.max_days,
            tax_class: r.tax_class,
            is_active: r.is_active.unwrap_or(true),
        }
    }
}

/// A zone or method in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; handlers take the raw segment
struct RuleId {
    /// The id (a UUID).
    id: String,
}

/// Filter of `GET /shipping/methods/`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read by the document only; the handler parses the query
struct MethodFilter {
    /// Only this zone's methods.
    zone_id: Option<uuid::Uuid>,
}

/// Every shipping zone with its methods (admins only).
#[utoipa::path(get, path = "/shipping/zones", tag = "shipping", operation_id = "list_shipping_zones",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The zones, by name", body = [ZoneView]),
        (status = 403, description = "`permission_denied`: admins only"),
    ))]
async fn list_zones(
    state: Data<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<ZoneView>>, ApiError> {
    Ok(Json(state.actors.orders.call(ListShippingZones).await?))
}

/// Creates a shipping zone (admins only).
#[utoipa::path(post, path = "/shipping/zones", tag = "shipping", operation_id = "create_shipping_zone",
    security(("bearer" = [])),
    request_body = ZoneRequest,
    responses(
        (status = 201, description = "The zone", body = ZoneView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 422, description = "`validation_error`: blank name, no or unknown countries, blank prefixes"),
    ))]
async fn create_zone(
    state: Data<AppState>,
    _admin: AdminUser,
    body: ValidJson<ZoneRequest>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(b) = body;
    let view = state
        .actors
        .orders
        .call(PutShippingZone {
            id: None,
            draft: b.into(),
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// One shipping zone with its methods (admins only).
#[utoipa::path(get, path = "/shipping/zones/{id}", tag = "shipping", operation_id = "get_shipping_zone",
    security(("bearer" = [])),
    params(RuleId),
    responses(
        (status = 200, description = "The zone", body = ZoneView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such zone"),
    ))]
async fn get_zone(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<Json<ZoneView>, ApiError> {
    let id = path_id(&id, "shipping zone")?;
    Ok(Json(state.actors.orders.call(GetShippingZone(id)).await?))
}

/// Replaces a shipping zone's fields (admins only).
#[utoipa::path(put, path = "/shipping/zones/{id}", tag = "shipping", operation_id = "replace_shipping_zone",
    security(("bearer" = [])),
    params(RuleId),
    request_body = ZoneRequest,
    responses(
        (status = 200, description = "The zone", body = ZoneView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such zone"),
        (status = 422, description = "`validation_error`: as for creating one"),
    ))]
async fn replace_zone(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<ZoneRequest>,
) -> Result<Json<ZoneView>, ApiError> {
    let id = path_id(&id, "shipping zone")?;
    let ValidJson(b) = body;
    let view = state
        .actors
        .orders
        .call(PutShippingZone {
            id: Some(id),
            draft: b.into(),
        })
        .await?;
    Ok(Json(view))
}

/// Deletes a shipping zone and its methods (admins only). Orders keep the
/// method they were charged.
#[utoipa::path(delete, path = "/shipping/zones/{id}", tag = "shipping", operation_id = "delete_shipping_zone",
    security(("bearer" = [])),
    params(RuleId),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such zone"),
    ))]
async fn delete_zone(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "shipping zone")?;
    state.actors.orders.call(DeleteShippingZone(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every shipping method, or one zone's (admins only).
#[utoipa::path(get, path = "/shipping/methods", tag = "shipping", operation_id = "list_shipping_methods",
    security(("bearer" = [])),
    params(MethodFilter),
    responses(
        (status = 200, description = "The methods", body = [MethodView]),
        (status = 400, description = "`invalid_query`: zone_id is not a UUID"),
        (status = 403, description = "`permission_denied`: admins only"),
    ))]
async fn list_methods(
    req: HttpRequest,
    state: Data<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<MethodView>>, ApiError> {
    let params = QueryParams::from_request(&req);
    let mut errors = crate::domain::validation::ValidationErrors::new();
    let zone_id = params.uuid_into("zone_id", &mut errors);
    errors.into_result().map_err(ApiError::InvalidQuery)?;
    Ok(Json(
        state
            .actors
            .orders
            .call(ListShippingMethods { zone_id })
            .await?,
    ))
}

/// Creates a shipping method in a zone (admins only).
#[utoipa::path(post, path = "/shipping/methods", tag = "shipping", operation_id = "create_shipping_method",
    security(("bearer" = [])),
    request_body = MethodRequest,
    responses(
        (status = 201, description = "The method", body = MethodView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 422, description = "`validation_error`: unknown zone, bad currency, bands, amounts or days"),
    ))]
async fn create_method(
    state: Data<AppState>,
    _admin: AdminUser,
    body: ValidJson<MethodRequest>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(b) = body;
    let view = state
        .actors
        .orders
        .call(PutShippingMethod {
            id: None,
            draft: b.into(),
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// One shipping method (admins only).
#[utoipa::path(get, path = "/shipping/methods/{id}", tag = "shipping", operation_id = "get_shipping_method",
    security(("bearer" = [])),
    params(RuleId),
    responses(
        (status = 200, description = "The method", body = MethodView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such method"),
    ))]
async fn get_method(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<Json<MethodView>, ApiError> {
    let id = path_id(&id, "shipping method")?;
    Ok(Json(state.actors.orders.call(GetShippingMethod(id)).await?))
}

/// Replaces a shipping method's fields (admins only). Placed orders keep
/// what they were charged.
#[utoipa::path(put, path = "/shipping/methods/{id}", tag = "shipping", operation_id = "replace_shipping_method",
    security(("bearer" = [])),
    params(RuleId),
    request_body = MethodRequest,
    responses(
        (status = 200, description = "The method", body = MethodView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such method"),
        (status = 422, description = "`validation_error`: as for creating one"),
    ))]
async fn replace_method(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<MethodRequest>,
) -> Result<Json<MethodView>, ApiError> {
    let id = path_id(&id, "shipping method")?;
    let ValidJson(b) = body;
    let view = state
        .actors
        .orders
        .call(PutShippingMethod {
            id: Some(id),
            draft: b.into(),
        })
        .await?;
    Ok(Json(view))
}

/// Deletes a shipping method (admins only); carts that chose it lose it.
#[utoipa::path(delete, path = "/shipping/methods/{id}", tag = "shipping", operation_id = "delete_shipping_method",
    security(("bearer" = [])),
    params(RuleId),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such method"),
    ))]
async fn delete_method(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "shipping method")?;
    state.actors.orders.call(DeleteShippingMethod(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
