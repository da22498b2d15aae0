//! Starting the domain actors, each supervised on an arbiter (thread) of its
//! own so that one busy domain cannot starve another, and stopping them.

use crate::domain::pricing::totals::TaxMode;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Arbiter, Supervised, Supervisor};
use tokio::sync::Notify;

use super::amqp_relay::AmqpRelay;
use super::auth::{AuthActor, AuthService};
use super::carts::reader::CartReader;
use super::carts::{CartsActor, CartsService};
use super::catalog::CatalogActor;
use super::events::EventSource;
use super::metrics::{ActorMetrics, ActorMetricsSnapshot};
use super::notifications::{MailLinks, NotificationsActor, NotificationsService};
use super::orders::rules::RulesCache;
use super::orders::{OrdersActor, OrdersService};
use super::payments::handlers::{AttemptLimits, PaymentsConfig};
use super::payments::provider::{SimulatedProvider, WebhookTarget};
use super::payments::worker::{PaymentWorker, PoolShared, PoolStats};
use super::payments::{PaymentsActor, PaymentsService};
use super::read_view::CartsView;
use super::recommendations::{RecommenderActor, RecommenderService};
use super::runtime::{ActorClient, CallError, Ping, Probe, ProbeReply, RuntimeError, Shutdown};
use super::webhooks::fanout::Fanout;
use super::webhooks::worker::{DeliveryShared, DeliveryWorker};
use super::webhooks::{WebhooksActor, WebhooksService};
use crate::actors::catalog::cache::{CacheStatsSnapshot, CatalogCache};
use crate::actors::read_view::{AuthView, CatalogView};
use crate::config::{DatabaseSettings, Domain, Settings};
use crate::domain::auth::{PasswordHasher, TokenKeys};
use crate::domain::events::Sink;
use crate::domain::payments::retry::RetryPolicy;
use crate::store::database::lazy_pool;
use crate::telemetry::metrics::Metrics;

/// Ceiling of the payments pool's connections, whatever the worker count.
const MAX_PAYMENT_CONNECTIONS: u32 = 40;
/// How long shutdown waits for an actor to close its pool.
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections of the simulated provider's ledger pool.
const SIMULATOR_CONNECTIONS: u32 = 4;

/// Addresses of every domain actor, cheap to clone into the edge.
#[derive(Clone)]
pub struct Actors {
    pub auth: ActorClient<AuthActor>,
    pub catalog: ActorClient<CatalogActor>,
    pub orders: ActorClient<OrdersActor>,
    pub payments: ActorClient<PaymentsActor>,
    pub recommender: ActorClient<RecommenderActor>,
    pub carts: ActorClient<CartsActor>,
    pub webhooks: ActorClient<WebhooksActor>,
    pub notifications: ActorClient<NotificationsActor>,
    /// The webhook delivery pool's counters.
    pub webhook_deliveries: Arc<DeliveryShared>,
    /// Read-only use at the edge: the cache's statistics.
    catalog_cache: CatalogCache,
    /// The catalog's in-process read view: the edge reads it without a
    /// hop; only the catalog actor's loads fill it and its writes clear it.
    pub catalog_view: CatalogView,
    /// Auth's read view: principals and profiles, read by the edge without
    /// a hop; filled by auth's answers, cleared by its writes.
    pub auth_view: AuthView,
    /// `GET /cart/` without a hop: the carts' view (filled by carts'
    /// reads, cleared by its writes), the catalog's, and orders' rules.
    pub cart_reader: CartReader,
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
    _delivery_workers: Vec<actix::Addr<DeliveryWorker>>,
    /// The RabbitMQ relay, when `events.amqp_url` is set (held so that its
    /// supervisor restarts it).
    _amqp_relay: Option<actix::Addr<AmqpRelay>>,
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

/// What every domain's start needs, and what the starts leave behind: the
/// arbiters to stop and each domain's pool to report.
struct Starter<'a> {
    settings: &'a Settings,
    telemetry: &'a Metrics,
    capacity: usize,
    timeout: Duration,
    arbiters: Vec<Arbiter>,
    db_pools: Vec<(&'static str, sqlx::PgPool)>,
}

impl<'a> Starter<'a> {
    fn new(settings: &'a Settings, telemetry: &'a Metrics) -> Self {
        Self {
            settings,
            telemetry,
            capacity: settings.actors.mailbox_capacity,
            timeout: Duration::from_millis(settings.actors.call_timeout_ms),
            arbiters: Vec::new(),
            db_pools: Vec::new(),
        }
    }

