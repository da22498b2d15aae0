//! `CartsActor`: server-side carts, a customer's or a guest's. Owns the
//! carts database; asks the catalog for products only through messages.

pub mod error;
pub mod handlers;
pub mod messages;
pub mod promotions;
pub mod reader;
pub mod shipping;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context};
use sqlx::PgPool;

pub use error::CartsError;
pub use handlers::CartsService;
use messages::*;
use promotions::*;

use super::metrics::ActorMetrics;
use super::runtime::{every, on_started};
use crate::domain::carts::CartView;

/// The carts domain actor.
pub struct CartsActor {
    pool: PgPool,
    service: CartsService,
    metrics: Arc<ActorMetrics>,
    sweep_interval: Duration,
    /// Uses younger than this may belong to a running checkout.
    checkout_lock: Duration,
}

impl CartsActor {
    /// An actor around its service; the pool is the service's own.
    pub fn new(
        service: CartsService,
        sweep_interval: Duration,
        checkout_lock: Duration,
        metrics: Arc<ActorMetrics>,
    ) -> Self {
        Self {
            pool: service.pool().clone(),
            service,
            metrics,
            sweep_interval,
            checkout_lock,
        }
    }
}

impl Actor for CartsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
        self.service.view().start();
        // Abandoned guest carts are deleted, and discount-code uses of
        // orders cancelled or expired unpaid given back, on a timer.
        let min_age_secs = i64::try_from(self.checkout_lock.as_secs()).unwrap_or(i64::MAX);
        every(
            ctx,
            self.sweep_interval,
            "cart sweep",
            move |actor: &Self| {
                let service = actor.service.clone();
                async move {
                    service.sweep(SweepGuestCarts).await?;
                    service
                        .reconcile_uses(ReconcilePromotionUses { min_age_secs })
                        .await
                        .map(|_| ())
                }
            },
        );
    }
}

crate::lifecycle_handlers!(CartsActor);

/// Routes a message to the service method of the same intent.
macro_rules! route {
    ($message:ty => $method:ident, $reply:ty) => {
        crate::route_to_service!(CartsActor, CartsError, $message => $method, $reply);
    };
}

route!(GetCart => get_cart, CartView);
route!(AddItem => add_item, CartView);
route!(SetItemQuantity => set_quantity, CartView);
route!(RemoveItem => remove_item, CartView);
route!(ClearCart => clear, CartView);
route!(CreateGuestCart => create_guest, GuestCart);
route!(DeleteGuestCart => delete_guest, ());
route!(MergeGuestCart => merge, CartView);
route!(SweepGuestCarts => sweep, u64);
route!(CreatePromotion => create_promotion, PromotionView);
route!(ListPromotions => list_promotions, (Vec<PromotionView>, i64));
route!(GetPromotion => get_promotion, PromotionView);
route!(UpdatePromotion => update_promotion, PromotionView);
route!(DeletePromotion => delete_promotion, ());
route!(ApplyPromotion => apply_promotion, CartView);
route!(RemovePromotion => remove_promotion, CartView);
route!(shipping::QuoteCartShipping => quote_shipping, Vec<crate::domain::pricing::rules::MethodQuote>);
route!(shipping::SetCartShipping => set_shipping, crate::domain::carts::CartView);
route!(shipping::ClearCartShipping => clear_shipping, crate::domain::carts::CartView);
route!(Checkout => checkout, crate::actors::orders::messages::OrderView);
route!(CheckoutOnce => checkout_once, crate::domain::idempotency::KeyedOutcome);
route!(FinishCheckout => finish_checkout, ());
route!(ReconcilePromotionUses => reconcile_uses, u64);
