//! The work behind each payments message: taking a payment, reading them,
//! refunds, provider webhooks, and relaying outcomes to orders.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike as _, Utc};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::error::PaymentsError;
use super::messages::*;
use super::outcomes;
use super::provider::SimulatedProvider;
use super::worker::PoolShared;
use crate::actors::idempotency::{PgKeys, SuccessAnswer};
use crate::actors::orders::messages::{ApplyPaymentOutcome, ApplyRefund, GetOrder, PaymentOutcome};
use crate::actors::orders::{OrdersActor, OrdersError};
use crate::actors::runtime::{ActorClient, CallError};
use crate::domain::auth::Principal;
use crate::domain::idempotency::KeyedOutcome;
use crate::domain::orders::guest::OrderViewer;
use crate::domain::orders::status::{OrderStatus, TransitionError};
use crate::domain::payments::card::check_card;
use crate::domain::payments::queue::{JobKind, PaymentNotice};
use crate::domain::payments::status::{InvalidPaymentTransition, PaymentEvent, PaymentStatus};
use crate::domain::payments::webhook;
use crate::store::database::OnConstraint as _;
use crate::store::payments::{self as store, NewPayment, PaymentFilter, PaymentRow, StatusChange};

/// Outbox entries relayed per batch.
pub const RELAY_BATCH: i64 = 100;
/// Refused outcomes listed in the admin report (all are counted).
const REFUSED_LISTED: i64 = 100;

/// What became of one outbox entry's delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Relayed {
    /// Orders took it.
    Delivered,
    /// Orders refused a refund for the order in this status; the refund
    /// is denied.
    Denied(String),
    /// Orders refused it otherwise; kept for reconciliation.
    Refused,
    /// Orders could not be reached; tried again later.
    Later,
}

/// The payments domain's state, shared by every in-flight handler.
#[derive(Clone)]
pub struct PaymentsService {
    pool: PgPool,
    orders: ActorClient<OrdersActor>,
    simulator: Arc<SimulatedProvider>,
    shared: Arc<PoolShared>,
    webhook_secrets: Vec<SecretString>,
    webhook_tolerance_secs: i64,
    attempt_limits: AttemptLimits,
    idempotency_lock: Duration,
    idempotency_retention: Duration,
}

/// How many failed payments an order and a customer may have in a rolling
/// window before more attempts are refused: what card testing produces.
#[derive(Debug, Clone, Copy)]
pub struct AttemptLimits {
    pub per_order: i64,
    pub per_customer: i64,
    pub window_secs: u64,
}

/// How the service is configured, besides its pool and peers.
pub struct PaymentsConfig {
    pub webhook_secrets: Vec<SecretString>,
    pub webhook_tolerance_secs: i64,
    pub attempt_limits: AttemptLimits,
    pub idempotency_lock: Duration,
    pub idempotency_retention: Duration,
}