    /// `domain`'s pool (opened lazily, on its actor's arbiter), recorded
    /// for the pool figures.
    fn pool(&mut self, db: &DatabaseSettings, domain: Domain) -> anyhow::Result<sqlx::PgPool> {
        let pool = lazy_pool(db, domain)?;
        self.db_pools.push((domain.name(), pool.clone()));
        Ok(pool)
    }

    /// Starts `build`'s actor supervised on an arbiter of its own, with its
    /// metrics exported under `name`.
    fn supervised<A, F>(&mut self, name: &'static str, build: F) -> ActorClient<A>
    where
        A: Actor<Context = actix::Context<A>> + Supervised,
        F: FnOnce(Arc<ActorMetrics>) -> A + Send + 'static,
    {
        let metrics = ActorMetrics::exported(name, self.capacity, self.telemetry);
        let m = Arc::clone(&metrics);
        let addr = start_supervised(&mut self.arbiters, move || build(m));
        ActorClient::new(addr, metrics, self.timeout)
    }

    fn auth(
        &mut self,
        keys: Arc<TokenKeys>,
        notifications: ActorClient<NotificationsActor>,
    ) -> anyhow::Result<(ActorClient<AuthActor>, AuthView)> {
        let settings = self.settings;
        let view = AuthView::new(
            crate::store::redis::pool(&settings.redis)?,
            &settings.redis.url,
            &settings.database.prefix,
            "auth",
            settings.auth.read_view_max_bytes,
        );
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let service = AuthService::new(
            self.pool(&settings.database, Domain::Auth)?,
            keys,
            Arc::new(PasswordHasher::new()?),
            cores,
            settings.auth.refresh_ttl_secs,
            view.clone(),
        )
        .with_mail(super::auth::mail::AuthMail {
            notifications,
            reset_ttl_mins: settings.auth.reset_ttl_mins,
            verify_ttl_hours: settings.auth.verify_ttl_hours,
        });
        let auth = self.supervised(Domain::Auth.name(), move |m| AuthActor::new(service, m));
        Ok((auth, view))
    }

    fn catalog(
        &mut self,
    ) -> anyhow::Result<(ActorClient<CatalogActor>, CatalogCache, CatalogView)> {
        let settings = self.settings;
        let pool = self.pool(&settings.database, Domain::Catalog)?;
        // The catalog owns a Redis pool of its own for caching.
        let cache = CatalogCache::new(
            crate::store::redis::pool(&settings.redis)?,
            &settings.database.prefix,
            Duration::from_millis(settings.redis.timeout_ms),
            settings.catalog.cache_ttl_secs,
        )
        .with_scoped_invalidation(settings.catalog.scoped_invalidation);
        let view = CatalogView::new(
            crate::store::redis::pool(&settings.redis)?,
            &settings.redis.url,
            &settings.database.prefix,
            "catalog",
            settings.catalog.read_view_max_bytes,
        );
        let (c, v) = (cache.clone(), view.clone());
        let media = crate::store::media::MediaStore::from_settings(&settings.media)?;
        let ttl = settings.catalog.reservation_ttl_secs;
        let sweep = Duration::from_secs(settings.catalog.sweep_interval_secs);
        let catalog = self.supervised(Domain::Catalog.name(), move |m| {
            CatalogActor::new(pool, c, v, media.clone(), ttl, sweep, m)
        });
        Ok((catalog, cache, view))
    }

    /// Orders, and its copy of the pricing rules for readers at the edge.
    fn orders(
        &mut self,
        catalog: ActorClient<CatalogActor>,
    ) -> anyhow::Result<(ActorClient<OrdersActor>, Arc<RulesCache>)> {
        let settings = self.settings;
        let orders = &settings.orders;
        let service = OrdersService::new(
            self.pool(&settings.database, Domain::Orders)?,
            catalog,
            orders.pending_ttl_secs,
            Duration::from_secs(orders.idempotency_lock_secs),
            Duration::from_secs(orders.idempotency_retention_hours * 3600),
            if settings.tax.prices_include_tax {
                TaxMode::Inclusive
            } else {
                TaxMode::Exclusive
            },
        )
        .with_return_window_days(settings.returns.window_days);
        let rules = service.shared_rules();
        let sweep = Duration::from_secs(orders.sweep_interval_secs);
        let actor = self.supervised(Domain::Orders.name(), move |m| {
            OrdersActor::new(service, sweep, m)
        });
        Ok((actor, rules))
    }

    /// The payments actor, and its pool of workers, each supervised, on an
    /// arbiter of their own so provider latency never holds up the API's
    /// payments messages. The workers' addresses are kept: a supervisor
    /// restarts an actor only while someone holds its address.
    fn payments(&mut self, orders: ActorClient<OrdersActor>) -> anyhow::Result<Payments> {
        let settings = self.settings;
        let pay = &settings.payments;
        // The workers share the payments pool; give it room for them.
        let mut db = settings.database.clone();
        db.max_connections = db.max_connections.max(
            u32::try_from(pay.workers / 2 + 2)
                .unwrap_or(u32::MAX)
                .min(MAX_PAYMENT_CONNECTIONS),
        );
        let pool = self.pool(&db, Domain::Payments)?;
        // The simulated provider stands in for another company's system:
        // its ledger commits without waiting for our WAL flush, on a few
        // connections of its own (only a crash of PostgreSQL itself could
        // lose a row, and then the provider answers that call afresh).
        let mut ledger_db = db.clone();
        ledger_db.max_connections = ledger_db.max_connections.min(SIMULATOR_CONNECTIONS);
        let ledger = crate::store::database::lazy_pool_without_flush(&ledger_db, Domain::Payments)?;
        // Closed at shutdown with the others, and reported beside them.
        self.db_pools.push(("provider_ledger", ledger.clone()));
        let simulator = SimulatedProvider::new(
            ledger,
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
            claim_batch: pay.claim_batch.max(1),
        });
        let mut webhook_secrets = vec![pay.webhook_secret.clone()];
        webhook_secrets.extend(pay.webhook_previous_secret.clone());
        let idempotency = &settings.orders;
        let service = PaymentsService::new(
            pool,
            orders,
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
                idempotency_lock: Duration::from_secs(idempotency.idempotency_lock_secs),
                idempotency_retention: Duration::from_secs(
                    idempotency.idempotency_retention_hours * 3600,
                ),
            },
        );
        let relay = Duration::from_millis(pay.relay_interval_ms);
        let purge = Duration::from_secs(settings.orders.sweep_interval_secs);
        let actor = self.supervised(Domain::Payments.name(), move |m| {
            PaymentsActor::new(service, relay, purge, m)
        });
        let workers_arbiter = Arbiter::new();
        let workers = (0..pay.workers)
            .map(|_| {
                let shared = Arc::clone(&shared);
                Supervisor::start_in_arbiter(&workers_arbiter.handle(), move |_| {
                    PaymentWorker::new(shared)
                })
            })
            .collect();
        self.arbiters.push(workers_arbiter);
        Ok(Payments {
            actor,
            simulator,
            workers,
        })
    }

