//! Recommendations: `GET /products/recommendations/` (personal with a
//! token, popular without), `GET /products/{id_or_slug}/similar/` and
//! `/bought-together/`, and the admin's model report and rebuild.

use std::collections::HashMap;

use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{AdminUser, MaybeAuthenticated, QueryParams};
use super::state::AppState;
use crate::actors::catalog::messages::ProductView;
use crate::actors::catalog::messages::{CachedJson, GetProduct, GetProductsByIds, ProductKey};
use crate::actors::orders::messages::GetPendingProducts;
use crate::actors::recommendations::messages::*;
use crate::actors::recommendations::RecommenderError;
use crate::actors::runtime::CallError;
use crate::domain::validation::ValidationErrors;

/// Results when `limit` is not given, and the most one may ask for.
const DEFAULT_LIMIT: usize = 10;
const MAX_LIMIT: usize = 50;

/// Routes of this module; registered before the catalog's, so that
/// `/products/recommendations` is not read as a product slug.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/products/recommendations").route(web::get().to(recommendations)))
        .service(web::resource("/products/{id_or_slug}/similar").route(web::get().to(similar)))
        .service(
            web::resource("/products/{id_or_slug}/bought-together")
                .route(web::get().to(bought_together)),
        )
        .service(web::resource("/admin/recommendations").route(web::get().to(report)))
        .service(web::resource("/admin/recommendations/rebuild").route(web::post().to(rebuild)));
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(recommendations, similar, bought_together, report, rebuild))]
pub struct Api;

/// The product a neighbours route is about.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the document only; the handler takes the raw segment
struct ProductRef {
    /// The product's id (a UUID) or slug.
    id_or_slug: String,
}

/// How many results a recommendations route returns.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read by the document only; see `limit`
struct Limit {
    /// How many products (default 10).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<u32>,
}

/// A ranking as clients see it.
#[derive(Serialize, ToSchema)]
struct RecommendationsView {
    /// The model that ranked (empty when none knew the product).
    model_version: String,
    /// `personal`, `popular`, `similar` or `bought_together`.
    strategy: &'static str,
    /// Best first; only active products in stock.
    results: Vec<RecommendedProduct>,
}

/// A product as the catalog shows it, with why it is here.
#[derive(Serialize, ToSchema)]
struct RecommendedProduct {
    #[serde(flatten)]
    product: ProductView,
    score: f32,
    reason: String,
}

/// Whether `POST /admin/recommendations/rebuild/` started a build.
#[derive(Serialize, ToSchema)]
struct RebuildStarted {
    started: bool,
}

fn limit(params: &QueryParams) -> Result<usize, ApiError> {
    let Some(raw) = params.get("limit") else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::InvalidQuery(ValidationErrors::single(
            "limit",
            "out_of_range",
            format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
        ))),
    }
}

/// Renders a ranking as the catalog shows products, plus `score` and
/// `reason`: current rows only, never an inactive or out-of-stock product,
/// in the ranking's order, at most `limit`.
async fn render(
    state: &AppState,
    ranking: Ranking,
    limit: usize,
) -> Result<HttpResponse, ApiError> {
    let ids: Vec<Uuid> = ranking.results.iter().map(|r| r.product_id).collect();
    let rows = state.actors.catalog.call(GetProductsByIds(ids)).await?;
    let mut rows: HashMap<Uuid, ProductView> = rows.into_iter().map(|r| (r.id, r)).collect();
    let results = ranking
        .results
        .into_iter()
        .filter_map(|ranked| {
            let product = rows
                .remove(&ranked.product_id)
                .filter(|row| row.is_active && row.stock > 0)?;
            Some(RecommendedProduct {
                product,
                score: ranked.score,
                reason: ranked.reason,
            })
        })
        .take(limit)
        .collect();
    Ok(HttpResponse::Ok().json(RecommendationsView {
        model_version: ranking.model_version,
        strategy: ranking.strategy,
        results,
    }))
}

/// Recommendations for the caller (popular products for a visitor or a
/// customer the model knows nothing of), leaving out what they have
/// pending; admins may ask for any `user_id`.
#[utoipa::path(get, path = "/products/recommendations", tag = "recommendations", operation_id = "recommendations",
    security((), ("bearer" = [])),
    params(
        Limit,
        ("user_id" = Option<Uuid>, Query, description = "Whose recommendations (admins only)"),
    ),
    responses(
        (status = 200, description = "Ranked products", body = RecommendationsView),
        (status = 403, description = "`permission_denied`: `user_id` is for admins"),
        (status = 503, description = "`service_unavailable`: no model is built yet"),
    ))]
async fn recommendations(
    req: HttpRequest,
    state: Data<AppState>,
    user: MaybeAuthenticated,
) -> Result<HttpResponse, ApiError> {
    let params = QueryParams::from_request(&req);
    let limit = limit(&params)?;
    let target = match (params.get("user_id"), user.0) {
        (None, principal) => principal.map(|p| p.user_id),
        (Some(_), None) => return Err(ApiError::NotAuthenticated),
        (Some(_), Some(p)) if !p.is_admin() => return Err(ApiError::Forbidden),
        (Some(raw), Some(_)) => Some(Uuid::parse_str(raw.trim()).map_err(|_| {
            ApiError::InvalidQuery(ValidationErrors::single(
                "user_id",
                "invalid",
                "user_id must be a UUID",
            ))
        })?),
    };
    let exclude = match target {
        Some(user_id) => {
            state
                .actors
                .orders
                .call(GetPendingProducts { user_id })
                .await?
        }
        None => Vec::new(),
    };
    // Ask for more than needed: stock may have run out since the build.
    let ranking = state
        .actors
        .recommender
        .call(Recommend {
            user: target,
            limit: limit * 2 + exclude.len(),
            exclude,
        })
        .await?;
    render(&state, ranking, limit).await
}

