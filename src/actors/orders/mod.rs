//! `OrdersActor`: orders, their lifecycle, and idempotency keys. Owns the
//! orders database; talks to the catalog only through messages.

pub mod error;
pub mod fulfilments;
pub mod handlers;
pub mod messages;
pub mod returns;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Context};
use sqlx::PgPool;

pub use error::OrdersError;
use fulfilments::*;
pub use handlers::OrdersService;
use messages::*;
use returns::*;

use super::idempotency::{ClaimIdempotencyKey, ReleaseIdempotencyKey, SaveIdempotentResponse};
use super::metrics::ActorMetrics;
use super::runtime::{every, on_started, RuntimeError};
use crate::domain::idempotency::Claim;
use crate::store::orders::{EventRow, PurchaseRow};

/// The orders domain actor.
pub struct OrdersActor {
    pool: PgPool,
    service: OrdersService,
    metrics: Arc<ActorMetrics>,
    sweep_interval: Duration,
}

impl OrdersActor {
    /// An actor around its service; the pool is the service's own.
    pub fn new(
        service: OrdersService,
        sweep_interval: Duration,
        metrics: Arc<ActorMetrics>,
    ) -> Self {
        Self {
            pool: service.pool().clone(),
            service,
            metrics,
            sweep_interval,
        }
    }
}

impl Actor for OrdersActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        on_started(ctx, &self.metrics);
        // Unpaid orders expire and old idempotency keys are purged on a timer.
        every(ctx, self.sweep_interval, "order sweep", |actor: &Self| {
            let service = actor.service.clone();
            async move {
                service
                    .expire_overdue(ExpireOverdueOrders)
                    .await
                    .map(|_| ())
            }
        });
    }
}

crate::lifecycle_handlers!(OrdersActor);
crate::event_source_handlers!(OrdersActor);

/// Routes a message to the service method of the same intent.
macro_rules! route {
    ($message:ty => $method:ident, $reply:ty) => {
        crate::route_to_service!(OrdersActor, OrdersError, $message => $method, $reply);
    };
}

route!(CreateOrder => create_order, OrderView);
route!(CreateOrderOnce => create_order_once, crate::domain::idempotency::KeyedOutcome);
route!(GetOrder => get_order, OrderView);
route!(GetOrderStatuses => order_statuses, Vec<(uuid::Uuid, String)>);
route!(ListOrders => list_orders, (Vec<OrderView>, i64));
route!(TransitionOrder => transition_order, OrderView);
route!(CreateFulfilment => create_fulfilment, FulfilmentView);
route!(ListFulfilments => list_fulfilments, Vec<FulfilmentView>);
route!(UpdateFulfilment => update_fulfilment, FulfilmentView);
route!(ActOnFulfilment => act_on_fulfilment, FulfilmentView);
route!(CreateReturn => create_return, ReturnView);
route!(ListReturns => list_returns, Vec<ReturnView>);
route!(DecideReturn => decide_return, ReturnView);
route!(ReceiveReturn => receive_return, ReturnView);
route!(GetReturn => get_return, ReturnView);
route!(MarkOrderPaid => mark_paid, OrderView);
route!(ApplyPaymentOutcome => apply_payment_outcome, crate::domain::orders::status::OrderStatus);
route!(ApplyRefund => apply_refund, ());
route!(ExpireOverdueOrders => expire_overdue, u64);
route!(GetPurchaseHistory => purchase_history, Vec<PurchaseRow>);
route!(GetOrderEvents => order_events, Vec<EventRow>);
route!(GetPendingProducts => pending_products, Vec<uuid::Uuid>);
route!(rules::GetPricingRules => pricing_rules, std::sync::Arc<crate::domain::pricing::rules::Rules>);
route!(rules::ListShippingZones => list_zones, Vec<rules::ZoneView>);
route!(rules::GetShippingZone => get_zone, rules::ZoneView);
route!(rules::PutShippingZone => put_zone, rules::ZoneView);
route!(rules::DeleteShippingZone => delete_zone, ());
route!(rules::ListShippingMethods => list_methods, Vec<rules::MethodView>);
route!(rules::GetShippingMethod => get_method, rules::MethodView);
route!(rules::PutShippingMethod => put_method, rules::MethodView);
route!(rules::DeleteShippingMethod => delete_method, ());
route!(rules::ListTaxClasses => list_tax_classes, Vec<rules::TaxClassView>);
route!(rules::CreateTaxClass => create_tax_class, rules::TaxClassView);
route!(rules::DeleteTaxClass => delete_tax_class, ());
route!(rules::ListTaxRates => list_tax_rates, Vec<rules::TaxRateView>);
route!(rules::GetTaxRate => get_tax_rate, rules::TaxRateView);
route!(rules::PutTaxRate => put_tax_rate, rules::TaxRateView);
route!(rules::DeleteTaxRate => delete_tax_rate, ());
crate::route_to_service!(OrdersActor, RuntimeError, ClaimIdempotencyKey => claim_key, Claim);
crate::route_to_service!(OrdersActor, RuntimeError, SaveIdempotentResponse => save_response, ());
crate::route_to_service!(OrdersActor, RuntimeError, ReleaseIdempotencyKey => release_key, ());
