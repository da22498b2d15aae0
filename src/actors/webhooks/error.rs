//! Everything the webhooks domain can answer besides success.

use crate::actors::runtime::HandlerPanicked;
use crate::domain::validation::ValidationErrors;

/// Errors of the webhooks domain. Mapped to HTTP in `http::error` only.
#[derive(Debug, thiserror::Error)]
pub enum WebhooksError {
    /// Input broke a field rule (an unknown event type, a refused URL).
    #[error(transparent)]
    Validation(ValidationErrors),
    /// No such endpoint.
    #[error("webhook endpoint not found")]
    EndpointNotFound,
    /// The endpoint has no such delivery.
    #[error("webhook delivery not found")]
    DeliveryNotFound,
    /// A redelivery to a disabled endpoint: re-enable it first.
    #[error("the endpoint is disabled; set is_active to true first")]
    EndpointDisabled,
    /// The handler panicked.
    #[error(transparent)]
    Panicked(#[from] HandlerPanicked),
    /// The webhooks database cannot answer now: retry later.
    #[error("the webhooks database is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else: a bug. Details are logged, not sent.
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

crate::actors::failure::classified_failures!(WebhooksError, "webhooks database");
