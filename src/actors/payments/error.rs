//! Everything the payments domain can answer besides success.

use crate::actors::runtime::HandlerPanicked;
use crate::domain::payments::status::InvalidPaymentTransition;
use crate::domain::payments::webhook::SignatureError;
use crate::domain::validation::ValidationErrors;

/// Errors of the payments domain. Mapped to HTTP in `http::error` only.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    /// Input broke a field rule.
    #[error(transparent)]
    Validation(ValidationErrors),
    /// No such payment, or not the caller's.
    #[error("payment not found")]
    NotFound,
    /// No such order, or not the caller's.
    #[error("order not found")]
    OrderNotFound,
    /// The order cannot be paid (or refunded) in its state.
    #[error("the order is {0}")]
    OrderNotPayable(String),
    /// The order already has a payment processing or succeeded.
    #[error("the order already has a payment that is processing or succeeded")]
    AlreadyPaying,
    /// The payment's status forbids the request.
    #[error(transparent)]
    Transition(#[from] InvalidPaymentTransition),
    /// A partial refund was refused (over what is left, nothing to
    /// refund, an unknown line).
    #[error(transparent)]
    Refund(crate::domain::payments::refund::RefundRefusal),
    /// The order has not yet taken this payment (its outcome is still
    /// being relayed): retry shortly.
    #[error("the order has not taken this payment yet; retry shortly")]
    NotSettled,
    /// No such return of the order.
    #[error("return not found")]
    ReturnNotFound,
    /// Only a received return is refunded.
    #[error("the return is {0}; only a received return is refunded")]
    ReturnNotReceived(String),
    /// A full refund asked of a payment that has partial refunds.
    #[error(
        "the payment has partial refunds; refund what is left with POST /payments/{{id}}/refunds/"
    )]
    PartiallyRefunded,
    /// A webhook whose signature is missing, malformed, wrong or stale.
    #[error("webhook signature refused: {0}")]
    BadSignature(#[from] SignatureError),
    /// A webhook body that is not a provider event.
    #[error("webhook body is not a provider event: {0}")]
    BadEvent(String),
    /// The request's idempotency key was re-claimed by a retry.
    #[error("the idempotency key was taken over by a retry")]
    IdempotencyLeaseLost,
    /// The orders service could not be asked.
    /// Too many declined or failed payments lately (a card-testing
    /// defence); another attempt may be made after `retry_after_secs`.
    #[error("too many failed payment attempts; retry in {retry_after_secs} s")]
    TooManyFailedAttempts { retry_after_secs: u64 },
    #[error("the orders service is unavailable: {0}")]
    OrdersUnavailable(String),
    /// The handler panicked.
    #[error(transparent)]
    Panicked(#[from] HandlerPanicked),
    /// The payments database cannot answer now (down, pool exhausted, a lock
    /// conflict that outlived its retries): retry later.
    #[error("the payments database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else: a bug. Details are logged, not sent.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

crate::actors::failure::classified_failures!(PaymentsError, "payments database");
