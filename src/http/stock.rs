//! `/api/v1/stock-locations/…`, `/api/v1/products/{id}/variants/{variant_id}/stock/`
//! and `/api/v1/stock-movements/`: where stock is, how much each location
//! has of a variant, and the ledger of every change (admins only).

use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::ApiError;
use super::extract::{path_id, AdminUser, QueryParams, ValidJson};
use super::pagination::{page, page_request};
use super::state::AppState;
use super::variants::ids;
use crate::actors::catalog::locations::*;
use crate::domain::catalog::allocation::MovementKind;
use crate::domain::catalog::location::{LevelDraft, LocationDraft};
use crate::domain::pagination::Page;
use crate::domain::validation::ValidationErrors;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/stock-locations")
            .route(web::get().to(list_locations))
            .route(web::post().to(create_location)),
    )
    .service(
        web::resource("/stock-locations/{id}")
            .route(web::get().to(get_location))
            .route(web::put().to(replace_location))
            .route(web::delete().to(delete_location)),
    )
    .service(
        web::resource("/products/{id}/variants/{variant_id}/stock")
            .route(web::get().to(get_variant_stock))
            .route(web::put().to(set_variant_stock)),
    )
    .service(web::resource("/stock-movements").route(web::get().to(list_movements)));
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    list_locations,
    create_location,
    get_location,
    replace_location,
    delete_location,
    get_variant_stock,
    set_variant_stock,
    list_movements
))]
pub struct Api;

/// Body of `POST /stock-locations/` and `PUT /stock-locations/{id}/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LocationRequest {
    /// Unique over the shop.
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \\t\\n\\r]")]
    name: String,
    /// ISO 3166-1 alpha-2 (any case): where parcels ship from.
    #[schema(example = "DE")]
    country: String,
    /// Higher first; default 0. Reservations take each line from the
    /// highest-priority active location that has all of it, else split in
    /// priority order.
    #[schema(minimum = -1000, maximum = 1000)]
    priority: Option<i64>,
    /// Default `true`. An inactive location is never reserved from and
    /// its stock does not count as available.
    is_active: Option<bool>,
}

impl From<LocationRequest> for LocationDraft {
    fn from(r: LocationRequest) -> Self {
        LocationDraft {
            name: r.name,
            country: r.country,
            priority: r.priority.unwrap_or(0),
            is_active: r.is_active.unwrap_or(true),
        }
    }
}

/// One location's count in `PUT …/stock/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LevelRequest {
    location_id: uuid::Uuid,
    /// Units at the location, sold or not; at least what reservations
    /// hold there.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    on_hand: i64,
}

/// Body of `PUT /products/{id}/variants/{variant_id}/stock/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct StockRequest {
    /// The counts to set; locations not named keep theirs. Each location
    /// at most once.
    #[schema(min_items = 1, max_items = 100)]
    levels: Vec<LevelRequest>,
}

/// A location in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; handlers take the raw segment
struct LocationId {
    /// The location's id (a UUID).
    id: String,
}

/// Filters of `GET /stock-movements/`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read by the document only; the handler parses the query
struct MovementQuery {
    /// Only this variant's movements.
    variant_id: Option<uuid::Uuid>,
    /// Only this location's movements.
    location_id: Option<uuid::Uuid>,
    /// Only this reservation's (an order's reservation id is its id).
    reservation_id: Option<uuid::Uuid>,
    /// Only movements of this kind.
    #[param(inline)]
    kind: Option<KindParam>,
}

/// The kinds of ledger rows, for the document.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // read by the document only; the handler parses the query
enum KindParam {
    Adjustment,
    Reservation,
    Release,
    Sale,
    Return,
}

/// Every stock location, preferred first (admins only).
#[utoipa::path(get, path = "/stock-locations", tag = "stock", operation_id = "list_stock_locations",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The locations, highest priority first", body = [LocationView]),
        (status = 403, description = "`permission_denied`: admins only"),
    ))]
async fn list_locations(
    state: Data<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<LocationView>>, ApiError> {
    Ok(Json(state.actors.catalog.call(ListStockLocations).await?))
}

/// Creates a stock location (admins only).
#[utoipa::path(post, path = "/stock-locations", tag = "stock", operation_id = "create_stock_location",
    security(("bearer" = [])),
    request_body = LocationRequest,
    responses(
        (status = 201, description = "The location", body = LocationView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 409, description = "`name_taken`: another location has this name"),
        (status = 422, description = "`validation_error`: blank name, unknown country, priority out of range"),
    ))]
