//! Everything the carts domain can answer besides success.

use crate::actors::orders::OrdersError;
use crate::actors::runtime::{CallError, HandlerPanicked};
use crate::domain::promotions::Inapplicable;
use crate::domain::validation::ValidationErrors;

/// Errors of the carts domain. Mapped to HTTP in `http::error` only.
#[derive(Debug, thiserror::Error)]
pub enum CartsError {
    /// Input broke a field rule (unknown or inactive product, a limit).
    #[error(transparent)]
    Validation(ValidationErrors),
    /// No such cart, or the token does not open it.
    #[error("cart not found")]
    NotFound,
    /// The cart holds no line for this product.
    #[error("the cart holds no such product")]
    NoSuchLine,
    /// More than the stock was asked for; nothing changed.
    #[error("requested {requested}, available {available}")]
    InsufficientStock { requested: i64, available: i32 },
    /// No promotion has this code (or id).
    #[error("no such promotion")]
    PromotionNotFound,
    /// Another promotion has this code.
    #[error("a promotion with this code exists")]
    CodeTaken,
    /// The promotion does not apply to this cart now.
    #[error(transparent)]
    PromotionRefused(Inapplicable),
    /// The cart cannot ship as asked.
    #[error("{}", .0.message())]
    Shipping(crate::domain::pricing::rules::ShippingProblem),
    /// Checkout of an empty cart.
    #[error("the cart is empty")]
    CartEmpty,
    /// Checkout of a cart with unavailable lines (named in `0`).
    #[error("some lines cannot be checked out: {0}")]
    CartNotReady(String),
    /// Another checkout of this cart is running.
    #[error("a checkout of this cart is already running; retry shortly")]
    CheckoutInProgress,
    /// Placing the order failed; nothing was placed, unless the failure
    /// is a timeout (then a retry finds out).
    #[error(transparent)]
    Order(CallError<OrdersError>),
    /// The orders service could not be asked.
    #[error("the orders service is unavailable: {0}")]
    OrdersUnavailable(String),
    /// The catalog could not be asked (overloaded, down or slow).
    #[error("the catalog service is unavailable: {0}")]
    CatalogUnavailable(String),
    /// The handler panicked.
    #[error(transparent)]
    Panicked(#[from] HandlerPanicked),
    /// The carts database cannot answer now (down, pool exhausted, a lock
    /// conflict that outlived its retries): retry later.
    #[error("the carts database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else: a bug. Details are logged, not sent.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

crate::actors::failure::classified_failures!(CartsError, "carts database");

/// Checkout's idempotency keys are kept by orders: not reaching them is
/// the orders service being unavailable.
impl From<CallError<crate::actors::runtime::RuntimeError>> for CartsError {
    fn from(e: CallError<crate::actors::runtime::RuntimeError>) -> Self {
        CartsError::OrdersUnavailable(e.to_string())
    }
}
