//! `GET /metrics`: Prometheus text exposition, and the middleware that
//! records every HTTP request by route template.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use metrics::{counter, gauge};
use secrecy::ExposeSecret as _;
use subtle::ConstantTimeEq as _;

use super::error::ApiError;
use super::state::AppState;
use crate::actors::payments::messages::GetPoolReport;
use crate::actors::recommendations::messages::GetModelReport;

/// The Prometheus text format's content type.
const EXPOSITION: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The operations of this module, for the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(scrape))]
pub struct Api;

/// Route of this module, on whichever port serves metrics.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(scrape)));
}

/// Records each request's count and latency under its route template (the
/// pattern it matched, never the raw path, so ids do not explode the label
/// set); unmatched paths share one label.
pub async fn record_http(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<Data<AppState>>().cloned();
    let method = method_label(req.method());
    let result = next.call(req).await;
    let (status, route) = match &result {
        Ok(res) => (
            res.status().as_u16(),
            res.request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".into()),
        ),
        Err(e) => (
            e.as_response_error().status_code().as_u16(),
            "unmatched".into(),
        ),
    };
    if let Some(state) = state {
        let seconds = started.elapsed().as_secs_f64();
        state
            .metrics
            .record_http(method, route, status_class(status), seconds);
    }
    result
}

/// The method as a bounded label: the standard methods by name, anything
/// else (HTTP allows any token) as `other`, so a client inventing methods
/// cannot grow the series set.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    const STANDARD: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::PATCH, "PATCH"),
        (Method::DELETE, "DELETE"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::TRACE, "TRACE"),
        (Method::CONNECT, "CONNECT"),
    ];
    STANDARD
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, name)| name)
}

/// `2xx`, `4xx`, …: a bounded label, as dashboards group them.
fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// Whether the request carries the configured bearer token (compared in
/// constant time); always true when no token is configured.
fn authorised(state: &AppState, req: &HttpRequest) -> bool {
    let Some(token) = &state.settings.observability.metrics_token else {
        return true;
    };
    let sent = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(sent.as_bytes().ct_eq(token.expose_secret().as_bytes()))
}

/// Prometheus metrics of this instance, in the text exposition format.
/// With `observability.metrics_token` set, the token is required as a
/// bearer token; with `observability.metrics_port`, this is served on that
/// port instead.
#[utoipa::path(get, path = "/metrics", tag = "operations", operation_id = "metrics",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "The exposition", content_type = "text/plain; version=0.0.4", body = String),
        (status = 401, description = "`metrics_token_invalid`: the metrics token is missing or wrong"),
    ))]
async fn scrape(state: Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if !authorised(&state, &req) {
        return Err(ApiError::Unauthorized {
            code: "metrics_token_invalid",
            detail: "the metrics bearer token is missing or wrong",
        });
    }
    collect(&state).await;
    Ok(HttpResponse::Ok()
        .content_type(EXPOSITION)
        .body(state.metrics.render()))
}

