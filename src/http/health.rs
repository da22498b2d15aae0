//! `/healthz` (the process answers) and `/readyz` (every domain database
//! and Redis answer).

use std::collections::BTreeMap;

use actix_web::web::{self, Data};
use actix_web::HttpResponse;
use serde::Serialize;

use super::state::AppState;
use crate::actors::runtime::CallError;

/// Routes of this module.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

#[derive(Serialize)]
struct Check {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    checks: BTreeMap<&'static str, Check>,
}

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
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        checks,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
