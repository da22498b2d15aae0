//! `/healthz` (the process answers) and `/readyz` (every domain database
//! and Redis answer).

use std::collections::BTreeMap;

use actix_web::web::{self, Data};
use actix_web::HttpResponse;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::state::AppState;
use crate::actors::runtime::CallError;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)));
}

/// The operations of this module, for the OpenAPI document.
#[derive(OpenApi)]
#[openapi(paths(healthz, readyz))]
pub struct Api;

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
struct Alive {
    #[schema(example = "ok")]
    status: &'static str,
}

/// Liveness: the process answers. No dependency is asked.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "healthz",
    responses((status = 200, description = "The process is alive", body = Alive)))]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Alive { status: "ok" })
}

/// One dependency's answer.
#[derive(Serialize, ToSchema)]
struct Check {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Every dependency's answer, by name (each domain's actor and database,
/// and Redis).
#[derive(Serialize, ToSchema)]
struct Readiness {
    /// `ready`, `unavailable` (a domain database does not answer) or
    /// `draining` (the instance is stopping).
    #[schema(example = "ready")]
    status: &'static str,
    #[schema(value_type = BTreeMap<String, Check>)]
    checks: BTreeMap<&'static str, Check>,
}

/// Readiness: every domain database answers (Redis is reported, not
/// required: it is a cache).
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "readyz",
    responses(
        (status = 200, description = "Ready to serve", body = Readiness),
        (status = 503, description = "A domain database does not answer, or the instance is stopping", body = Readiness),
    ))]
async fn readyz(state: Data<AppState>) -> HttpResponse {
    let (pings, redis) =
        futures_util::future::join(state.actors.ping_all(), state.rate_limiter.ping()).await;
    let mut checks = BTreeMap::new();
    for (name, result) in pings {
        checks.insert(
            name,
            Check {
                ok: result.is_ok(),
                // Only the kind of failure: details stay in the logs.
                error: result.err().map(|e| match e {
                    CallError::Domain(_) => "database unreachable".to_owned(),
                    other => other.to_string(),
                }),
            },
        );
    }
    checks.insert(
        "redis",
        Check {
            ok: redis.is_ok(),
            error: redis.err().map(|e| {
                tracing::warn!(error = %e, "redis unreachable");
                "redis unreachable".to_owned()
            }),
        },
    );
    // Redis is a cache, not a dependency of correctness: readiness needs the
    // databases only, and reports Redis so operators can see it.
    let ready = checks.iter().all(|(name, c)| c.ok || *name == "redis");
    // A stopping instance leaves the load balancer's rotation first.
    let draining = state.drain.is_draining();
    let body = Readiness {
        status: match (draining, ready) {
            (true, _) => "draining",
            (false, true) => "ready",
            (false, false) => "unavailable",
        },
        checks,
    };
    let ready = ready && !draining;
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
