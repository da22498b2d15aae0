//! `WebhooksActor`: subscriptions (endpoints), the fan-out of every
//! domain's outbox events into deliveries, and the pool of delivery
//! workers. Owns the webhooks database.

pub mod error;
pub mod fanout;
pub mod handlers;
pub mod messages;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context};
use sqlx::PgPool;

pub use error::WebhooksError;
pub use handlers::WebhooksService;
use messages::*;

use super::metrics::ActorMetrics;
use super::runtime::{every, on_started};
use fanout::Fanout;

/// How often old events and finished deliveries are purged.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// The webhooks domain actor.
pub struct WebhooksActor {
    pool: PgPool,
    service: WebhooksService,
    metrics: Arc<ActorMetrics>,
    fanout: Arc<Fanout>,
    relay_interval: Duration,
}

impl WebhooksActor {
    /// An actor around its service, fanning out every `relay_interval`.
    pub fn new(
        service: WebhooksService,
        fanout: Arc<Fanout>,
        relay_interval: Duration,
        metrics: Arc<ActorMetrics>,
    ) -> Self {
        Self {
            pool: service.pool().clone(),
            service,
            metrics,
            fanout,
            relay_interval,
        }
    }
}

impl Actor for WebhooksActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
        every(ctx, self.relay_interval, "webhook fan-out", |a: &Self| {
            Arc::clone(&a.fanout).run()
        });
        every(
            ctx,
            PURGE_INTERVAL,
            "event and delivery purge",
            |a: &Self| Arc::clone(&a.fanout).purge(),
        );
    }
}

crate::lifecycle_handlers!(WebhooksActor);

/// Routes a message to the service method of the same intent.
macro_rules! route {
    ($message:ty => $method:ident, $reply:ty) => {
        crate::route_to_service!(WebhooksActor, WebhooksError, $message => $method, $reply);
    };
}

route!(CreateEndpoint => create_endpoint, EndpointWithSecret);
route!(ListEndpoints => list_endpoints, (Vec<EndpointView>, i64));
route!(GetEndpoint => get_endpoint, EndpointView);
route!(UpdateEndpoint => update_endpoint, EndpointView);
route!(DeleteEndpoint => delete_endpoint, ());
route!(RotateSecret => rotate_secret, EndpointWithSecret);
route!(ListDeliveries => list_deliveries, (Vec<DeliveryView>, i64));
route!(Redeliver => redeliver, DeliveryView);
