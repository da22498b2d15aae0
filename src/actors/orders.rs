//! `OrdersActor`: owns the orders database. It answers the runtime's lifecycle
//! messages now; the orders service's own messages arrive with its issue.

use std::sync::Arc;

use actix::{Actor, Context};
use sqlx::PgPool;

use super::metrics::ActorMetrics;
use super::runtime::on_started;

/// The orders domain actor.
pub struct OrdersActor {
    pool: PgPool,
    metrics: Arc<ActorMetrics>,
}

impl OrdersActor {
    /// An actor owning `pool`.
    pub fn new(pool: PgPool, metrics: Arc<ActorMetrics>) -> Self {
        Self { pool, metrics }
    }
}

impl Actor for OrdersActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
    }
}

crate::lifecycle_handlers!(OrdersActor);