    fn recommender(
        &mut self,
        catalog: ActorClient<CatalogActor>,
        orders: ActorClient<OrdersActor>,
    ) -> ActorClient<RecommenderActor> {
        let settings = self.settings;
        let rec = &settings.recommendations;
        let service = RecommenderService::new(catalog, orders, rec);
        let rebuild = Duration::from_secs(rec.rebuild_interval_secs);
        let follow = Duration::from_millis(rec.follow_interval_ms);
        self.supervised("recommender", move |m| {
            RecommenderActor::new(service, rebuild, follow, m)
        })
    }

    /// Carts, and the reader that answers `GET /cart/` at the edge.
    fn carts(
        &mut self,
        (catalog, catalog_view): (ActorClient<CatalogActor>, CatalogView),
        (orders, rules): (ActorClient<OrdersActor>, Arc<RulesCache>),
    ) -> anyhow::Result<(ActorClient<CartsActor>, CartReader)> {
        let settings = self.settings;
        let checkout_lock = Duration::from_secs(settings.orders.idempotency_lock_secs);
        let view = CartsView::new(
            crate::store::redis::pool(&settings.redis)?,
            &settings.redis.url,
            &settings.database.prefix,
            "carts",
            settings.carts.read_view_max_bytes,
        );
        let reader = CartReader::new(
            view.clone(),
            catalog_view.clone(),
            rules,
            settings.carts.max_quantity,
        );
        let service = CartsService::new(
            self.pool(&settings.database, Domain::Carts)?,
            catalog,
            orders,
            settings.carts.clone(),
            checkout_lock,
            (view, catalog_view),
        );
        let sweep = Duration::from_secs(settings.carts.sweep_interval_secs);
        let actor = self.supervised(Domain::Carts.name(), move |m| {
            CartsActor::new(service, sweep, checkout_lock, m)
        });
        Ok((actor, reader))
    }
}

