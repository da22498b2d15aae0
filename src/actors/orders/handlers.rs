//! The work behind each orders message, including the order-creation saga
//! across the catalog and orders databases.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use uuid::Uuid;

use super::error::OrdersError;
use super::fulfilments::{fulfilment_view, shipped_by_line, FulfilmentView};
use super::messages::*;
use super::rules::GetPricingRules;
use crate::actors::catalog::messages::{CommitReservation, ReleaseReservation, ReserveForOrder};
use crate::actors::catalog::{CatalogActor, CatalogError};
use crate::actors::idempotency::{
    self as keys, ClaimIdempotencyKey, PgKeys, ReleaseIdempotencyKey, SaveIdempotentResponse,
    SuccessAnswer,
};
use crate::actors::runtime::{ActorClient, CallError, RuntimeError};
use crate::domain::auth::{Principal, Role};
use crate::domain::catalog::stock::{normalize_lines, resolve_lines, Resolved, StockLine};
use crate::domain::idempotency::{Claim, KeyedOutcome};
use crate::domain::orders::guest::OrderViewer;
use crate::domain::orders::pricing::{
    price_order, LinePositions, OrderItem, OrderLine, PriceSnapshot, PricedOrder,
};
use crate::domain::orders::status::{transition, Action, Actor, OrderStatus, TransitionError};
use crate::domain::pricing::rules::{destination_of, price_checkout, CartLine, Checkout};
use crate::domain::pricing::totals::TaxMode;
use crate::domain::validation::ValidationErrors;
use crate::store::orders::{
    self as store, HistoryRow, ItemRow, NewOrder, OrderFilter, OrderRow, PurchaseRow,
};

/// Overdue orders expired per sweep statement.
const EXPIRY_BATCH: i64 = 200;
/// A paid order's stock commit, or a cancelled or expired order's release,
/// is retried by the sweep after this long.
const UNCOMMITTED_GRACE_SECS: f64 = 10.0;

/// The orders domain's state, shared by every in-flight handler.
#[derive(Clone)]
pub struct OrdersService {
    pool: PgPool,
    catalog: ActorClient<CatalogActor>,
    pending_ttl_secs: i64,
    idempotency_lock: Duration,
    idempotency_retention: Duration,
    rules: std::sync::Arc<super::rules::RulesCache>,
    return_window_days: u32,
}

/// Who is acting in an order's status machine, and the name its history
/// records for them.
pub(super) fn acting(by: &Principal) -> (Actor, String) {
    if by.is_admin() {
        (Actor::Admin, format!("admin:{}", by.user_id))
    } else {
        (Actor::Owner, format!("user:{}", by.user_id))
    }
}

/// Refuses anyone but an admin (`403`) for back-office work on `action`.
pub(super) fn admin_only(by: &Principal, action: Action) -> Result<(), OrdersError> {
    if by.is_admin() {
        Ok(())
    } else {
        Err(TransitionError::NotAllowed(action).into())
    }
}

/// The orders domain's answer for a failed catalog call.
pub(super) fn catalog_error(e: CallError<CatalogError>) -> OrdersError {
    match e {
        CallError::Domain(CatalogError::InsufficientStock(lines)) => {
            OrdersError::InsufficientStock(lines)
        }
        CallError::Domain(CatalogError::Validation(errors)) => OrdersError::Validation(errors),
        // The catalog's outage stays an outage here: a 503 to retry, never
        // a 500 (which an Idempotency-Key would save and replay).
        CallError::Domain(other) if other.is_unavailable() => {
            OrdersError::CatalogUnavailable(other.to_string())
        }
        CallError::Domain(other) => OrdersError::Unexpected(anyhow::anyhow!("catalog: {other}")),
        other => OrdersError::CatalogUnavailable(other.to_string()),
    }
}

