//! Recommendations: `GET /products/recommendations/` (personal with a
//! token, popular without), `GET /products/{id_or_slug}/similar/` and
//! `/bought-together/`, and the admin's model report and rebuild.

use std::collections::HashMap;

use actix_web::web::{self, Data, Json};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{json, Value};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{AdminUser, MaybeAuthenticated, QueryParams};
use super::state::AppState;
use crate::actors::catalog::messages::{GetProduct, GetProductsByIds, ProductKey};
use crate::actors::orders::messages::GetPendingProducts;
use crate::actors::recommender::messages::*;
use crate::actors::recommender::RecommenderError;
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
    let rows: HashMap<Uuid, _> = rows.into_iter().map(|r| (r.id, r)).collect();
    let mut results: Vec<Value> = Vec::new();
    for ranked in &ranking.results {
        let Some(row) = rows.get(&ranked.product_id) else {
            continue;
        };
        if !row.is_active || row.stock <= 0 {
            continue;
        }
        let mut product = serde_json::to_value(row).map_err(|e| ApiError::Internal(e.into()))?;
        product["score"] = json!(ranked.score);
        product["reason"] = json!(ranked.reason);
        results.push(product);
        if results.len() == limit {
            break;
        }
    }
    Ok(HttpResponse::Ok().json(json!({
        "model_version": ranking.model_version,
        "strategy": ranking.strategy,
        "results": results,
    })))
}

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
    let (json, _) = state
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

async fn similar(
    req: HttpRequest,
    state: Data<AppState>,
    user: MaybeAuthenticated,
    id_or_slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    neighbours(req, state, user, id_or_slug, Neighbours::Similar).await
}

async fn bought_together(
    req: HttpRequest,
    state: Data<AppState>,
    user: MaybeAuthenticated,
    id_or_slug: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    neighbours(req, state, user, id_or_slug, Neighbours::BoughtTogether).await
}

async fn report(state: Data<AppState>, _admin: AdminUser) -> Result<Json<ModelReport>, ApiError> {
    Ok(Json(state.actors.recommender.call(GetModelReport).await?))
}

async fn rebuild(state: Data<AppState>, _admin: AdminUser) -> Result<HttpResponse, ApiError> {
    let started = state.actors.recommender.call(Rebuild).await?;
    Ok(HttpResponse::Accepted().json(json!({"started": started})))
}