/// What starting webhooks leaves: the actor, the pool's shared state and
/// the workers' addresses.
struct Webhooks {
    actor: ActorClient<WebhooksActor>,
    shared: Arc<DeliveryShared>,
    workers: Vec<actix::Addr<DeliveryWorker>>,
}

impl Starter<'_> {
    /// The webhooks actor (subscriptions and the fan-out of `sources`) and
    /// its delivery workers, each supervised, on an arbiter of their own so
    /// a slow subscriber never holds up anything else.
    fn webhooks(&mut self, sources: Vec<EventSource>) -> anyhow::Result<Webhooks> {
        let settings = self.settings;
        let hooks = &settings.webhooks;
        let mut db = settings.database.clone();
        db.max_connections = db.max_connections.max(
            u32::try_from(hooks.workers + 2)
                .unwrap_or(u32::MAX)
                .min(MAX_PAYMENT_CONNECTIONS),
        );
        let pool = self.pool(&db, Domain::Webhooks)?;
        let shared = Arc::new(DeliveryShared::new(pool.clone(), hooks)?);
        let events = &settings.events;
        let mut purge_sinks = vec![Sink::Webhooks, Sink::Mail];
        if !events.amqp_url.is_empty() {
            purge_sinks.push(Sink::Amqp);
        }
        let fanout = Arc::new(Fanout::new(
            Arc::clone(&shared),
            sources,
            events.source.clone(),
            events.relay_batch,
            purge_sinks,
            events.retention_days,
        ));
        let service = WebhooksService::new(pool, Arc::clone(&shared));
        let relay = Duration::from_millis(events.relay_interval_ms.max(10));
        let actor = self.supervised(Domain::Webhooks.name(), move |m| {
            WebhooksActor::new(service, fanout, relay, m)
        });
        let workers_arbiter = Arbiter::new();
        let workers = (0..hooks.workers.max(1))
            .map(|_| {
                let shared = Arc::clone(&shared);
                Supervisor::start_in_arbiter(&workers_arbiter.handle(), move |_| {
                    DeliveryWorker::new(shared)
                })
            })
            .collect();
        self.arbiters.push(workers_arbiter);
        Ok(Webhooks {
            actor,
            shared,
            workers,
        })
    }
}

impl Starter<'_> {
    /// The notifications actor (mail queue, sender, relay); the relay
    /// starts once the returned links are set.
    fn notifications(
        &mut self,
    ) -> anyhow::Result<(
        ActorClient<NotificationsActor>,
        Arc<std::sync::OnceLock<MailLinks>>,
    )> {
        let settings = self.settings;
        if settings.email.transport == crate::config::EmailTransport::Log
            && settings.app.environment == crate::config::Environment::Production
        {
            tracing::warn!(
                "email.transport is \"log\" in production: customer mail is logged, not sent; set email.transport = \"smtp\""
            );
        }
        let links = Arc::new(std::sync::OnceLock::new());
        let service = NotificationsService::new(
            self.pool(&settings.database, Domain::Notifications)?,
            crate::config::EmailSettings {
                log_tokens: settings.app.environment == crate::config::Environment::Development,
                ..settings.email.clone()
            },
            Arc::clone(&links),
            Duration::from_millis(settings.events.relay_interval_ms.max(10)),
            settings.events.relay_batch,
        );
        let actor = self.supervised(Domain::Notifications.name(), move |m| {
            NotificationsActor::new(service, m)
        });
        Ok((actor, links))
    }
}

/// What starting payments leaves: the actor, the simulated provider (told
/// the webhook target later), and the workers' addresses.
struct Payments {
    actor: ActorClient<PaymentsActor>,
    simulator: Arc<SimulatedProvider>,
    workers: Vec<actix::Addr<PaymentWorker>>,
}

