//! Starting the domain actors, each supervised on an arbiter (thread) of its
//! own so that one busy domain cannot starve another, and stopping them.

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Arbiter, Supervised, Supervisor};
use tokio::sync::Notify;

use super::auth::{AuthActor, AuthService};
use super::carts::{CartsActor, CartsService};
use super::catalog::CatalogActor;
use super::metrics::{ActorMetrics, ActorMetricsSnapshot};
use super::orders::{OrdersActor, OrdersService};
use super::payments::handlers::{AttemptLimits, PaymentsConfig};
use super::payments::provider::{SimulatedProvider, WebhookTarget};
use super::payments::worker::{PaymentWorker, PoolShared, PoolStats};
use super::payments::{PaymentsActor, PaymentsService};
use super::recommender::{RecommenderActor, RecommenderService};
use super::runtime::{ActorClient, CallError, Ping, Probe, ProbeReply, RuntimeError, Shutdown};
use crate::actors::catalog::cache::{CacheStatsSnapshot, CatalogCache};
use crate::actors::read_view::{AuthView, CatalogView};
use crate::config::{Domain, Settings};
use crate::domain::auth::{PasswordHasher, TokenKeys};
use crate::domain::payments::retry::RetryPolicy;
use crate::store::database::lazy_pool;
use crate::telemetry::metrics::Metrics;