impl OrdersService {
    /// A service around the orders pool, talking to the catalog by messages.
    pub fn new(
        pool: PgPool,
        catalog: ActorClient<CatalogActor>,
        pending_ttl_secs: i64,
        idempotency_lock: Duration,
        idempotency_retention: Duration,
        mode: crate::domain::pricing::totals::TaxMode,
    ) -> Self {
        Self {
            pool,
            catalog,
            pending_ttl_secs,
            idempotency_lock,
            idempotency_retention,
            rules: std::sync::Arc::new(super::rules::RulesCache::new(mode)),
            return_window_days: crate::config::ReturnSettings::default().window_days,
        }
    }

    /// The same service, taking returns within `days` of delivery.
    pub fn with_return_window_days(mut self, days: u32) -> Self {
        self.return_window_days = days;
        self
    }

    /// Days after delivery within which returns are taken.
    pub(super) fn return_window_days(&self) -> u32 {
        self.return_window_days
    }

    /// The shop's pricing rules as last read.
    pub(super) fn rules_cache(&self) -> &super::rules::RulesCache {
        &self.rules
    }

    /// The same copy of the rules, for readers at the edge (carts shown
    /// without a hop): as old as this actor's answers may be, no older.
    pub fn shared_rules(&self) -> std::sync::Arc<super::rules::RulesCache> {
        std::sync::Arc::clone(&self.rules)
    }

    /// The pool, for lifecycle messages.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The catalog, for the sagas that cross into it.
    pub(super) fn catalog(&self) -> &ActorClient<CatalogActor> {
        &self.catalog
    }