impl Cluster {
    /// Starts every domain actor, callees before their callers (orders asks
    /// catalog; payments asks orders; carts and the recommender ask both).
    /// Databases must already be migrated.
    pub fn start(
        settings: &Settings,
        keys: Arc<TokenKeys>,
        telemetry: &Metrics,
    ) -> anyhow::Result<Self> {
        let mut start = Starter::new(settings, telemetry);
        // Mail first: auth sends through it; it reads every outbox (and
        // asks auth for addresses) once the others are started.
        let (notifications, mail_links) = start.notifications()?;
        let (auth, auth_view) = start.auth(keys, notifications.clone())?;
        let (catalog, catalog_cache, catalog_view) = start.catalog()?;
        let (orders, rules) = start.orders(catalog.clone())?;
        let payments = start.payments(orders.clone())?;
        let recommender = start.recommender(catalog.clone(), orders.clone());
        let (carts, cart_reader) = start.carts(
            (catalog.clone(), catalog_view.clone()),
            (orders.clone(), rules),
        )?;
        let sources = event_sources(&auth, &catalog, &orders, &payments.actor);
        let _ = mail_links.set(MailLinks {
            sources: sources.clone(),
            auth: auth.clone(),
        });
        let webhooks = start.webhooks(sources)?;
        let actors = Actors {
            auth,
            catalog,
            orders,
            payments: payments.actor,
            recommender,
            carts,
            webhooks: webhooks.actor,
            webhook_deliveries: webhooks.shared,
            notifications,
            catalog_cache,
            catalog_view,
            auth_view,
            cart_reader,
            db_pools: start.db_pools.into(),
        };
        let mut arbiters = start.arbiters;
        let amqp_relay = AmqpRelay::start(
            &settings.events,
            actors.event_sources(),
            telemetry,
            &mut arbiters,
        );
        Ok(Self {
            actors,
            arbiters,
            simulator: payments.simulator,
            _payment_workers: payments.workers,
            _delivery_workers: webhooks.workers,
            _amqp_relay: amqp_relay,
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
        let closes = futures_util::future::join(
            futures_util::future::join5(
                a.auth.call(Shutdown),
                a.catalog.call(Shutdown),
                a.orders.call(Shutdown),
                a.payments.call(Shutdown),
                a.carts.call(Shutdown),
            ),
            futures_util::future::join(a.webhooks.call(Shutdown), a.notifications.call(Shutdown)),
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
        a.catalog_view.stop();
        a.auth_view.stop();
        a.cart_reader.view().stop();
        tracing::info!("actors stopped");
    }
}

/// The domains that append public events to an outbox.
fn event_sources(
    auth: &ActorClient<AuthActor>,
    catalog: &ActorClient<CatalogActor>,
    orders: &ActorClient<OrdersActor>,
    payments: &ActorClient<PaymentsActor>,
) -> Vec<EventSource> {
    vec![
        EventSource::of(Domain::Auth.name(), auth.clone()),
        EventSource::of(Domain::Catalog.name(), catalog.clone()),
        EventSource::of(Domain::Orders.name(), orders.clone()),
        EventSource::of(Domain::Payments.name(), payments.clone()),
    ]
}

impl Actors {
    /// Every domain that appends public events to an outbox, for the
    /// relays (webhooks, RabbitMQ, mail).
    pub fn event_sources(&self) -> Vec<EventSource> {
        event_sources(&self.auth, &self.catalog, &self.orders, &self.payments)
    }

    /// Every actor's metrics.
    pub fn metrics(&self) -> Vec<ActorMetricsSnapshot> {
        [
            self.auth.metrics(),
            self.catalog.metrics(),
            self.orders.metrics(),
            self.payments.metrics(),
            self.recommender.metrics(),
            self.carts.metrics(),
            self.webhooks.metrics(),
            self.notifications.metrics(),
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
        let ((auth, catalog, orders, payments, carts), (webhooks, notifications)) =
            futures_util::future::join(
                futures_util::future::join5(
                    self.auth.call(Ping),
                    self.catalog.call(Ping),
                    self.orders.call(Ping),
                    self.payments.call(Ping),
                    self.carts.call(Ping),
                ),
                futures_util::future::join(self.webhooks.call(Ping), self.notifications.call(Ping)),
            )
            .await;
        vec![
            ("auth", auth),
            ("catalog", catalog),
            ("orders", orders),
            ("payments", payments),
            ("carts", carts),
            ("webhooks", webhooks),
            ("notifications", notifications),
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
            "webhooks" => self.webhooks.call(probe).await,
            "notifications" => self.notifications.call(probe).await,
            _ => return None,
        })
    }
}