/// Ceiling of the payments pool's connections, whatever the worker count.
const MAX_PAYMENT_CONNECTIONS: u32 = 40;
/// How long shutdown waits for an actor to close its pool.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Addresses of every domain actor, cheap to clone into the edge.
#[derive(Clone)]
pub struct Actors {
    pub auth: ActorClient<AuthActor>,
    pub catalog: ActorClient<CatalogActor>,
    pub orders: ActorClient<OrdersActor>,
    pub payments: ActorClient<PaymentsActor>,
    pub recommender: ActorClient<RecommenderActor>,
    pub carts: ActorClient<CartsActor>,
    /// Read-only use at the edge: the cache's statistics.
    catalog_cache: CatalogCache,
    /// The catalog's in-process read view: the edge reads it without a
    /// hop; only the catalog actor's loads fill it and its writes clear it.
    pub catalog_view: CatalogView,
    /// Auth's read view: principals and profiles, read by the edge without
    /// a hop; filled by auth's answers, cleared by its writes.
    pub auth_view: AuthView,
    /// Each domain's database pool, for its size and idle figures only.
    db_pools: Arc<[(&'static str, sqlx::PgPool)]>,
}

/// The running actors and the arbiters they live on.
pub struct Cluster {
    actors: Actors,
    arbiters: Vec<Arbiter>,
    simulator: Arc<SimulatedProvider>,
    /// Held so that their supervisors restart them.
    _payment_workers: Vec<actix::Addr<PaymentWorker>>,
}

fn start_supervised<A, F>(arbiters: &mut Vec<Arbiter>, build: F) -> actix::Addr<A>
where
    A: Actor<Context = actix::Context<A>> + Supervised,
    F: FnOnce() -> A + Send + 'static,
{
    let arbiter = Arbiter::new();
    let addr = Supervisor::start_in_arbiter(&arbiter.handle(), move |_| build());
    arbiters.push(arbiter);
    addr
}

impl Cluster {
    /// Starts every domain actor. Databases must already be migrated.
    pub fn start(
        settings: &Settings,
        keys: Arc<TokenKeys>,
        telemetry: &Metrics,
    ) -> anyhow::Result<Self> {
        let capacity = settings.actors.mailbox_capacity;
        let timeout = Duration::from_millis(settings.actors.call_timeout_ms);
        let db = &settings.database;
        let mut arbiters = Vec::new();

        let hasher = Arc::new(PasswordHasher::new()?);
        let auth_view = AuthView::new(
            crate::store::redis::pool(&settings.redis)?,
            &settings.redis.url,
            &db.prefix,
            "auth",
        );
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let mut db_pools = Vec::new();
        let pool = lazy_pool(db, Domain::Auth)?;
        db_pools.push((Domain::Auth.name(), pool.clone()));
        let auth_service = AuthService::new(
            pool,
            keys,
            hasher,
            cores,
            settings.auth.refresh_ttl_secs,
            auth_view.clone(),
        );
        let auth_metrics = ActorMetrics::exported(Domain::Auth.name(), capacity, telemetry);
        let m = Arc::clone(&auth_metrics);
        let auth = start_supervised(&mut arbiters, move || AuthActor::new(auth_service, m));

        let catalog_metrics = ActorMetrics::exported(Domain::Catalog.name(), capacity, telemetry);
        let (pool, m) = (
            lazy_pool(db, Domain::Catalog)?,
            Arc::clone(&catalog_metrics),
        );
        db_pools.push((Domain::Catalog.name(), pool.clone()));
        // The catalog owns a Redis pool of its own for caching.
        let catalog_cache = CatalogCache::new(
            crate::store::redis::pool(&settings.redis)?,
            &db.prefix,
            Duration::from_millis(settings.redis.timeout_ms),
            settings.catalog.cache_ttl_secs,
        );
        let cache = catalog_cache.clone();
        let catalog_view = CatalogView::new(
            crate::store::redis::pool(&settings.redis)?,
            &settings.redis.url,
            &db.prefix,
            "catalog",
        );
        let view = catalog_view.clone();
        let ttl = settings.catalog.reservation_ttl_secs;
        let sweep = Duration::from_secs(settings.catalog.sweep_interval_secs);
        let catalog = start_supervised(&mut arbiters, move || {
            CatalogActor::new(pool, cache, view, ttl, sweep, m)
        });

        let orders_metrics = ActorMetrics::exported(Domain::Orders.name(), capacity, telemetry);
        let pool = lazy_pool(db, Domain::Orders)?;
        db_pools.push((Domain::Orders.name(), pool.clone()));
        let orders_service = OrdersService::new(
            pool,
            ActorClient::new(catalog.clone(), Arc::clone(&catalog_metrics), timeout),
            settings.orders.pending_ttl_secs,
            Duration::from_secs(settings.orders.idempotency_lock_secs),
            Duration::from_secs(settings.orders.idempotency_retention_hours * 3600),
        );
        let m = Arc::clone(&orders_metrics);
        let sweep = Duration::from_secs(settings.orders.sweep_interval_secs);
        let orders = start_supervised(&mut arbiters, move || {
            OrdersActor::new(orders_service, sweep, m)
        });

        let payments_metrics = ActorMetrics::exported(Domain::Payments.name(), capacity, telemetry);
        let pay = &settings.payments;
        // The workers share the payments pool; give it room for them.
        let mut pay_db = db.clone();
        pay_db.max_connections = db.max_connections.max(
            u32::try_from(pay.workers / 2 + 2)
                .unwrap_or(u32::MAX)
                .min(MAX_PAYMENT_CONNECTIONS),
        );
        let pool = lazy_pool(&pay_db, Domain::Payments)?;
        db_pools.push((Domain::Payments.name(), pool.clone()));
        let simulator = SimulatedProvider::new(
            pool.clone(),
            pay.simulator.clone(),
            Duration::from_millis(pay.provider_timeout_ms),
            pay.delivery,
        );
        let shared = Arc::new(PoolShared {
            pool: pool.clone(),
            provider: Arc::new(Arc::clone(&simulator)),
            policy: RetryPolicy {
                max_attempts: pay.max_attempts,
                base: Duration::from_millis(pay.retry_base_ms),
                max: Duration::from_millis(pay.retry_max_ms),
            },
            lease: Duration::from_secs(pay.lease_secs),
            provider_timeout: Duration::from_millis(pay.provider_timeout_ms),
            poll_interval: Duration::from_millis(pay.poll_interval_ms),
            webhook_wait: Duration::from_secs(pay.webhook_wait_secs),
            jobs: Notify::new(),
            outcomes: Arc::new(Notify::new()),
            stats: PoolStats::default(),
            size: pay.workers,
        });
        let mut webhook_secrets = vec![pay.webhook_secret.clone()];
        webhook_secrets.extend(pay.webhook_previous_secret.clone());
        let payments_service = PaymentsService::new(
            pool,
            ActorClient::new(orders.clone(), Arc::clone(&orders_metrics), timeout),
            Arc::clone(&simulator),
            Arc::clone(&shared),
            PaymentsConfig {
                webhook_secrets,
                webhook_tolerance_secs: pay.webhook_tolerance_secs,
                attempt_limits: AttemptLimits {
                    per_order: pay.failed_attempts_per_order,
                    per_customer: pay.failed_attempts_per_customer,
                    window_secs: pay.failed_attempts_window_secs,
                },
                idempotency_lock: Duration::from_secs(settings.orders.idempotency_lock_secs),
                idempotency_retention: Duration::from_secs(
                    settings.orders.idempotency_retention_hours * 3600,
                ),
            },
        );
        let m = Arc::clone(&payments_metrics);
        let relay = Duration::from_millis(pay.relay_interval_ms);
        let purge = Duration::from_secs(settings.orders.sweep_interval_secs);
        let payments = start_supervised(&mut arbiters, move || {
            PaymentsActor::new(payments_service, relay, purge, m)
        });
        // The pool's workers, each supervised, on an arbiter of their own so
        // provider latency never holds up the API's payments messages.
        // Their addresses are kept: a supervisor restarts an actor only while
        // someone holds its address.
        let workers_arbiter = Arbiter::new();
        let payment_workers = (0..pay.workers)
            .map(|_| {
                let shared = Arc::clone(&shared);
                Supervisor::start_in_arbiter(&workers_arbiter.handle(), move |_| {
                    PaymentWorker::new(shared)
                })
            })
            .collect();
        arbiters.push(workers_arbiter);

        let recommender_metrics = ActorMetrics::exported("recommender", capacity, telemetry);
        let recommender_service = RecommenderService::new(
            ActorClient::new(catalog.clone(), Arc::clone(&catalog_metrics), timeout),
            ActorClient::new(orders.clone(), Arc::clone(&orders_metrics), timeout),
            &settings.recommendations,
        );
        let m = Arc::clone(&recommender_metrics);
        let rebuild = Duration::from_secs(settings.recommendations.rebuild_interval_secs);
        let follow = Duration::from_millis(settings.recommendations.follow_interval_ms);
        let recommender = start_supervised(&mut arbiters, move || {
            RecommenderActor::new(recommender_service, rebuild, follow, m)
        });

        let carts_metrics = ActorMetrics::exported(Domain::Carts.name(), capacity, telemetry);
        let pool = lazy_pool(db, Domain::Carts)?;
        db_pools.push((Domain::Carts.name(), pool.clone()));
        let checkout_lock = Duration::from_secs(settings.orders.idempotency_lock_secs);
        let carts_service = CartsService::new(
            pool,
            ActorClient::new(catalog.clone(), Arc::clone(&catalog_metrics), timeout),
            ActorClient::new(orders.clone(), Arc::clone(&orders_metrics), timeout),
            settings.carts.clone(),
            checkout_lock,
        );
        let m = Arc::clone(&carts_metrics);
        let sweep = Duration::from_secs(settings.carts.sweep_interval_secs);
        let carts = start_supervised(&mut arbiters, move || {
            CartsActor::new(carts_service, sweep, checkout_lock, m)
        });

        let actors = Actors {
            auth: ActorClient::new(auth, auth_metrics, timeout),
            catalog: ActorClient::new(catalog, catalog_metrics, timeout),
            orders: ActorClient::new(orders, orders_metrics, timeout),
            payments: ActorClient::new(payments, payments_metrics, timeout),
            recommender: ActorClient::new(recommender, recommender_metrics, timeout),
            carts: ActorClient::new(carts, carts_metrics, timeout),
            catalog_cache,
            catalog_view,
            auth_view,
            db_pools: db_pools.into(),
        };
        Ok(Self {
            actors,
            arbiters,
            simulator,
            _payment_workers: payment_workers,
        })
    }

    /// Tells the simulated provider where to post webhooks (known once the
    /// server has bound its port).
    pub fn set_webhook_target(&self, target: WebhookTarget) {
        self.simulator.set_webhook_target(target);
    }

    /// The actors' addresses.
    pub fn actors(&self) -> &Actors {
        &self.actors
    }

    /// Closes every pool, then stops every arbiter.
    pub async fn shutdown(self) {
        let a = &self.actors;
        let closes = futures_util::future::join5(
            a.auth.call(Shutdown),
            a.catalog.call(Shutdown),
            a.orders.call(Shutdown),
            a.payments.call(Shutdown),
            a.carts.call(Shutdown),
        );
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, closes)
            .await
            .is_err()
        {
            tracing::warn!("some actor pools did not close in time");
        }
        for arbiter in &self.arbiters {
            arbiter.stop();
        }
        tracing::info!("actors stopped");
    }
}

impl Actors {
    /// Every actor's metrics.
    pub fn metrics(&self) -> Vec<ActorMetricsSnapshot> {
        [
            self.auth.metrics(),
            self.catalog.metrics(),
            self.orders.metrics(),
            self.payments.metrics(),
            self.recommender.metrics(),
            self.carts.metrics(),
        ]
        .iter()
        .map(|m| m.snapshot())
        .collect()
    }

