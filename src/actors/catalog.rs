//! `CatalogActor`: owns the catalog database. It answers the runtime's lifecycle
//! messages now; the catalog service's own messages arrive with its issue.

use std::sync::Arc;

use actix::{Actor, Context};
use sqlx::PgPool;

use super::metrics::ActorMetrics;
use super::runtime::on_started;

/// The catalog domain actor.
pub struct CatalogActor {
    pool: PgPool,
    metrics: Arc<ActorMetrics>,
}

impl CatalogActor {
    /// An actor owning `pool`.
    pub fn new(pool: PgPool, metrics: Arc<ActorMetrics>) -> Self {
        Self { pool, metrics }
    }
}

impl Actor for CatalogActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
    }
}

crate::lifecycle_handlers!(CatalogActor);