    async fn view(&self, row: OrderRow) -> Result<OrderView, OrdersError> {
        Ok(self
            .views(vec![row])
            .await?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("order vanished"))?)
    }

    async fn views(&self, rows: Vec<OrderRow>) -> Result<Vec<OrderView>, OrdersError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let (mut items, mut history) = store::items_and_history(&self.pool, &ids).await?;
        let mut parcels = crate::store::fulfilments::fulfilments_of(&self.pool, &ids).await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let order_items = items.remove(&row.id).unwrap_or_default();
                let order_history = history.remove(&row.id).unwrap_or_default();
                let order_parcels = parcels
                    .remove(&row.id)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(f, lines)| fulfilment_view(f, lines))
                    .collect();
                order_view(row, order_items, order_history, order_parcels)
            })
            .collect())
    }

    /// Gives back the reservation of an order that was never written. If
    /// the catalog cannot be reached, the reservation's own expiry returns
    /// the stock later: there is no order row to record the intent on.
    async fn release_unwritten(&self, order_id: Uuid, why: &str) {
        if let Err(e) = self.catalog.call(ReleaseReservation(order_id)).await {
            tracing::error!(order = %order_id, error = %e, why, "could not release a reservation; it will expire");
        }
    }

    /// Gives back a cancelled or expired order's reservation and records
    /// that the catalog confirmed it. The order's status already records
    /// the intent, so if the catalog cannot answer now the sweep retries.
    async fn release_stock(&self, order_id: Uuid, why: &str) -> Result<(), OrdersError> {
        match self.catalog.call(ReleaseReservation(order_id)).await {
            Ok(()) => {}
            Err(CallError::Domain(CatalogError::ReservationNotHeld(status))) => {
                // Committed under a cancelled order: nothing to give back,
                // and retrying cannot change that.
                tracing::error!(order = %order_id, status, why, "reservation of a released order was not held; check stock");
            }
            Err(e) => {
                tracing::warn!(order = %order_id, error = %e, why, "stock release deferred to the sweep");
                return Ok(());
            }
        }
        store::mark_stock_released(&self.pool, order_id).await?;
        Ok(())
    }

    /// Gives back what a refunded order had not shipped (its pending
    /// parcels are cancelled first), and records that the catalog
    /// confirmed it; if the catalog cannot answer now, the sweep retries.
    async fn release_refunded(&self, order_id: Uuid) -> Result<(), OrdersError> {
        let mut tx = self.pool.begin().await?;
        crate::store::fulfilments::lock_order(&mut tx, order_id).await?;
        for id in crate::store::fulfilments::fulfilment_ids_in(
            &mut tx,
            order_id,
            crate::domain::orders::fulfilment::FulfilmentStatus::Pending,
        )
        .await?
        {
            crate::store::fulfilments::set_fulfilment_status(
                &mut tx,
                id,
                crate::domain::orders::fulfilment::FulfilmentStatus::Cancelled,
            )
            .await?;
        }
        tx.commit().await?;
        match self
            .catalog
            .call(crate::actors::catalog::shipments::ReleaseUnshipped(
                order_id,
            ))
            .await
        {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(order = %order_id, error = %e, "refunded order's stock release deferred to the sweep");
                return Ok(());
            }
        }
        store::mark_stock_released(&self.pool, order_id).await?;
        Ok(())
    }

    pub async fn create_order(&self, msg: CreateOrder) -> Result<OrderView, OrdersError> {
        let requested: Vec<StockLine> = msg.items.iter().map(OrderItem::line).collect();
        let lines = normalize_lines(&requested).map_err(OrdersError::Validation)?;
        // Saga step 1: hold the stock (all lines or none) and read the
        // products as held, in one catalog call, keyed by the order id so
        // a retried reservation never holds twice.
        let order_id = msg.order_id.unwrap_or_else(Uuid::new_v4);
        let held = self
            .catalog
            .call(ReserveForOrder {
                reservation_id: order_id,
                lines: lines.clone(),
            })
            .await;
        let held = match held {
            Ok(held) => held,
            Err(e) => {
                if matches!(e, CallError::Timeout(_) | CallError::Unavailable(_)) {
                    // The reservation may still be made after we stop
                    // waiting; releasing by id now makes the catalog refuse
                    // it if so.
                    self.release_unwritten(order_id, "stock reservation timed out")
                        .await;
                }
                return Err(catalog_error(e));
            }
        };
        let (lines, positions, unresolved) = by_variant(&msg.items, &held.resolved);
        let snapshots: HashMap<Uuid, PriceSnapshot> = held
            .snapshots
            .into_iter()
            .map(|s| {
                let snapshot = PriceSnapshot {
                    product_id: s.product_id,
                    name: s.name,
                    sku: s.sku,
                    options: s.options,
                    price: s.price,
                    currency: s.currency,
                    is_active: s.is_active,
                    weight_grams: s.weight_grams,
                    requires_shipping: s.requires_shipping,
                    tax_class: s.tax_class,
                };
                (s.id, snapshot)
            })
            .collect();
        let priced = price_order(&lines, &snapshots, &positions).and_then(|priced| {
            unresolved.into_result()?;
            Ok(priced)
        });
        let mut priced = match priced {
            Ok(priced) if held.held => priced,
            Ok(_) => {
                return Err(OrdersError::Unexpected(anyhow::anyhow!(
                    "catalog held nothing for lines that price"
                )))
            }
            Err(errors) => {
                if held.held {
                    self.release_unwritten(order_id, "order does not price")
                        .await;
                }
                return Err(OrdersError::Validation(errors));
            }
        };

        // The discount, from these prices: one consistent price per order.
        let subtotal = priced.total;
        let discount = match &msg.promotion {
            None => 0,
            Some(promotion) => match apply_discount(promotion, &priced) {
                Ok(discount) => discount,
                Err(why) => {
                    self.release_unwritten(order_id, "promotion does not apply")
                        .await;
                    return Err(OrdersError::PromotionInapplicable(why));
                }
            },
        };

        // Shipping and tax, from the rules as they are now (read fresh:
        // what is charged must not lag an admin's change).
        let charged = match self.charge(&mut priced, &snapshots, discount, &msg).await {
            Ok(charged) => charged,
            Err(e) => {
                self.release_unwritten(order_id, "order cannot be charged")
                    .await;
                return Err(e);
            }
        };
        let totals = &charged.totals;

        if let Some(expected) = msg.expected_total {
            let actual = totals.total;
            if actual != expected {
                self.release_unwritten(order_id, "total changed").await;
                return Err(OrdersError::TotalChanged { expected, actual });
            }
        }

        // Saga step 2: write the order, bound to the request's idempotency
        // key in the same transaction. If that fails, compensate.
        let actor = msg.buyer.history_actor();
        let line_ids: Vec<Uuid> = priced.lines.iter().map(|_| Uuid::new_v4()).collect();
        let new = NewOrder {
            id: order_id,
            user_id: msg.buyer.user_id(),
            email: msg.buyer.email(),
            subtotal,
            discount: totals.discount,
            shipping: totals.shipping,
            tax: totals.tax,
            shipping_tax: totals.shipping_tax,
            prices_include_tax: charged.mode == TaxMode::Inclusive,
            shipping_method: charged.shipping.as_ref(),
            total: totals.total,
            currency: &priced.currency,
            promotion_code: msg.promotion.as_ref().map(|p| p.code.as_str()),
            shipping_address: &msg.shipping_address,
            lines: &priced.lines,
            line_ids: &line_ids,
            expires_at: Utc::now() + chrono::Duration::seconds(self.pending_ttl_secs),
        };
        let written = async {
            let mut conn = self.pool.acquire().await?;
            let Some(key) = &msg.key else {
                // One statement, its own transaction: one round trip.
                let (row, history) = store::insert_order(&mut conn, &new, &actor).await?;
                return Ok(placed_view(row, &priced.lines, &line_ids, history));
            };
            // With an idempotency key the order, its binding to the key and
            // its answer commit together, only while the lease holds.
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            let (row, history) = store::insert_order(&mut tx, &new, &actor).await?;
            // Built from what was written, without reading it back.
            let view = placed_view(row, &priced.lines, &line_ids, history);
            if !key.bind(&mut tx, order_id, Some(&view)).await? {
                tx.rollback().await?;
                return Err(OrdersError::IdempotencyLeaseLost);
            }
            tx.commit().await?;
            Ok::<_, OrdersError>(view)
        }
        .await;
        if written.is_err() {
            self.release_unwritten(order_id, "order write failed").await;
        }
        written
    }

    /// Prices shipping and tax for `priced` (going where `msg` says, by the
    /// method it names) and writes each line's discount share and tax.
    async fn charge(
        &self,
        priced: &mut PricedOrder,
        snapshots: &HashMap<Uuid, PriceSnapshot>,
        discount: i64,
        msg: &CreateOrder,
    ) -> Result<Checkout<Uuid>, OrdersError> {
        let rules = self.pricing_rules(GetPricingRules { fresh: true }).await?;
        let lines: Vec<CartLine<Uuid>> = priced
            .lines
            .iter()
            .map(|l| {
                let s = snapshots.get(&l.variant_id);
                CartLine {
                    key: l.variant_id,
                    unit_price: l.unit_price,
                    quantity: i64::from(l.quantity),
                    weight_grams: s.map_or(0, |s| i64::from(s.weight_grams)),
                    requires_shipping: s.is_none_or(|s| s.requires_shipping),
                    tax_class: s.map_or_else(
                        || crate::domain::pricing::rules::STANDARD_CLASS.to_owned(),
                        |s| s.tax_class.clone(),
                    ),
                }
            })
            .collect();
        let destination = destination_of(&msg.shipping_address);
        let charged = price_checkout(
            &rules,
            &lines,
            discount,
            &priced.currency,
            Some(&destination),
            msg.shipping_method_id,
        )
        .map_err(|_| {
            OrdersError::Validation(ValidationErrors::single(
                "items",
                "out_of_range",
                "order total too large",
            ))
        })?;
        if let Some(problem) = charged.problem {
            return Err(OrdersError::Shipping(problem));
        }
        for (line, figures) in priced.lines.iter_mut().zip(&charged.totals.lines) {
            line.discount = figures.discount;
            line.tax_rate_bp = i32::try_from(figures.tax_bp).unwrap_or(i32::MAX);
            line.tax = figures.tax;
        }
        Ok(charged)
    }

    /// [`CreateOrder`] at most once per key: claim, place, answer, in one
    /// message.
    pub async fn create_order_once(
        &self,
        msg: CreateOrderOnce,
    ) -> Result<KeyedOutcome, OrdersError> {
        // The key's owner placed the order, so it is theirs to see.
        let viewer = OrderViewer::User(Principal {
            user_id: msg.request.user_id,
            role: Role::Customer,
        });
        msg.run(
            &self.keys(),
            SuccessAnswer::CommittedWithEffect,
            |order, key| {
                self.create_order(CreateOrder {
                    key: Some(key),
                    ..order
                })
            },
            |id| self.get_order(GetOrder { id, viewer }),
        )
        .await
    }

    /// The idempotency keys in this domain's database.
    fn keys(&self) -> PgKeys<'_> {
        PgKeys {
            pool: &self.pool,
            stale_after: self.idempotency_lock,
        }
    }

    async fn visible_order(&self, id: Uuid, viewer: OrderViewer) -> Result<OrderRow, OrdersError> {
        let mut conn = self.pool.acquire().await?;
        store::get_order(&mut conn, id)
            .await?
            // Another user's order is "not found": existence does not leak.
            .filter(|o| viewer.may_see(o.user_id))
            .ok_or(OrdersError::NotFound)
    }

    pub async fn order_statuses(
        &self,
        msg: GetOrderStatuses,
    ) -> Result<Vec<(Uuid, String)>, OrdersError> {
        Ok(store::statuses(&self.pool, &msg.0).await?)
    }

    pub async fn get_order(&self, msg: GetOrder) -> Result<OrderView, OrdersError> {
        let row = self.visible_order(msg.id, msg.viewer).await?;
        self.view(row).await
    }

    pub async fn list_orders(&self, msg: ListOrders) -> Result<(Vec<OrderView>, i64), OrdersError> {
        let filter = OrderFilter {
            user_id: if msg.viewer.is_admin() {
                msg.user_id
            } else {
                Some(msg.viewer.user_id)
            },
            status: msg.status,
            created_after: msg.created_after,
            created_before: msg.created_before,
        };
        let (rows, count) =
            store::list_orders(&self.pool, &filter, msg.page.limit(), msg.page.offset()).await?;
        Ok((self.views(rows).await?, count))
    }

    /// Applies `action` as one guarded write with its history entry.
    /// Returns the order after the change.
    async fn apply(
        &self,
        row: OrderRow,
        action: Action,
        actor: Actor,
        actor_name: &str,
        reason: &str,
        payment_id: Option<&str>,
    ) -> Result<OrderRow, OrdersError> {
        let current = row.status;
        let next = transition(current, action, actor)?;
        let mut tx = self.pool.begin().await?;
        let Some(updated) =
            store::set_status(&mut tx, row.id, current.as_str(), next.as_str(), payment_id).await?
        else {
            // Someone changed the order between our read and this write.
            tx.rollback().await?;
            let mut conn = self.pool.acquire().await?;
            let now = store::get_order(&mut conn, row.id)
                .await?
                .ok_or(OrdersError::NotFound)?;
            let current = now.status;
            return Err(TransitionError::InvalidState { action, current }.into());
        };
        store::insert_history(
            &mut tx,
            row.id,
            Some(current.as_str()),
            next.as_str(),
            actor_name,
            reason,
        )
        .await?;
        if next == OrderStatus::Paid {
            store::insert_paid_event(&mut tx, row.id, row.user_id, payment_id).await?;
        }
        tx.commit().await?;
        Ok(updated)
    }

    pub async fn transition_order(&self, msg: TransitionOrder) -> Result<OrderView, OrdersError> {
        let row = self.visible_order(msg.id, msg.by.into()).await?;
        // Shipping and delivering the whole order go through its parcels.
        match msg.action {
            Action::Ship => {
                let row = self.ship_whole_order(row, &msg.by, &msg.reason).await?;
                return self.view(row).await;
            }
            Action::Deliver => {
                let row = self.deliver_whole_order(row, &msg.by, &msg.reason).await?;
                return self.view(row).await;
            }
            _ => {}
        }
        let (actor, name) = acting(&msg.by);
        if msg.action == Action::Cancel && row.status == OrderStatus::Paid {
            // Paid: the money goes back first, through payments; the order
            // follows to `refunded` and gives its stock back then.
            let parcels = crate::store::fulfilments::fulfilments_of(&self.pool, &[row.id]).await?;
            let open = parcels
                .get(&row.id)
                .is_some_and(|p| p.iter().any(|(f, _)| f.status.counts()));
            if open {
                return Err(OrdersError::HasFulfilments);
            }
            let payment_id = row
                .payment_id
                .clone()
                .ok_or_else(|| anyhow::anyhow!("a paid order without its payment"))?;
            return Err(OrdersError::CancelByRefund { payment_id });
        }
        let updated = self
            .apply(row, msg.action, actor, &name, &msg.reason, None)
            .await?;
        if msg.action == Action::Cancel {
            self.release_stock(msg.id, "order cancelled").await?;
        }
        self.view(updated).await
    }

    pub async fn mark_paid(&self, msg: MarkOrderPaid) -> Result<OrderView, OrdersError> {
        let row = self.paid_by(msg).await?;
        self.view(row).await
    }

    /// Marks the order paid by the payment (idempotent) and commits its
    /// stock; the order as it is then.
    async fn paid_by(&self, msg: MarkOrderPaid) -> Result<OrderRow, OrdersError> {
        let mut conn = self.pool.acquire().await?;
        let row = store::get_order(&mut conn, msg.order_id)
            .await?
            .ok_or(OrdersError::NotFound)?;
        drop(conn);
        match row.payment_id.as_deref() {
            Some(paid_by) if paid_by == msg.payment_id => return Ok(row),
            Some(_) => return Err(OrdersError::PaidByAnotherPayment),
            None => {}
        }
        let updated = match self
            .apply(
                row,
                Action::Pay,
                Actor::Payments,
                "payments",
                "payment succeeded",
                Some(&msg.payment_id),
            )
            .await
        {
            Ok(updated) => updated,
            Err(e) => {
                // A concurrent delivery of the same payment may have won.
                let mut conn = self.pool.acquire().await?;
                if let Some(now) = store::get_order(&mut conn, msg.order_id).await? {
                    if now.payment_id.as_deref() == Some(msg.payment_id.as_str()) {
                        return Ok(now);
                    }
                }
                return Err(e);
            }
        };
        self.commit_stock(msg.order_id).await?;
        Ok(updated)
    }

    pub async fn apply_payment_outcome(
        &self,
        msg: ApplyPaymentOutcome,
    ) -> Result<OrderStatus, OrdersError> {
        let (action, target, reason) = match msg.outcome {
            PaymentOutcome::Succeeded => {
                let row = self
                    .paid_by(MarkOrderPaid {
                        order_id: msg.order_id,
                        payment_id: msg.payment_id,
                    })
                    .await?;
                return Ok(row.status);
            }
            PaymentOutcome::RefundStarted => (
                Action::RequestRefund,
                OrderStatus::RefundPending,
                "refund requested",
            ),
            PaymentOutcome::RefundSucceeded => (
                Action::CompleteRefund,
                OrderStatus::Refunded,
                "payment refunded",
            ),
            PaymentOutcome::RefundFailed => {
                (Action::AbortRefund, OrderStatus::Paid, "refund failed")
            }
        };
        let mut conn = self.pool.acquire().await?;
        let row = store::get_order(&mut conn, msg.order_id)
            .await?
            .ok_or(OrdersError::NotFound)?;
        drop(conn);
        if row.payment_id.as_deref() != Some(msg.payment_id.as_str()) {
            return Err(OrdersError::PaidByAnotherPayment);
        }
        if row.status == target {
            // Delivered before: the outbox repeats until acknowledged.
            return Ok(row.status);
        }
        let updated = self
            .apply(row, action, Actor::Payments, "payments", reason, None)
            .await?;
        if updated.status == OrderStatus::Refunded {
            self.release_refunded(updated.id).await?;
        }
        Ok(updated.status)
    }

    pub async fn apply_refund(&self, msg: ApplyRefund) -> Result<(), OrdersError> {
        let mut tx = self.pool.begin().await?;
        crate::store::fulfilments::lock_order(&mut tx, msg.order_id)
            .await?
            .ok_or(OrdersError::NotFound)?;
        match store::apply_refund(&mut tx, msg.order_id, msg.refund_id, msg.amount).await? {
            Some(false) => {
                tx.rollback().await?;
                return Err(OrdersError::RefundExceedsTotal);
            }
            Some(true) | None => {
                if let Some(return_id) = msg.return_id {
                    super::returns::refunded_in(&mut tx, msg.order_id, return_id, msg.refund_id)
                        .await?;
                }
                tx.commit().await?
            }
        }
        Ok(())
    }

    /// Tells the catalog a paid order's stock is committed (it stays held
    /// until its parcels ship), and records that it did. If the catalog
    /// cannot be reached now, the sweep retries.
    pub(super) async fn commit_stock(&self, order_id: Uuid) -> Result<(), OrdersError> {
        match self.catalog.call(CommitReservation(order_id)).await {
            Ok(()) => {}
            Err(CallError::Domain(e)) => {
                // Released or expired under a paid order: stock may have
                // been sold twice. Recorded so it is not retried forever.
                tracing::error!(order = %order_id, error = %e, "paid order's reservation was not held; check stock");
            }
            Err(e) => {
                tracing::warn!(order = %order_id, error = %e, "stock commit deferred to the sweep");
                return Ok(());
            }
        }
        store::mark_stock_committed(&self.pool, order_id).await?;
        Ok(())
    }

    pub async fn expire_overdue(&self, _: ExpireOverdueOrders) -> Result<u64, OrdersError> {
        let expired = store::expire_overdue(&self.pool, EXPIRY_BATCH).await?;
        for id in &expired {
            self.release_stock(*id, "order expired").await?;
        }
        if !expired.is_empty() {
            tracing::info!(expired = expired.len(), "unpaid orders expired");
        }
        for (id, status) in
            store::unreleased_orders(&self.pool, UNCOMMITTED_GRACE_SECS, EXPIRY_BATCH).await?
        {
            if status == OrderStatus::Refunded {
                self.release_refunded(id).await?;
            } else {
                self.release_stock(id, "release retried").await?;
            }
        }
        for id in
            store::uncommitted_paid_orders(&self.pool, UNCOMMITTED_GRACE_SECS, EXPIRY_BATCH).await?
        {
            self.commit_stock(id).await?;
        }
        self.sell_unsold_parcels().await?;
        self.restock_unstocked_returns().await?;
        let purged =
            crate::store::idempotency::purge(&self.pool, self.idempotency_retention).await?;
        if purged > 0 {
            tracing::info!(purged, "old idempotency keys purged");
        }
        Ok(expired.len() as u64)
    }

    pub async fn purchase_history(
        &self,
        msg: GetPurchaseHistory,
    ) -> Result<Vec<PurchaseRow>, OrdersError> {
        Ok(
            store::purchase_history(&self.pool, &msg.user_ids, msg.limit.clamp(1, 1_000_000))
                .await?,
        )
    }

    pub async fn order_events(
        &self,
        msg: GetOrderEvents,
    ) -> Result<Vec<store::EventRow>, OrdersError> {
        Ok(store::events_after(&self.pool, msg.after_id, msg.limit.clamp(1, 10_000)).await?)
    }

    pub async fn pending_products(
        &self,
        msg: GetPendingProducts,
    ) -> Result<Vec<Uuid>, OrdersError> {
        Ok(store::pending_products(&self.pool, msg.user_id).await?)
    }

    pub async fn claim_key(&self, msg: ClaimIdempotencyKey) -> Result<Claim, RuntimeError> {
        keys::claim_key(&self.pool, self.idempotency_lock, msg).await
    }

    pub async fn save_response(&self, msg: SaveIdempotentResponse) -> Result<(), RuntimeError> {
        keys::save_response(&self.pool, msg).await
    }

    pub async fn release_key(&self, msg: ReleaseIdempotencyKey) -> Result<(), RuntimeError> {
        keys::release_key(&self.pool, msg).await
    }
}