async fn create_location(
    state: Data<AppState>,
    _admin: AdminUser,
    body: ValidJson<LocationRequest>,
) -> Result<HttpResponse, ApiError> {
    let view = state
        .actors
        .catalog
        .call(PutStockLocation {
            id: None,
            draft: body.0.into(),
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// One stock location (admins only).
#[utoipa::path(get, path = "/stock-locations/{id}", tag = "stock", operation_id = "get_stock_location",
    security(("bearer" = [])),
    params(LocationId),
    responses(
        (status = 200, description = "The location", body = LocationView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such location"),
    ))]
async fn get_location(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<Json<LocationView>, ApiError> {
    let id = path_id(&id, "stock location")?;
    Ok(Json(state.actors.catalog.call(GetStockLocation(id)).await?))
}

/// Replaces a stock location's fields (admins only). Deactivating one
/// takes its stock out of what is available; open reservations it holds
/// stay held there until sold or released.
#[utoipa::path(put, path = "/stock-locations/{id}", tag = "stock", operation_id = "replace_stock_location",
    security(("bearer" = [])),
    params(LocationId),
    request_body = LocationRequest,
    responses(
        (status = 200, description = "The location", body = LocationView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such location"),
        (status = 409, description = "`name_taken`: another location has this name"),
        (status = 422, description = "`validation_error`: as for creating one"),
    ))]
async fn replace_location(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<LocationRequest>,
) -> Result<Json<LocationView>, ApiError> {
    let id = path_id(&id, "stock location")?;
    let view = state
        .actors
        .catalog
        .call(PutStockLocation {
            id: Some(id),
            draft: body.0.into(),
        })
        .await?;
    Ok(Json(view))
}

/// Deletes a stock location that has never held stock (admins only); one
/// with history is deactivated instead.
#[utoipa::path(delete, path = "/stock-locations/{id}", tag = "stock", operation_id = "delete_stock_location",
    security(("bearer" = [])),
    params(LocationId),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such location"),
        (status = 409, description = "`location_in_use`: the ledger names it; deactivate it instead"),
    ))]
async fn delete_location(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "stock location")?;
    state.actors.catalog.call(DeleteStockLocation(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A variant's stock per location (admins only).
#[utoipa::path(get, path = "/products/{id}/variants/{variant_id}/stock", tag = "stock", operation_id = "get_variant_stock",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The product's id"),
        ("variant_id" = uuid::Uuid, Path, description = "The variant's id"),
    ),
    responses(
        (status = 200, description = "The levels, highest-priority location first", body = VariantStockView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product, or no such variant of it"),
    ))]
async fn get_variant_stock(
    state: Data<AppState>,
    _admin: AdminUser,
    path: web::Path<(String, String)>,
) -> Result<Json<VariantStockView>, ApiError> {
    let (product_id, variant_id) = ids(&path)?;
    Ok(Json(
        state
            .actors
            .catalog
            .call(GetVariantStock {
                product_id,
                variant_id,
            })
            .await?,
    ))
}

/// Sets a variant's count at some locations (admins only); each change is
/// an `adjustment` in the ledger, and the variant's `stock` becomes Σ
/// (on_hand − held) over active locations.
#[utoipa::path(put, path = "/products/{id}/variants/{variant_id}/stock", tag = "stock", operation_id = "set_variant_stock",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The product's id"),
        ("variant_id" = uuid::Uuid, Path, description = "The variant's id"),
    ),
    request_body = StockRequest,
    responses(
        (status = 200, description = "The levels after the change", body = VariantStockView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such product, or no such variant of it"),
        (status = 409, description = "`stock_below_held`: a count below what open reservations hold there; nothing changed"),
        (status = 422, description = "`validation_error`: no levels, a location twice or unknown, a count out of range"),
    ))]
async fn set_variant_stock(
    state: Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
    body: ValidJson<StockRequest>,
) -> Result<Json<VariantStockView>, ApiError> {
    let (product_id, variant_id) = ids(&path)?;
    let levels = body
        .0
        .levels
        .into_iter()
        .map(|l| LevelDraft {
            location_id: l.location_id,
            on_hand: l.on_hand,
        })
        .collect();
    Ok(Json(
        state
            .actors
            .catalog
            .call(SetVariantStock {
                product_id,
                variant_id,
                levels,
                admin: admin.0.user_id,
            })
            .await?,
    ))
}

/// The stock ledger, newest first (admins only): every adjustment,
/// reservation, release, sale and return, per variant and location.
#[utoipa::path(get, path = "/stock-movements", tag = "stock", operation_id = "list_stock_movements",
    security(("bearer" = [])),
    params(MovementQuery, crate::http::pagination::PageParams),
    responses(
        (status = 200, description = "One page of movements", body = Page<MovementView>),
        (status = 400, description = "`invalid_query`: an id that is not a UUID, an unknown kind, a bad page"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: the page is past the last"),
    ))]
async fn list_movements(
    req: HttpRequest,
    state: Data<AppState>,
    _admin: AdminUser,
) -> Result<Json<Page<MovementView>>, ApiError> {
    let params = QueryParams::from_request(&req);
    let paging = page_request(&params)?;
    let mut errors = ValidationErrors::new();
    let variant_id = params.uuid_into("variant_id", &mut errors);
    let location_id = params.uuid_into("location_id", &mut errors);
    let reservation_id = params.uuid_into("reservation_id", &mut errors);
    let kind = params.get("kind").and_then(|k| {
        let kind = MovementKind::parse(k.trim());
        if kind.is_none() {
            errors.add(
                "kind",
                "invalid",
                "kind is adjustment, reservation, release, sale or return",
            );
        }
        kind
    });
    errors.into_result().map_err(ApiError::InvalidQuery)?;
    let (results, count) = state
        .actors
        .catalog
        .call(ListStockMovements {
            variant_id,
            location_id,
            reservation_id,
            kind,
            page: paging,
        })
        .await?;
    Ok(Json(page(&req, paging, count, results)?))
}
