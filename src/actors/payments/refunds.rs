//! Partial and repeated refunds of a payment: the messages, their view,
//! and the work behind them. A refund is priced (lines from the order's
//! snapshot, by `domain::payments::refund`), checked against what is left
//! of the captured amount and written with its job while the payment's row
//! is locked, so concurrent refunds can never give back more than was
//! captured. The payment pool runs it with the provider under the refund's
//! own id; orders hears of each one that succeeds through the outbox.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::PaymentsError;
use super::handlers::PaymentsService;
use crate::actors::idempotency::{KeyBinding, Keyed, SuccessAnswer};
use crate::actors::orders::returns::GetReturn;
use crate::actors::orders::OrdersError;
use crate::actors::runtime::CallError;
use crate::domain::auth::Principal;
use crate::domain::idempotency::KeyedOutcome;
use crate::domain::orders::returns::ReturnStatus;
use crate::domain::payments::refund::{
    price_refund, LineBasis, RefundAsk, RefundBasis, RefundRefusal, RefundStatus, RefundedLine,
    Taken,
};
use crate::domain::payments::status::{InvalidPaymentTransition, PaymentEvent, PaymentStatus};
use crate::store::payments as payment_store;
use crate::store::refunds::{self as store, NewRefund, RefundRow};

/// A refund as clients see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RefundView {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub status: RefundStatus,
    /// In minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    pub reason: String,
    /// The order lines refunded and what each came to (`[]` for a refund
    /// of an amount).
    pub lines: Vec<RefundedLine>,
    /// Whether the shipping charge (and its tax) is refunded.
    pub include_shipping: bool,
    /// The order's return it pays back.
    pub return_id: Option<Uuid>,
    /// Why the provider refused it.
    pub failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<RefundRow> for RefundView {
    fn from(r: RefundRow) -> Self {
        Self {
            id: r.id,
            payment_id: r.payment_id,
            order_id: r.order_id,
            status: r.status,
            amount: r.amount,
            currency: r.currency,
            reason: r.reason,
            lines: r.lines.0,
            include_shipping: r.shipping,
            return_id: r.return_id,
            failure_code: r.failure_code,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Refund part of a succeeded payment (admins): an amount, or units of
/// order lines and perhaps the shipping.
#[derive(Debug, Message)]
#[rtype(result = "Result<RefundView, PaymentsError>")]
pub struct CreateRefund {
    pub payment_id: Uuid,
    pub by: Principal,
    pub ask: RefundAsk,
    pub reason: String,
    /// The order's return it pays back (at most one refund counts per
    /// return).
    pub return_id: Option<Uuid>,
    /// The request's idempotency key, bound to the refund in its own
    /// transaction.
    pub key: Option<KeyBinding<RefundView>>,
}

/// Refund a received return (admins): the received units, priced from
/// the order, or `amount`. At most one refund counts per return; asked
/// again, the one that counts is answered.
#[derive(Debug, Message)]
#[rtype(result = "Result<RefundView, PaymentsError>")]
pub struct RefundReturn {
    pub order_id: Uuid,
    pub return_id: Uuid,
    pub by: Principal,
    pub amount: Option<i64>,
    pub reason: String,
}

/// Create a refund at most once per Idempotency-Key.
pub type CreateRefundOnce = Keyed<CreateRefund, RefundView, PaymentsError>;

/// A payment's refunds, oldest first (its owner or an admin).
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<RefundView>, PaymentsError>")]
pub struct ListRefunds {
    pub payment_id: Uuid,
    pub viewer: Principal,
}

/// What the payment's counting refunds took.
fn taken_by(rows: &[RefundRow]) -> Taken {
    let mut taken = Taken::default();
    for row in rows {
        for line in &row.lines.0 {
            *taken.units.entry(line.line_id).or_default() += line.quantity;
        }
        taken.shipping |= row.shipping;
        taken.amount += row.amount;
    }
    taken
}

impl PaymentsService {
    /// The order's snapshot, as refunds price it, read as the admin
    /// asking sees it.
    async fn refund_basis(
        &self,
        order_id: Uuid,
        admin: Principal,
    ) -> Result<RefundBasis, PaymentsError> {
        let order = self.own_order(order_id, admin.into()).await?;
        Ok(RefundBasis {
            prices_include_tax: order.prices_include_tax,
            shipping: order.shipping,
            shipping_tax: order.shipping_tax,
            lines: order
                .items
                .iter()
                .map(|i| LineBasis {
                    line_id: i.id,
                    quantity: i64::from(i.quantity),
                    shipped: i64::from(i.shipped_quantity),
                    line_total: i.line_total,
                    discount: i.discount,
                    tax: i.tax,
                })
                .collect(),
        })
    }

    pub async fn create_refund(&self, msg: CreateRefund) -> Result<RefundView, PaymentsError> {
        let payment = self.visible(msg.payment_id, msg.by).await?;
        if !msg.by.is_admin() {
            return Err(PaymentsError::NotFound);
        }
        // The snapshot never changes once the order is placed: read before
        // the lock, priced under it against what other refunds took.
        let basis = match &msg.ask {
            RefundAsk::Lines { .. } => self.refund_basis(payment.order_id, msg.by).await?,
            RefundAsk::Amount(_) => RefundBasis {
                prices_include_tax: true,
                shipping: 0,
                shipping_tax: 0,
                lines: Vec::new(),
            },
        };
        let mut tx = self.pool().begin().await?;
        let payment = payment_store::lock_payment(&mut tx, payment.id)
            .await?
            .ok_or(PaymentsError::NotFound)?;
        if payment.status != PaymentStatus::Succeeded {
            return Err(InvalidPaymentTransition {
                event: PaymentEvent::RefundRequested,
                current: payment.status,
            }
            .into());
        }
        // Until the order has taken this payment it may still refuse it
        // (it expired meanwhile) and be refunded in full automatically: no
        // partial refund may start before that is settled.
        if !store::order_took_payment(&mut tx, payment.id).await? {
            return Err(PaymentsError::NotSettled);
        }
        let counting = store::counting(&mut tx, payment.id).await?;
        if let Some(done) = counting
            .iter()
            .find(|r| msg.return_id.is_some() && r.return_id == msg.return_id)
        {
            return Ok(RefundView::from(done.clone()));
        }
        let priced = price_refund(&basis, &taken_by(&counting), &msg.ask, payment.amount)
            .map_err(PaymentsError::Refund)?;
        let by = format!("admin:{}", msg.by.user_id);
        let id = Uuid::new_v4();
        let row = store::insert_refund(
            &mut tx,
            &NewRefund {
                id,
                payment_id: payment.id,
                order_id: payment.order_id,
                amount: priced.amount,
                currency: &payment.currency,
                reason: &msg.reason,
                lines: &priced.lines,
                shipping: priced.shipping,
                created_by: &by,
                return_id: msg.return_id,
            },
        )
        .await?;
        let view = RefundView::from(row);
        if let Some(key) = &msg.key {
            if !key.bind(&mut tx, id, Some(&view)).await? {
                tx.rollback().await?;
                return Err(PaymentsError::IdempotencyLeaseLost);
            }
        }
        tx.commit().await?;
        self.wake_workers();
        Ok(view)
    }

    /// [`CreateRefund`] at most once per key, in one message.
    pub async fn create_refund_once(
        &self,
        msg: CreateRefundOnce,
    ) -> Result<KeyedOutcome, PaymentsError> {
        let viewer = msg.message.by;
        let payment_id = msg.message.payment_id;
        msg.run(
            &self.keys(),
            SuccessAnswer::CommittedWithEffect,
            |refund, key| {
                self.create_refund(CreateRefund {
                    key: Some(key),
                    ..refund
                })
            },
            |id| async move {
                self.visible(payment_id, viewer).await?;
                store::get_refund(self.pool(), payment_id, id)
                    .await?
                    .map(RefundView::from)
                    .ok_or(PaymentsError::NotFound)
            },
        )
        .await
    }

    pub async fn refund_return(&self, msg: RefundReturn) -> Result<RefundView, PaymentsError> {
        if !msg.by.is_admin() {
            return Err(PaymentsError::NotFound);
        }
        let wanted = self
            .orders()
            .call(GetReturn {
                order_id: msg.order_id,
                return_id: msg.return_id,
            })
            .await
            .map_err(|e| match e {
                CallError::Domain(OrdersError::ReturnNotFound | OrdersError::NotFound) => {
                    PaymentsError::ReturnNotFound
                }
                CallError::Domain(other) if !other.is_unavailable() => {
                    PaymentsError::Unexpected(anyhow::anyhow!("orders: {other}"))
                }
                other => PaymentsError::OrdersUnavailable(other.to_string()),
            })?;
        if wanted.status != ReturnStatus::Received {
            return Err(PaymentsError::ReturnNotReceived(
                wanted.status.as_str().to_owned(),
            ));
        }
        let payment = payment_store::captured_payment_of(self.pool(), msg.order_id)
            .await?
            .ok_or_else(|| PaymentsError::OrderNotPayable("not paid".into()))?;
        let ask = match msg.amount {
            Some(amount) => RefundAsk::Amount(amount),
            None => RefundAsk::Lines {
                lines: wanted
                    .lines
                    .iter()
                    .filter(|l| l.received > 0)
                    .map(|l| (l.line_id, i64::from(l.received)))
                    .collect(),
                include_shipping: false,
            },
        };
        self.create_refund(CreateRefund {
            payment_id: payment.id,
            by: msg.by,
            ask,
            reason: msg.reason,
            return_id: Some(msg.return_id),
            key: None,
        })
        .await
    }

    pub async fn list_refunds(&self, msg: ListRefunds) -> Result<Vec<RefundView>, PaymentsError> {
        let payment = self.visible(msg.payment_id, msg.viewer).await?;
        Ok(store::list_refunds(self.pool(), payment.id)
            .await?
            .into_iter()
            .map(RefundView::from)
            .collect())
    }
}

impl From<RefundRefusal> for PaymentsError {
    fn from(r: RefundRefusal) -> Self {
        PaymentsError::Refund(r)
    }
}
