//! Everything the orders domain can answer besides success.

use crate::actors::runtime::HandlerPanicked;
use crate::domain::catalog::stock::Shortfall;
use crate::domain::orders::status::TransitionError;
use crate::domain::validation::ValidationErrors;

/// Errors of the orders domain. Mapped to HTTP in `http::error` only.
#[derive(Debug, thiserror::Error)]
pub enum OrdersError {
    /// Input broke a field rule (including unknown or inactive products).
    #[error(transparent)]
    Validation(ValidationErrors),
    /// No such order, or not the caller's.
    #[error("order not found")]
    NotFound,
    /// The status machine refused the change.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Cancelling a paid order is refunding it in full: the caller asks
    /// payments to refund `payment_id` (the order follows to `refunded`,
    /// and its stock is given back when the money is).
    #[error("a paid order is cancelled by refunding its payment")]
    CancelByRefund { payment_id: String },
    /// The order has parcels (pending or shipped): cancel those first, or
    /// take the goods back as a return.
    #[error("the order has fulfilments; cancel the pending ones first, or take shipped goods back as a return")]
    HasFulfilments,
    /// No such return of this order.
    #[error("return not found")]
    ReturnNotFound,
    /// A return request or change was refused.
    #[error(transparent)]
    Return(crate::domain::orders::returns::ReturnRefusal),
    /// No such fulfilment of this order.
    #[error("fulfilment not found")]
    FulfilmentNotFound,
    /// A fulfilment request was refused (status, quantities, location).
    #[error(transparent)]
    Fulfilment(crate::domain::orders::fulfilment::FulfilmentRefusal),
    /// A refund would take the refunded amount past the order's total.
    #[error("the refunds would pass the order's total")]
    RefundExceedsTotal,
    /// Not enough stock for some lines; nothing was reserved or written.
    #[error("not enough stock for {} line(s)", .0.len())]
    InsufficientStock(Vec<Shortfall>),
    /// The discount code no longer applies to the order as priced now.
    #[error(transparent)]
    PromotionInapplicable(crate::domain::promotions::Inapplicable),
    /// No such shipping zone, method, tax class or rate (the entity).
    #[error("{0} not found")]
    RuleNotFound(&'static str),
    /// A shipping or tax write clashes with what exists.
    #[error("{detail}")]
    RuleConflict { code: &'static str, detail: String },
    /// The order cannot ship as asked (no method chosen, none to this
    /// destination, or the chosen one not offered).
    #[error("{}", .0.message())]
    Shipping(crate::domain::pricing::rules::ShippingProblem),
    /// The order was already paid by another payment.
    #[error("the order was paid by another payment")]
    PaidByAnotherPayment,
    /// The request's idempotency key was re-claimed by a retry while this
    /// request ran (it was presumed dead); nothing was written.
    #[error("the idempotency key was taken over by a retry")]
    IdempotencyLeaseLost,
    /// The order would charge another total than the customer was shown.
    #[error("the order's total is {actual}, not the expected {expected}")]
    TotalChanged { expected: i64, actual: i64 },
    /// The catalog could not be asked (overloaded, down or slow).
    #[error("the catalog service is unavailable: {0}")]
    CatalogUnavailable(String),
    /// The handler panicked.
    #[error(transparent)]
    Panicked(#[from] HandlerPanicked),
    /// The orders database cannot answer now (down, pool exhausted, a lock
    /// conflict that outlived its retries): retry later.
    #[error("the orders database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else: a bug. Details are logged, not sent.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

crate::actors::failure::classified_failures!(OrdersError, "orders database");
