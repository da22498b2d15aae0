//! `PaymentsActor`: owns the payments database. It answers the runtime's lifecycle
//! messages now; the payments service's own messages arrive with its issue.

use std::sync::Arc;

use actix::{Actor, Context};
use sqlx::PgPool;

use super::metrics::ActorMetrics;
use super::runtime::on_started;

/// The payments domain actor.
pub struct PaymentsActor {
    pool: PgPool,
    metrics: Arc<ActorMetrics>,
}

impl PaymentsActor {
    /// An actor owning `pool`.
    pub fn new(pool: PgPool, metrics: Arc<ActorMetrics>) -> Self {
        Self { pool, metrics }
    }
}

impl Actor for PaymentsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
    }
}

crate::lifecycle_handlers!(PaymentsActor);