/// The product's id, if the catalog has it (admins see inactive ones).
async fn product_id(state: &AppState, raw: &str, admin: bool) -> Result<Uuid, ApiError> {
    let key = match Uuid::parse_str(raw) {
        Ok(id) => ProductKey::Id(id),
        Err(_) => ProductKey::Slug(raw.to_lowercase()),
    };
    let CachedJson { json, .. } = state
        .actors
        .catalog
        .call(GetProduct {
            key,
            include_inactive: admin,
        })
        .await?;
    let product: Value = serde_json::from_str(&json).map_err(|e| ApiError::Internal(e.into()))?;
    product["id"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("catalog product without an id")))
}

/// A ranking, or an empty one for a product newer than the live model.
fn or_empty(
    result: Result<Ranking, CallError<RecommenderError>>,
    strategy: &'static str,
) -> Result<Ranking, ApiError> {
    match result {
        Err(CallError::Domain(RecommenderError::UnknownProduct)) => Ok(Ranking {
            model_version: String::new(),
            strategy,
            results: Vec::new(),
        }),
        other => Ok(other?),
    }
}

/// Which neighbours of a product are asked for.
#[derive(Clone, Copy)]
enum Neighbours {
    Similar,
    BoughtTogether,
}

async fn neighbours(
    req: HttpRequest,
    state: Data<AppState>,
    user: MaybeAuthenticated,
    id_or_slug: web::Path<String>,
    kind: Neighbours,
) -> Result<HttpResponse, ApiError> {
    let limit = limit(&QueryParams::from_request(&req))?;
    let product = product_id(&state, &id_or_slug, user.is_admin()).await?;
    // Ask for more than needed: stock may have run out since the build.
    let ask = limit * 2;
    let (result, strategy) = match kind {
        Neighbours::Similar => (
            state
                .actors
                .recommender
                .call(Similar {
                    product,
                    limit: ask,
                })
                .await,
            "similar",
        ),
        Neighbours::BoughtTogether => (
            state
                .actors
                .recommender
                .call(BoughtTogether {
                    product,
                    limit: ask,
                })
                .await,
            "bought_together",
        ),
    };
    render(&state, or_empty(result, strategy)?, limit).await
}

/// Products whose content (category, tags, price, text) is most like this
/// one's.
#[utoipa::path(get, path = "/products/{id_or_slug}/similar", tag = "recommendations", operation_id = "similar_products",
    security((), ("bearer" = [])),
    params(ProductRef, Limit),
    responses(
        (status = 200, description = "Ranked products (empty for a product newer than the model)", body = RecommendationsView),
        (status = 404, description = "`not_found`: no such (visible) product"),
        (status = 503, description = "`service_unavailable`: no model is built yet"),
    ))]
async fn similar(
    req: HttpRequest,
    state: Data<AppState>,
    user: MaybeAuthenticated,
    id_or_slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    neighbours(req, state, user, id_or_slug, Neighbours::Similar).await
}

/// Products most often bought with this one, topped up with similar ones.
#[utoipa::path(get, path = "/products/{id_or_slug}/bought-together", tag = "recommendations", operation_id = "bought_together",
    security((), ("bearer" = [])),
    params(ProductRef, Limit),
    responses(
        (status = 200, description = "Ranked products (empty for a product newer than the model)", body = RecommendationsView),
        (status = 404, description = "`not_found`: no such (visible) product"),
        (status = 503, description = "`service_unavailable`: no model is built yet"),
    ))]
async fn bought_together(
    req: HttpRequest,
    state: Data<AppState>,
    user: MaybeAuthenticated,
    id_or_slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    neighbours(req, state, user, id_or_slug, Neighbours::BoughtTogether).await
}

/// The live model, the last rejected build, and what was followed since
/// (admins only).
#[utoipa::path(get, path = "/admin/recommendations", tag = "admin", operation_id = "recommender_report",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The model report", body = ModelReport),
        (status = 403, description = "`permission_denied`: admins only"),
    ))]
async fn report(state: Data<AppState>, _admin: AdminUser) -> Result<Json<ModelReport>, ApiError> {
    Ok(Json(state.actors.recommender.call(GetModelReport).await?))
}

/// Starts a model build in the background (admins only); `started` is
/// false when one is already running.
#[utoipa::path(post, path = "/admin/recommendations/rebuild", tag = "admin", operation_id = "rebuild_recommender",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted", body = RebuildStarted),
        (status = 403, description = "`permission_denied`: admins only"),
    ))]
async fn rebuild(state: Data<AppState>, _admin: AdminUser) -> Result<HttpResponse, ApiError> {
    let started = state.actors.recommender.call(Rebuild).await?;
    Ok(HttpResponse::Accepted().json(RebuildStarted { started }))
}
