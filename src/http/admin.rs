//! `/api/v1/admin/…`: runtime introspection for operators.

use actix_web::web::{self, Data, Json};
use serde::Serialize;

use super::error::ApiError;
use super::extract::{AdminUser, ValidJson};
use super::state::AppState;
use crate::actors::metrics::ActorMetricsSnapshot;
use crate::actors::payments::messages::{GetPoolReport, PoolReport};
use crate::actors::runtime::{Probe, ProbeReply};

use super::rate_limit::RateLimitStats;
use crate::store::catalog_cache::CacheStatsSnapshot;
use crate::store::read_view::ViewStatsSnapshot;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/admin")
            .service(web::resource("/actors").route(web::get().to(actors)))
            .service(web::resource("/actors/{name}/probe").route(web::post().to(probe))),
    );
}

#[derive(Serialize)]
struct RuntimeReport {
    actors: Vec<ActorMetricsSnapshot>,
    rate_limiter: RateLimitStats,
    catalog_cache: CacheStatsSnapshot,
    /// The in-process read view in front of the cache.
    catalog_view: ViewStatsSnapshot,
    /// `null` when the payments database cannot be asked.
    payment_pool: Option<PoolReport>,
}

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
async fn probe(
    state: Data<AppState>,
    _admin: AdminUser,
    name: web::Path<String>,
    body: ValidJson<Probe>,
) -> Result<Json<ProbeReply>, ApiError> {
    if !state.settings.diagnostics.enabled {
        return Err(ApiError::NotFound("route"));
    }
    let reply = state
        .actors
        .probe(&name, body.0)
        .await
        .ok_or(ApiError::NotFound("actor"))??;
    Ok(Json(reply))
}
