//! `/api/v1/admin/…`: runtime introspection for operators.

use actix_web::web::{self, Data, Json};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::error::ApiError;
use super::extract::{AdminUser, ValidJson};
use super::state::AppState;
use crate::actors::metrics::ActorMetricsSnapshot;
use crate::actors::payments::messages::{GetPoolReport, PoolReport};
use crate::actors::runtime::{Probe, ProbeReply};
use crate::domain::validation::ValidationErrors;

use super::rate_limit::RateLimitStats;
use crate::actors::catalog::cache::CacheStatsSnapshot;
use crate::actors::read_view::ViewStatsSnapshot;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .service(web::resource("/actors").route(web::get().to(actors)))
            .service(web::resource("/actors/{name}/probe").route(web::post().to(probe))),
    );
}

/// Longest sleep a probe may ask for.
const MAX_PROBE_SLEEP_MS: u64 = 60_000;

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(actors, probe))]
pub struct Api;

/// What `GET /admin/actors/` shows.
#[derive(Serialize, ToSchema)]
struct RuntimeReport {
    actors: Vec<ActorMetricsSnapshot>,
    rate_limiter: RateLimitStats,
    catalog_cache: CacheStatsSnapshot,
    /// The in-process read view in front of the cache.
    catalog_view: ViewStatsSnapshot,
    /// `null` when the payments database cannot be asked.
    payment_pool: Option<PoolReport>,
}

/// Every actor's mailbox, counters and latencies, the rate limiter, the
/// catalog's caches and the payment pool (admins only).
#[utoipa::path(get, path = "/admin/actors", tag = "admin", operation_id = "runtime_report",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The runtime report", body = RuntimeReport),
        (status = 403, description = "`permission_denied`: admins only"),
    ))]
async fn actors(state: Data<AppState>, _admin: AdminUser) -> Json<RuntimeReport> {
    let payment_pool = match state.actors.payments.call(GetPoolReport).await {
        Ok(report) => Some(report),
        Err(e) => {
            tracing::warn!(error = %ApiError::from(e), "payment pool report unavailable");
            None
        }
    };
    Json(RuntimeReport {
        actors: state.actors.metrics(),
        rate_limiter: state.rate_limiter.stats(),
        catalog_cache: state.actors.catalog_cache_stats(),
        catalog_view: state.actors.catalog_view.snapshot(),
        payment_pool,
    })
}

/// Makes an actor sleep or panic, to drill overload and supervision. Only
/// with `diagnostics.enabled`; otherwise the route does not exist (404).
/// Makes an actor sleep or panic, to drill overload and supervision
/// (admins only, and only with `diagnostics.enabled`).
#[utoipa::path(post, path = "/admin/actors/{name}/probe", tag = "admin", operation_id = "probe_actor",
    security(("bearer" = [])),
    params(("name" = String, Path, description = "An actor's name, e.g. `catalog`")),
    request_body = Probe,
    responses(
        (status = 200, description = "What the actor did", body = ProbeReply),
        (status = 403, description = "`permission_denied`: admins only"),
        (status = 404, description = "`not_found`: no such actor, or diagnostics are off"),
        (status = 422, description = "`validation_error`: `sleep_ms` over 60000"),
    ))]
async fn probe(
    state: Data<AppState>,
    _admin: AdminUser,
    name: web::Path<String>,
    body: ValidJson<Probe>,
) -> Result<Json<ProbeReply>, ApiError> {
    if !state.settings.diagnostics.enabled {
        return Err(ApiError::NotFound("route"));
    }
    if body.0.sleep_ms > MAX_PROBE_SLEEP_MS {
        return Err(ApiError::Validation(ValidationErrors::single(
            "sleep_ms",
            "out_of_range",
            format!("sleep_ms must be at most {MAX_PROBE_SLEEP_MS}"),
        )));
    }
    let reply = state
        .actors
        .probe(&name, body.0)
        .await
        .ok_or(ApiError::NotFound("actor"))??;
    Ok(Json(reply))
}