fn view(row: PaymentRow) -> PaymentView {
    PaymentView {
        id: row.id,
        order_id: row.order_id,
        user_id: row.user_id,
        status: row.status,
        amount: row.amount,
        currency: row.currency,
        card: CardView {
            brand: row.card_brand,
            last4: row.card_last4,
        },
        attempts: row.attempts,
        refunded_amount: row.refunded_amount,
        failure_code: row.failure_code,
        failure_message: row.failure_message,
        refund_failure_code: row.refund_failure_code,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// A provider event as it arrives by webhook.
#[derive(Debug, Deserialize)]
struct ProviderEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: ProviderEventData,
}

#[derive(Debug, Deserialize)]
struct ProviderEventData {
    payment_id: Uuid,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl PaymentsService {
    /// A service around the payments pool and its worker pool.
    pub fn new(
        pool: PgPool,
        orders: ActorClient<OrdersActor>,
        simulator: Arc<SimulatedProvider>,
        shared: Arc<PoolShared>,
        config: PaymentsConfig,
    ) -> Self {
        Self {
            pool,
            orders,
            simulator,
            shared,
            webhook_secrets: config.webhook_secrets,
            webhook_tolerance_secs: config.webhook_tolerance_secs,
            attempt_limits: config.attempt_limits,
            idempotency_lock: config.idempotency_lock,
            idempotency_retention: config.idempotency_retention,
        }
    }

    /// The pool, for lifecycle messages.
    /// The orders domain, for what refunds ask of it.
    pub(super) fn orders(&self) -> &ActorClient<OrdersActor> {
        &self.orders
    }

    /// Wakes an idle payment worker of this instance (others hear the
    /// queue's notification at commit).
    pub(super) fn wake_workers(&self) {
        self.shared.jobs.notify_one();
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The worker pool's shared state.
    pub fn shared(&self) -> &Arc<PoolShared> {
        &self.shared
    }

    pub(super) async fn visible(
        &self,
        id: Uuid,
        viewer: Principal,
    ) -> Result<PaymentRow, PaymentsError> {
        let mut conn = self.pool.acquire().await?;
        store::get_payment(&mut conn, id)
            .await?
            // Another user's payment is "not found": existence does not leak.
            .filter(|p| viewer.is_admin() || p.user_id == Some(viewer.user_id))
            .ok_or(PaymentsError::NotFound)
    }

    /// The order as its owner sees it; anyone else's is not found.
    pub(super) async fn own_order(
        &self,
        order_id: Uuid,
        by: OrderViewer,
    ) -> Result<crate::actors::orders::messages::OrderView, PaymentsError> {
        let order = self
            .orders
            .call(GetOrder {
                id: order_id,
                viewer: by,
            })
            .await
            .map_err(|e| match e {
                CallError::Domain(OrdersError::NotFound) => PaymentsError::OrderNotFound,
                CallError::Domain(OrdersError::CatalogUnavailable(why)) => {
                    PaymentsError::OrdersUnavailable(why)
                }
                CallError::Domain(other) if other.is_unavailable() => {
                    PaymentsError::OrdersUnavailable(other.to_string())
                }
                CallError::Domain(other) => {
                    PaymentsError::Unexpected(anyhow::anyhow!("orders: {other}"))
                }
                other => PaymentsError::OrdersUnavailable(other.to_string()),
            })?;
        Ok(order)
    }

    pub async fn create_payment(&self, msg: CreatePayment) -> Result<PaymentView, PaymentsError> {
        let today = Utc::now();
        let summary = check_card(
            &msg.card,
            (i64::from(today.year()), i64::from(today.month())),
        )
        .map_err(PaymentsError::Validation)?;
        let order = self.own_order(msg.order_id, msg.by).await?;
        // Only the owner pays; an admin sees every order but pays none. A
        // guest order (the only kind a token opens) is paid by its token.
        let payer = match msg.by {
            OrderViewer::User(p) if order.user_id == Some(p.user_id) => Some(p.user_id),
            OrderViewer::User(_) => return Err(PaymentsError::OrderNotFound),
            OrderViewer::TokenHolder => None,
        };
        if order.status != OrderStatus::Pending {
            return Err(PaymentsError::OrderNotPayable(
                order.status.as_str().to_owned(),
            ));
        }
        self.check_attempts(payer, order.id).await?;
        let token = self.shared.provider.tokenize(&msg.card);
        let id = Uuid::new_v4();
        let new = NewPayment {
            id,
            order_id: order.id,
            user_id: payer,
            amount: order.total,
            currency: &order.currency,
            card_token: &token,
            card_brand: summary.brand,
            card_last4: &summary.last4,
        };
        let mut tx = self.pool.begin().await?;
        let row = store::insert_payment(&mut tx, &new)
            .await
            .on_constraint(store::ONE_LIVE_PER_ORDER, || PaymentsError::AlreadyPaying)?;
        let reply = view(row);
        if let Some(key) = &msg.key {
            if !key.bind(&mut tx, id, Some(&reply)).await? {
                tx.rollback().await?;
                return Err(PaymentsError::IdempotencyLeaseLost);
            }
        }
        tx.commit().await?;
        self.shared.jobs.notify_one();
        Ok(reply)
    }

    /// Refuses a new attempt while the order or the customer has had too
    /// many failed payments in the window, saying when to try again.
    async fn check_attempts(
        &self,
        user_id: Option<Uuid>,
        order_id: Uuid,
    ) -> Result<(), PaymentsError> {
        let limits = self.attempt_limits;
        let window = limits.window_secs as f64;
        let failures = store::recent_failures(&self.pool, user_id, order_id, window).await?;
        let wait = |oldest_secs: f64| (window - oldest_secs).ceil().max(1.0) as u64;
        if failures.order_count >= limits.per_order {
            return Err(PaymentsError::TooManyFailedAttempts {
                retry_after_secs: wait(failures.order_oldest_secs),
            });
        }
        if failures.customer_count >= limits.per_customer {
            return Err(PaymentsError::TooManyFailedAttempts {
                retry_after_secs: wait(failures.customer_oldest_secs),
            });
        }
        Ok(())
    }

    pub async fn get_payment(&self, msg: GetPayment) -> Result<PaymentView, PaymentsError> {
        Ok(view(self.visible(msg.id, msg.viewer).await?))
    }

    pub async fn list_payments(
        &self,
        msg: ListPayments,
    ) -> Result<(Vec<PaymentView>, i64), PaymentsError> {
        let filter = PaymentFilter {
            user_id: if msg.viewer.is_admin() {
                msg.user_id
            } else {
                Some(msg.viewer.user_id)
            },
            status: msg.status,
            order_id: msg.order_id,
        };
        let (rows, count) =
            store::list_payments(&self.pool, &filter, msg.page.limit(), msg.page.offset()).await?;
        Ok((rows.into_iter().map(view).collect(), count))
    }

    pub async fn payment_events(
        &self,
        msg: GetPaymentEvents,
    ) -> Result<Vec<PaymentEventView>, PaymentsError> {
        let payment = self.visible(msg.id, msg.viewer).await?;
        let rows = store::events(&self.pool, payment.id).await?;
        Ok(rows.into_iter().map(PaymentEventView::from).collect())
    }

    /// A refund is granted by the order before the provider is asked: the
    /// intent (`refund_pending`, and `refund_started` in the outbox) commits
    /// here first, then orders takes the order `paid → refund_pending` in
    /// its own transaction, and only that grant enqueues the provider call.
    /// A shipment that reached the order first makes orders refuse, and the
    /// refund is denied with nothing asked of the provider; a shipment that
    /// comes after finds the order `refund_pending` and is refused. If
    /// orders cannot answer now, the relay asks again until it does.
    pub async fn refund_payment(&self, msg: RefundPayment) -> Result<PaymentView, PaymentsError> {
        let payment = self.visible(msg.id, msg.by).await?;
        // A shipped or delivered order is a return, handled outside this
        // flow; this early answer saves a round trip, the grant decides.
        let order = self.own_order(payment.order_id, msg.by.into()).await?;
        if order.status != OrderStatus::Paid && payment.status == PaymentStatus::Succeeded {
            return Err(PaymentsError::OrderNotPayable(
                order.status.as_str().to_owned(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        // Partial refunds and the full one exclude each other: checked on
        // the locked payment, as partial refunds check its status.
        store::lock_payment(&mut tx, payment.id).await?;
        if !crate::store::refunds::counting(&mut tx, payment.id)
            .await?
            .is_empty()
        {
            return Err(PaymentsError::PartiallyRefunded);
        }
        let change = StatusChange {
            refund_id: Some(Uuid::new_v4()),
            ..StatusChange::default()
        };
        // An admin's refund, or a customer cancelling their paid order.
        let who = if msg.by.is_admin() { "admin" } else { "user" };
        let detail = serde_json::json!({"by": format!("{who}:{}", msg.by.user_id)});
        let Some(row) = outcomes::apply(
            &mut tx,
            payment.id,
            PaymentEvent::RefundRequested,
            &change,
            detail,
        )
        .await?
        else {
            tx.rollback().await?;
            let now = self.visible(msg.id, msg.by).await?;
            // Refused by the status machine on the locked row (another
            // refund won): name the status it is in now.
            return Err(InvalidPaymentTransition {
                event: PaymentEvent::RefundRequested,
                current: now.status,
            }
            .into());
        };
        if let Some(key) = &msg.key {
            // The answer waits for the order's grant: bound without it.
            if !key.bind(&mut tx, payment.id, None).await? {
                tx.rollback().await?;
                return Err(PaymentsError::IdempotencyLeaseLost);
            }
        }
        tx.commit().await?;
        match self.ask_grant(payment.id).await? {
            Some(Relayed::Denied(order_status)) => {
                Err(PaymentsError::OrderNotPayable(order_status))
            }
            // The relay asked first: what it got is on the payment.
            None if self.visible(msg.id, msg.by).await?.status == PaymentStatus::Succeeded => {
                let order = self.own_order(payment.order_id, msg.by.into()).await?;
                Err(PaymentsError::OrderNotPayable(
                    order.status.as_str().to_owned(),
                ))
            }
            // Granted, or to be asked again by the relay: pending either way.
            _ => Ok(view(row)),
        }
    }

    /// Delivers the payment's `refund_started` now, so the admin hears at
    /// once whether the order granted it. A relay holding the entry is
    /// waited for; `None` when a relay delivered it first.
    async fn ask_grant(&self, payment_id: Uuid) -> Result<Option<Relayed>, PaymentsError> {
        let mut tx = self.pool.begin().await?;
        let relayed =
            match store::lock_outbox_entry(&mut tx, payment_id, PaymentNotice::RefundStarted)
                .await?
            {
                Some(entry) => Some(self.deliver(&mut tx, &entry).await?),
                None => None,
            };
        tx.commit().await?;
        Ok(relayed)
    }

    pub async fn receive_webhook(
        &self,
        msg: ReceiveWebhook,
    ) -> Result<WebhookOutcome, PaymentsError> {
        let secrets: Vec<&[u8]> = self
            .webhook_secrets
            .iter()
            .map(|s| s.expose_secret().as_bytes())
            .collect();
        webhook::verify(
            msg.signature.as_deref(),
            &msg.body,
            &secrets,
            Utc::now().timestamp(),
            self.webhook_tolerance_secs,
        )?;
        let event: ProviderEvent = serde_json::from_slice(&msg.body)
            .map_err(|e| PaymentsError::BadEvent(e.to_string()))?;
        if event.id.is_empty() || event.id.len() > 255 {
            return Err(PaymentsError::BadEvent(
                "the event id must be 1-255 characters".into(),
            ));
        }
        // PostgreSQL text cannot hold U+0000; a signed body is checked like
        // every other body before any of it is stored.
        let texts = [
            Some(&event.id),
            Some(&event.kind),
            event.data.code.as_ref(),
            event.data.message.as_ref(),
        ];
        if texts.into_iter().flatten().any(|t| t.contains('\0')) {
            return Err(PaymentsError::BadEvent(
                "the event holds a NUL character (U+0000)".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let payment_id = event.data.payment_id;
        if !store::record_webhook(&mut tx, &event.id, &event.kind, Some(payment_id)).await? {
            tx.rollback().await?;
            return Ok(WebhookOutcome {
                duplicate: true,
                applied: false,
            });
        }
        let Some(payment) = store::lock_payment(&mut tx, payment_id).await? else {
            // Acknowledged, so the provider stops; nothing to change.
            tx.commit().await?;
            tracing::warn!(event = %event.id, "webhook for an unknown payment");
            return Ok(WebhookOutcome {
                duplicate: false,
                applied: false,
            });
        };
        let detail =
            serde_json::json!({"event_id": event.id, "type": event.kind, "code": event.data.code});
        store::insert_event(&mut tx, payment.id, "webhook_received", detail.clone()).await?;
        let code = event.data.code.clone().unwrap_or_else(|| "declined".into());
        let message = event.data.message.clone().unwrap_or_default();
        let applied = match event.kind.as_str() {
            "charge.succeeded" => {
                store::drop_job(&mut tx, payment.id, JobKind::Charge).await?;
                outcomes::apply(
                    &mut tx,
                    payment.id,
                    PaymentEvent::ChargeSucceeded,
                    &StatusChange::default(),
                    detail,
                )
                .await?
            }
            "charge.failed" => {
                store::drop_job(&mut tx, payment.id, JobKind::Charge).await?;
                let change = StatusChange {
                    failure: Some((&code, &message)),
                    ..StatusChange::default()
                };
                outcomes::apply(
                    &mut tx,
                    payment.id,
                    PaymentEvent::ChargeFailed,
                    &change,
                    detail,
                )
                .await?
            }
            "charge.refunded" => {
                store::drop_job(&mut tx, payment.id, JobKind::Refund).await?;
                let event = if payment.status == PaymentStatus::RefundPending {
                    PaymentEvent::RefundSucceeded
                } else {
                    PaymentEvent::RefundedByProvider
                };
                outcomes::apply(&mut tx, payment.id, event, &StatusChange::default(), detail)
                    .await?
            }
            "charge.refund_failed" => {
                store::drop_job(&mut tx, payment.id, JobKind::Refund).await?;
                let change = StatusChange {
                    refund_failure_code: Some(&code),
                    ..StatusChange::default()
                };
                outcomes::apply(
                    &mut tx,
                    payment.id,
                    PaymentEvent::RefundFailed,
                    &change,
                    detail,
                )
                .await?
            }
            // Recorded on the timeline for people to act on; no status change.
            "charge.dispute_created" => None,
            other => {
                tracing::info!(kind = other, "webhook of a type this shop does not act on");
                None
            }
        };
        tx.commit().await?;
        self.shared.outcomes.notify_one();
        Ok(WebhookOutcome {
            duplicate: false,
            applied: applied.is_some(),
        })
    }

    pub async fn simulate_event(
        &self,
        msg: SimulateProviderEvent,
    ) -> Result<String, PaymentsError> {
        const EVENTS: [&str; 4] = [
            "charge.succeeded",
            "charge.failed",
            "charge.refunded",
            "charge.dispute_created",
        ];
        if !EVENTS.contains(&msg.event.as_str()) {
            return Err(PaymentsError::Validation(
                crate::domain::validation::ValidationErrors::single(
                    "event",
                    "invalid",
                    format!("event must be one of {}", EVENTS.join(", ")),
                ),
            ));
        }
        let mut conn = self.pool.acquire().await?;
        store::get_payment(&mut conn, msg.payment_id)
            .await?
            .ok_or(PaymentsError::NotFound)?;
        self.simulator
            .simulate_event(&msg.event, msg.payment_id)
            .await
            .map_err(|e| PaymentsError::Unexpected(anyhow::anyhow!(e)))
    }

    /// Delivers pending outbox entries to orders, oldest first, stopping at
    /// the first that orders cannot take now.
    pub async fn relay_outbox(&self, _: RelayOutbox) -> Result<u64, PaymentsError> {
        let mut tx = self.pool.begin().await?;
        let rows = store::lock_outbox(&mut tx, RELAY_BATCH).await?;
        let mut delivered = 0;
        for row in rows {
            match self.deliver(&mut tx, &row).await? {
                Relayed::Later => break,
                Relayed::Refused => {}
                Relayed::Delivered | Relayed::Denied(_) => delivered += 1,
            }
        }
        tx.commit().await?;
        Ok(delivered)
    }

    /// Delivers one locked outbox entry to orders and settles it in `tx`.
    ///
    /// - A payment that succeeded for an order that can no longer be paid
    ///   (expired or cancelled while the payment ran) is refunded
    ///   automatically.
    /// - A refund the order granted is handed to the workers; one it
    ///   refused (the order shipped first) is denied.
    /// - Anything else orders refuses is kept, with the reason, for the
    ///   admin report and the metrics: retrying cannot help, and dropping
    ///   it would hide money and goods that disagree.
    async fn deliver(
        &self,
        tx: &mut sqlx::PgConnection,
        row: &store::OutboxRow,
    ) -> Result<Relayed, PaymentsError> {
        let outcome = match row.kind {
            PaymentNotice::PaymentSucceeded => PaymentOutcome::Succeeded,
            PaymentNotice::RefundStarted => PaymentOutcome::RefundStarted,
            PaymentNotice::RefundSucceeded => PaymentOutcome::RefundSucceeded,
            PaymentNotice::RefundFailed => PaymentOutcome::RefundFailed,
            PaymentNotice::PartialRefundSucceeded => return self.deliver_refund(tx, row).await,
        };
        let sent = self
            .orders
            .call(ApplyPaymentOutcome {
                order_id: row.order_id,
                payment_id: row.payment_id.to_string(),
                outcome,
            })
            .await;
        let relayed = match sent {
            Ok(_) => {
                if outcome == PaymentOutcome::RefundStarted {
                    self.start_refund(tx, row.payment_id).await?;
                }
                Relayed::Delivered
            }
            Err(CallError::Domain(OrdersError::Transition(TransitionError::InvalidState {
                current,
                ..
            }))) if outcome == PaymentOutcome::Succeeded => {
                self.refund_unpayable(tx, row.payment_id, current.as_str())
                    .await?;
                Relayed::Delivered
            }
            Err(CallError::Domain(OrdersError::Transition(TransitionError::InvalidState {
                current,
                ..
            }))) if outcome == PaymentOutcome::RefundStarted
                && self
                    .deny_refund(tx, row.payment_id, current.as_str())
                    .await? =>
            {
                Relayed::Denied(current.as_str().to_owned())
            }
            Err(CallError::Domain(e)) => {
                tracing::error!(payment = %row.payment_id, order = %row.order_id, error = %e, kind = row.kind.as_str(), "orders refused a payment outcome; kept for reconciliation");
                store::outbox_refused(tx, row.id, &e.to_string()).await?;
                return Ok(Relayed::Refused);
            }
            Err(e) => {
                tracing::warn!(error = %e, "orders unavailable; outcomes will be relayed later");
                store::outbox_attempted(tx, row.id, false).await?;
                return Ok(Relayed::Later);
            }
        };
        store::outbox_attempted(tx, row.id, true).await?;
        Ok(relayed)
    }

    /// Tells orders a partial refund went through, and settles the entry:
    /// delivered when orders took it, refused (kept for reconciliation)
    /// when it cannot, tried later when orders cannot be reached.
    async fn deliver_refund(
        &self,
        tx: &mut sqlx::PgConnection,
        row: &store::OutboxRow,
    ) -> Result<Relayed, PaymentsError> {
        let refund_id = row
            .refund_id
            .ok_or_else(|| anyhow::anyhow!("a partial refund entry without its refund"))?;
        let (amount, return_id) = crate::store::refunds::amount_of(tx, refund_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("an outbox entry for a refund that does not exist"))?;
        let sent = self
            .orders
            .call(ApplyRefund {
                order_id: row.order_id,
                refund_id,
                amount,
                return_id,
            })
            .await;
        match sent {
            Ok(_) => {
                store::outbox_attempted(tx, row.id, true).await?;
                Ok(Relayed::Delivered)
            }
            Err(CallError::Domain(e)) if !e.is_unavailable() => {
                tracing::error!(payment = %row.payment_id, order = %row.order_id, error = %e, "orders refused a refund; kept for reconciliation");
                store::outbox_refused(tx, row.id, &e.to_string()).await?;
                Ok(Relayed::Refused)
            }
            Err(e) => {
                tracing::warn!(error = %e, "orders unavailable; refunds will be relayed later");
                store::outbox_attempted(tx, row.id, false).await?;
                Ok(Relayed::Later)
            }
        }
    }

    /// The order granted the refund: hand it to the workers, unless the
    /// payment has settled some other way meanwhile (a provider webhook).
    async fn start_refund(
        &self,
        tx: &mut sqlx::PgConnection,
        payment_id: Uuid,
    ) -> Result<(), PaymentsError> {
        let pending = store::lock_payment(tx, payment_id)
            .await?
            .is_some_and(|p| p.status == PaymentStatus::RefundPending);
        if pending {
            store::enqueue(tx, payment_id, JobKind::Refund).await?;
            self.shared.jobs.notify_one();
        }
        Ok(())
    }

    /// The order refused the refund: the payment stands as it was, and the
    /// provider was never asked. `false` when the payment is no longer
    /// waiting for the grant (the provider refunded on its own).
    async fn deny_refund(
        &self,
        tx: &mut sqlx::PgConnection,
        payment_id: Uuid,
        order_status: &str,
    ) -> Result<bool, PaymentsError> {
        let detail = serde_json::json!({
            "by": "orders",
            "reason": format!("the order was {order_status} when the refund was asked"),
        });
        let denied = outcomes::apply(
            tx,
            payment_id,
            PaymentEvent::RefundDenied,
            &StatusChange::default(),
            detail,
        )
        .await?;
        Ok(denied.is_some())
    }

    /// Refunds a payment whose order could not take it, saying why.
    async fn refund_unpayable(
        &self,
        tx: &mut sqlx::PgConnection,
        payment_id: Uuid,
        order_status: &str,
    ) -> Result<(), PaymentsError> {
        let change = StatusChange {
            refund_id: Some(Uuid::new_v4()),
            auto_refund: Some(true),
            ..StatusChange::default()
        };
        let detail = serde_json::json!({
            "by": "system",
            "reason": format!("the order was {order_status} when the payment succeeded"),
        });
        if outcomes::apply(
            tx,
            payment_id,
            PaymentEvent::RefundRequested,
            &change,
            detail,
        )
        .await?
        .is_some()
        {
            store::enqueue(tx, payment_id, JobKind::Refund).await?;
            self.shared.jobs.notify_one();
        }
        Ok(())
    }

    pub async fn pool_report(&self, _: GetPoolReport) -> Result<PoolReport, PaymentsError> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = &self.shared.stats;
        let queue = store::queue_figures(&self.pool).await?;
        let refused_outcomes = if queue.outbox_refused > 0 {
            store::refused_outcomes(&self.pool, REFUSED_LISTED).await?
        } else {
            Vec::new()
        };
        Ok(PoolReport {
            workers: self.shared.size,
            busy: s.busy.load(Relaxed),
            queue,
            refused_outcomes,
            attempts: s.attempts.load(Relaxed),
            succeeded: s.succeeded.load(Relaxed),
            failed: s.failed.load(Relaxed),
            retried: s.retried.load(Relaxed),
            refunded: s.refunded.load(Relaxed),
            leases_lost: s.leases_lost.load(Relaxed),
            worker_restarts: s.restarts.load(Relaxed),
        })
    }

    /// Purges idempotency keys past their retention.
    pub async fn purge_keys(&self) -> Result<(), PaymentsError> {
        let purged =
            crate::store::idempotency::purge(&self.pool, self.idempotency_retention).await?;
        if purged > 0 {
            tracing::info!(purged, "old payment idempotency keys purged");
        }
        Ok(())
    }

    /// [`CreatePayment`] at most once per key, in one message.
    pub async fn create_payment_once(
        &self,
        msg: CreatePaymentOnce,
    ) -> Result<KeyedOutcome, PaymentsError> {
        let (viewer, order_id) = (msg.message.by, msg.message.order_id);
        msg.run(
            &self.keys(),
            SuccessAnswer::CommittedWithEffect,
            |payment, key| {
                self.create_payment(CreatePayment {
                    key: Some(key),
                    ..payment
                })
            },
            |id| async move {
                match viewer {
                    OrderViewer::User(viewer) => self.get_payment(GetPayment { id, viewer }).await,
                    // The guest's key is scoped to the order its token opens.
                    OrderViewer::TokenHolder => {
                        let mut conn = self.pool.acquire().await?;
                        store::get_payment(&mut conn, id)
                            .await?
                            .filter(|p| p.user_id.is_none() && p.order_id == order_id)
                            .map(view)
                            .ok_or(PaymentsError::NotFound)
                    }
                }
            },
        )
        .await
    }

    /// [`RefundPayment`] at most once per key, in one message. Its answer
    /// is known only once the order has granted the refund, after the
    /// refund's own transaction, so it is saved then.
    pub async fn refund_payment_once(
        &self,
        msg: RefundPaymentOnce,
    ) -> Result<KeyedOutcome, PaymentsError> {
        let viewer = msg.message.by;
        msg.run(
            &self.keys(),
            SuccessAnswer::SavedAfter,
            |refund, key| {
                self.refund_payment(RefundPayment {
                    key: Some(key),
                    ..refund
                })
            },
            |id| self.get_payment(GetPayment { id, viewer }),
        )
        .await
    }

    /// The idempotency keys in this domain's database.
    pub(super) fn keys(&self) -> PgKeys<'_> {
        PgKeys {
            pool: &self.pool,
            stale_after: self.idempotency_lock,
        }
    }
}
