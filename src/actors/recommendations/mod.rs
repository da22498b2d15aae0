//! `RecommenderActor`: owns the recommendation model. It reads products and
//! purchases only by messages to `CatalogActor` and `OrdersActor`, builds a
//! model off the async threads, promotes it only if it beats the
//! popularity baseline (and does not trail the live model), and swaps it in
//! atomically; requests read the live model without waiting on a build.

pub mod error;
pub mod handlers;
pub mod messages;

use std::sync::Arc;
use std::time::Duration;

use actix::fut::wrap_future;
use actix::{Actor, AsyncContext as _, Context, Handler, ResponseActFuture};

pub use error::RecommenderError;
pub use handlers::RecommenderService;
use messages::*;

use super::metrics::ActorMetrics;
use super::runtime::{every, instrumented, on_started};

/// The recommendations actor.
pub struct RecommenderActor {
    service: RecommenderService,
    metrics: Arc<ActorMetrics>,
    rebuild_interval: Duration,
    follow_interval: Duration,
}

impl RecommenderActor {
    /// An actor around its service.
    pub fn new(
        service: RecommenderService,
        rebuild_interval: Duration,
        follow_interval: Duration,
        metrics: Arc<ActorMetrics>,
    ) -> Self {
        Self {
            service,
            metrics,
            rebuild_interval,
            follow_interval,
        }
    }
}

impl Actor for RecommenderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
        // A first build at start-up, then on the timer.
        let service = self.service.clone();
        ctx.spawn(wrap_future(async move {
            if let Err(e) = service.build().await {
                tracing::warn!(error = %e, "first recommendation build failed; retrying on the timer");
            }
        }));
        every(
            ctx,
            self.rebuild_interval,
            "recommendation rebuild",
            |actor: &Self| {
                let service = actor.service.clone();
                async move { service.build().await }
            },
        );
        // Paid orders reach rankings between rebuilds.
        every(
            ctx,
            self.follow_interval,
            "following paid orders",
            |actor: &Self| {
                let service = actor.service.clone();
                async move { service.follow().await }
            },
        );
    }
}

impl actix::Supervised for RecommenderActor {
    fn restarting(&mut self, _: &mut Context<Self>) {
        self.metrics.record_restart();
        tracing::warn!("recommender restarted by its supervisor");
    }
}

impl Handler<Rebuild> for RecommenderActor {
    type Result = ResponseActFuture<Self, Result<bool, RecommenderError>>;

    fn handle(&mut self, _: Rebuild, ctx: &mut Context<Self>) -> Self::Result {
        let service = self.service.clone();
        let running = self.service.report_building();
        if !running {
            ctx.spawn(wrap_future(async move {
                if let Err(e) = service.build().await {
                    tracing::warn!(error = %e, "recommendation build failed");
                }
            }));
        }
        instrumented(&self.metrics, async move { Ok(!running) })
    }
}

crate::traced_handler!(RecommenderActor, Rebuild);

/// Routes a message to the service method of the same intent.
macro_rules! route {
    ($message:ty => $method:ident, $reply:ty) => {
        crate::route_to_service!(RecommenderActor, RecommenderError, $message => $method, $reply);
    };
}

route!(Recommend => recommend, Ranking);
route!(Similar => similar, Ranking);
route!(BoughtTogether => bought_together, Ranking);
route!(GetModelReport => report, ModelReport);
