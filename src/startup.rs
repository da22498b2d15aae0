//! Building and running one Emporium instance: databases, actors, edge.
//! The binary and the tests go through the same `Application::build`.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor as _, Addr};
use actix_cors::Cors;
use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{from_fn, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use anyhow::Context as _;
use secrecy::ExposeSecret as _;

use crate::actors::edge::{EdgeActor, StopServer};
use crate::actors::payments::provider::WebhookTarget;
use crate::actors::Cluster;
use crate::config::{Domain, Settings};
use crate::domain::auth::TokenKeys;
use crate::domain::orders::guest::OrderTokenKey;
use crate::http::drain::Drain;
use crate::http::metrics::record_http;
use crate::http::middleware::{
    close_when_draining, head_as_get, normalize_path, problem_fallback, refuse_nul, request_id,
    request_timeout,
};
use crate::http::rate_limit::RateLimiter;
use crate::http::{self, AppState};
use crate::store;
use crate::telemetry::metrics::{Metrics, UPKEEP_EVERY};

/// A built, not yet running, instance.
pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on a port of its own, when configured.
    metrics_server: Option<(u16, Server)>,
    cluster: Cluster,
    edge: Addr<EdgeActor>,
}

/// Creates every missing domain database and applies its migrations.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    for domain in Domain::ALL {
        store::database::prepare(&settings.database, domain).await?;
    }
    Ok(())
}

fn cors(settings: &Settings) -> Cors {
    let origins = &settings.http.cors_allowed_origins;
    let cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            "authorization",
            "content-type",
            "idempotency-key",
            "x-request-id",
            // Guest carts are opened by it from storefront pages.
            "x-cart-token",
        ])
        .expose_headers([
            "x-request-id",
            "retry-after",
            "x-cache",
            "idempotent-replayed",
        ])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        cors.allow_any_origin()
    } else {
        origins
            .iter()
            .fold(cors, |cors, origin| cors.allowed_origin(origin))
    }
}

impl Application {
    /// Migrates, starts the actors and binds the HTTP server (port 0 picks a
    /// free one). Must run inside an actix system. `listen_for_signals`
    /// makes SIGTERM/SIGINT drain and stop the instance.
    pub async fn build(settings: Settings, listen_for_signals: bool) -> anyhow::Result<Self> {
        settings.validate()?;
        migrate(&settings).await?;
        let keys = Arc::new(TokenKeys::new(
            settings.auth.jwt_secret.expose_secret().as_bytes(),
            &settings.auth.issuer,
            &settings.auth.audience,
            settings.auth.access_ttl_secs,
        ));
        let metrics = Metrics::new();
        let cluster = Cluster::start(&settings, Arc::clone(&keys), &metrics)?;
        let upkeep = Arc::clone(&metrics);
        actix_rt::spawn(async move {
            let mut every = tokio::time::interval(UPKEEP_EVERY);
            loop {
                every.tick().await;
                upkeep.run_upkeep();
            }
        });
        let rate_limiter = RateLimiter::new(
            store::redis::pool(&settings.redis)?,
            &settings.database.prefix,
            Duration::from_millis(settings.redis.timeout_ms),
            Duration::from_secs(settings.rate_limit.window_secs),
        );
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))
            .with_context(|| format!("binding {}:{}", settings.http.host, settings.http.port))?;
        let port = listener.local_addr()?.port();
        // The simulated provider posts webhooks here unless told otherwise.
        let webhook_url = match settings.payments.webhook_url.as_deref() {
            Some(url) if !url.is_empty() => url.to_owned(),
            _ => {
                let host = match settings.http.host.as_str() {
                    "0.0.0.0" | "::" => "127.0.0.1",
                    host => host,
                };
                format!("http://{host}:{port}/api/v1/payments/webhook/")
            }
        };
        cluster.set_webhook_target(WebhookTarget {
            url: webhook_url,
            secret: settings.payments.webhook_secret.clone(),
        });
        let workers = settings.http.workers.max(1);
        let shutdown_timeout = settings.http.shutdown_timeout_secs;
        let state = web::Data::new(AppState {
            actors: cluster.actors().clone(),
            keys,
            order_tokens: OrderTokenKey::new(
                settings
                    .orders
                    .order_token_secret
                    .expose_secret()
                    .as_bytes(),
            ),
            rate_limiter,
            settings: settings.clone(),
            metrics,
            drain: Drain::default(),
        });
        let drain = state.drain.clone();
        let metrics_server = Self::metrics_server(&state)?;
        let metrics_on_api_port = metrics_server.is_none();
        let api_state = state.clone();
        let server = HttpServer::new(move || {
            let state = api_state.clone();
            App::new()
                .app_data(state.clone())
                // Raw-body routes (refunds, provider webhooks) read up to
                // the same limit as JSON bodies, not actix's own default.
                .app_data(web::PayloadConfig::new(
                    state.settings.http.body_limit_bytes,
                ))
                .configure(http::routes)
                .configure(|cfg| {
                    if metrics_on_api_port {
                        http::metrics::routes(cfg);
                    }
                })
                .default_service(web::to(http::not_found))
                .wrap(from_fn(request_timeout))
                .wrap(from_fn(refuse_nul))
                .wrap(from_fn(problem_fallback))
                .wrap(from_fn(normalize_path))
                .wrap(from_fn(close_when_draining))
                .wrap(from_fn(record_http))
                .wrap(from_fn(head_as_get))
                .wrap(cors(&state.settings))
                .wrap(DefaultHeaders::new().add(("x-content-type-options", "nosniff")))
                .wrap(from_fn(request_id))
        })
        .workers(workers)
        .shutdown_timeout(shutdown_timeout)
        .disable_signals()
        .listen(listener)?
        .run();
        let edge = EdgeActor::new(
            server.handle(),
            drain,
            Duration::from_millis(settings.http.drain_delay_ms),
            listen_for_signals,
        )
        .start();
        Ok(Self {
            port,
            server,
            metrics_server,
            cluster,
            edge,
        })
    }

    /// `/metrics` alone on `observability.metrics_port`, when set.
    fn metrics_server(state: &web::Data<AppState>) -> anyhow::Result<Option<(u16, Server)>> {
        let obs = &state.settings.observability;
        let Some(port) = obs.metrics_port else {
            return Ok(None);
        };
        let listener = TcpListener::bind((obs.metrics_host.as_str(), port))
            .with_context(|| format!("binding the metrics port {}:{port}", obs.metrics_host))?;
        let port = listener.local_addr()?.port();
        let state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .configure(http::metrics::routes)
                .default_service(web::to(http::not_found))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)?
        .run();
        Ok(Some((port, server)))
    }

    /// The separate metrics port, when `observability.metrics_port` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The actors' addresses (tests send messages with no HTTP route, such
    /// as stock reservations, through them).
    pub fn actors(&self) -> crate::actors::Actors {
        self.cluster.actors().clone()
    }

    /// A handle that stops the server from outside (tests).
    pub fn server_handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// The edge's lifecycle actor: `StopServer { graceful: true }` drains
    /// and stops the instance as SIGTERM does (tests).
    pub fn edge(&self) -> Addr<EdgeActor> {
        self.edge.clone()
    }

    /// Serves until stopped (signal or `StopServer`), then closes the
    /// actors' pools and stops their arbiters.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let metrics = self.metrics_server.map(|(_, server)| {
            let handle = server.handle();
            (actix_rt::spawn(server), handle)
        });
        let result = self.server.await;
        if let Some((task, handle)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        self.edge.do_send(StopServer { graceful: false });
        self.cluster.shutdown().await;
        result.context("HTTP server failed")
    }
}