/// An order's view from its row, lines, history and parcels.
fn order_view(
    row: OrderRow,
    items: Vec<ItemRow>,
    history: Vec<HistoryRow>,
    fulfilments: Vec<FulfilmentView>,
) -> OrderView {
    let shipped = shipped_by_line(&fulfilments);
    OrderView {
        items: items
            .into_iter()
            .map(|item| {
                let shipped = shipped.get(&item.id).copied().unwrap_or(0);
                OrderLineView {
                    shipped_quantity: shipped,
                    ..OrderLineView::from(item)
                }
            })
            .collect(),
        fulfilments,
        history: history.into_iter().map(StatusChangeView::from).collect(),
        id: row.id,
        user_id: row.user_id,
        email: row.email,
        status: row.status,
        subtotal: row.subtotal,
        discount: row.discount,
        shipping: row.shipping,
        tax: row.tax,
        shipping_tax: row.shipping_tax,
        prices_include_tax: row.prices_include_tax,
        shipping_method: row.shipping_method.map(|m| m.0),
        total: row.total,
        refunded_amount: row.refunded_amount,
        refund_status: crate::domain::orders::status::refund_state(row.refunded_amount, row.total),
        promotion_code: row.promotion_code,
        currency: row.currency,
        shipping_address: row.shipping_address.0,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Checks `promotion` against the priced order (its minimum and currency;
/// its use is counted by carts); the discount.
fn apply_discount(
    promotion: &crate::domain::promotions::Promotion,
    priced: &crate::domain::orders::pricing::PricedOrder,
) -> Result<i64, crate::domain::promotions::Inapplicable> {
    use crate::domain::promotions;
    let context = promotions::Context {
        now: Utc::now(),
        subtotal: priced.total,
        currency: &priced.currency,
        uses: 0,
        customer_uses: 0,
    };
    promotions::check(promotion, &context)?;
    // Split over the lines by `domain::pricing`, with tax and shipping.
    Ok(promotions::discount(promotion, priced.total))
}

/// The request's items keyed by the variants the catalog resolved them to
/// (merged), where each came from, and an error for each item that names
/// no single variant.
fn by_variant(
    items: &[OrderItem],
    resolved: &BTreeMap<Uuid, Resolved>,
) -> (Vec<StockLine>, LinePositions, ValidationErrors) {
    let mut positions = LinePositions::new();
    let mut unresolved = ValidationErrors::new();
    for (index, item) in items.iter().enumerate() {
        let field = if item.by_variant {
            "variant_id"
        } else {
            "product_id"
        };
        match resolved.get(&item.id) {
            Some(Resolved::Variant(id)) => {
                positions.entry(*id).or_insert((index, field));
            }
            Some(Resolved::NeedsVariant) => unresolved.add(
                &format!("items.{index}.{field}"),
                "variant_required",
                "this product has several variants; name one with variant_id",
            ),
            Some(Resolved::Unknown) | None => unresolved.add(
                &format!("items.{index}.{field}"),
                "unknown",
                "no such product",
            ),
        }
    }
    let requested: Vec<StockLine> = items.iter().map(OrderItem::line).collect();
    let (lines, _) = resolve_lines(&requested, resolved);
    (lines, positions, unresolved)
}

/// The view of an order just placed, from what was written.
fn placed_view(
    row: OrderRow,
    lines: &[OrderLine],
    line_ids: &[Uuid],
    history: HistoryRow,
) -> OrderView {
    let items = lines
        .iter()
        .zip(line_ids)
        .map(|(l, id)| ItemRow {
            id: *id,
            fulfilled_quantity: 0,
            returned_quantity: 0,
            order_id: row.id,
            product_id: l.product_id,
            variant_id: l.variant_id,
            name: l.name.clone(),
            sku: l.sku.clone(),
            options: sqlx::types::Json(l.options.clone()),
            unit_price: l.unit_price,
            quantity: l.quantity,
            line_total: l.line_total,
            discount: l.discount,
            tax_rate_bp: l.tax_rate_bp,
            tax: l.tax,
        })
        .collect();
    order_view(row, items, vec![history], Vec::new())
}