/// Copies every figure the runtime keeps into the registry, from the same
/// sources as the admin report.
async fn collect(state: &AppState) {
    let actors = &state.actors;
    // The two reports that need an actor's answer: a failure leaves the
    // figures as last scraped (and is logged), it does not fail the scrape.
    let (payments, model) = futures_util::future::join(
        actors.payments.call(GetPoolReport),
        actors.recommender.call(GetModelReport),
    )
    .await;
    state.metrics.scope(|| {
        for a in actors.metrics() {
            let actor = [("actor", a.name)];
            gauge!("emporium_actor_mailbox_depth", &actor).set(a.queued as f64);
            gauge!("emporium_actor_mailbox_capacity", &actor).set(a.capacity as f64);
            gauge!("emporium_actor_in_flight", &actor).set(a.in_flight as f64);
            counter!("emporium_actor_messages_handled_total", &actor).absolute(a.handled);
            counter!("emporium_actor_errors_total", &actor).absolute(a.errors);
            counter!("emporium_actor_panics_total", &actor).absolute(a.panics);
            counter!("emporium_actor_restarts_total", &actor).absolute(a.restarts);
            counter!("emporium_actor_rejected_total", &actor).absolute(a.rejected_full);
            counter!("emporium_actor_timeouts_total", &actor).absolute(a.timeouts);
        }
        for (domain, open, idle, most) in actors.db_pool_stats() {
            let domain = [("domain", domain)];
            gauge!("emporium_db_pool_connections", &domain).set(f64::from(open));
            gauge!("emporium_db_pool_idle_connections", &domain).set(idle as f64);
            gauge!("emporium_db_pool_max_connections", &domain).set(f64::from(most));
        }
        for (name, pool) in [
            ("catalog_cache", actors.catalog_cache_pool()),
            ("rate_limiter", state.rate_limiter.pool_state()),
        ] {
            let pool_label = [("pool", name)];
            gauge!("emporium_redis_pool_connections", &pool_label).set(f64::from(pool.connections));
            gauge!("emporium_redis_pool_idle_connections", &pool_label)
                .set(f64::from(pool.idle_connections));
            counter!("emporium_redis_pool_waits_total", &pool_label)
                .absolute(pool.statistics.get_waited);
            counter!("emporium_redis_pool_timeouts_total", &pool_label)
                .absolute(pool.statistics.get_timed_out);
        }
        let cache = actors.catalog_cache_stats();
        for (result, n) in [
            ("hit", cache.hits),
            ("miss", cache.misses),
            ("bypass", cache.bypassed),
            ("error", cache.errors),
        ] {
            counter!("emporium_cache_lookups_total", "cache" => "catalog", "result" => result)
                .absolute(n);
        }
        for (view, s) in [
            ("catalog", actors.catalog_view.snapshot()),
            ("auth", actors.auth_view.snapshot()),
            ("carts", actors.cart_reader.view().snapshot()),
        ] {
            for (result, n) in [("hit", s.hits), ("miss", s.misses), ("bypass", s.bypassed)] {
                counter!("emporium_read_view_lookups_total", "view" => view, "result" => result)
                    .absolute(n);
            }
            gauge!("emporium_read_view_serving", "view" => view)
                .set(f64::from(u8::from(s.serving)));
            gauge!("emporium_read_view_entries", "view" => view).set(s.entries as f64);
            gauge!("emporium_read_view_bytes", "view" => view).set(s.bytes as f64);
            gauge!("emporium_read_view_max_bytes", "view" => view).set(s.max_bytes as f64);
            counter!("emporium_read_view_evictions_total", "view" => view).absolute(s.evictions);
            counter!("emporium_read_view_invalidations_total", "view" => view, "direction" => "sent")
                .absolute(s.invalidations_sent);
            counter!("emporium_read_view_invalidations_total", "view" => view, "direction" => "received")
                .absolute(s.invalidations_received);
        }
        let hooks = &actors.webhook_deliveries.stats;
        for (outcome, n) in [
            ("succeeded", &hooks.succeeded),
            ("failed_attempt", &hooks.failed_attempts),
            ("given_up", &hooks.given_up),
        ] {
            counter!("emporium_webhook_deliveries_total", "outcome" => outcome)
                .absolute(n.load(std::sync::atomic::Ordering::Relaxed));
        }
        counter!("emporium_webhook_endpoints_disabled_total").absolute(
            hooks
                .endpoints_disabled
                .load(std::sync::atomic::Ordering::Relaxed),
        );
        let limiter = state.rate_limiter.stats();
        for (decision, n) in [
            ("allowed", limiter.allowed),
            ("limited", limiter.limited),
            ("failed_open", limiter.redis_errors),
        ] {
            counter!("emporium_rate_limit_decisions_total", "decision" => decision).absolute(n);
        }
        match payments {
            Ok(p) => {
                gauge!("emporium_payment_queue_depth").set(p.queue.depth as f64);
                gauge!("emporium_payment_queue_ready").set(p.queue.ready as f64);
                gauge!("emporium_payment_oldest_job_age_seconds").set(p.queue.oldest_age_secs);
                gauge!("emporium_payment_outbox_pending").set(p.queue.outbox_pending as f64);
                gauge!("emporium_payment_outbox_refused").set(p.queue.outbox_refused as f64);
                gauge!("emporium_payment_workers").set(p.workers as f64);
                gauge!("emporium_payment_workers_busy").set(p.busy as f64);
                counter!("emporium_payment_attempts_total").absolute(p.attempts);
                for (outcome, n) in [
                    ("succeeded", p.succeeded),
                    ("failed", p.failed),
                    ("retried", p.retried),
                    ("refunded", p.refunded),
                    ("lease_lost", p.leases_lost),
                ] {
                    counter!("emporium_payment_outcomes_total", "outcome" => outcome).absolute(n);
                }
            }
            Err(e) => tracing::warn!(error = %ApiError::from(e), "payment figures unavailable"),
        }
        match model {
            Ok(m) => {
                counter!("emporium_recommender_builds_total").absolute(m.builds);
                let live = m.live.as_ref();
                let build_number = live
                    .and_then(|l| l.version.split('-').next())
                    .and_then(|n| n.parse::<f64>().ok())
                    .unwrap_or(0.0);
                gauge!("emporium_recommender_model_version").set(build_number);
                if let Some(l) = live {
                    gauge!("emporium_recommender_model_built_timestamp_seconds")
                        .set(l.built_at.timestamp() as f64);
                    gauge!("emporium_recommender_model_build_duration_seconds")
                        .set(l.build_seconds);
                }
            }
            Err(e) => tracing::warn!(error = %ApiError::from(e), "recommender figures unavailable"),
        }
    });
}
