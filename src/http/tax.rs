//! `/api/v1/tax/…`: tax classes and their rates by country and region,
//! managed by admins. A class with no rate at a destination is charged
//! nothing there.

use actix_web::web::{self, Data, Json};
use actix_web::HttpResponse;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::ApiError;
use super::extract::{path_id, AdminUser, ValidJson};
use super::state::AppState;
use crate::actors::orders::rules::*;
use crate::domain::pricing::config::TaxRateDraft;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tax/classes")
            .route(web::get().to(list_classes))
            .route(web::post().to(create_class)),
    )
    .service(web::resource("/tax/classes/{code}").route(web::delete().to(delete_class)))
    .service(
        web::resource("/tax/rates")
            .route(web::get().to(list_rates))
            .route(web::post().to(create_rate)),
    )
    .service(
        web::resource("/tax/rates/{id}")
            .route(web::get().to(get_rate))
            .route(web::put().to(replace_rate))
            .route(web::delete().to(delete_rate)),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(
    list_classes,
    create_class,
    delete_class,
    list_rates,
    create_rate,
    get_rate,
    replace_rate,
    delete_rate
))]
pub struct Api;

/// Body of `POST /tax/classes/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ClassRequest {
    /// 1-50 of `a-z 0-9 - _`; what products and methods name.
    #[schema(example = "books", pattern = "^[a-z0-9_-]{1,50}$")]
    code: String,
    #[schema(min_length = 1, max_length = 200, pattern = "[^ \\t\\n\\r]")]
    name: String,
}

/// Body of `POST /tax/rates/` and `PUT /tax/rates/{id}/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RateRequest {
    /// An existing class's code.
    #[schema(example = "standard")]
    tax_class: String,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "FR", pattern = "^[A-Za-z]{2}$")]
    country: String,
    /// A region of the country (as addresses write it, e.g. `NY`); absent
    /// for the whole country. A region's own rate wins over the country's.
    #[schema(max_length = 100)]
    region: Option<String>,
    /// Basis points: 2000 is 20 %.
    #[schema(minimum = 0, maximum = 10000)]
    rate_bp: i64,
}

impl From<RateRequest> for TaxRateDraft {
    fn from(r: RateRequest) -> Self {
        TaxRateDraft {
            tax_class: r.tax_class,
            country: r.country,
            region: r.region,
            rate_bp: r.rate_bp,
        }
    }
}

/// A tax class in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only
struct ClassCode {
    /// The class's code.
    code: String,
}

/// A tax rate in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only
struct RateId {
    /// The rate's id (a UUID).
    id: String,
}

/// Every tax class (admins only).
#[utoipa::path(get, path = "/tax/classes", tag = "tax", operation_id = "list_tax_classes",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The classes, by code", body = [TaxClassView]),
        (status = 403, description = "`permission_denied`: admins only"),
    ))]
async fn list_classes(
    state: Data<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<TaxClassView>>, ApiError> {
    Ok(Json(state.actors.orders.call(ListTaxClasses).await?))
}

/// Creates a tax class (admins only).
#[utoipa::path(post, path = "/tax/classes", tag = "tax", operation_id = "create_tax_class",
    security(("bearer" = [])),
    request_body = ClassRequest,
    responses(
        (status = 201, description = "The class", body = TaxClassView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 409, description = "`code_taken`: a class has this code"),
        (status = 422, description = "`validation_error`: bad code or blank name"),
    ))]
async fn create_class(
    state: Data<AppState>,
    _admin: AdminUser,
    body: ValidJson<ClassRequest>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(b) = body;
    let view = state
        .actors
        .orders
        .call(CreateTaxClass {
            code: b.code,
            name: b.name,
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// Deletes a tax class and its rates (admins only); products naming it
/// are then charged no tax.
#[utoipa::path(delete, path = "/tax/classes/{code}", tag = "tax", operation_id = "delete_tax_class",
    security(("bearer" = [])),
    params(ClassCode),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such class"),
        (status = 409, description = "`class_required`: `standard` cannot be deleted"),
    ))]
async fn delete_class(
    state: Data<AppState>,
    _admin: AdminUser,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .actors
        .orders
        .call(DeleteTaxClass(code.into_inner()))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every tax rate (admins only).
#[utoipa::path(get, path = "/tax/rates", tag = "tax", operation_id = "list_tax_rates",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The rates, by class, country and region", body = [TaxRateView]),
        (status = 403, description = "`permission_denied`: admins only"),
    ))]
async fn list_rates(
    state: Data<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<TaxRateView>>, ApiError> {
    Ok(Json(state.actors.orders.call(ListTaxRates).await?))
}

/// Creates a tax rate (admins only).
#[utoipa::path(post, path = "/tax/rates", tag = "tax", operation_id = "create_tax_rate",
    security(("bearer" = [])),
    request_body = RateRequest,
    responses(
        (status = 201, description = "The rate", body = TaxRateView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 409, description = "`rate_exists`: the class has a rate for this place"),
        (status = 422, description = "`validation_error`: unknown class or country, rate out of range"),
    ))]
async fn create_rate(
    state: Data<AppState>,
    _admin: AdminUser,
    body: ValidJson<RateRequest>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(b) = body;
    let view = state
        .actors
        .orders
        .call(PutTaxRate {
            id: None,
            draft: b.into(),
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// One tax rate (admins only).
#[utoipa::path(get, path = "/tax/rates/{id}", tag = "tax", operation_id = "get_tax_rate",
    security(("bearer" = [])),
    params(RateId),
    responses(
        (status = 200, description = "The rate", body = TaxRateView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such rate"),
    ))]
async fn get_rate(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<Json<TaxRateView>, ApiError> {
    let id = path_id(&id, "tax rate")?;
    Ok(Json(state.actors.orders.call(GetTaxRate(id)).await?))
}

/// Replaces a tax rate (admins only). Placed orders keep their tax.
#[utoipa::path(put, path = "/tax/rates/{id}", tag = "tax", operation_id = "replace_tax_rate",
    security(("bearer" = [])),
    params(RateId),
    request_body = RateRequest,
    responses(
        (status = 200, description = "The rate", body = TaxRateView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such rate"),
        (status = 409, description = "`rate_exists`: the class has a rate for this place"),
        (status = 422, description = "`validation_error`: as for creating one"),
    ))]
async fn replace_rate(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<RateRequest>,
) -> Result<Json<TaxRateView>, ApiError> {
    let id = path_id(&id, "tax rate")?;
    let ValidJson(b) = body;
    let view = state
        .actors
        .orders
        .call(PutTaxRate {
            id: Some(id),
            draft: b.into(),
        })
        .await?;
    Ok(Json(view))
}

/// Deletes a tax rate (admins only).
#[utoipa::path(delete, path = "/tax/rates/{id}", tag = "tax", operation_id = "delete_tax_rate",
    security(("bearer" = [])),
    params(RateId),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such rate"),
    ))]
async fn delete_rate(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "tax rate")?;
    state.actors.orders.call(DeleteTaxRate(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
