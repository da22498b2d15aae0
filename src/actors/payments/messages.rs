//! Messages the payments actor answers.

use actix::Message;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::error::PaymentsError;
use crate::actors::idempotency::{KeyBinding, Keyed};
use crate::domain::auth::Principal;
use crate::domain::orders::guest::OrderViewer;
use crate::domain::pagination::PageRequest;
use crate::domain::payments::card::CardDetails;
use crate::store::payments::{EventRow, QueueFigures, RefusedOutcome};

/// One entry of a payment's timeline, as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PaymentEventView {
    pub kind: String,
    /// What the event carried; its shape depends on `kind`.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    pub at: DateTime<Utc>,
}

impl From<EventRow> for PaymentEventView {
    fn from(r: EventRow) -> Self {
        Self {
            kind: r.kind,
            detail: r.detail.0,
            at: r.at,
        }
    }
}

/// The card as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardView {
    pub brand: String,
    pub last4: String,
}

/// A payment as clients see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub id: Uuid,
    pub order_id: Uuid,
    /// The payer's account; `null` for a guest order's payment.
    pub user_id: Option<Uuid>,
    pub status: crate::domain::payments::status::PaymentStatus,
    /// The order's total, in minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    pub card: CardView,
    pub attempts: i32,
    /// What has gone back: partial refunds that succeeded, or all of
    /// `amount` after a full refund.
    pub refunded_amount: i64,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub refund_failure_code: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Pay a pending order of the caller's (or a guest order, for whoever holds
/// its token): amount and currency are the order's. Writes the payment and
/// its job in one transaction, bound to the request's idempotency key.
#[derive(Debug, Message)]
#[rtype(result = "Result<PaymentView, PaymentsError>")]
pub struct CreatePayment {
    /// The order's owner, or the holder of a guest order's token; an
    /// admin sees every order but pays none.
    pub by: OrderViewer,
    pub order_id: Uuid,
    pub card: CardDetails,
    /// The request's idempotency key, bound to the payment in its own
    /// transaction.
    pub key: Option<KeyBinding<PaymentView>>,
}

/// Pay at most once per Idempotency-Key.
pub type CreatePaymentOnce = Keyed<CreatePayment, PaymentView, PaymentsError>;

/// One payment, if the viewer may see it (its payer, or an admin).
#[derive(Debug, Message)]
#[rtype(result = "Result<PaymentView, PaymentsError>")]
pub struct GetPayment {
    pub id: Uuid,
    pub viewer: Principal,
}

/// One page of payments, newest first; customers see only their own.
#[derive(Debug, Message)]
#[rtype(result = "Result<(Vec<PaymentView>, i64), PaymentsError>")]
pub struct ListPayments {
    pub viewer: Principal,
    pub page: PageRequest,
    pub status: Option<String>,
    pub order_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
}

/// A payment's timeline, if the viewer may see the payment.
#[derive(Debug, Message)]
#[rtype(result = "Result<Vec<PaymentEventView>, PaymentsError>")]
pub struct GetPaymentEvents {
    pub id: Uuid,
    pub viewer: Principal,
}

/// Refund a succeeded payment in full (admins), bound to the request's
/// idempotency key.
#[derive(Debug, Message)]
#[rtype(result = "Result<PaymentView, PaymentsError>")]
pub struct RefundPayment {
    pub id: Uuid,
    pub by: Principal,
    /// The request's idempotency key, bound to the payment in its own
    /// transaction.
    pub key: Option<KeyBinding<PaymentView>>,
}

/// Refund at most once per Idempotency-Key.
pub type RefundPaymentOnce = Keyed<RefundPayment, PaymentView, PaymentsError>;

/// A provider webhook: the raw body and its signature header, verified
/// here over the exact bytes.
#[derive(Debug, Message)]
#[rtype(result = "Result<WebhookOutcome, PaymentsError>")]
pub struct ReceiveWebhook {
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

/// What a webhook did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookOutcome {
    /// Whether this event id was seen before (then nothing changed).
    pub duplicate: bool,
    /// Whether the event changed the payment.
    pub applied: bool,
}

/// Ask the simulated provider to send a provider-initiated event.
#[derive(Debug, Message)]
#[rtype(result = "Result<String, PaymentsError>")]
pub struct SimulateProviderEvent {
    pub payment_id: Uuid,
    pub event: String,
}

/// Deliver pending outcomes to orders now (the actor also does this on a
/// timer and after every outcome). Returns how many were delivered.
#[derive(Debug, Message)]
#[rtype(result = "Result<u64, PaymentsError>")]
pub struct RelayOutbox;

/// The pool's figures for the admin report.
#[derive(Debug, Message)]
#[rtype(result = "Result<PoolReport, PaymentsError>")]
pub struct GetPoolReport;

/// Pool size, busy workers, queue depth and outcome counters.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PoolReport {
    pub workers: usize,
    pub busy: usize,
    pub queue: QueueFigures,
    /// Outcomes orders refused, oldest first (at most 100 listed; all are
    /// counted in `queue.outbox_refused`), for an operator to reconcile.
    pub refused_outcomes: Vec<RefusedOutcome>,
    pub attempts: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub refunded: u64,
    pub leases_lost: u64,
    pub worker_restarts: u64,
}