    /// Each domain's database pool: (domain, open, idle, most).
    pub fn db_pool_stats(&self) -> Vec<(&'static str, u32, usize, u32)> {
        self.db_pools
            .iter()
            .map(|(name, pool)| {
                let most = pool.options().get_max_connections();
                (*name, pool.size(), pool.num_idle(), most)
            })
            .collect()
    }

    /// The catalog cache's Redis pool.
    pub fn catalog_cache_pool(&self) -> bb8::State {
        self.catalog_cache.pool_state()
    }

    /// The catalog cache's counters.
    pub fn catalog_cache_stats(&self) -> CacheStatsSnapshot {
        self.catalog_cache.snapshot()
    }

    /// Pings every actor and its database, concurrently.
    pub async fn ping_all(&self) -> Vec<(&'static str, Result<(), CallError<RuntimeError>>)> {
        let (auth, catalog, orders, payments, carts) = futures_util::future::join5(
            self.auth.call(Ping),
            self.catalog.call(Ping),
            self.orders.call(Ping),
            self.payments.call(Ping),
            self.carts.call(Ping),
        )
        .await;
        vec![
            ("auth", auth),
            ("catalog", catalog),
            ("orders", orders),
            ("payments", payments),
            ("carts", carts),
        ]
    }

    /// Sends a diagnostics probe to the named actor; `None` for an unknown name.
    pub async fn probe(
        &self,
        name: &str,
        probe: Probe,
    ) -> Option<Result<ProbeReply, CallError<RuntimeError>>> {
        Some(match name {
            "auth" => self.auth.call(probe).await,
            "catalog" => self.catalog.call(probe).await,
            "orders" => self.orders.call(probe).await,
            "payments" => self.payments.call(probe).await,
            "carts" => self.carts.call(probe).await,
            _ => return None,
        })
    }
}
