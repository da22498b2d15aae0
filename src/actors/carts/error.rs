//! Everything the carts domain can answer besides success.

use crate::actors::runtime::HandlerPanicked;
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
    /// The catalog could not be asked (overloaded, down or slow).
    #[error("the catalog service is unavailable: {0}")]
    CatalogUnavailable(String),
    /// The handler panicked.
    #[error(transparent)]
    Panicked(#[from] HandlerPanicked),
    /// Anything else: a bug or an outage. Details are logged, not sent.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for CartsError {
    fn from(e: sqlx::Error) -> Self {
        CartsError::Unexpected(anyhow::Error::new(e).context("carts database"))
    }
}

impl crate::store::database::AsSqlxError for CartsError {
    fn as_sqlx(&self) -> Option<&sqlx::Error> {
        match self {
            CartsError::Unexpected(e) => crate::store::database::AsSqlxError::as_sqlx(e),
            _ => None,
        }
    }
}
