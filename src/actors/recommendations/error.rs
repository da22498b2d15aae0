//! Everything the recommender can answer besides success.

use crate::actors::runtime::HandlerPanicked;

/// Errors of the recommender. Mapped to HTTP in `http::error` only.
#[derive(Debug, thiserror::Error)]
pub enum RecommenderError {
    /// No model has been promoted yet (the first build is running).
    #[error("recommendations are not ready yet; the first model is being built")]
    NotReady,
    /// The product is not in the live model (unknown, or newer than it).
    #[error("product not found")]
    UnknownProduct,
    /// A service the build reads from could not be asked.
    #[error("the {0} service is unavailable")]
    SourceUnavailable(&'static str),
    /// The handler panicked.
    #[error(transparent)]
    Panicked(#[from] HandlerPanicked),
    /// Anything else.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
