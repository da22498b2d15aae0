//! `/api/v1/promotions/…`: discount codes, managed by admins.

use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::error::ApiError;
use super::extract::{double_option, path_id, present, AdminUser, QueryParams, ValidJson};
use super::pagination::{page, page_request};
use super::state::AppState;
use crate::actors::carts::promotions::*;
use crate::domain::pagination::Page;
use crate::domain::promotions::{Kind, Promotion, PromotionPatch};

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/promotions")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(
        web::resource("/promotions/{id}")
            .route(web::get().to(get))
            .route(web::patch().to(update))
            .route(web::delete().to(delete)),
    );
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(list, create, get, update, delete))]
pub struct Api;

/// How a promotion takes money off.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum KindName {
    /// `value` percent of the subtotal, rounded down.
    Percent,
    /// `value` minor units of `currency`, at most the subtotal.
    Fixed,
}

impl From<KindName> for Kind {
    fn from(k: KindName) -> Self {
        match k {
            KindName::Percent => Kind::Percent,
            KindName::Fixed => Kind::Fixed,
        }
    }
}

/// Body of `POST /promotions/`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PromotionRequest {
    /// 1-32 letters, digits, `-` or `_`; unique whatever the case.
    #[schema(example = "SPRING-10")]
    code: String,
    kind: KindName,
    /// 1-100 for `percent`; minor units (at least 1) for `fixed`.
    value: i64,
    /// ISO 4217, for `fixed` only.
    currency: Option<String>,
    starts_at: Option<DateTime<Utc>>,
    ends_at: Option<DateTime<Utc>>,
    /// The cart's subtotal must reach this (minor units).
    #[serde(default)]
    min_subtotal: i64,
    /// Uses in all; unlimited when absent.
    max_uses: Option<i64>,
    /// Uses per customer; unlimited when absent.
    max_uses_per_customer: Option<i64>,
    #[serde(default = "active_by_default")]
    active: bool,
}

fn active_by_default() -> bool {
    true
}

/// Body of `PATCH /promotions/{id}/`: the fields to change; `null` clears
/// an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PromotionPatchRequest {
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    code: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    kind: Option<KindName>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    value: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    currency: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    starts_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    ends_at: Option<Option<DateTime<Utc>>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    min_subtotal: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    max_uses: Option<Option<i64>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>)]
    max_uses_per_customer: Option<Option<i64>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    active: Option<bool>,
}

/// A promotion in a path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; handlers take the raw segment
struct PromotionId {
    /// The promotion's id (a UUID).
    id: String,
}

/// Lists promotions, newest first (admins only).
#[utoipa::path(get, path = "/promotions", tag = "promotions", operation_id = "list_promotions",
    security(("bearer" = [])),
    params(crate::http::pagination::PageParams),
    responses(
        (status = 200, description = "One page of promotions", body = Page<PromotionView>),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: the page is past the last"),
    ))]
async fn list(
    req: HttpRequest,
    state: Data<AppState>,
    _admin: AdminUser,
) -> Result<Json<Page<PromotionView>>, ApiError> {
    let paging = page_request(&QueryParams::from_request(&req))?;
    let (rows, count) = state.actors.carts.call(ListPromotions(paging)).await?;
    Ok(Json(page(&req, paging, count, rows)?))
}

/// Creates a promotion (admins only).
#[utoipa::path(post, path = "/promotions", tag = "promotions", operation_id = "create_promotion",
    security(("bearer" = [])),
    request_body = PromotionRequest,
    responses(
        (status = 201, description = "The promotion", body = PromotionView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 409, description = "`code_taken`: another promotion has this code"),
        (status = 422, description = "`validation_error`: bad code, value out of range, currency missing or unknown, ends before it starts"),
    ))]
async fn create(
    state: Data<AppState>,
    _admin: AdminUser,
    body: ValidJson<PromotionRequest>,
) -> Result<HttpResponse, ApiError> {
    let ValidJson(b) = body;
    let rule = Promotion {
        code: b.code,
        kind: b.kind.into(),
        value: b.value,
        currency: b.currency,
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        min_subtotal: b.min_subtotal,
        max_uses: b.max_uses,
        max_uses_per_customer: b.max_uses_per_customer,
        active: b.active,
    };
    let view = state.actors.carts.call(CreatePromotion(rule)).await?;
    Ok(HttpResponse::Created().json(view))
}

/// One promotion (admins only).
#[utoipa::path(get, path = "/promotions/{id}", tag = "promotions", operation_id = "get_promotion",
    security(("bearer" = [])),
    params(PromotionId),
    responses(
        (status = 200, description = "The promotion", body = PromotionView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such promotion"),
    ))]
async fn get(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<Json<PromotionView>, ApiError> {
    let id = path_id(&id, "promotion")?;
    Ok(Json(state.actors.carts.call(GetPromotion(id)).await?))
}

/// Changes a promotion (admins only); the result is validated whole.
#[utoipa::path(patch, path = "/promotions/{id}", tag = "promotions", operation_id = "update_promotion",
    security(("bearer" = [])),
    params(PromotionId),
    request_body = PromotionPatchRequest,
    responses(
        (status = 200, description = "The promotion", body = PromotionView),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such promotion"),
        (status = 409, description = "`code_taken`: another promotion has this code"),
        (status = 422, description = "`validation_error`: the changed promotion breaks a rule"),
    ))]
async fn update(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
    body: ValidJson<PromotionPatchRequest>,
) -> Result<Json<PromotionView>, ApiError> {
    let id = path_id(&id, "promotion")?;
    let ValidJson(b) = body;
    let patch = PromotionPatch {
        code: b.code,
        kind: b.kind.map(Kind::from),
        value: b.value,
        currency: b.currency,
        starts_at: b.starts_at,
        ends_at: b.ends_at,
        min_subtotal: b.min_subtotal,
        max_uses: b.max_uses,
        max_uses_per_customer: b.max_uses_per_customer,
        active: b.active,
    };
    let view = state
        .actors
        .carts
        .call(UpdatePromotion { id, patch })
        .await?;
    Ok(Json(view))
}

/// Deletes a promotion (admins only). Orders placed with it keep its code
/// and discount; carts carrying it lose it.
#[utoipa::path(delete, path = "/promotions/{id}", tag = "promotions", operation_id = "delete_promotion",
    security(("bearer" = [])),
    params(PromotionId),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such promotion"),
    ))]
async fn delete(
    state: Data<AppState>,
    _admin: AdminUser,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path_id(&id, "promotion")?;
    state.actors.carts.call(DeletePromotion(id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
